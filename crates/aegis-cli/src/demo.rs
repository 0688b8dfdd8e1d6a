//! The pieces `aegis demo` needs that are not Aegis itself: a throwaway CA and a local HTTPS
//! echo upstream standing in for a real API, and a minimal agent that talks to the gate.
//! Loopback only; everything lives in a temporary directory.

pub(crate) mod agent;
pub(crate) mod upstream;
