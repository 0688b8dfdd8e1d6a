//! `aegis gate` end to end: the real binary in front of a real HTTPS upstream on 127.0.0.1
//! signed by a throwaway CA, driven with curl as an agent would.

use std::time::Duration;

use aegis_test_support::HttpsUpstream;

use super::support::{World, curl};

const SECRET: &str = "sk-live-gate-secret-0123456789";

#[test]
fn bearer_secret_reaches_the_upstream_and_agent_auth_headers_are_replaced() {
    let w = World::new();
    w.add_bearer("openai", "openai", SECRET);
    let gate = w.gate(&[]);
    let resp = curl(&[
        "-H",
        "Authorization: Bearer agent-supplied",
        "-H",
        "X-Api-Key: agent-key",
        "-H",
        "X-Aegis-Whatever: 1",
        &format!("{}/openai/v1/models?limit=2", gate.base),
    ]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let seen = w.upstream.last_request().expect("upstream saw the request");
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some(&*format!("Bearer {SECRET}"))
    );
    assert_eq!(seen.header("x-api-key"), None);
    assert_eq!(seen.header("x-aegis-whatever"), None);
    assert_eq!(seen.target, "/v1/models?limit=2");
    assert_eq!(
        seen.header("host").or(seen.authority.clone()).as_deref(),
        Some(&*w.upstream.host())
    );
    assert!(resp.header("x-aegis-request-id").is_some());
    // The default route echoes the request headers: the secret comes back redacted.
    let text = resp.text();
    assert!(!text.contains(SECRET), "secret echoed to the agent: {text}");
    assert!(text.contains("[REDACTED:openai]"), "{text}");
}

#[test]
fn header_basic_and_query_auth_inject_the_credential_their_way() {
    let w = World::new();
    let host = w.upstream.host();
    w.add(
        &[
            "-n",
            "hdr",
            "-s",
            "hdr",
            "-d",
            &host,
            "--auth-type",
            "header",
            "--header-name",
            "X-Api-Key",
        ],
        "hdr-secret-0123456789",
    );
    w.add(
        &[
            "-n",
            "basic",
            "-s",
            "basic",
            "-d",
            &host,
            "--auth-type",
            "basic",
        ],
        "alice:basic-pass-0123",
    );
    w.add(
        &[
            "-n",
            "query",
            "-s",
            "query",
            "-d",
            &host,
            "--auth-type",
            "query",
            "--query-param",
            "api_key",
        ],
        "q/secret+0123456789",
    );
    let gate = w.gate(&[]);

    assert_eq!(
        curl(&["-H", "X-Api-Key: mine", &format!("{}/hdr/x", gate.base)]).status,
        200
    );
    let seen = w.upstream.last_request().expect("request");
    assert_eq!(
        seen.header_all("x-api-key"),
        vec!["hdr-secret-0123456789".to_owned()]
    );
    assert_eq!(seen.header("authorization"), None);

    assert_eq!(curl(&[&format!("{}/basic/x", gate.base)]).status, 200);
    let seen = w.upstream.last_request().expect("request");
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some("Basic YWxpY2U6YmFzaWMtcGFzcy0wMTIz")
    );

    assert_eq!(
        curl(&[&format!("{}/query/x?a=1&api_key=agent&b=%20", gate.base)]).status,
        200
    );
    let seen = w.upstream.last_request().expect("request");
    assert_eq!(seen.target, "/x?a=1&b=%20&api_key=q%2Fsecret%2B0123456789");
}

#[test]
fn method_path_query_body_and_status_round_trip_byte_exact() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let gate = w.gate(&[]);
    let resp = curl(&[
        "-X",
        "PATCH",
        "--path-as-is",
        "--data-binary",
        "{\"a\":[1,2,3]}\u{00e9}",
        "-H",
        "Content-Type: application/json",
        &format!("{}/svc/a%2Fb/C;v=1/x.json?q=%20&x=1&x=2&empty=", gate.base),
    ]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let seen = w.upstream.last_request().expect("request");
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.target, "/a%2Fb/C;v=1/x.json?q=%20&x=1&x=2&empty=");
    assert_eq!(seen.body, "{\"a\":[1,2,3]}\u{00e9}".as_bytes());
    assert_eq!(
        seen.header("content-type").as_deref(),
        Some("application/json")
    );
    let teapot = curl(&[&format!("{}/svc/status/418", gate.base)]);
    assert_eq!(teapot.status, 418);
}

#[test]
fn twenty_mib_stream_up_and_down() {
    let w = World::new();
    // Inspection off: the body streams (block mode would buffer at most max_inspect_bytes).
    let host = w.upstream.host();
    w.add(
        &[
            "-n",
            "svc",
            "-s",
            "svc",
            "-d",
            &host,
            "--body-inspection",
            "off",
        ],
        SECRET,
    );
    let gate = w.gate(&[]);
    let file = w.env.path().join("upload.bin");
    let data: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &data).expect("write upload");
    let up = curl(&[
        "--data-binary",
        &format!("@{}", file.display()),
        "-H",
        "Content-Type: application/octet-stream",
        &format!("{}/svc/upload", gate.base),
    ]);
    assert_eq!(up.status, 200, "{}", up.text());
    assert_eq!(up.json()["body_len"], 20 * 1024 * 1024);
    let down = curl(&[&format!("{}/svc/bytes/20971520", gate.base)]);
    assert_eq!(down.status, 200);
    assert_eq!(down.body.len(), 20 * 1024 * 1024);
    let pattern = b"0123456789abcdef";
    assert!(
        down.body.chunks(16).all(|c| c == &pattern[..c.len()]),
        "downloaded bytes intact"
    );
}

