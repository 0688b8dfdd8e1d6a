//! The request pipeline shared by the HTTP gate and the MCP server: the snapshot holder
//! and its reload task, the ordered checks, rate limiters, upstream forwarding with credential
//! injection, and response redaction.

pub(crate) mod audit;
pub mod body;
pub mod decision_log;
pub mod error;
pub mod health;
pub mod holder;
pub(crate) mod inject;
pub(crate) mod inspect;
pub mod limits;
pub mod metrics;
pub mod peer;
pub mod pipeline;
pub mod policy_dir;
pub mod snapshot_loader;
pub mod upstream;
pub mod webhook_dispatch;
pub mod webhook_expiry;
pub mod webhook_router;
pub mod webhook_stats;

pub use error::EngineError;
pub use pipeline::{Intent, Pipeline, PipelineSettings, ProxyBody, Via};
