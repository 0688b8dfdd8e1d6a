//! Unit and property tests of the ledger: truncation, encoding, chain verification, checkpoint
//! keys and JSON round trips. The frozen vectors live in `tests/ledger_vectors.rs`.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::entry::bounded_text;
use super::*;
use crate::timestamp::Timestamp;

const VAULT: uuid::Uuid = uuid::Uuid::from_bytes([
    0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
]);
const T0: i64 = 1_772_357_400_125;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn allowed_request(n: u64) -> EntryContent {
    EntryContent::request(Outcome::Allowed, Via::Gate, "gate-1")
        .with_request_id(format!("0195f0a0-0000-7000-8000-{n:012x}"))
        .with_agent("builder")
        .with_credential("github")
        .with_service("github")
        .with_method("GET")
        .with_target_host("api.github.com")
        .with_path(b"/user/repos?page=2")
        .with_status_code(200)
        .with_latency_ms(12 + n)
        .with_bytes_in(0)
        .with_bytes_out(512)
        .with_detail(object(json!({"policy_rule": "read-only"})))
}

/// A chain of `n` entries (ids 1..=n, one second apart) from the vault's genesis.
fn chain(n: u64) -> Vec<LedgerEntry> {
    let mut prev = genesis(&VAULT);
    (1..=n)
        .map(|id| {
            let ts = Timestamp::from_millis(T0 + i64::try_from(id).expect("small") * 1000);
            let entry = LedgerEntry::chained(id, ts, allowed_request(id), prev);
            prev = *entry.hash();
            entry
        })
        .collect()
}

fn verify(entries: &[LedgerEntry]) -> Result<VerifiedChain, ChainError> {
    verify_chain_from(entries.iter(), ChainAnchor::genesis(&VAULT))
}

fn body(entry: &LedgerEntry) -> (u64, Timestamp, &EntryContent) {
    (entry.id(), entry.ts(), entry.content())
}

// ---------------------------------------------------------------------------------------------
// Truncation rules

#[test]
fn service_method_and_host_are_truncated_to_their_limits() {
    let c = EntryContent::request(Outcome::Blocked, Via::Gate, "gate-1")
        .with_service("s".repeat(65))
        .with_method("M".repeat(17))
        .with_target_host("h".repeat(300));
    assert_eq!(c.service(), Some("s".repeat(64).as_str()));
    assert_eq!(c.method(), Some("M".repeat(16).as_str()));
    assert_eq!(c.target_host(), Some("h".repeat(255).as_str()));
}

#[test]
fn values_at_the_limit_are_kept_whole() {
    let c = EntryContent::request(Outcome::Blocked, Via::Gate, "gate-1")
        .with_service("s".repeat(64))
        .with_method("M".repeat(16))
        .with_path(&[b'/'; 2048]);
    assert_eq!(c.service().map(str::len), Some(64));
    assert_eq!(c.method().map(str::len), Some(16));
    assert_eq!(c.path().map(str::len), Some(2048));
}

#[test]
fn truncation_never_splits_a_character() {
    // 21 × "€" (3 bytes) = 63 bytes, then "é" (2 bytes) straddles byte 64.
    let service = format!("{}é", "€".repeat(21));
    let c = EntryContent::request(Outcome::Blocked, Via::Gate, "g").with_service(&service);
    assert_eq!(c.service(), Some("€".repeat(21).as_str()));
}

#[test]
fn path_drops_the_query_string_and_keeps_the_rest() {
    let c = EntryContent::request(Outcome::Allowed, Via::Gate, "g")
        .with_path(b"/v1/chat?api_key=sk-secret&x=1?y");
    assert_eq!(c.path(), Some("/v1/chat"));
    let bare = EntryContent::request(Outcome::Allowed, Via::Gate, "g").with_path(b"/v1/chat#frag");
    assert_eq!(bare.path(), Some("/v1/chat#frag"));
    let only_query = EntryContent::request(Outcome::Allowed, Via::Gate, "g").with_path(b"?token=1");
    assert_eq!(only_query.path(), Some(""));
}

#[test]
fn path_invalid_utf8_becomes_replacement_characters() {
    let c = EntryContent::request(Outcome::Allowed, Via::Gate, "g")
        .with_path(b"/a\xff\xfeb/\xe2\x82(c?\xff");
    assert_eq!(c.path(), Some("/a\u{fffd}\u{fffd}b/\u{fffd}(c"));
}

