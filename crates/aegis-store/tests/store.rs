//! Store tests on real SQLite files: vault creation, credential rows, generation counter,
//! tampering, schema versions and concurrent writers.

use std::time::Duration;

use aegis_core::agent::{Agent, AgentToken, grant_encoding};
use aegis_core::auth::AuthType;
use aegis_core::credential::{Credential, InspectionMode};
use aegis_core::crypto::{CryptoError, KdfParams, MasterKey, SecretField, VaultKeys, random_uuid};
use aegis_core::domain::DomainList;
use aegis_core::ledger::{EntryContent, SystemEvent, Via};
use aegis_core::names::AgentName;
use aegis_core::names::{CredentialName, ServiceName, VaultName};
use aegis_core::scopes::Scopes;
use aegis_core::timestamp::Timestamp;
use aegis_store::agents::{StoredAgent, StoredGrant};
use aegis_store::registry::{Registry, VaultRecord};
use aegis_store::vault::{StoredCredential, VaultMeta, VaultStore};
use aegis_store::{DataDir, StoreError};

#[path = "store/webhooks.rs"]
mod webhooks;

const BUSY: Duration = Duration::from_secs(5);
const FAST: KdfParams = KdfParams {
    memory_kib: KdfParams::MIN_MEMORY_KIB,
    iterations: 2,
    parallelism: 1,
};

struct Fixture {
    _dir: tempfile::TempDir,
    data: DataDir,
    store: VaultStore,
    keys: VaultKeys,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path().join(".aegis"));
    let registry = Registry::create(&data, BUSY).await.expect("registry");
    let id = random_uuid().expect("uuid");
    let salt = b"fixture-salt-16b".to_vec();
    let keys = VaultKeys::derive(&MasterKey::from_bytes([4; 32]), &salt, FAST, *id.as_bytes())
        .expect("derive");
    let meta = VaultMeta {
        id,
        name: VaultName::parse("default").expect("name"),
        salt,
        kdf: FAST,
        key_check: keys.key_check_value().to_vec(),
        sealed: false,
        created_at: Timestamp::from_millis(1),
        ledger_public_key: None,
        ledger_key_envelope: None,
    };
    let store = VaultStore::create(&data, &meta, BUSY, entry(SystemEvent::VaultCreated))
        .await
        .expect("create vault");
    registry
        .register(&VaultRecord {
            id,
            name: meta.name.clone(),
            created_at: meta.created_at,
        })
        .await
        .expect("register");
    Fixture {
        _dir: dir,
        data,
        store,
        keys,
    }
}

fn entry(event: SystemEvent) -> EntryContent {
    EntryContent::system(event, Via::Cli, "store-test")
}

fn credential(name: &str) -> Credential {
    Credential {
        id: random_uuid().expect("uuid"),
        name: CredentialName::parse(name).expect("name"),
        service: ServiceName::parse("svc").expect("service"),
        domains: DomainList::parse("api.example.com", false).expect("domains"),
        auth_type: AuthType::Bearer,
        header_name: None,
        query_param: None,
        scopes: Scopes::All,
        expires_at: None,
        rate_limit: None,
        body_inspection: InspectionMode::Block,
        allow_http: false,
        pass_cookies: false,
        created_at: Timestamp::from_millis(10),
        updated_at: Timestamp::from_millis(10),
        rotated_at: None,
        previous_until: None,
    }
}

fn sealed(fx: &Fixture, credential: Credential, secret: &[u8]) -> StoredCredential {
    let id = *credential.id.as_bytes();
    let mac = fx
        .keys
        .row_mac(&credential.canonical_encoding(&fx.store.meta().id))
        .to_vec();
    StoredCredential {
        secret: fx
            .keys
            .seal_secret(id, SecretField::Secret, secret)
            .expect("seal"),
        credential,
        previous_secret: None,
        mac,
    }
}

async fn raw_pool(fx: &Fixture) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}", fx.data.vault_db("default").display());
    sqlx::SqlitePool::connect(&url)
        .await
        .expect("raw connection")
}