#[test]
fn redirects_are_passed_back_untouched() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let gate = w.gate(&[]);
    let resp = curl(&[&format!("{}/svc/redirect", gate.base)]);
    assert_eq!(resp.status, 302);
    assert_eq!(
        resp.header("location").as_deref(),
        Some("https://elsewhere.example/landing?x=1")
    );
    assert_eq!(
        w.upstream.request_count(),
        1,
        "the gate did not follow the redirect"
    );
}

#[test]
fn an_upstream_echoing_the_secret_never_hands_it_to_the_agent() {
    let w = World::new();
    let host = w.upstream.host();
    w.add(&["-n", "svc", "-s", "svc", "-d", &host], SECRET);
    w.add(
        &["-n", "other", "-s", "other", "-d", &host],
        "sk-other-secret-9876543210",
    );
    let gate = w.gate(&[]);
    for path in ["echo-auth", "echo-auth-gzip"] {
        let resp = curl(&[&format!("{}/svc/{path}?q=1", gate.base)]);
        assert_eq!(resp.status, 200, "{path}");
        let all = format!("{}{}", resp.headers, resp.text());
        assert!(
            !all.contains(SECRET),
            "{path}: secret reached the agent: {all}"
        );
        assert!(
            resp.text().contains("[REDACTED:svc]"),
            "{path}: {}",
            resp.text()
        );
        assert!(
            resp.header("x-echo-auth")
                .is_some_and(|v| v.contains("[REDACTED:svc]")),
            "{path}"
        );
        assert!(
            resp.header("content-encoding").is_none(),
            "{path}: body decoded for the agent"
        );
    }
    // A small uncompressed answer is read whole and sent with its redacted length; a larger
    // one (over 64 KiB) streams chunked through the same redactor.
    let small = curl(&[&format!("{}/svc/echo-auth", gate.base)]);
    assert_eq!(
        small.header("content-length"),
        Some(small.text().len().to_string()),
        "{}",
        small.headers
    );
    assert!(small.header("transfer-encoding").is_none());
    for (n, whole) in [(65_536, true), (65_537, false)] {
        let resp = curl(&[&format!("{}/svc/bytes/{n}", gate.base)]);
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body.len(), n, "bytes/{n}");
        assert_eq!(
            resp.header("content-length").is_some(),
            whole,
            "bytes/{n}: {}",
            resp.headers
        );
    }
    // Another credential's secret sent by the agent is refused before it leaves (inspection).
    let before = w.upstream.request_count();
    let resp = curl(&[
        "-H",
        "X-Note: sk-other-secret-9876543210",
        &format!("{}/svc/echo-auth", gate.base),
    ]);
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["error"]["code"], "body_blocked");
    assert!(!resp.text().contains("sk-other-secret-9876543210"));
    assert_eq!(w.upstream.request_count(), before);
}

#[test]
fn domain_guard_bypass_attempts_never_reach_the_upstream() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let gate = w.gate(&[]);
    let port = w.upstream.port();
    let attempts = [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("evillocalhost:{port}"),
        format!("user@localhost:{port}"),
        format!("localhost:{port}@evil.example"),
        format!("localhost:{}", port + 1),
        "localhost".to_owned(),
        format!("127.0.0.1:{port}"),
        format!("127.1:{port}"),
        format!("%6cocalhost:{port}"),
        format!("localhost:{port}/x"),
        format!("https://localhost:{port}"),
        format!("localhost :{port}"),
        format!("localhost\\:{port}"),
        format!("[::1]:{port}"),
        format!("localhost:{port}#"),
        format!("xn--localhost:{port}"),
        format!("localhost..:{port}"),
    ];
    for attempt in &attempts {
        let resp = curl(&[
            "-H",
            &format!("X-Target-Host: {attempt}"),
            &format!("{}/svc/x", gate.base),
        ]);
        assert!(
            resp.status == 403 || resp.status == 400,
            "{attempt}: {}",
            resp.status
        );
        let code = resp.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            code == "domain_blocked" || code == "bad_request",
            "{attempt}: {code}"
        );
        assert!(!resp.text().contains(SECRET));
    }
    assert_eq!(
        w.upstream.request_count(),
        0,
        "nothing reached the upstream"
    );
    // Case and a trailing dot normalise to the allowed host.
    let ok = curl(&[
        "-H",
        &format!("X-Target-Host: LOCALHOST.:{port}"),
        &format!("{}/svc/x", gate.base),
    ]);
    assert_eq!(ok.status, 200, "{}", ok.text());
}

#[test]
fn traversal_absolute_form_and_reserved_names_are_refused() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let gate = w.gate(&[]);
    for path in [
        "/svc/../x",
        "/svc/a/%2e%2e/b",
        "/svc/a/..;x/b",
        "/svc//x",
        "/svc/a%5cb",
        "/svc/a%00b",
    ] {
        let resp = curl(&["--path-as-is", &format!("{}{path}", gate.base)]);
        assert_eq!(resp.status, 400, "{path}");
        assert_eq!(resp.json()["error"]["code"], "bad_request", "{path}");
    }
    let absolute = curl(&[
        "--request-target",
        &format!("https://{}/x", w.upstream.host()),
        &gate.base,
    ]);
    assert_eq!(absolute.status, 400, "{}", absolute.text());
    let reserved = curl(&[&format!("{}/_aegis/nope", gate.base)]);
    assert_eq!(reserved.status, 404);
    assert_eq!(reserved.json()["error"]["code"], "not_found");
    let unknown = curl(&[&format!("{}/nosuch/x", gate.base)]);
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["code"], "unknown_service");
    assert_eq!(w.upstream.request_count(), 0);
    let health = curl(&[&format!("{}/_aegis/health", gate.base)]);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["ready"], true);
}

