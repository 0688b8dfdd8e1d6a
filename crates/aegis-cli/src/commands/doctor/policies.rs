//! The `policies` check of `aegis doctor` (SPEC.md §23): the policies directory, when one is
//! configured, must compile as the gate would compile it; and policies loaded while agent auth
//! is not required are a warning, because anonymous requests bypass them (§11.3).

use aegis_core::policy::PolicySet;

use super::{Check, Status};
use crate::context::Context;
use crate::policy_files::read_policy_dir;

/// The check, or `None` when `gate.policies_dir` is not set (the policy engine is off).
pub(super) fn check(ctx: &Context) -> Option<Check> {
    let gate = &ctx.loaded.config.gate;
    let dir = gate.policies_dir.as_ref()?;
    let sources = match read_policy_dir(dir) {
        Ok(sources) => sources,
        Err(err) => {
            return Some(
                Check::new("policies", Status::Fail, err.to_string())
                    .hint("point gate.policies_dir at the directory of policy files"),
            );
        }
    };
    let set = match PolicySet::compile(&sources) {
        Ok(set) => set,
        Err(errors) => {
            // The first problem and how many more, as `policy test` reports them.
            return Some(
                Check::new("policies", Status::Fail, errors.to_string())
                    .hint("run aegis policy validate to see every problem; the gate will not start with them"),
            );
        }
    };
    let loaded = format!(
        "{} policy file(s), {} rule(s) valid in {}",
        set.file_count(),
        set.rule_count(),
        dir.display()
    );
    if !set.is_empty() && !gate.require_agent_auth {
        return Some(
            Check::new(
                "policies",
                Status::Warn,
                format!("{loaded}, but agent auth is not required: anonymous requests bypass them"),
            )
            .hint(
                "set gate.require_agent_auth: true (or start the gate with --require-agent-auth)",
            ),
        );
    }
    Some(Check::new("policies", Status::Pass, loaded))
}
