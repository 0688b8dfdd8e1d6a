//! Criterion benchmark of `ledger verify`'s walk over a SQLite ledger of 1,000,000 entries
//! (SPEC.md §15.2: every hash recomputed, one checkpoint every 1,000 entries checked), beside
//! the baseline of only reading the same rows, measured in the same run.
//! Run with `cargo bench -p aegis-store --bench ledger_verify` (filling the ledger takes about
//! ten seconds before the first measurement).
#![allow(missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aegis_core::ledger::{
    ChainAnchor, EntryContent, LedgerSigningKey, Outcome, Via, checkpoint_message,
};
use aegis_core::timestamp::Timestamp;
use aegis_store::DataDir;
use aegis_store::vault::Checkpoint;
use criterion::{Criterion, criterion_group, criterion_main};

const ENTRIES: u64 = 1_000_000;
const BATCH: u64 = 4_096;
const CHECKPOINT_EVERY: u64 = 1_000;

fn request_entry(i: u64) -> EntryContent {
    let outcome = if i.is_multiple_of(7) {
        Outcome::Blocked
    } else {
        Outcome::Allowed
    };
    let entry = EntryContent::request(outcome, Via::Gate, "bench")
        .with_request_id(format!("01a2137c-2c3f-7761-9ccf-{i:012}"))
        .with_service("github")
        .with_credential("gh")
        .with_method("GET")
        .with_target_host("api.github.com")
        .with_path(format!("/repos/aegis/issues/{i}").as_bytes())
        .with_latency_ms(12);
    if outcome == Outcome::Blocked {
        entry.with_status_code(403).with_denial_code("scope_denied")
    } else {
        entry.with_status_code(200).with_bytes_out(1024)
    }
}

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path().join(".aegis"));
    let key = LedgerSigningKey::generate().expect("key");
    let (store, checkpoints) = runtime.block_on(async {
        let store = common::bench_vault(&data, Some(key.public_key().to_vec())).await;
        let vault_id = store.meta().id;
        let mut next = 1u64;
        while next < ENTRIES {
            let end = (next + BATCH).min(ENTRIES);
            store
                .append_batch(&(next..end).map(request_entry).collect::<Vec<_>>())
                .await
                .expect("append");
            next = end;
        }
        let mut after = 0;
        let mut checkpoints = BTreeMap::new();
        loop {
            let page = store.ledger_columns(after, 10_000).await.expect("read");
            let Some(last) = page.last() else { break };
            after = last.id;
            for entry in page
                .iter()
                .filter(|e| e.id.is_multiple_of(CHECKPOINT_EVERY))
            {
                let ts = Timestamp::from_millis(1_700_000_000_000);
                let message = checkpoint_message(&vault_id, entry.id, &entry.hash, ts);
                checkpoints.insert(
                    entry.id,
                    Checkpoint {
                        entry_id: entry.id,
                        hash: entry.hash,
                        ts,
                        signature: key.sign(&message).to_vec(),
                    },
                );
            }
        }
        (store, checkpoints)
    });
    let genesis = ChainAnchor::genesis(&store.meta().id);
    let public_key = Some(key.public_key());

    let mut group = c.benchmark_group("ledger_verify_1m");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("read_only_baseline", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut after = 0;
                let mut count = 0u64;
                loop {
                    let page = store.ledger_columns(after, 1_024).await.expect("read");
                    let Some(last) = page.last() else { break };
                    after = last.id;
                    count += page.len() as u64;
                }
                assert_eq!(count, ENTRIES);
            })
        })
    });
    group.bench_function("walk_with_checkpoints", |b| {
        b.iter(|| {
            let walked = runtime
                .block_on(store.walk_ledger(genesis, &checkpoints, public_key))
                .expect("intact");
            assert_eq!(walked.entries, ENTRIES);
            assert_eq!(walked.checkpoints as u64, ENTRIES / CHECKPOINT_EVERY);
        })
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