#[test]
fn scope_and_rate_limit_denials_carry_their_codes() {
    let w = World::new();
    let host = w.upstream.host();
    w.add(
        &["-n", "ro", "-s", "ro", "-d", &host, "--scopes", "read"],
        SECRET,
    );
    w.add(
        &["-n", "rl", "-s", "rl", "-d", &host, "--rate-limit", "3/min"],
        "sk-rate-limited-0123456789",
    );
    let gate = w.gate(&[]);
    assert_eq!(curl(&[&format!("{}/ro/x", gate.base)]).status, 200);
    let denied = curl(&["-X", "POST", "-d", "x", &format!("{}/ro/x", gate.base)]);
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json()["error"]["code"], "scope_denied");
    assert!(denied.json()["error"]["request_id"].is_string());
    for _ in 0..3 {
        assert_eq!(curl(&[&format!("{}/rl/x", gate.base)]).status, 200);
    }
    let limited = curl(&[&format!("{}/rl/x", gate.base)]);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json()["error"]["code"], "rate_limited");
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    // At most the period plus one sub-bucket (period / 64), rounded up.
    assert!((1..=61).contains(&retry), "{retry}");
    assert_eq!(
        w.upstream.request_count(),
        4,
        "denied requests never reach the upstream"
    );
}

#[test]
fn vault_changes_take_effect_without_a_restart() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let gate = w.gate(&[]);
    let url = format!("{}/late/x", gate.base);
    assert_eq!(curl(&[&url]).status, 404);
    let started = std::time::Instant::now();
    w.add_bearer("late", "late", "sk-added-while-running-0123");
    aegis_test_support::wait_for(
        "the new credential to be served",
        Duration::from_secs(5),
        || (curl(&[&url]).status == 200).then_some(()),
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let seen = w.upstream.last_request().expect("request");
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some("Bearer sk-added-while-running-0123")
    );

    let run = w.env.run(
        ["vault", "rotate", "--name", "late"],
        "sk-rotated-while-running-456\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    aegis_test_support::wait_for(
        "the rotated secret to be injected",
        Duration::from_secs(5),
        || {
            curl(&[&url]);
            let seen = w.upstream.last_request()?;
            (seen.header("authorization").as_deref() == Some("Bearer sk-rotated-while-running-456"))
                .then_some(())
        },
    );
    let run = w.env.run(["vault", "remove", "--name", "late"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    aegis_test_support::wait_for(
        "the removed credential to disappear",
        Duration::from_secs(5),
        || (curl(&[&url]).status == 404).then_some(()),
    );
    let mut gate = gate;
    gate.terminate();
    assert_eq!(gate.wait_exit(Duration::from_secs(20)), 0);
    // Each of the three reloads is in the ledger.
    let run = w.env.run(["ledger", "show", "--system", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reloads = run
        .json()
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["event"] == "snapshot_reloaded")
        .count();
    assert!(reloads >= 3, "{reloads} snapshot_reloaded entries");
}

#[test]
fn tls_listener_serves_http1_and_http2() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let (cert, key) =
        w.ca.write_server_pair(w.env.path(), &["localhost", "127.0.0.1"]);
    let gate = w.gate(&[
        "--tls",
        "--cert",
        cert.to_str().expect("utf-8"),
        "--key",
        key.to_str().expect("utf-8"),
    ]);
    assert!(gate.base.starts_with("https://"), "{}", gate.base);
    let url = format!("https://localhost:{}/svc/x", gate.port());
    let ca_file = w.env.path().join("test-ca.pem");
    std::fs::write(&ca_file, w.ca.ca_cert_pem()).expect("ca");
    let ca_arg = ca_file.to_str().expect("utf-8");
    let h1 = curl(&["--cacert", ca_arg, "--http1.1", &url]);
    assert_eq!(h1.status, 200, "{}", h1.text());
    let h2 = curl(&["--cacert", ca_arg, "--http2", &url]);
    assert_eq!(h2.status, 200, "{}", h2.text());
    assert!(h2.headers.starts_with("HTTP/2"), "{}", h2.headers);
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_and_exits_0() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let mut gate = w.gate(&[]);
    let url = format!("{}/svc/slow/1500", gate.base);
    let in_flight = std::thread::spawn(move || curl(&[&url]));
    let upstream = &w.upstream;
    aegis_test_support::wait_for(
        "the slow request to reach the upstream",
        Duration::from_secs(10),
        || (upstream.request_count() == 1).then_some(()),
    );
    gate.terminate();
    let resp = in_flight.join().expect("curl thread");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "slow done");
    assert_eq!(
        gate.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        gate.output()
    );
    drop(w.runtime);
}

#[test]
fn a_taken_port_is_reported_plainly() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let first = w.gate(&[]);
    let port = first.port().to_string();
    let run = w.env.run(["gate", "--port", &port], "");
    super::support::assert_error(&run, 1, &format!("Port {port} is already in use"));
}

