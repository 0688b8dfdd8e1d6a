//! Criterion benchmark of the echo/inspection scan (`RedactionSet::redact`) over bodies that
//! hold no secret: 64 KiB of JSON prose and 64 KiB of hex text (hashes, ids: the bytes that
//! hex-encoded secrets are made of, where a byte-frequency prefilter keeps firming false
//! candidates), for 6 and for 1,000 vault secrets. Reported as bytes per second; the hex body
//! beside the prose body in the same run shows whether the scan's cost depends on content.
//! Run with `cargo bench -p aegis-core --bench redact`.
#![allow(missing_docs)]

use std::hint::black_box;

use aegis_core::redact::{RedactionSecret, RedactionSet};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BODY: usize = 64 * 1024;

/// `sk-bench-` and 36 pseudo-random hex digits (splitmix64), like bench/gate_load.sh's keys.
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

fn hex() -> Vec<u8> {
    let line = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
    line.iter().copied().cycle().take(BODY).collect()
}

fn scan(c: &mut Criterion) {
    let bodies = [("prose", prose()), ("hex", hex())];
    let mut group = c.benchmark_group("redact_scan_64k");
    group.throughput(Throughput::Bytes(BODY as u64));
    for count in [6, 1_000] {
        let set = RedactionSet::try_new(secrets(count)).expect("builds");
        for (name, body) in &bodies {
            group.bench_function(format!("{count}_secrets_{name}"), |b| {
                b.iter(|| {
                    let (out, found) = set.redact(black_box(body), None);
                    assert_eq!(found, 0);
                    black_box(out.len())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
