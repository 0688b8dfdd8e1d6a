//! The vault the ledger benchmarks write into: a registry and one vault in `data`, with cheap
//! placeholder key material (nothing here is encrypted or unlocked).

use std::time::Duration;

use aegis_core::crypto::{KdfParams, random_uuid};
use aegis_core::ledger::{EntryContent, SystemEvent, Via};
use aegis_core::names::VaultName;
use aegis_core::timestamp::Timestamp;
use aegis_store::DataDir;
use aegis_store::registry::Registry;
use aegis_store::vault::{VaultMeta, VaultStore};

/// Creates the registry and a vault named `default`, whose ledger public key is
/// `ledger_public_key` (checkpoints signed with the matching key then verify).
pub(crate) async fn bench_vault(data: &DataDir, ledger_public_key: Option<Vec<u8>>) -> VaultStore {
    Registry::create(data, Duration::from_secs(5))
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
        ledger_public_key,
        ledger_key_envelope: None,
    };
    let first = EntryContent::system(SystemEvent::VaultCreated, Via::Cli, "bench");
    VaultStore::create(data, &meta, Duration::from_secs(5), first)
        .await
        .expect("vault")
}
