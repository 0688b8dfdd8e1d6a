//! Criterion benchmark of outbound inspection (`inspect::scan`: vault secrets and key formats)
//! with 1,000 vault secrets loaded, over 1 MiB bodies: clean JSON prose, and an adversarial body
//! made of near-miss key prefixes (every few bytes a candidate that fails its check) and vault
//! form fragments. The two side by side show whether the cost depends on content.
//! Run with `cargo bench -p aegis-core --bench inspect`.
#![allow(missing_docs)]

use std::hint::black_box;

use aegis_core::inspect::{self, Location};
use aegis_core::redact::{RedactionSecret, RedactionSet};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BODY: usize = 1024 * 1024;

/// `sk-bench-` and 36 pseudo-random hex digits (splitmix64), like benches/redact.rs.
fn secrets(count: usize) -> Vec<RedactionSecret> {
    let mut state = 0x5eed_u64;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..count)
        .map(|i| {
            let hex: String = (0..36)
                .map(|_| char::from(b"0123456789abcdef"[usize::try_from(next() % 16).unwrap_or(0)]))
                .collect();
            RedactionSecret::new(format!("sk-bench-{hex}").as_bytes(), i, &format!("key-{i}"))
        })
        .collect()
}

fn prose() -> Vec<u8> {
    let text = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Summarise the \
        open issues in the repository and list which ones mention the token refresh, the \
        password reset flow or the API key rotation.\"}],\"temperature\":0.2}\n";
    text.as_bytes().iter().copied().cycle().take(BODY).collect()
}

fn adversarial() -> Vec<u8> {
    let text = "sk-ab ghp_x AKIA1 eyJhbGciOi. -----BEGIN X xoxb-1 AIza_ sk-bench-0123 \
        sk_live_abc github_pat_ ";
    text.as_bytes().iter().copied().cycle().take(BODY).collect()
}

fn scan(c: &mut Criterion) {
    let set = RedactionSet::try_new(secrets(1_000)).expect("builds");
    let bodies = [("clean", prose()), ("adversarial", adversarial())];
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
    group.bench_function("pii_clean", |b| {
        let body = &bodies[0].1;
        b.iter(|| black_box(inspect::pii::find(black_box(body)).len()))
    });
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
