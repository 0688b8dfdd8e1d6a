//! End-to-end tests of the `aegis` binary: each test runs the real binary in its own temp
//! directory against a real SQLite data directory.

mod e2e {
    pub(crate) mod support;

    mod agents;
    mod config;
    mod db;
    mod doctor;
    mod gate;
    mod gate_inspect;
    mod init;
    mod ledger;
    mod mcp;
    mod mcp_sdk;
    mod observability;
    mod policy;
    mod policy_gate;
    mod policy_replay;
    mod usage_errors;
    mod vault;
    mod webhook_cli;
    mod webhook_events;
    mod webhooks;
}
