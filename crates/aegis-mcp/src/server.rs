//! The MCP server handler: lists the tools and runs each call through the one pipeline.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt as _};

use aegis_core::denial::Denial;
use aegis_engine::health::{HealthInfo, health_report};
use aegis_engine::pipeline::new_request_id;
use aegis_engine::{Intent, Pipeline, Via};

use crate::error::McpError;
use crate::identity::AgentIdentity;
use crate::proxy::{ProxyCall, described, response_object};
use crate::services::usable_services;
use crate::tool_error::{denial_object, denial_result};
use crate::tools;

/// Settings of the MCP server that come from configuration (`mcp.*`).
#[derive(Debug, Clone)]
pub struct McpSettings {
    /// Upstream body bytes returned by `aegis_proxy_request` before truncation.
    pub max_response_bytes: u64,
    /// Deadline for a whole tool call; past it the call is `upstream_timeout`.
    pub request_timeout: Duration,
    /// Whether agent auth is required (as `gate.require_agent_auth`).
    pub require_agent_auth: bool,
    /// Facts for `aegis_health`.
    pub health: HealthInfo,
}

/// The MCP server for one identity: a thin adapter over the shared [`Pipeline`].
#[derive(Debug, Clone)]
pub struct AegisMcp {
    pipeline: Arc<Pipeline>,
    settings: Arc<McpSettings>,
    identity: AgentIdentity,
}

impl AegisMcp {
    /// A server acting for `identity` on `pipeline`.
    pub fn new(
        pipeline: Arc<Pipeline>,
        settings: Arc<McpSettings>,
        identity: AgentIdentity,
    ) -> Self {
        Self {
            pipeline,
            settings,
            identity,
        }
    }

    /// The settings this server runs with.
    pub fn settings(&self) -> Arc<McpSettings> {
        self.settings.clone()
    }

    /// Serves MCP over standard input and output until the host closes them.
    ///
    /// # Errors
    /// [`McpError::Handshake`] when the host never completes `initialize`;
    /// [`McpError::Aborted`] when the server task fails.
    pub async fn serve_stdio(self) -> Result<(), McpError> {
        let running = self
            .serve(rmcp::transport::io::stdio())
            .await
            .map_err(|e| McpError::Handshake {
                reason: e.to_string(),
            })?;
        running.waiting().await.map_err(|_| McpError::Aborted)?;
        Ok(())
    }

    /// Runs one tool call; every outcome, refusals included, is a tool result.
    pub async fn call(
        &self,
        identity: &AgentIdentity,
        name: &str,
        arguments: Option<&rmcp::model::JsonObject>,
    ) -> CallToolResult {
        match name {
            tools::PROXY => self.proxy(identity, arguments).await,
            tools::LIST_SERVICES => {
                let request_id = new_request_id();
                let snapshot = self.pipeline.holder().load();
                match identity.authenticate(&snapshot, self.settings.require_agent_auth) {
                    Ok(caller) => CallToolResult::structured(usable_services(&snapshot, caller)),
                    Err(denial) => denial_result(&denial, &request_id),
                }
            }
            tools::HEALTH => {
                let (_, report) = health_report(&self.pipeline, &self.settings.health);
                CallToolResult::structured(report)
            }
            other => denial_result(
                &Denial::bad_request(format!(
                    "unknown tool {other}; the tools are {}, {} and {}",
                    tools::PROXY,
                    tools::LIST_SERVICES,
                    tools::HEALTH
                )),
                &new_request_id(),
            ),
        }
    }

    /// `aegis_proxy_request`: arguments → `Intent` → pipeline → result, within the call deadline.
    async fn proxy(
        &self,
        identity: &AgentIdentity,
        arguments: Option<&rmcp::model::JsonObject>,
    ) -> CallToolResult {
        let request_id = new_request_id();
        let outcome = tokio::time::timeout(self.settings.request_timeout, async {
            // Arguments that make no request are refused here, and recorded as the gate
            // records a request it cannot parse.
            let request =
                match ProxyCall::parse(arguments).and_then(|call| call.into_request(identity)) {
                    Ok(request) => request,
                    Err(denial) => {
                        let (method, target) = described(arguments);
                        self.pipeline
                            .record_refusal(Via::Mcp, &request_id, &method, &target, &denial)
                            .await?;
                        return Err(denial);
                    }
                };
            let intent = Intent {
                request_id: request_id.clone(),
                via: Via::Mcp,
                request,
            };
            let response = self.pipeline.handle(intent).await?;
            response_object(response, &request_id, self.settings.max_response_bytes).await
        })
        .await
        .unwrap_or(Err(Denial::UpstreamTimeout));
        match outcome {
            Ok(object) => CallToolResult::structured(object),
            Err(denial) => {
                tracing::info!(request_id = %request_id, code = denial.code(), "tool call denied");
                CallToolResult::structured_error(denial_object(&denial, &request_id))
            }
        }
    }
}

impl ServerHandler for AegisMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("aegis", self.settings.health.version))
            .with_instructions(
                "Aegis holds API credentials for you. Call aegis_list_services to see which \
                 services you may use, then aegis_proxy_request to call them; Aegis adds the \
                 secret. Never ask for or send secrets yourself.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::all()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Over streamable HTTP each request carries the identity the transport authenticated;
        // over stdio it is the process's.
        let identity = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<AgentIdentity>())
            .unwrap_or(&self.identity)
            .clone();
        Ok(self
            .call(&identity, &request.name, request.arguments.as_ref())
            .await
            .into())
    }
}