#[test]
fn bodies_over_max_body_bytes_are_refused() {
    let w = World::new();
    w.append_config("gate:\n  max_body_bytes: 64KiB\n");
    w.add_bearer("svc", "svc", SECRET);
    let gate = w.gate(&[]);
    let file = w.env.path().join("big.bin");
    std::fs::write(&file, vec![b'x'; 100 * 1024]).expect("write");
    let at = format!("@{}", file.display());
    // Declared length over the limit: refused before the body is read.
    let declared = curl(&["--data-binary", &at, &format!("{}/svc/upload", gate.base)]);
    assert_eq!(declared.status, 413, "{}", declared.text());
    assert_eq!(declared.json()["error"]["code"], "body_too_large");
    assert_eq!(w.upstream.request_count(), 0);
    // Streamed without a length: cut off when it crosses the limit.
    let streamed = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &at,
        &format!("{}/svc/upload", gate.base),
    ]);
    assert_eq!(streamed.status, 413, "{}", streamed.text());
    let small = curl(&[
        "--data-binary",
        "small",
        &format!("{}/svc/upload", gate.base),
    ]);
    assert_eq!(small.status, 200);
}

#[test]
fn a_reload_that_fails_keeps_the_previous_snapshot() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let gate = w.gate(&[]);
    let url = format!("{}/svc/x", gate.base);
    assert_eq!(curl(&[&url]).status, 200);
    // Someone without the master key widens the allowlist in the database file.
    super::support::sql(
        &w.env,
        "UPDATE credentials SET domains = 'evil.example'; UPDATE generation SET value = value + 1;",
    );
    aegis_test_support::wait_for(
        "the gate to reject the tampered snapshot",
        Duration::from_secs(10),
        || gate.output().contains("snapshot rejected").then_some(()),
    );
    // The previous snapshot is still in force: the old host works, the injected one does not.
    assert_eq!(curl(&[&url]).status, 200);
    let evil = curl(&["-H", "X-Target-Host: evil.example", &url]);
    assert_eq!(evil.json()["error"]["code"], "domain_blocked");
}

