//! The tools this server offers and their JSON-schema inputs (SPEC.md §16.2). The descriptions
//! are written for the model that picks and fills them in.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};

/// `aegis_proxy_request`.
pub(crate) const PROXY: &str = "aegis_proxy_request";
/// `aegis_list_services`.
pub(crate) const LIST_SERVICES: &str = "aegis_list_services";
/// `aegis_health`.
pub(crate) const HEALTH: &str = "aegis_health";

/// Every tool, in the order they are listed.
pub(crate) fn all() -> Vec<Tool> {
    vec![proxy_tool(), list_services_tool(), health_tool()]
}

fn proxy_tool() -> Tool {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "service": {
                "type": "string",
                "description": "Service name of the credential to use, as listed by aegis_list_services (for example \"github\"). Aegis injects that credential's secret; you never see or send it."
            },
            "path": {
                "type": "string",
                "description": "Path on the upstream API, starting with '/', optionally with a ?query (for example \"/repos/octo/hello/issues?state=open\"). Sent byte for byte."
            },
            "method": {
                "type": "string",
                "description": "HTTP method. Default GET.",
                "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                "default": "GET"
            },
            "headers": {
                "type": "object",
                "description": "Extra request headers as name -> value strings (for example {\"Accept\": \"application/json\"}). Authorization, Host, Content-Length, hop-by-hop and X-Aegis-* headers are dropped: Aegis adds the credential itself.",
                "additionalProperties": {"type": "string"}
            },
            "body": {
                "type": "string",
                "description": "Request body. Without a Content-Type header, application/json is sent. Never put secrets in it: bodies are inspected."
            },
            "body_encoding": {
                "type": "string",
                "description": "How `body` is encoded: utf8 (default) or base64 for binary bodies.",
                "enum": ["utf8", "base64"],
                "default": "utf8"
            },
            "target_host": {
                "type": "string",
                "description": "Host (or host:port) to call when the service allows several; must be on the credential's allowlist. Default: the credential's first listed domain."
            },
            "credential": {
                "type": "string",
                "description": "Credential name, only needed when several credentials serve the same service."
            }
        },
        "required": ["service", "path"]
    });
    let mut tool = Tool::new(
        PROXY,
        "Call an HTTP API through Aegis with a stored credential. Aegis checks the request \
         (grants, allowed domains, scopes, policies, rate limits, body inspection), injects the \
         secret, forwards it over HTTPS and returns the upstream's status, headers and body, with \
         any echoed secret redacted. A refusal is an error result whose text is a JSON object \
         {\"error\":{\"code\",\"message\",\"request_id\"}}; the message says what to do.",
        object(schema),
    );
    tool.annotations = Some(hints(false, false));
    tool
}

fn list_services_tool() -> Tool {
    let mut tool = Tool::new(
        LIST_SERVICES,
        "List the services and credentials you may use with aegis_proxy_request: service, \
         credential, auth_type, domains (the hosts it may be sent to), scopes (allowed methods) \
         and expires_at. Secrets are never shown.",
        object(
            serde_json::json!({"type": "object", "properties": {}, "additionalProperties": false}),
        ),
    );
    tool.annotations = Some(hints(true, true));
    tool
}

fn health_tool() -> Tool {
    let mut tool = Tool::new(
        HEALTH,
        "Report whether Aegis is ready: vault sealed or not, snapshot generation, policy mode \
         and whether agent authentication is required.",
        object(
            serde_json::json!({"type": "object", "properties": {}, "additionalProperties": false}),
        ),
    );
    tool.annotations = Some(hints(true, true));
    tool
}

fn hints(read_only: bool, idempotent: bool) -> ToolAnnotations {
    let mut hints = ToolAnnotations::default();
    hints.read_only_hint = Some(read_only);
    hints.idempotent_hint = Some(idempotent);
    hints.destructive_hint = Some(!read_only);
    hints.open_world_hint = Some(!read_only);
    hints
}

fn object(value: serde_json::Value) -> Arc<JsonObject> {
    match value {
        serde_json::Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_a_description_and_an_object_schema() {
        let tools = all();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, [PROXY, LIST_SERVICES, HEALTH]);
        for tool in &tools {
            assert!(tool.description.as_ref().is_some_and(|d| d.len() > 40));
            assert_eq!(tool.input_schema["type"], "object");
        }
        let proxy = &tools[0].input_schema;
        assert_eq!(proxy["required"], serde_json::json!(["service", "path"]));
        for property in proxy["properties"]
            .as_object()
            .expect("properties")
            .values()
        {
            assert!(property["description"].is_string(), "{property}");
        }
    }
}
