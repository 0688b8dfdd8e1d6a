//! A fixed amount of scanning, for instruction counts that do not depend on machine load:
//! `valgrind --tool=callgrind --toggle-collect='scan_instructions::run'` over
//! `cargo bench -p aegis-core --bench scan_instructions -- <case> <iterations> [<KiB>]` (cases
//! `clean`, `clean_base64`, `adversarial`, `clean_keys`, `adversarial_keys`, `adversarial_runs`,
//! `adversarial_jwt`, `adversarial_pem`, `redact_prose`,
//! `redact_hex`, `shared_prefix`: 1,000 secrets alike but for 8 characters, and near misses of
//! them). The criterion benches (`inspect`, `redact`) measure time on the same inputs.
#![allow(missing_docs)]

use std::hint::black_box;

use aegis_core::inspect::{self, Location};
use aegis_core::redact::RedactionSet;

mod common;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let case = args.first().map_or("clean", String::as_str);
    let iterations: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1);
    // The body size in KiB (default 1 MiB): counts at two sizes show the cost is linear.
    let size = args
        .get(2)
        .and_then(|k| k.parse::<usize>().ok())
        .map_or(common::INSPECT_BODY, |kib| kib * 1024);
    let vault = RedactionSet::try_new(common::secrets(1_000)).expect("builds");
    let empty = RedactionSet::try_new(Vec::new()).expect("builds");
    let (shared_secrets, shared_body) = common::shared_prefix(size);
    let shared = RedactionSet::try_new(shared_secrets).expect("builds");
    let (set, body) = match case {
        "adversarial" => (&vault, common::adversarial(size)),
        "clean_base64" => (&vault, common::base64_image(size)),
        "clean_keys" => (&empty, common::prose(size)),
        "adversarial_keys" => (&empty, common::adversarial(size)),
        "adversarial_runs" => (&vault, common::adversarial_runs(size)),
        "adversarial_jwt" => (&vault, common::adversarial_jwt(size)),
        "adversarial_pem" => (&vault, common::adversarial_pem(size)),
        "redact_prose" => (&vault, common::prose(64 * 1024)),
        "redact_hex" => (&vault, common::hex(64 * 1024)),
        "shared_prefix" => (&shared, shared_body),
        _ => (&vault, common::prose(size)),
    };
    let redact = case.starts_with("redact");
    for _ in 0..iterations {
        black_box(run(set, black_box(&body), redact));
    }
}

#[inline(never)]
fn run(set: &RedactionSet, body: &[u8], redact: bool) -> usize {
    if redact {
        set.redact(body, None).1
    } else {
        inspect::scan(set, body, &Location::Body).len()
    }
}
