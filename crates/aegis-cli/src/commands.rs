//! One module per command noun; each turns parsed arguments into store and core calls and
//! prints the result.

pub(crate) mod agent;
pub(crate) mod config;
pub(crate) mod db;
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod gate;
pub(crate) mod init;
pub(crate) mod key;
pub(crate) mod ledger;
pub(crate) mod mcp;
pub(crate) mod policy;
pub(crate) mod vault;
pub(crate) mod webhook;