#[test]
fn a_stalled_agent_body_is_answered_408() {
    use std::io::{Read as _, Write as _};
    let w = World::new();
    w.append_config("gate:\n  timeouts:\n    idle_body: 300ms\n");
    w.add_bearer("svc", "svc", SECRET);
    let gate = w.gate(&[]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", gate.port())).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"POST /svc/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nonly ten b")
        .expect("write");
    // Send nothing more: the gate must give up on the body after idle_body.
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

#[test]
fn plain_http_upstreams_need_allow_http() {
    let w = World::new();
    let plain = HttpsUpstream::start_plain_blocking();
    let entry = format!("http://{}", plain.host());
    let refused = w.env.run(
        ["vault", "add", "-n", "local", "-s", "local", "-d", &entry],
        "sk-plain-secret-0123\n",
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    w.add(
        &["-n", "local", "-s", "local", "-d", &entry, "--allow-http"],
        "sk-plain-secret-0123",
    );
    let gate = w.gate(&[]);
    let resp = curl(&[&format!("{}/local/x", gate.base)]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let seen = plain.last_request().expect("request");
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some("Bearer sk-plain-secret-0123")
    );
}

#[test]
fn an_expired_credential_is_denied_with_credential_expired() {
    use aegis_core::crypto::{MasterKey, VaultKeys};
    use aegis_core::timestamp::Timestamp;
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let gate = w.gate(&[]);
    let url = format!("{}/svc/x", gate.base);
    assert_eq!(curl(&[&url]).status, 200);
    // Move the expiry into the past the way a running clock would (TTLs are whole days), with
    // the master key, so the row MAC stays valid.
    let key = w.env.env_value("AEGIS_MASTER_KEY").expect("key");
    let data = aegis_store::DataDir::new(w.env.data_dir());
    w.runtime.block_on(async {
        let name = aegis_core::names::VaultName::parse("default").expect("name");
        let store = aegis_store::vault::VaultStore::open(&data, &name, Duration::from_secs(5))
            .await
            .expect("open vault");
        let meta = store.meta().clone();
        let keys = VaultKeys::derive(
            &MasterKey::parse(&key).expect("key"),
            &meta.salt,
            meta.kdf,
            *meta.id.as_bytes(),
        )
        .expect("derive");
        let mut row = store.credentials().await.expect("rows").remove(0);
        row.credential.expires_at = Some(Timestamp::from_millis(1));
        row.mac = keys
            .row_mac(&row.credential.canonical_encoding(&meta.id))
            .to_vec();
        let entry = aegis_core::ledger::EntryContent::system(
            aegis_core::ledger::SystemEvent::CredentialUpdated,
            aegis_core::ledger::Via::Cli,
            "test",
        );
        store.replace_credential(&row, entry).await.expect("write");
        store.close().await;
    });
    let denied =
        aegis_test_support::wait_for("the expiry to be in force", Duration::from_secs(5), || {
            let resp = curl(&[&url]);
            (resp.status == 403).then_some(resp)
        });
    assert_eq!(denied.json()["error"]["code"], "credential_expired");
    let before = w.upstream.request_count();
    assert_eq!(curl(&[&url]).status, 403);
    assert_eq!(
        w.upstream.request_count(),
        before,
        "an expired credential is never sent"
    );
}

#[test]
fn vault_secrets_in_the_url_headers_or_body_are_blocked_before_they_leave() {
    let w = World::new();
    let host = w.upstream.host();
    w.add(&["-n", "svc", "-s", "svc", "-d", &host], SECRET);
    w.add(
        &["-n", "other", "-s", "other", "-d", &host],
        "sk-other-secret-9876543210",
    );
    let gate = w.gate(&[]);
    let base64_secret = "c2stb3RoZXItc2VjcmV0LTk4NzY1NDMyMTA="; // base64 of the other secret
    let hex_secret: String = "sk-other-secret-9876543210"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let attempts: Vec<Vec<String>> = vec![
        vec![format!(
            "{}/svc/paste?text=sk-other-secret-9876543210",
            gate.base
        )],
        vec![format!("{}/svc/sk-other-secret-9876543210", gate.base)],
        vec![
            "-H".into(),
            "X-Note: sk-other-secret-9876543210".into(),
            format!("{}/svc/x", gate.base),
        ],
        vec![
            "--data-binary".into(),
            format!("{{\"leak\":\"{base64_secret}\"}}"),
            format!("{}/svc/paste", gate.base),
        ],
        vec![
            "--data-binary".into(),
            format!("digest={hex_secret}"),
            format!("{}/svc/paste", gate.base),
        ],
    ];
    for args in &attempts {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let resp = curl(&args);
        assert_eq!(resp.status, 403, "{args:?}: {}", resp.text());
        assert_eq!(resp.json()["error"]["code"], "body_blocked", "{args:?}");
        assert!(
            !resp.text().contains("9876543210"),
            "the message never quotes the value"
        );
    }
    assert_eq!(w.upstream.request_count(), 0, "nothing left the gate");
    // The same body to a credential with inspection off is forwarded.
    let run = w.env.run(
        [
            "vault",
            "update",
            "--name",
            "svc",
            "--body-inspection",
            "off",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    aegis_test_support::wait_for(
        "inspection off to be in force",
        Duration::from_secs(5),
        || {
            (curl(&[
                "--data-binary",
                "sk-other-secret-9876543210",
                &format!("{}/svc/paste", gate.base),
            ])
            .status
                == 200)
                .then_some(())
        },
    );
}

#[test]
fn block_mode_refuses_bodies_over_the_inspection_buffer() {
    let w = World::new();
    w.append_config("gate:\n  max_inspect_bytes: 64KiB\n");
    w.add_bearer("svc", "svc", SECRET);
    let gate = w.gate(&[]);
    let file = w.env.path().join("big.bin");
    std::fs::write(&file, vec![b'y'; 100 * 1024]).expect("write");
    let resp = curl(&[
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{}/svc/upload", gate.base),
    ]);
    assert_eq!(resp.status, 413, "{}", resp.text());
    let message = resp.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("gate.max_inspect_bytes"),
        "the hint names the right setting: {message}"
    );
    assert_eq!(w.upstream.request_count(), 0);
    let small = curl(&[
        "--data-binary",
        "hello",
        &format!("{}/svc/upload", gate.base),
    ]);
    assert_eq!(small.status, 200);
    assert_eq!(w.upstream.last_request().expect("request").body_len, 5);
}

#[test]
fn a_second_signal_skips_the_rest_of_the_grace_period() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let mut gate = w.gate(&[]);
    let url = format!("{}/svc/slow/8000", gate.base);
    let in_flight = std::thread::spawn(move || curl(&[&url]));
    let upstream = &w.upstream;
    aegis_test_support::wait_for(
        "the slow request to reach the upstream",
        Duration::from_secs(10),
        || (upstream.request_count() == 1).then_some(()),
    );
    let started = std::time::Instant::now();
    gate.terminate();
    aegis_test_support::wait_for("the drain to start", Duration::from_secs(5), || {
        // A new request is refused while draining (or the listener is already closed).
        let resp = curl(&[&format!("{}/_aegis/health", gate.base)]);
        (resp.status != 200).then_some(())
    });
    gate.terminate();
    assert_eq!(
        gate.wait_exit(Duration::from_secs(6)),
        0,
        "{}",
        gate.output()
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "exited after {:?}",
        started.elapsed()
    );
    let cut = in_flight.join().expect("curl thread");
    assert_ne!(cut.status, 200, "the slow request was cut off");
}

#[test]
fn the_response_deadline_starts_after_the_upload_and_a_silent_upstream_times_out() {
    use std::io::{Read as _, Write as _};
    let w = World::new();
    w.append_config("gate:\n  timeouts:\n    response_headers: 1s\n    idle_body: 5s\n");
    let host = w.upstream.host();
    w.add(
        &[
            "-n",
            "svc",
            "-s",
            "svc",
            "-d",
            &host,
            "--body-inspection",
            "off",
        ],
        SECRET,
    );
    let gate = w.gate(&[]);
    // An upload that keeps moving for about 2 s, longer than the response deadline.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", gate.port())).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    stream
        .write_all(b"POST /svc/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .expect("head");
    let paced = std::time::Instant::now();
    for _ in 0..8 {
        stream.write_all(b"400\r\n").expect("chunk size");
        stream.write_all(&[b'z'; 0x400]).expect("chunk");
        stream.write_all(b"\r\n").expect("chunk end");
        stream.flush().expect("flush");
        std::thread::park_timeout(Duration::from_millis(250)); // the pacing under test
    }
    stream.write_all(b"0\r\n\r\n").expect("last chunk");
    assert!(paced.elapsed() >= Duration::from_millis(1500));
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"body_len\":8192"), "{text}");
    // An upstream that takes longer than the deadline to answer: 504 upstream_timeout.
    let started = std::time::Instant::now();
    let slow = curl(&[&format!("{}/svc/slow/4000", gate.base)]);
    assert_eq!(slow.status, 504, "{}", slow.text());
    assert_eq!(slow.json()["error"]["code"], "upstream_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn every_gate_decision_is_in_a_chain_that_verifies() {
    let w = World::new();
    let host = w.upstream.host();
    w.add(
        &["-n", "svc", "-s", "svc", "-d", &host, "--scopes", "read"],
        SECRET,
    );
    let mut gate = w.gate(&[]);
    let mut threads = Vec::new();
    for i in 0..40 {
        let base = gate.base.clone();
        threads.push(std::thread::spawn(move || {
            if i % 4 == 0 {
                curl(&["-X", "DELETE", &format!("{base}/svc/item/{i}?token=hidden")]).status
            } else {
                curl(&[&format!("{base}/svc/item/{i}?token=hidden")]).status
            }
        }));
    }
    let statuses: Vec<u16> = threads
        .into_iter()
        .map(|t| t.join().expect("curl"))
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 30);
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 10);
    gate.terminate();
    assert_eq!(
        gate.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        gate.output()
    );

    let show = w
        .env
        .run(["ledger", "show", "--limit", "1000", "--json"], "");
    assert_eq!(show.code, 0, "{}", show.stderr);
    let entries = show.json();
    let entries = entries.as_array().expect("array");
    let requests: Vec<&serde_json::Value> =
        entries.iter().filter(|e| e["kind"] == "request").collect();
    assert_eq!(requests.len(), 40, "one entry per request");
    let allowed = requests
        .iter()
        .filter(|e| e["outcome"] == "allowed")
        .count();
    let blocked: Vec<&&serde_json::Value> = requests
        .iter()
        .filter(|e| e["outcome"] == "blocked")
        .collect();
    assert_eq!((allowed, blocked.len()), (30, 10));
    assert!(
        blocked
            .iter()
            .all(|e| e["denial_code"] == "scope_denied" && e["status_code"] == 403)
    );
    for entry in &requests {
        assert_eq!(entry["service"], "svc");
        assert_eq!(entry["via"], "gate");
        assert!(entry["request_id"].is_string());
        let path = entry["path"].as_str().expect("path");
        assert!(
            path.starts_with("/svc/item/") && !path.contains('?'),
            "no query in the ledger: {path}"
        );
    }
    let allowed_entry = requests
        .iter()
        .find(|e| e["outcome"] == "allowed")
        .expect("allowed");
    assert_eq!(allowed_entry["credential"], "svc");
    assert_eq!(allowed_entry["target_host"], w.upstream.host());
    assert_eq!(allowed_entry["status_code"], 200);
    let events: Vec<&str> = entries.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(
        events.contains(&"gate_started") && events.contains(&"gate_stopped"),
        "{events:?}"
    );
    assert!(!show.stdout.contains(SECRET) && !show.stdout.contains("hidden"));
    let verify = w.env.run(["ledger", "verify"], "");
    assert_eq!(verify.code, 0, "{}", verify.stderr);
}

#[test]
fn signed_checkpoints_catch_a_truncated_tail_even_with_the_head_rewritten() {
    let w = World::new();
    w.append_config("ledger:\n  checkpoint_interval: 3\n");
    w.add_bearer("svc", "svc", SECRET);
    let mut gate = w.gate(&[]);
    for i in 0..9 {
        assert_eq!(curl(&[&format!("{}/svc/n/{i}", gate.base)]).status, 200);
    }
    gate.terminate();
    assert_eq!(
        gate.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        gate.output()
    );
    let verify = w.env.run(["ledger", "verify", "--json"], "");
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    let body = verify.json();
    assert!(body["checkpoints"].as_u64().unwrap_or(0) >= 2, "{body}");
    let last = body["entries"].as_u64().expect("entries");

    // Someone with database access but no key drops the newest entries and rewinds the head.
    super::support::sql(
        &w.env,
        &format!(
            "DELETE FROM ledger WHERE id > {keep}; \
             UPDATE ledger_head SET last_id = {keep}, \
             last_hash = (SELECT hash FROM ledger WHERE id = {keep});",
            keep = last - 4
        ),
    );
    let run = w.env.run(["ledger", "verify"], "");
    super::support::assert_error(&run, 1, "missing entries");

    // A forged checkpoint signature is refused too.
    let w2 = World::new();
    w2.append_config("ledger:\n  checkpoint_interval: 2\n");
    w2.add_bearer("svc", "svc", SECRET);
    let mut gate2 = w2.gate(&[]);
    for i in 0..4 {
        assert_eq!(curl(&[&format!("{}/svc/n/{i}", gate2.base)]).status, 200);
    }
    gate2.terminate();
    assert_eq!(gate2.wait_exit(Duration::from_secs(20)), 0);
    super::support::sql(
        &w2.env,
        "UPDATE ledger_checkpoints SET signature = zeroblob(64);",
    );
    let run = w2.env.run(["ledger", "verify"], "");
    super::support::assert_error(&run, 1, "signature invalid");
}

#[test]
fn two_thousand_concurrent_requests_give_two_thousand_entries() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let mut gate = w.gate(&[]);
    // One curl process, 200 transfers at a time, 2,000 in all.
    let config = w.env.path().join("curl-urls");
    let mut text = String::new();
    for i in 0..2000 {
        text.push_str(&format!(
            "url = \"{}/svc/n/{i}\"\noutput = \"/dev/null\"\n",
            gate.base
        ));
    }
    std::fs::write(&config, text).expect("curl config");
    let output = std::process::Command::new("curl")
        .args([
            "-sS",
            "--noproxy",
            "*",
            "--parallel",
            "--parallel-max",
            "200",
            "-w",
            "%{http_code}\n",
            "-K",
        ])
        .arg(&config)
        .output()
        .expect("curl");
    let codes = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        codes.lines().filter(|c| *c == "200").count(),
        2000,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    gate.terminate();
    assert_eq!(
        gate.wait_exit(Duration::from_secs(30)),
        0,
        "{}",
        gate.output()
    );
    let export = w.env.run(["ledger", "export", "-f", "jsonl"], "");
    assert_eq!(export.code, 0, "{}", export.stderr);
    let requests = export
        .stdout
        .lines()
        .filter(|l| l.contains("\"kind\":\"request\""))
        .count();
    assert_eq!(requests, 2000);
    let verify = w.env.run(["ledger", "verify", "--json"], "");
    assert_eq!(verify.code, 0, "{}", verify.stderr);
}