#[tokio::test]
async fn ciphertext_copied_onto_another_row_fails_to_decrypt() {
    let fx = fixture().await;
    let a = sealed(&fx, credential("alpha"), b"secret-of-alpha-123");
    let b = sealed(&fx, credential("bravo"), b"secret-of-bravo-456");
    fx.store
        .insert_credential(&a, entry(SystemEvent::CredentialAdded))
        .await
        .expect("insert a");
    fx.store
        .insert_credential(&b, entry(SystemEvent::CredentialAdded))
        .await
        .expect("insert b");

    let pool = raw_pool(&fx).await;
    sqlx::query("UPDATE credentials SET secret = (SELECT secret FROM credentials WHERE name = 'alpha') WHERE name = 'bravo'")
        .execute(&pool)
        .await
        .expect("swap ciphertexts");
    pool.close().await;

    let bravo = fx
        .store
        .credential(&CredentialName::parse("bravo").expect("name"))
        .await
        .expect("read")
        .expect("present");
    assert_eq!(
        bravo.secret, a.secret,
        "the row now holds alpha's ciphertext"
    );
    let opened = fx.keys.open_secret(
        *bravo.credential.id.as_bytes(),
        SecretField::Secret,
        &bravo.secret,
    );
    assert_eq!(opened.err(), Some(CryptoError::Decrypt));
    // Alpha's own row still decrypts.
    let alpha = fx.store.credentials().await.expect("list").remove(0);
    let plain = fx
        .keys
        .open_secret(
            *alpha.credential.id.as_bytes(),
            SecretField::Secret,
            &alpha.secret,
        )
        .expect("alpha decrypts");
    assert_eq!(plain.as_slice(), b"secret-of-alpha-123");
}

#[tokio::test]
async fn metadata_edited_in_the_file_fails_the_row_mac() {
    let fx = fixture().await;
    let a = sealed(&fx, credential("alpha"), b"secret-of-alpha-123");
    fx.store
        .insert_credential(&a, entry(SystemEvent::CredentialAdded))
        .await
        .expect("insert");
    let pool = raw_pool(&fx).await;
    sqlx::query("UPDATE credentials SET domains = 'evil.example.net'")
        .execute(&pool)
        .await
        .expect("tamper");
    pool.close().await;
    let row = fx.store.credentials().await.expect("list").remove(0);
    assert_eq!(row.credential.domains.to_string(), "evil.example.net");
    let encoding = row.credential.canonical_encoding(&fx.store.meta().id);
    assert!(
        !fx.keys.verify_row_mac(&encoding, &row.mac),
        "widened allowlist detected"
    );
}

#[tokio::test]
async fn every_write_bumps_the_generation() {
    let fx = fixture().await;
    assert_eq!(fx.store.generation().await.expect("gen"), 1);
    let a = sealed(&fx, credential("alpha"), b"secret-of-alpha-123");
    fx.store
        .insert_credential(&a, entry(SystemEvent::CredentialAdded))
        .await
        .expect("insert");
    assert_eq!(fx.store.generation().await.expect("gen"), 2);
    fx.store
        .replace_credential(&a, entry(SystemEvent::CredentialUpdated))
        .await
        .expect("replace");
    assert_eq!(fx.store.generation().await.expect("gen"), 3);
    fx.store
        .remove_credential(&a.credential.name, entry(SystemEvent::CredentialRemoved))
        .await
        .expect("remove");
    assert_eq!(fx.store.generation().await.expect("gen"), 4);
    // A failed write leaves the generation alone.
    let missing = fx
        .store
        .remove_credential(&a.credential.name, entry(SystemEvent::CredentialRemoved))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    assert_eq!(fx.store.generation().await.expect("gen"), 4);
}