#[test]
fn path_is_truncated_after_the_query_is_removed() {
    let mut raw = vec![b'p'; 3000];
    raw.extend_from_slice(b"?q=1");
    let c = EntryContent::request(Outcome::Allowed, Via::Gate, "g").with_path(&raw);
    assert_eq!(c.path().map(str::len), Some(MAX_PATH_BYTES));
    // Replacement characters count with their UTF-8 length (3 bytes each).
    let c = EntryContent::request(Outcome::Allowed, Via::Gate, "g").with_path(&[0xff; 1000]);
    assert_eq!(c.path().map(str::len), Some(2046));
}

#[test]
fn detail_over_four_kib_is_replaced_by_a_truncation_marker() {
    let big = object(json!({ "findings": "x".repeat(5000) }));
    let c = EntryContent::request(Outcome::Blocked, Via::Gate, "g").with_detail(big);
    assert_eq!(
        c.detail_jcs(),
        r#"{"original_bytes":5015,"truncated":true}"#
    );
    assert_eq!(
        Value::Object(c.detail().clone()),
        json!({"truncated": true, "original_bytes": 5015})
    );
}

#[test]
fn detail_of_exactly_four_kib_is_kept() {
    // {"a":"…"} is 8 bytes of framing.
    let exact = object(json!({ "a": "x".repeat(MAX_DETAIL_BYTES - 8) }));
    let c = EntryContent::request(Outcome::Blocked, Via::Gate, "g").with_detail(exact.clone());
    assert_eq!(c.detail_jcs().len(), MAX_DETAIL_BYTES);
    assert_eq!(c.detail(), &exact);
    let over = object(json!({ "a": "x".repeat(MAX_DETAIL_BYTES - 7) }));
    let c = EntryContent::request(Outcome::Blocked, Via::Gate, "g").with_detail(over);
    assert_eq!(c.detail().get("truncated"), Some(&Value::Bool(true)));
}

#[test]
fn other_text_fields_are_bounded_as_a_guard() {
    let c = EntryContent::system(SystemEvent::UserLogin, Via::AdminApi, "i".repeat(5000))
        .with_actor("a".repeat(5000));
    assert_eq!(c.instance().len(), MAX_TEXT_BYTES);
    assert_eq!(c.actor().map(str::len), Some(MAX_TEXT_BYTES));
}