#[test]
fn ledger_stats_count_outcomes_codes_and_services() {
    let w = World::new();
    let host = w.upstream.host();
    w.add(
        &["-n", "svc", "-s", "svc", "-d", &host, "--scopes", "read"],
        SECRET,
    );
    let mut gate = w.gate(&[]);
    for i in 0..6 {
        assert_eq!(curl(&[&format!("{}/svc/n/{i}", gate.base)]).status, 200);
    }
    for _ in 0..2 {
        assert_eq!(
            curl(&["-X", "POST", "-d", "x", &format!("{}/svc/n", gate.base)]).status,
            403
        );
    }
    assert_eq!(curl(&[&format!("{}/nosuch/x", gate.base)]).status, 404);
    gate.terminate();
    assert_eq!(gate.wait_exit(Duration::from_secs(20)), 0);
    let run = w.env.run(["ledger", "stats", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let body = run.json();
    assert_eq!(body["requests"], 9);
    assert_eq!(body["outcomes"]["allowed"], 6);
    assert_eq!(body["outcomes"]["blocked"], 3);
    assert_eq!(body["denial_codes"]["scope_denied"], 2);
    assert_eq!(body["denial_codes"]["unknown_service"], 1);
    assert_eq!(body["services"]["svc"], 8);
    assert!(
        body["latency_ms"]["p50"].is_u64() && body["latency_ms"]["p95"].is_u64(),
        "{body}"
    );
    let filtered = w
        .env
        .run(["ledger", "stats", "--json", "--service", "nosuch"], "");
    assert_eq!(filtered.json()["requests"], 1);
}

#[test]
fn strict_mode_every_answer_the_agent_got_is_in_the_ledger_after_sigkill() {
    use std::io::BufRead as _;
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    w.append_config("ledger:\n  durability: strict\n");
    let mut gate = w.gate(&[]);
    // Allowed requests and denials (unknown service) alternate; 40 transfers at a time.
    let config = w.env.path().join("curl-urls");
    let mut text = String::new();
    for i in 0..4000 {
        let service = if i % 2 == 0 { "svc" } else { "nosuch" };
        text.push_str(&format!(
            "url = \"{}/{service}/n/{i}\"\noutput = \"/dev/null\"\n",
            gate.base
        ));
    }
    std::fs::write(&config, text).expect("curl config");
    let mut load = std::process::Command::new("curl")
        .args(["-s", "--noproxy", "*", "--parallel", "--parallel-max", "40"])
        .args(["-w", "%{http_code} %header{x-aegis-request-id}\n", "-K"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("curl");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let out = load.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().expect("lock").push(line);
            }
        })
    };
    // Kill the gate in the middle of the load, once the agent has had a few hundred answers.
    aegis_test_support::wait_for("300 answers", Duration::from_secs(60), || {
        (lines.lock().expect("lock").len() >= 300).then_some(())
    });
    gate.kill();
    load.wait().expect("curl exits");
    reader.join().expect("reader");
    let answered: Vec<(String, String)> = lines
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|l| {
            let (code, id) = l.split_once(' ')?;
            (code != "000" && !id.is_empty()).then(|| (code.to_owned(), id.to_owned()))
        })
        .collect();
    assert!(answered.len() >= 300, "{} answers", answered.len());
    assert!(
        answered.len() < 4000,
        "the gate was killed only after the load ended"
    );
    assert!(answered.iter().any(|(code, _)| code == "200"));
    assert!(answered.iter().any(|(code, _)| code == "404"));

    // The agent's answers are all in the ledger a fresh process reads from disk.
    let export = w.env.run(["ledger", "export", "-f", "jsonl"], "");
    assert_eq!(export.code, 0, "{}", export.stderr);
    let entries: Vec<serde_json::Value> = export
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl"))
        .collect();
    let of_kind = |kind: &str| -> std::collections::HashMap<String, serde_json::Value> {
        entries
            .iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| (e["request_id"].as_str().expect("id").to_owned(), e.clone()))
            .collect()
    };
    let requests = of_kind("request");
    let ends = of_kind("request_end");
    for (code, id) in &answered {
        let entry = requests
            .get(id)
            .unwrap_or_else(|| panic!("answer {code} {id} has no request entry"));
        if code == "200" {
            assert_eq!(entry["outcome"], "allowed");
            assert!(entry["status_code"].is_null(), "{entry}");
        } else {
            assert_eq!(entry["denial_code"], "unknown_service");
            assert_eq!(entry["status_code"], 404);
        }
    }
    // Every end pairs with its start; allowed starts carry no status, their ends do.
    for (id, end) in &ends {
        assert_eq!(requests[id]["outcome"], "allowed", "{end}");
        assert!(end["status_code"].is_u64(), "{end}");
    }
    assert!(!ends.is_empty());

    // The chain survived the kill, and a restarted gate goes on appending to it.
    let verify = w.env.run(["ledger", "verify"], "");
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    let mut again = w.gate(&[]);
    assert_eq!(curl(&[&format!("{}/svc/after", again.base)]).status, 200);
    again.terminate();
    assert_eq!(again.wait_exit(Duration::from_secs(20)), 0);
    let verify = w.env.run(["ledger", "verify"], "");
    assert_eq!(verify.code, 0, "{}", verify.stderr);
}