#[tokio::test]
async fn duplicate_names_conflict() {
    let fx = fixture().await;
    fx.store
        .insert_credential(
            &sealed(&fx, credential("alpha"), b"one-secret-123"),
            entry(SystemEvent::CredentialAdded),
        )
        .await
        .expect("insert");
    let again = fx
        .store
        .insert_credential(
            &sealed(&fx, credential("alpha"), b"two-secret-456"),
            entry(SystemEvent::CredentialAdded),
        )
        .await;
    assert!(matches!(
        again,
        Err(StoreError::Conflict {
            kind: "credential",
            ..
        })
    ));
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused() {
    let fx = fixture().await;
    let pool = raw_pool(&fx).await;
    sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES (99, 0)")
        .execute(&pool)
        .await
        .expect("bump version");
    pool.close().await;
    let name = VaultName::parse("default").expect("name");
    let err = VaultStore::open(&fx.data, &name, BUSY)
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported: 5
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "database schema version 99 is newer than this aegis supports (5)"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_reported_as_corrupted() {
    let fx = fixture().await;
    // A vault directory no connection has ever opened, so no checkpoint can rewrite it.
    let broken_dir = fx.data.vault_dir("broken");
    std::fs::create_dir_all(&broken_dir).expect("mkdir");
    std::fs::write(fx.data.vault_db("broken"), vec![b'x'; 8192]).expect("write junk");
    let name = VaultName::parse("broken").expect("name");
    let err = VaultStore::open(&fx.data, &name, BUSY)
        .await
        .expect_err("corrupted");
    assert!(matches!(err, StoreError::Corrupted { .. }), "{err:?}");
}

#[tokio::test]
async fn concurrent_writers_from_two_handles_all_commit() {
    let fx = fixture().await;
    let name = VaultName::parse("default").expect("name");
    let second = VaultStore::open(&fx.data, &name, BUSY)
        .await
        .expect("second handle");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = if i % 2 == 0 {
            fx.store.clone()
        } else {
            second.clone()
        };
        let row = sealed(&fx, credential(&format!("c{i}")), b"concurrent-secret");
        tasks.spawn(async move {
            store
                .insert_credential(&row, entry(SystemEvent::CredentialAdded))
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("insert committed");
    }
    assert_eq!(fx.store.credentials().await.expect("list").len(), 20);
    assert_eq!(fx.store.generation().await.expect("gen"), 21);
}

#[tokio::test]
async fn upgrading_a_v1_vault_keeps_a_private_backup_first() {
    let fx = fixture().await;
    let pool = raw_pool(&fx).await;
    // Turn the database back into what version 1 wrote.
    sqlx::raw_sql(
        "DROP TABLE webhooks; DROP TABLE webhook_outbox; DROP TABLE webhook_expiry_notices; \
         DROP TABLE webhook_config_secrets; DROP TABLE grants; DROP TABLE agents; \
         DROP TABLE ledger; DROP TABLE ledger_head; DROP TABLE ledger_checkpoints; \
         ALTER TABLE vault_meta DROP COLUMN ledger_public_key; \
         ALTER TABLE vault_meta DROP COLUMN ledger_key_envelope; \
         DELETE FROM schema_version WHERE version >= 2;",
    )
    .execute(&pool)
    .await
    .expect("downgrade to v1");
    pool.close().await;
    fx.store.clone().close().await;
    let name = VaultName::parse("default").expect("name");
    let reopened = VaultStore::open(&fx.data, &name, BUSY)
        .await
        .expect("upgrade");
    let status = reopened.schema_status().await.expect("status");
    assert_eq!((status.current, status.latest), (5, 5));
    let backup =
        std::path::PathBuf::from(format!("{}.bak-v1", fx.data.vault_db("default").display()));
    assert!(backup.is_file(), "a copy of the v1 file is kept");
    assert_eq!(
        aegis_store::secure_fs::mode_of(&backup).expect("mode"),
        0o600
    );
    let appended = reopened
        .append(entry(SystemEvent::ConfigChanged))
        .await
        .expect("the upgraded vault takes ledger entries");
    assert_eq!(appended.id(), 1);
}

fn stored_agent(fx: &Fixture, name: &str) -> StoredAgent {
    let token = AgentToken::generate().expect("random");
    let agent = Agent {
        id: random_uuid().expect("uuid"),
        name: AgentName::parse(name).expect("name"),
        token_digest: token.digest(),
        rate_limit: None,
        created_at: Timestamp::from_millis(20),
        token_created_at: Timestamp::from_millis(20),
    };
    let mac = fx
        .keys
        .row_mac(&agent.canonical_encoding(&fx.store.meta().id))
        .to_vec();
    StoredAgent { agent, mac }
}

fn grant(fx: &Fixture, agent: &StoredAgent, credential: &StoredCredential) -> StoredGrant {
    let (a, c) = (agent.agent.id, credential.credential.id);
    StoredGrant {
        agent_id: a,
        credential_id: c,
        created_at: Timestamp::from_millis(30),
        mac: fx
            .keys
            .row_mac(&grant_encoding(&fx.store.meta().id, &a, &c))
            .to_vec(),
    }
}

#[tokio::test]
async fn agents_and_grants_round_trip_with_their_ledger_entries() {
    let fx = fixture().await;
    let cred = sealed(&fx, credential("alpha"), b"secret-of-alpha-123");
    fx.store
        .insert_credential(&cred, entry(SystemEvent::CredentialAdded))
        .await
        .expect("credential");
    let bot = stored_agent(&fx, "bot");
    fx.store
        .insert_agent(&bot, entry(SystemEvent::AgentAdded))
        .await
        .expect("agent");
    let again = fx
        .store
        .insert_agent(&stored_agent(&fx, "bot"), entry(SystemEvent::AgentAdded))
        .await;
    assert!(matches!(
        again,
        Err(StoreError::Conflict { kind: "agent", .. })
    ));
    let g = grant(&fx, &bot, &cred);
    let before = fx.store.generation().await.expect("gen");
    assert!(
        fx.store
            .insert_grant(&g, entry(SystemEvent::GrantAdded))
            .await
            .expect("grant")
    );
    assert_eq!(fx.store.generation().await.expect("gen"), before + 1);
    // Idempotent: a second grant writes nothing.
    assert!(
        !fx.store
            .insert_grant(&g, entry(SystemEvent::GrantAdded))
            .await
            .expect("grant")
    );
    assert_eq!(fx.store.generation().await.expect("gen"), before + 1);
    let rows = fx.store.agent_rows().await.expect("rows");
    assert_eq!(rows.agents, vec![bot.clone()]);
    assert_eq!(rows.grants, vec![g.clone()]);
    assert_eq!(
        fx.store.agent(&bot.agent.name).await.expect("agent"),
        Some(bot.clone())
    );
    // Updating the credential keeps its grants.
    fx.store
        .replace_credential(&cred, entry(SystemEvent::CredentialUpdated))
        .await
        .expect("replace");
    assert_eq!(fx.store.agent_rows().await.expect("rows").grants.len(), 1);
    let mut renewed = bot.clone();
    renewed.agent.token_digest = AgentToken::generate().expect("random").digest();
    renewed.mac = fx
        .keys
        .row_mac(&renewed.agent.canonical_encoding(&fx.store.meta().id))
        .to_vec();
    fx.store
        .update_agent(&renewed, entry(SystemEvent::AgentTokenRegenerated))
        .await
        .expect("regenerate");
    assert_eq!(
        fx.store.agent(&bot.agent.name).await.expect("agent"),
        Some(renewed)
    );
    assert!(
        fx.store
            .remove_grant(
                &g.agent_id,
                &g.credential_id,
                entry(SystemEvent::GrantRevoked)
            )
            .await
            .expect("revoke")
    );
    assert!(
        !fx.store
            .remove_grant(
                &g.agent_id,
                &g.credential_id,
                entry(SystemEvent::GrantRevoked)
            )
            .await
            .expect("revoke")
    );
    let events: Vec<_> = fx
        .store
        .ledger_entries(0, 100)
        .await
        .expect("ledger")
        .iter()
        .filter_map(|e| e.content().event())
        .collect();
    assert_eq!(
        events,
        vec![
            SystemEvent::VaultCreated,
            SystemEvent::CredentialAdded,
            SystemEvent::AgentAdded,
            SystemEvent::GrantAdded,
            SystemEvent::CredentialUpdated,
            SystemEvent::AgentTokenRegenerated,
            SystemEvent::GrantRevoked,
        ]
    );
}

#[tokio::test]
async fn removing_an_agent_or_a_credential_removes_its_grants() {
    let fx = fixture().await;
    let a = sealed(&fx, credential("alpha"), b"secret-of-alpha-123");
    let b = sealed(&fx, credential("beta"), b"secret-of-beta-4567");
    for c in [&a, &b] {
        fx.store
            .insert_credential(c, entry(SystemEvent::CredentialAdded))
            .await
            .expect("credential");
    }
    let one = stored_agent(&fx, "one");
    let two = stored_agent(&fx, "two");
    for agent in [&one, &two] {
        fx.store
            .insert_agent(agent, entry(SystemEvent::AgentAdded))
            .await
            .expect("agent");
        for c in [&a, &b] {
            fx.store
                .insert_grant(&grant(&fx, agent, c), entry(SystemEvent::GrantAdded))
                .await
                .expect("grant");
        }
    }
    assert_eq!(fx.store.agent_rows().await.expect("rows").grants.len(), 4);
    fx.store
        .remove_agent(&one.agent.name, entry(SystemEvent::AgentRemoved))
        .await
        .expect("remove agent");
    fx.store
        .remove_credential(&a.credential.name, entry(SystemEvent::CredentialRemoved))
        .await
        .expect("remove credential");
    let rows = fx.store.agent_rows().await.expect("rows");
    assert_eq!(rows.agents, vec![two.clone()]);
    assert_eq!(rows.grants, vec![grant(&fx, &two, &b)]);
    let missing = fx
        .store
        .remove_agent(&one.agent.name, entry(SystemEvent::AgentRemoved))
        .await;
    assert!(matches!(
        missing,
        Err(StoreError::NotFound { kind: "agent", .. })
    ));
}

mod writer {
    //! The ledger writer against a real SQLite vault: durable waits, backpressure that waits
    //! instead of dropping, and a close that commits every reserved slot.

    use std::sync::atomic::Ordering;

    use aegis_store::ledger_writer::{self, LedgerUnavailable, WriterSettings};
    use tokio_util::sync::CancellationToken;

    use super::*;

    fn settings(capacity: usize) -> WriterSettings {
        WriterSettings {
            capacity,
            batch_max: 512,
            // Long enough that only a waiter or the close can end a batch in these tests.
            batch_delay: Duration::from_secs(30),
            enqueue_timeout: Duration::from_secs(5),
        }
    }

    async fn head_id(store: &VaultStore) -> u64 {
        store
            .ledger_head()
            .await
            .expect("head")
            .map_or(0, |h| h.last_id)
    }

    #[tokio::test]
    async fn a_durable_entry_is_committed_when_record_durable_returns() {
        let fx = fixture().await;
        let close = CancellationToken::new();
        let (writer, task) =
            ledger_writer::spawn(fx.store.clone(), settings(16), None, close.clone());
        let before = head_id(&fx.store).await;
        // A batch entry first: on its own it would wait out the 30 s batch delay.
        writer
            .record(entry(SystemEvent::ConfigChanged))
            .await
            .expect("queued");
        tokio::time::timeout(
            Duration::from_secs(10),
            writer.record_durable(entry(SystemEvent::ConfigChanged)),
        )
        .await
        .expect("a waiter cuts the batch delay short")
        .expect("committed");
        assert_eq!(head_id(&fx.store).await, before + 2);
        close.cancel();
        task.await.expect("writer");
    }

    #[tokio::test]
    async fn a_full_queue_waits_counts_the_wait_and_drops_nothing() {
        let fx = fixture().await;
        let close = CancellationToken::new();
        let (writer, task) =
            ledger_writer::spawn(fx.store.clone(), settings(1), None, close.clone());
        let before = head_id(&fx.store).await;
        // The only slot is held, so the next reservation has to wait for it.
        let mut held = writer.reserve_slot().await.expect("slot");
        held.set(entry(SystemEvent::ConfigChanged));
        let waiting = {
            let writer = writer.clone();
            tokio::spawn(async move { writer.record(entry(SystemEvent::ConfigChanged)).await })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while writer.stats().backpressure.load(Ordering::Relaxed) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the second request never waited"
            );
            tokio::task::yield_now().await;
        }
        drop(held);
        waiting.await.expect("task").expect("queued after the wait");
        close.cancel();
        task.await.expect("writer");
        let stats = writer.stats();
        assert!(stats.backpressure_wait_micros.load(Ordering::Relaxed) > 0);
        assert_eq!(stats.committed.load(Ordering::Relaxed), 2);
        assert_eq!(head_id(&fx.store).await, before + 2);
    }

    #[tokio::test]
    async fn a_slot_that_cannot_be_had_in_time_is_ledger_unavailable() {
        let fx = fixture().await;
        let close = CancellationToken::new();
        let mut quick = settings(1);
        quick.enqueue_timeout = Duration::from_millis(50);
        let (writer, task) = ledger_writer::spawn(fx.store.clone(), quick, None, close.clone());
        let held = writer.reserve_slot().await.expect("slot");
        assert_eq!(
            writer.record(entry(SystemEvent::ConfigChanged)).await,
            Err(LedgerUnavailable)
        );
        drop(held);
        close.cancel();
        task.await.expect("writer");
    }
}
