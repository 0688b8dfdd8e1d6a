//! Criterion benchmark of ledger appends on SQLite: one group commit of 512 entries through
//! `VaultStore::append_batch` (what the writer does per batch), reported as entries per second.
//! Run with `cargo bench -p aegis-store --bench ledger_append`.
#![allow(missing_docs)]

use std::time::Duration;

use aegis_core::crypto::{KdfParams, random_uuid};
use aegis_core::ledger::{EntryContent, Outcome, SystemEvent, Via};
use aegis_core::names::VaultName;
use aegis_core::timestamp::Timestamp;
use aegis_store::DataDir;
use aegis_store::registry::Registry;
use aegis_store::vault::{VaultMeta, VaultStore};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 512;

fn request_entry(i: usize) -> EntryContent {
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
    let store = runtime.block_on(async {
        Registry::create(&data, Duration::from_secs(5))
            .await
            .expect("registry");
        let meta = VaultMeta {
            id: random_uuid().expect("uuid"),
            name: VaultName::parse("default").expect("name"),
            salt: vec![7; 16],
            kdf: KdfParams::default(),
            key_check: vec![0; 32],
            sealed: false,
            created_at: Timestamp::from_millis(0),
            ledger_public_key: None,
            ledger_key_envelope: None,
        };
        let first = EntryContent::system(SystemEvent::VaultCreated, Via::Cli, "bench");
        VaultStore::create(&data, &meta, Duration::from_secs(5), first)
            .await
            .expect("vault")
    });
    let mut group = c.benchmark_group("ledger_append");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    group.bench_function("group_commit_512_entries_sqlite_wal", |b| {
        b.iter(|| {
            let batch: Vec<EntryContent> = (0..BATCH).map(request_entry).collect();
            runtime.block_on(store.append_batch(batch)).expect("append");
        })
    });
    group.finish();
}

criterion_group!(benches, appends);
criterion_main!(benches);