#[test]
fn strict_mode_stats_count_each_request_once_with_its_end() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    w.append_config("ledger:\n  durability: strict\n");
    let mut gate = w.gate(&[]);
    for i in 0..3 {
        assert_eq!(curl(&[&format!("{}/svc/n/{i}", gate.base)]).status, 200);
    }
    assert_eq!(curl(&[&format!("{}/nosuch/x", gate.base)]).status, 404);
    gate.terminate();
    assert_eq!(gate.wait_exit(Duration::from_secs(20)), 0);
    let export = w.env.run(["ledger", "export", "-f", "jsonl"], "");
    let ends = export
        .stdout
        .lines()
        .filter(|l| l.contains("\"kind\":\"request_end\""))
        .count();
    assert_eq!(ends, 3, "{}", export.stdout);
    let run = w.env.run(["ledger", "stats", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let body = run.json();
    assert_eq!(body["requests"], 4, "{body}");
    assert_eq!(body["outcomes"]["allowed"], 3, "{body}");
    assert_eq!(body["outcomes"]["blocked"], 1, "{body}");
    assert!(body["latency_ms"]["p50"].is_u64(), "{body}");
}

#[test]
fn entries_get_a_checkpoint_once_they_reach_checkpoint_max_age() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    w.append_config("ledger:\n  checkpoint_interval: 100000\n  checkpoint_max_age: 300ms\n");
    let mut gate = w.gate(&[]);
    for i in 0..2 {
        assert_eq!(curl(&[&format!("{}/svc/n/{i}", gate.base)]).status, 200);
    }
    // Far fewer entries than the interval, and the gate still running: only the age counts.
    let checkpoints = aegis_test_support::wait_for(
        "a checkpoint over the two requests",
        Duration::from_secs(10),
        || {
            let run = w.env.run(["ledger", "verify", "--json"], "");
            assert_eq!(run.code, 0, "ledger verify: {}{}", run.stdout, run.stderr);
            let body = run.json();
            (body["checkpoints"].as_u64() >= Some(1)).then_some(body)
        },
    );
    assert_eq!(checkpoints["ok"], true, "{checkpoints}");
    gate.terminate();
    assert_eq!(gate.wait_exit(Duration::from_secs(20)), 0);
}

