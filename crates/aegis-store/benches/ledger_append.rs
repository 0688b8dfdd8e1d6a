//! Criterion benchmarks of ledger appends on SQLite (WAL, batch durability), reported as
//! entries per second:
//!
//! - `group_commit_512_entries_sqlite_wal`: one `VaultStore::append_batch` of 512 entries, what
//!   the writer does per batch;
//! - `writer_20000_entries`: 20,000 entries recorded by four producer tasks through the
//!   `LedgerWriter` (bounded queue, group commit), timed until the writer has committed the
//!   last of them and stopped.
//!
//! Run with `cargo bench -p aegis-store --bench ledger_append`.
#![allow(missing_docs)]

mod common;

use std::time::Duration;

use aegis_core::ledger::{EntryContent, Outcome, Via};
use aegis_store::DataDir;
use aegis_store::ledger_writer::{self, WriterSettings};
use aegis_store::vault::VaultStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 512;

/// A request entry like the gate's; `i` grows across the whole run, as UUIDv7 request ids grow
/// with time, so the `request_id` index is appended to at its right edge as in production.
fn request_entry(i: u64) -> EntryContent {
    EntryContent::request(Outcome::Allowed, Via::Gate, "bench")
        .with_request_id(format!("01a2137c-2c3f-7761-9ccf-{i:012}"))
        .with_service("github")
        .with_credential("gh")
        .with_method("GET")
        .with_target_host("api.github.com")
        .with_path(format!("/repos/aegis/issues/{i}").as_bytes())
        .with_status_code(200)
        .with_latency_ms(12)
        .with_bytes_out(1024)
}

fn appends(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path().join(".aegis"));
    let store = runtime.block_on(common::bench_vault(&data, None));
    let mut group = c.benchmark_group("ledger_append");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    group.bench_function("group_commit_512_entries_sqlite_wal", |b| {
        let mut next = 0u64;
        b.iter(|| {
            let batch: Vec<EntryContent> = (next..next + BATCH as u64).map(request_entry).collect();
            next += BATCH as u64;
            runtime
                .block_on(store.append_batch(&batch))
                .expect("append");
        })
    });

    const THROUGH_WRITER: u64 = 20_000;
    const PRODUCERS: u64 = 4;
    group.throughput(Throughput::Elements(THROUGH_WRITER));
    group.sample_size(20);
    let mut next = 1u64 << 40;
    group.bench_function("writer_20000_entries", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let base = next;
                next += THROUGH_WRITER;
                total += runtime.block_on(through_writer(&store, base, THROUGH_WRITER, PRODUCERS));
            }
            total
        })
    });
    group.finish();
}

/// Records `count` entries from `producers` tasks through a fresh writer and returns the time
/// until the writer has committed all of them and stopped.
async fn through_writer(store: &VaultStore, base: u64, count: u64, producers: u64) -> Duration {
    let close = tokio_util::sync::CancellationToken::new();
    let started = std::time::Instant::now();
    let (writer, task) = ledger_writer::spawn(
        store.clone(),
        WriterSettings {
            capacity: 10_000,
            batch_max: 512,
            batch_delay: Duration::from_millis(20),
            enqueue_timeout: Duration::from_secs(5),
        },
        None,
        close.clone(),
    );
    let per = count / producers;
    let mut handles = Vec::new();
    for p in 0..producers {
        let writer = writer.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per {
                writer
                    .record(request_entry(base + p * per + i))
                    .await
                    .expect("queued");
            }
        }));
    }
    for handle in handles {
        handle.await.expect("producer");
    }
    close.cancel();
    task.await.expect("writer");
    assert_eq!(
        writer
            .stats()
            .committed
            .load(std::sync::atomic::Ordering::Relaxed),
        per * producers
    );
    started.elapsed()
}

criterion_group!(benches, appends);
criterion_main!(benches);
