//! Criterion benchmark of outbound inspection (`inspect::scan`: vault secrets and key formats)
//! with 1,000 vault secrets loaded, over 1 MiB bodies: clean JSON prose, a clean request
//! carrying a base64 image (clean, but long runs of key-like characters), an adversarial body
//! made of near-miss key prefixes (every few bytes a candidate that fails its check) and vault
//! form fragments, and the worst cases of the key-format checks that we know: `adversarial_runs`
//! (every 21 bytes a prefix starting a token run just long enough to be checked, failing at its
//! last byte), `adversarial_jwt` (every 25 bytes a JWT shape whose header is JSON without `alg`)
//! and `adversarial_pem` (every 31 bytes a `-----BEGIN … PRIVATE KEY` line a dash short).
//! Side by side they show how much the cost depends on content.
//! Run with `cargo bench -p aegis-core --bench inspect`.
#![allow(missing_docs)]

use std::hint::black_box;

use aegis_core::inspect::{self, Location};
use aegis_core::redact::RedactionSet;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;

const BODY: usize = common::INSPECT_BODY;

fn scan(c: &mut Criterion) {
    let set = RedactionSet::try_new(common::secrets(1_000)).expect("builds");
    let bodies = [
        ("clean", common::prose(BODY)),
        ("clean_base64", common::base64_image(BODY)),
        ("adversarial", common::adversarial(BODY)),
        ("adversarial_runs", common::adversarial_runs(BODY)),
        ("adversarial_jwt", common::adversarial_jwt(BODY)),
        ("adversarial_pem", common::adversarial_pem(BODY)),
    ];
    let mut group = c.benchmark_group("inspect_scan_1m");
    group.throughput(Throughput::Bytes(BODY as u64));
    for (name, body) in &bodies {
        group.bench_function(format!("1000_secrets_{name}"), |b| {
            b.iter(|| {
                let found = inspect::scan(&set, black_box(body), &Location::Body);
                assert!(found.is_empty());
                black_box(found.len())
            })
        });
    }
    // The key-format pass alone (an empty vault), for comparison.
    let empty = RedactionSet::try_new(Vec::new()).expect("builds");
    for (name, body) in &bodies {
        group.bench_function(format!("0_secrets_{name}"), |b| {
            b.iter(|| black_box(inspect::scan(&empty, black_box(body), &Location::Body).len()))
        });
    }
    // A vault of 1,000 secrets alike but for their last characters, and near misses of them:
    // the worst case of the vault-secret search (every near miss a verified candidate).
    let (shared_secrets, shared_body) = common::shared_prefix(BODY);
    let shared = RedactionSet::try_new(shared_secrets).expect("builds");
    group.bench_function("1000_shared_prefix_near_misses", |b| {
        b.iter(|| black_box(inspect::scan(&shared, black_box(&shared_body), &Location::Body).len()))
    });
    group.bench_function("pii_clean", |b| {
        let body = &bodies[0].1;
        b.iter(|| black_box(inspect::pii::find(black_box(body)).len()))
    });
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