proptest! {
    #[test]
    fn path_never_keeps_a_query_string(raw in prop::collection::vec(any::<u8>(), 0..3000)) {
        let c = EntryContent::request(Outcome::Allowed, Via::Gate, "g").with_path(&raw);
        let path = c.path().unwrap_or_default();
        prop_assert!(!path.contains('?'));
        prop_assert!(path.len() <= MAX_PATH_BYTES);
        let before_query = raw.split(|&b| b == b'?').next().unwrap_or_default();
        prop_assert!(String::from_utf8_lossy(before_query).starts_with(path));
    }

    #[test]
    fn query_after_any_path_is_dropped(
        path in "/[a-z0-9/._~%-]{0,40}",
        query in "[ -~]{0,40}",
    ) {
        let raw = format!("{path}?{query}");
        let c = EntryContent::request(Outcome::Allowed, Via::Gate, "g").with_path(raw.as_bytes());
        prop_assert_eq!(c.path(), Some(path.as_str()));
    }

    #[test]
    fn bounded_text_is_the_longest_char_prefix_within_the_limit(
        raw in prop::collection::vec(any::<u8>(), 0..200),
        max in 0usize..80,
    ) {
        let full = String::from_utf8_lossy(&raw).into_owned();
        let got = bounded_text(&raw, max);
        prop_assert!(got.len() <= max);
        prop_assert!(full.starts_with(&got));
        // Longest: the next character of the full decoding would not have fit.
        if let Some(next) = full[got.len()..].chars().next() {
            prop_assert!(got.len() + next.len_utf8() > max);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

#[test]
fn encoding_starts_with_the_version_byte_and_fixed_layout() {
    fn text(out: &mut Vec<u8>, s: &str) {
        out.push(0x01);
        out.extend_from_slice(&u32::try_from(s.len()).expect("short").to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let content = EntryContent::system(SystemEvent::GateStarted, Via::System, "i");
    let entry = LedgerEntry::chained(7, Timestamp::from_millis(0), content, [0; 32]);
    let mut expected = vec![0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 7];
    text(&mut expected, "1970-01-01T00:00:00.000Z");
    text(&mut expected, "system");
    expected.push(0x00); // outcome
    text(&mut expected, "gate_started");
    expected.push(0x00); // request_id
    text(&mut expected, "system");
    text(&mut expected, "i");
    expected.extend_from_slice(&[0x00; 12]); // actor … bytes_out
    text(&mut expected, "{}");
    assert_eq!(encode(&entry), expected);
}

#[test]
fn status_code_is_encoded_as_eight_bytes() {
    let content = EntryContent::request(Outcome::Blocked, Via::Gate, "g").with_status_code(403);
    let entry = LedgerEntry::chained(1, Timestamp::from_millis(0), content, [0; 32]);
    let bytes = encode(&entry);
    assert!(
        bytes
            .windows(9)
            .any(|w| w == [0x01, 0, 0, 0, 0, 0, 0, 0x01, 0x93])
    );
}

#[test]
fn adjacent_string_fields_cannot_trade_bytes() {
    let at = Timestamp::from_millis(T0);
    let a = EntryContent::request(Outcome::Allowed, Via::Gate, "g")
        .with_agent("ab")
        .with_credential("c");
    let b = EntryContent::request(Outcome::Allowed, Via::Gate, "g")
        .with_agent("a")
        .with_credential("bc");
    let ea = LedgerEntry::chained(1, at, a, [0; 32]);
    let eb = LedgerEntry::chained(1, at, b, [0; 32]);
    assert_ne!(encode(&ea), encode(&eb));
    assert_ne!(ea.hash(), eb.hash());
}

#[test]
fn null_and_empty_string_encode_differently() {
    let at = Timestamp::from_millis(T0);
    let null = EntryContent::request(Outcome::Allowed, Via::Gate, "g");
    let empty = EntryContent::request(Outcome::Allowed, Via::Gate, "g").with_path(b"");
    assert_ne!(
        encode(&LedgerEntry::chained(1, at, null, [0; 32])),
        encode(&LedgerEntry::chained(1, at, empty, [0; 32]))
    );
}

#[test]
fn stored_hashes_are_not_part_of_the_encoding() {
    let entry = chain(1).remove(0);
    let moved = LedgerEntry::from_stored(
        entry.id(),
        entry.ts(),
        entry.content().clone(),
        [9; 32],
        [8; 32],
    );
    assert_eq!(encode(&entry), encode(&moved));
}

fn small_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        prop::sample::select(vec!["", "a", "b", "ab", "ba", "aa", "é"]).prop_map(String::from),
    )
}

fn small_int() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(prop::sample::select(vec![0u64, 1, 256, u64::MAX]))
}

prop_compose! {
    fn content()(
        kind in prop::sample::select(EntryKind::ALL.to_vec()),
        outcome in prop::option::of(prop::sample::select(Outcome::ALL.to_vec())),
        event in prop::option::of(prop::sample::select(SystemEvent::ALL.to_vec())),
        via in prop::sample::select(Via::ALL.to_vec()),
        instance in prop::sample::select(vec!["", "a", "ab"]),
        texts in prop::collection::vec(small_text(), 10),
        status in prop::option::of(prop::sample::select(vec![0u16, 1, 403])),
        ints in prop::collection::vec(small_int(), 3),
        detail in prop::sample::select(vec![json!({}), json!({"a": 1}), json!({"a": "b"}), json!({"ab": null})]),
    ) -> EntryContent {
        let mut c = EntryContent::new(kind, via, instance);
        c.outcome = outcome;
        c.event = event;
        let set = |t: &Option<String>| t.clone();
        c.request_id = set(&texts[0]);
        c.actor = set(&texts[1]);
        c.agent = set(&texts[2]);
        c.credential = set(&texts[3]);
        c.service = set(&texts[4]);
        c.method = set(&texts[5]);
        c.target_host = set(&texts[6]);
        c.path = set(&texts[7]);
        c.denial_code = set(&texts[8]);
        c.status_code = status;
        c.latency_ms = ints[0];
        c.bytes_in = ints[1];
        c.bytes_out = ints[2];
        if texts[9].is_some() {
            c.with_detail(object(detail))
        } else {
            c
        }
    }
}

prop_compose! {
    fn entry()(id in prop::sample::select(vec![1u64, 2, 256]), ms in prop::sample::select(vec![0i64, 1, T0]), c in content()) -> LedgerEntry {
        LedgerEntry::chained(id, Timestamp::from_millis(ms), c, [0; 32])
    }
}

/// Every way of changing exactly one of fields 1–21 of `entry` to a different value.
fn single_field_changes(entry: &LedgerEntry) -> Vec<(&'static str, LedgerEntry)> {
    fn other_text(v: &Option<String>) -> Option<String> {
        match v {
            None => Some(String::new()),
            Some(s) if s.is_empty() => None,
            Some(s) => Some(format!("{s}x")),
        }
    }
    fn other_int(v: Option<u64>) -> Option<u64> {
        match v {
            None => Some(0),
            Some(0) => None,
            Some(n) => Some(n.wrapping_add(1)),
        }
    }
    fn next<T: Copy + PartialEq>(all: &[T], v: T) -> T {
        let at = all.iter().position(|x| *x == v).unwrap_or(0);
        all[(at + 1) % all.len()]
    }
    fn other_opt<T: Copy + PartialEq>(all: &[T], v: Option<T>) -> Option<T> {
        match v {
            None => Some(all[0]),
            Some(x) if x == all[all.len() - 1] => None,
            Some(x) => Some(next(all, x)),
        }
    }
    let mut out = Vec::new();
    let mut change = |name: &'static str, f: &dyn Fn(&mut LedgerEntry)| {
        let mut e = entry.clone();
        f(&mut e);
        out.push((name, e));
    };
    change("id", &|e| e.id = e.id.wrapping_add(1));
    change("ts", &|e| {
        e.ts = Timestamp::from_millis(e.ts.as_millis() + 1)
    });
    change("kind", &|e| {
        e.content.kind = next(EntryKind::ALL, e.content.kind)
    });
    change("outcome", &|e| {
        e.content.outcome = other_opt(Outcome::ALL, e.content.outcome)
    });
    change("event", &|e| {
        e.content.event = other_opt(SystemEvent::ALL, e.content.event)
    });
    change("request_id", &|e| {
        e.content.request_id = other_text(&e.content.request_id)
    });
    change("via", &|e| e.content.via = next(Via::ALL, e.content.via));
    change("instance", &|e| e.content.instance.push('x'));
    change("actor", &|e| e.content.actor = other_text(&e.content.actor));
    change("agent", &|e| e.content.agent = other_text(&e.content.agent));
    change("credential", &|e| {
        e.content.credential = other_text(&e.content.credential)
    });
    change("service", &|e| {
        e.content.service = other_text(&e.content.service)
    });
    change("method", &|e| {
        e.content.method = other_text(&e.content.method)
    });
    change("target_host", &|e| {
        e.content.target_host = other_text(&e.content.target_host)
    });
    change("path", &|e| e.content.path = other_text(&e.content.path));
    change("status_code", &|e| {
        e.content.status_code =
            other_int(e.content.status_code.map(u64::from)).map(|n| u16::try_from(n).unwrap_or(0));
        if e.content.status_code == entry.content.status_code {
            e.content.status_code = None;
        }
    });
    change("denial_code", &|e| {
        e.content.denial_code = other_text(&e.content.denial_code)
    });
    change("latency_ms", &|e| {
        e.content.latency_ms = other_int(e.content.latency_ms)
    });
    change("bytes_in", &|e| {
        e.content.bytes_in = other_int(e.content.bytes_in)
    });
    change("bytes_out", &|e| {
        e.content.bytes_out = other_int(e.content.bytes_out)
    });
    change("detail", &|e| {
        let mut d = e.content.detail.clone();
        d.insert("changed".to_owned(), Value::Bool(true));
        e.content = e.content.clone().with_detail(d);
    });
    out
}

proptest! {
    #[test]
    fn any_single_field_change_changes_the_hash(original in entry(), prev in any::<[u8; 32]>()) {
        let base = chain_hash(&prev, &original);
        let changes = single_field_changes(&original);
        prop_assert_eq!(changes.len(), 21);
        for (field, changed) in changes {
            prop_assert_ne!(body(&changed), body(&original), "{} did not change", field);
            prop_assert_ne!(chain_hash(&prev, &changed), base, "{} change kept the hash", field);
        }
    }

    #[test]
    fn a_different_prev_hash_changes_the_hash(e in entry(), a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        prop_assume!(a != b);
        prop_assert_ne!(chain_hash(&a, &e), chain_hash(&b, &e));
    }

    #[test]
    fn encoding_is_injective(a in entry(), b in entry()) {
        prop_assert_eq!(encode(&a) == encode(&b), body(&a) == body(&b));
    }
}

// ---------------------------------------------------------------------------------------------
// Chain verification

#[test]
fn an_intact_chain_verifies_to_its_head() {
    let entries = chain(5);
    let verified = verify(&entries).expect("intact chain");
    assert_eq!(verified.count, 5);
    assert_eq!(&verified.head, entries[4].hash());
    assert_eq!(verify_chain(entries.iter(), genesis(&VAULT)), Ok(verified));
}

#[test]
fn an_empty_walk_ends_on_its_start() {
    let start = genesis(&VAULT);
    assert_eq!(
        verify_chain(std::iter::empty::<&LedgerEntry>(), start),
        Ok(VerifiedChain {
            count: 0,
            head: start
        })
    );
}

#[test]
fn the_last_n_entries_verify_from_the_first_ones_prev_hash() {
    let entries = chain(6);
    let tail = &entries[3..];
    let verified = verify_chain(tail.iter(), *tail[0].prev_hash()).expect("tail");
    assert_eq!(verified.count, 3);
    let anchor = ChainAnchor {
        id: 3,
        hash: *entries[2].hash(),
    };
    assert_eq!(verify_chain_from(tail.iter(), anchor), Ok(verified));
}

#[test]
fn genesis_depends_on_the_vault() {
    assert_ne!(genesis(&VAULT), genesis(&uuid::Uuid::nil()));
    let entries = chain(2);
    assert_eq!(
        verify_chain(entries.iter(), genesis(&uuid::Uuid::nil())),
        Err(ChainError::PrevHashMismatch { id: 1 })
    );
}

#[test]
fn errors_print_the_spec_messages() {
    let cases = [
        (
            ChainError::HashMismatch { id: 4 },
            "ledger chain broken at entry 4: hash mismatch",
        ),
        (
            ChainError::PrevHashMismatch { id: 4 },
            "ledger chain broken at entry 4: prev_hash mismatch",
        ),
        (
            ChainError::MissingEntries {
                id: 9,
                first: 5,
                last: 8,
            },
            "ledger chain broken at entry 9: missing entries 5–8",
        ),
        (
            ChainError::TimestampOutOfOrder { id: 4 },
            "ledger chain broken at entry 4: timestamp out of order",
        ),
        (
            ChainError::CheckpointSignatureInvalid { id: 100 },
            "ledger chain broken at entry 100: checkpoint 100 signature invalid",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
    assert_eq!(
        ChainError::MissingEntries {
            id: 9,
            first: 5,
            last: 8
        }
        .entry_id(),
        9
    );
}

#[test]
fn a_missing_first_entry_is_reported_from_the_genesis_anchor() {
    let entries = chain(3);
    assert_eq!(
        verify(&entries[1..]),
        Err(ChainError::MissingEntries {
            id: 2,
            first: 1,
            last: 1
        })
    );
    // Without an expected first id only the link shows the break.
    assert_eq!(
        verify_chain(entries[1..].iter(), genesis(&VAULT)),
        Err(ChainError::PrevHashMismatch { id: 2 })
    );
}

#[test]
fn an_edited_entry_is_a_hash_mismatch_at_that_entry() {
    let mut entries = chain(4);
    entries[2].content.path = Some("/admin".to_owned());
    assert_eq!(verify(&entries), Err(ChainError::HashMismatch { id: 3 }));
}

#[test]
fn an_edited_and_rehashed_entry_breaks_the_next_link() {
    let mut entries = chain(4);
    let forged = entries[2].content.clone().with_status_code(500);
    entries[2] = LedgerEntry::chained(3, entries[2].ts(), forged, *entries[2].prev_hash());
    assert_eq!(
        verify(&entries),
        Err(ChainError::PrevHashMismatch { id: 4 })
    );
}

#[test]
fn an_edited_stored_hash_or_prev_hash_is_caught() {
    let mut entries = chain(3);
    entries[1].hash[0] ^= 1;
    assert_eq!(verify(&entries), Err(ChainError::HashMismatch { id: 2 }));
    let mut entries = chain(3);
    entries[1].prev_hash[31] ^= 0x80;
    assert_eq!(
        verify(&entries),
        Err(ChainError::PrevHashMismatch { id: 2 })
    );
}

#[test]
fn a_forged_entry_inserted_with_a_reused_id_breaks_the_link_after_it() {
    let mut entries = chain(4);
    let forged = LedgerEntry::chained(3, entries[2].ts(), allowed_request(99), *entries[1].hash());
    entries.insert(2, forged);
    assert_eq!(
        verify(&entries),
        Err(ChainError::PrevHashMismatch { id: 3 })
    );
}

#[test]
fn a_repeated_id_with_valid_links_is_out_of_sequence() {
    let mut entries = chain(2);
    let repeat = LedgerEntry::chained(2, entries[1].ts(), allowed_request(7), *entries[1].hash());
    entries.push(repeat);
    assert_eq!(
        verify(&entries),
        Err(ChainError::IdOutOfSequence { id: 2, expected: 3 })
    );
}

#[test]
fn a_timestamp_going_backwards_is_reported() {
    let mut entries = chain(2);
    let earlier = Timestamp::from_millis(entries[1].ts().as_millis() - 1);
    entries.push(LedgerEntry::chained(
        3,
        earlier,
        allowed_request(3),
        *entries[1].hash(),
    ));
    assert_eq!(
        verify(&entries),
        Err(ChainError::TimestampOutOfOrder { id: 3 })
    );
    // Equal times are fine: `ts` is non-decreasing, not increasing.
    let mut entries = chain(2);
    let same = entries[1].ts();
    entries.push(LedgerEntry::chained(
        3,
        same,
        allowed_request(3),
        *entries[1].hash(),
    ));
    assert!(verify(&entries).is_ok());
}

proptest! {
    #[test]
    fn removing_an_inner_run_is_reported_as_missing_entries(
        from in 1u64..10, len in 1u64..5, after in 1u64..3,
    ) {
        // Remove ids from..=from+len-1, keeping `after` entries behind the gap.
        let n = from + len - 1 + after;
        let entries: Vec<LedgerEntry> = chain(n)
            .into_iter()
            .filter(|e| e.id() < from || e.id() >= from + len)
            .collect();
        prop_assert_eq!(
            verify(&entries),
            Err(ChainError::MissingEntries { id: from + len, first: from, last: from + len - 1 })
        );
    }

    #[test]
    fn swapping_two_entries_is_reported_at_the_first_misplaced_one(
        i in 0usize..8, gap in 1usize..5, after in 0usize..3,
    ) {
        let j = i + gap;
        let mut entries = chain(u64::try_from(j + 1 + after).expect("small"));
        entries.swap(i, j);
        let first = u64::try_from(i).expect("small") + 1;
        let found = u64::try_from(j).expect("small") + 1;
        prop_assert_eq!(entries[i].id(), found);
        prop_assert_eq!(
            verify(&entries),
            Err(ChainError::MissingEntries { id: found, first, last: found - 1 })
        );
    }

    #[test]
    fn inserting_any_entry_before_the_end_breaks_at_or_before_the_next_original(
        at in 0usize..7, after in 1usize..3, id in 1u64..10, link_to_previous in any::<bool>(),
    ) {
        let mut entries = chain(u64::try_from(at + after).expect("small"));
        let prev = if link_to_previous && at > 0 { *entries[at - 1].hash() } else { [7; 32] };
        let ts = entries[at].ts();
        entries.insert(at, LedgerEntry::chained(id, ts, allowed_request(1000), prev));
        let error = verify(&entries).expect_err("insertion must be detected");
        let displaced = u64::try_from(at).expect("small") + 1;
        // The walk stops at the inserted entry or at the original entry it displaced.
        prop_assert!(error.entry_id() == id || error.entry_id() == displaced, "{}", error);
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

#[test]
fn every_system_event_of_the_spec_has_its_snake_case_name() {
    let names: Vec<&str> = SystemEvent::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(names.len(), 36);
    let spec = "vault_created, vault_destroyed, vault_rekeyed, vault_split, vault_sealed, \
        vault_unsealed, credential_added, credential_updated, credential_rotated, \
        credential_removed, agent_added, agent_removed, agent_token_regenerated, \
        agent_rate_limit_set, grant_added, grant_revoked, user_added, user_removed, \
        user_role_changed, user_token_regenerated, user_login, user_login_failed, access_denied, \
        webhook_added, webhook_removed, webhook_delivery_failed, gate_started, gate_stopped, \
        mcp_started, mcp_stopped, snapshot_reloaded, snapshot_rejected, config_changed, \
        policy_written, ledger_exported, ledger_archived";
    assert_eq!(names, spec.split(", ").collect::<Vec<_>>());
    for event in SystemEvent::ALL {
        assert_eq!(SystemEvent::parse(event.as_str()), Some(*event));
    }
    assert_eq!(SystemEvent::parse("VaultCreated"), None);
}

#[test]
fn kinds_outcomes_and_fronts_use_the_spec_names() {
    let kinds: Vec<&str> = EntryKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(kinds, ["request", "request_end", "system"]);
    let outcomes: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(outcomes, ["allowed", "blocked", "would_block", "error"]);
    let vias: Vec<&str> = Via::ALL.iter().map(|v| v.as_str()).collect();
    assert_eq!(vias, ["gate", "mcp", "cli", "admin_api", "system"]);
}

// ---------------------------------------------------------------------------------------------
// JSON form

#[test]
fn json_form_has_all_fields_in_table_order_and_reads_back() {
    let entries = chain(2);
    let text = serde_json::to_string(&entries[1]).expect("serialise");
    let order: Vec<usize> = FIELD_NAMES
        .iter()
        .map(|name| text.find(&format!("\"{name}\":")).expect("field present"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(text.contains("\"path\":\"/user/repos\""));
    assert!(text.contains("\"actor\":null"));
    let back: LedgerEntry = serde_json::from_str(&text).expect("deserialise");
    assert_eq!(back, entries[1]);
    let all: Vec<LedgerEntry> = entries
        .iter()
        .map(|e| serde_json::from_value(e.to_json()).expect("round trip"))
        .collect();
    assert_eq!(verify(&all).map(|v| v.count), Ok(2));
}

#[test]
fn a_query_string_smuggled_into_json_is_dropped_on_read() {
    let entries = chain(1);
    let mut json = entries[0].to_json();
    json["path"] = Value::from("/user/repos?token=secret");
    let back: LedgerEntry = serde_json::from_value(json.clone()).expect("reads");
    assert_eq!(back.content().path(), Some("/user/repos"));
    assert_eq!(back, entries[0]);
    json["path"] = Value::from("/admin?token=secret");
    let edited: LedgerEntry = serde_json::from_value(json).expect("reads");
    assert_eq!(edited.content().path(), Some("/admin"));
    assert_eq!(
        verify(std::slice::from_ref(&edited)),
        Err(ChainError::HashMismatch { id: 1 })
    );
}

#[test]
fn malformed_json_fields_are_refused() {
    json_rejects_bad_fields(&chain(1)[0]);
}

fn json_rejects_bad_fields(entry: &LedgerEntry) {
    for (field, value) in [
        ("ts", json!("2026-03-01T09:30:00Z")),
        ("ts", json!("yesterday")),
        ("hash", json!("abcd")),
        ("kind", json!("Request")),
        ("detail", json!([])),
        ("unknown", json!(1)),
    ] {
        let mut json = entry.to_json();
        json[field] = value;
        assert!(
            serde_json::from_value::<LedgerEntry>(json).is_err(),
            "{field} accepted"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints and the signing key

#[test]
fn checkpoint_message_is_the_jcs_of_the_spec_object() {
    let message = checkpoint_message(&VAULT, 42, &[0xab; 32], Timestamp::from_millis(T0));
    let expected = format!(
        "{{\"entry_id\":42,\"hash\":\"{}\",\"ts\":\"2026-03-01T09:30:00.125Z\",\
         \"type\":\"aegis-checkpoint/1\",\"vault_id\":\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\"}}",
        "ab".repeat(32)
    );
    assert_eq!(String::from_utf8(message).expect("utf-8"), expected);
}

#[test]
fn checkpoint_signatures_verify_only_for_the_same_key_and_message() {
    let key = LedgerSigningKey::generate().expect("key");
    let other = LedgerSigningKey::generate().expect("key");
    let message = checkpoint_message(&VAULT, 3, &[1; 32], Timestamp::from_millis(T0));
    let signature = key.sign(&message);
    assert!(verify_checkpoint(&key.public_key(), &message, &signature));
    assert!(!verify_checkpoint(
        &other.public_key(),
        &message,
        &signature
    ));
    let moved = checkpoint_message(&VAULT, 4, &[1; 32], Timestamp::from_millis(T0));
    assert!(!verify_checkpoint(&key.public_key(), &moved, &signature));
    let mut flipped = signature;
    flipped[10] ^= 1;
    assert!(!verify_checkpoint(&key.public_key(), &message, &flipped));
    assert!(!verify_checkpoint(
        &key.public_key(),
        &message,
        &signature[..63]
    ));
}

#[test]
fn wrapped_seed_opens_only_for_the_same_subkey_and_vault() {
    let subkey = [0x42; 32];
    let key = LedgerSigningKey::generate().expect("key");
    let envelope = key.wrap(&subkey, &VAULT).expect("wrap");
    assert_eq!(envelope.len(), 61);
    assert_eq!(envelope[0], SEED_ENVELOPE_VERSION);
    let back = LedgerSigningKey::unwrap(&subkey, &VAULT, &envelope).expect("unwrap");
    assert_eq!(back.public_key(), key.public_key());
    assert_ne!(
        key.wrap(&subkey, &VAULT).expect("wrap"),
        envelope,
        "fresh nonce"
    );
    assert_eq!(
        unwrap_seed(&subkey, &uuid::Uuid::nil(), &envelope).map(|_| ()),
        Err(LedgerKeyError::Decrypt)
    );
    assert_eq!(
        unwrap_seed(&[0x43; 32], &VAULT, &envelope).map(|_| ()),
        Err(LedgerKeyError::Decrypt)
    );
    let mut tampered = envelope.clone();
    tampered[20] ^= 1;
    assert_eq!(
        unwrap_seed(&subkey, &VAULT, &tampered).map(|_| ()),
        Err(LedgerKeyError::Decrypt)
    );
    assert_eq!(
        unwrap_seed(&subkey, &VAULT, &envelope[..60]).map(|_| ()),
        Err(LedgerKeyError::Envelope)
    );
    let mut version = envelope;
    version[0] = 2;
    assert_eq!(
        unwrap_seed(&subkey, &VAULT, &version).map(|_| ()),
        Err(LedgerKeyError::Envelope)
    );
}

#[test]
fn the_same_seed_gives_the_same_key() {
    let a = LedgerSigningKey::from_seed(Zeroizing::new([5; 32])).expect("key");
    let b = LedgerSigningKey::from_seed(Zeroizing::new([5; 32])).expect("key");
    assert_eq!(a.public_key(), b.public_key());
    assert_eq!(a.sign(b"m"), b.sign(b"m"), "Ed25519 is deterministic");
}

#[test]
fn debug_shows_the_key_id_and_never_the_seed() {
    let key = LedgerSigningKey::from_seed(Zeroizing::new([0x5a; 32])).expect("key");
    let shown = format!("{key:?}");
    assert!(shown.contains(&key_id(&key.public_key())), "{shown}");
    assert!(!shown.contains(&hex::encode([0x5a; 32])));
}

#[test]
fn public_keys_format_and_parse_back() {
    let key = LedgerSigningKey::generate().expect("key");
    let text = format_public_key(&key.public_key());
    assert!(text.starts_with("ed25519:"));
    assert_eq!(text.len(), 8 + 43);
    assert_eq!(parse_public_key(&text), Some(key.public_key()));
    assert_eq!(parse_public_key(&text[..text.len() - 1]), None);
    assert_eq!(parse_public_key(&text.replace("ed25519:", "ed448:")), None);
    let id = key_id(&key.public_key());
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
}
