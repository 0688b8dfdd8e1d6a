//! Criterion benchmark of the echo/inspection scan (`RedactionSet::redact`) over bodies that
//! hold no secret: 64 KiB of JSON prose and 64 KiB of hex text (hashes, ids: the bytes that
//! hex-encoded secrets are made of, where a byte-frequency prefilter keeps firming false
//! candidates), for 6 and for 1,000 vault secrets. Reported as bytes per second; the hex body
//! beside the prose body in the same run shows whether the scan's cost depends on content.
//! Run with `cargo bench -p aegis-core --bench redact`.
#![allow(missing_docs)]

use std::hint::black_box;

use aegis_core::redact::RedactionSet;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;

const BODY: usize = 64 * 1024;

fn scan(c: &mut Criterion) {
    let bodies = [("prose", common::prose(BODY)), ("hex", common::hex(BODY))];
    let mut group = c.benchmark_group("redact_scan_64k");
    group.throughput(Throughput::Bytes(BODY as u64));
    for count in [6, 1_000] {
        let set = RedactionSet::try_new(common::secrets(count)).expect("builds");
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
