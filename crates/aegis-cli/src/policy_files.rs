//! The policies directory reader, which lives in aegis-engine beside the gate's reload.

pub(crate) use aegis_engine::policy_dir::{PolicyDirError, read_policy_dir};
