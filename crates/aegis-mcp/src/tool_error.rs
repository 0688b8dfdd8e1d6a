//! The one place a `Denial` becomes a tool result: `isError: true`, and the text is the JSON
//! error object of SPEC.md §10.2 (the same code and message the gate sends).

use rmcp::model::CallToolResult;

use aegis_core::denial::Denial;

/// The tool result for a denial or upstream failure of request `request_id`.
pub(crate) fn denial_result(denial: &Denial, request_id: &str) -> CallToolResult {
    CallToolResult::structured_error(denial_object(denial, request_id))
}

/// `{"error":{"code","message","request_id"}}`, as in the gate's denial body.
pub(crate) fn denial_object(denial: &Denial, request_id: &str) -> serde_json::Value {
    serde_json::json!({
        "error": {
            "code": denial.code(),
            "message": denial.to_string(),
            "request_id": request_id,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_is_an_error_result_whose_text_is_the_gate_error_object() {
        let result = denial_result(&Denial::AgentAuthRequired, "id-1");
        assert_eq!(result.is_error, Some(true));
        let text = serde_json::to_value(&result.content[0]).expect("json");
        let parsed: serde_json::Value =
            serde_json::from_str(text["text"].as_str().expect("text")).expect("error JSON");
        assert_eq!(parsed["error"]["code"], "agent_auth_required");
        assert_eq!(parsed["error"]["request_id"], "id-1");
        assert_eq!(
            parsed["error"]["message"],
            Denial::AgentAuthRequired.to_string()
        );
    }
}