#[test]
fn the_gate_speaks_http2_upstream_when_offered_and_falls_back_to_http1() {
    let w = World::new();
    let h1_only =
        aegis_test_support::HttpsUpstream::start_blocking_with_alpn(&w.ca, &[b"http/1.1"]);
    w.add_bearer("h2", "both", SECRET);
    w.add(
        &["-n", "h1", "-s", "old", "-d", &h1_only.host()],
        "sk-h1-only-secret-0123456789",
    );
    let gate = w.gate(&[]);
    for (service, upstream, version) in [
        ("both", &w.upstream, "HTTP/2.0"),
        ("old", &h1_only, "HTTP/1.1"),
    ] {
        let resp = curl(&[
            "-X",
            "POST",
            "--data-binary",
            "ping",
            &format!("{}/{service}/echo-body", gate.base),
        ]);
        assert_eq!(
            (resp.status, resp.text().as_str()),
            (200, "ping"),
            "{service}"
        );
        let seen = upstream.last_request().expect("the upstream saw it");
        assert_eq!(seen.version, version, "{service}");
    }
}

#[test]
fn ledger_verify_passes_while_the_gate_appends() {
    let w = World::new();
    w.add_bearer("svc", "svc", SECRET);
    let gate = w.gate(&[]);
    let base = gate.base.clone();
    let load = std::thread::spawn(move || {
        for i in 0..300 {
            assert_eq!(curl(&[&format!("{base}/svc/load/{i}")]).status, 200);
        }
    });
    // Each verification reads the head, walks to it, and follows a head that moves meanwhile.
    let mut verified = 0;
    while !load.is_finished() {
        let run = w.env.run(["ledger", "verify", "--json"], "");
        assert_eq!(
            run.code, 0,
            "ledger verify under load: {}{}",
            run.stdout, run.stderr
        );
        verified += 1;
    }
    load.join().expect("load thread");
    assert!(verified >= 1);
    let run = w.env.run(["ledger", "verify", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.json()["entries"].as_u64() >= Some(300),
        "{}",
        run.stdout
    );
}
