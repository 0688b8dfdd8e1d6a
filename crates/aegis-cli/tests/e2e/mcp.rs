//! `aegis mcp serve` driven by a real MCP client (rmcp's) over stdio (SPEC.md §16): tool
//! listing, proxied calls reaching the HTTPS upstream with the secret injected and redacted,
//! denials as tool errors with the gate's codes, ledger entries with `via: "mcp"`, parity with
//! the HTTP gate, start-up refusals, and `aegis mcp config`.

use std::process::Stdio;
use std::time::Duration;

use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Value, json};

use super::support::{Gate, TestEnv, World, assert_error, curl};

const SECRET: &str = "sk-mcp-e2e-secret-0123456789abcdef";

/// A running `aegis mcp serve --transport stdio` with an MCP client session on its pipes.
pub(super) struct Mcp {
    client: RunningService<RoleClient, ()>,
    child: tokio::process::Child,
}

impl Mcp {
    /// Starts the server with `envs` added to the test environment and completes `initialize`.
    pub(super) async fn start(env: &TestEnv, envs: &[(&str, &str)]) -> Mcp {
        let mut command = env.std_cmd(["mcp", "serve", "--transport", "stdio"]);
        command
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = tokio::process::Command::from(command)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn aegis mcp serve");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let client = tokio::time::timeout(Duration::from_secs(20), ().serve((stdout, stdin)))
            .await
            .expect("initialize within 20s")
            .expect("MCP handshake");
        Mcp { client, child }
    }

    /// Calls `tool`; returns whether it was an error result and the JSON of its text.
    pub(super) async fn call(&self, tool: &str, arguments: Value) -> (bool, Value) {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object");
        };
        let result = self
            .client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
            .expect("tools/call answered");
        let text = serde_json::to_value(&result.content[0]).expect("content JSON")["text"]
            .as_str()
            .expect("text content")
            .to_owned();
        let parsed = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (result.is_error == Some(true), parsed)
    }

    /// Closes the session (EOF on the server's stdin) and waits for a clean exit.
    pub(super) async fn stop(mut self) {
        self.client.cancel().await.expect("close the session");
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("mcp serve exits within 20s of EOF")
            .expect("wait");
        assert!(status.success(), "mcp serve exit status {status}");
    }
}

/// `agent add --json` and the token it printed.
pub(super) fn add_agent(w: &World, name: &str) -> String {
    w.ok(&["agent", "add", "--name", name, "--json"]).json()["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// The request entries of the ledger with `via`, oldest first, once there are `count`.
fn requests_via(w: &World, via: &str, count: usize) -> Vec<Value> {
    aegis_test_support::wait_for("the request entries", Duration::from_secs(10), || {
        let shown = w
            .ok(&["ledger", "show", "--json", "--limit", "1000"])
            .json();
        let mut entries: Vec<Value> = shown
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["kind"] == "request" && e["via"] == via)
            .cloned()
            .collect();
        entries.sort_by_key(|e| e["id"].as_i64());
        (entries.len() >= count).then_some(entries)
    })
}

#[test]
fn tools_are_listed_and_a_proxied_call_reaches_the_upstream_with_the_secret_redacted() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    let host = w.upstream.host();
    w.runtime.block_on(async {
        let mcp = Mcp::start(&w.env, &[]).await;
        let tools = mcp.client.list_all_tools().await.expect("tools/list");
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            ["aegis_proxy_request", "aegis_list_services", "aegis_health"]
        );
        let proxy = &tools[0];
        assert_eq!(proxy.input_schema["required"], json!(["service", "path"]));

        // The upstream echoes the Authorization header it received: the secret arrived, and
        // the tool result carries it redacted.
        let (is_error, result) = mcp
            .call(
                "aegis_proxy_request",
                json!({"service": "github", "path": "/echo-auth?x=1",
                       "headers": {"Authorization": "Bearer agent-sent", "Host": "evil.example"}}),
            )
            .await;
        assert!(!is_error, "{result}");
        assert_eq!(result["status"], 200);
        assert_eq!(result["truncated"], false);
        assert_eq!(result["body_encoding"], "utf8");
        let body = result["body"].as_str().expect("body");
        assert!(body.starts_with("auth=Bearer "), "{body}");
        assert!(!result.to_string().contains(SECRET), "secret in the result");
        assert!(result["request_id"].is_string());
        let seen = w.upstream.last_request().expect("upstream saw the request");
        assert_eq!(
            seen.header("authorization").as_deref(),
            Some(format!("Bearer {SECRET}").as_str())
        );
        assert_eq!(seen.path(), "/echo-auth");
        // The agent's Host never reaches the upstream (HTTP/1.1 Host or HTTP/2 :authority).
        assert_ne!(seen.header("host").as_deref(), Some("evil.example"));
        assert_eq!(seen.header("x-aegis-agent"), None);

        // A body as base64 goes out as bytes; JSON is the default content type.
        let (is_error, result) = mcp
            .call(
                "aegis_proxy_request",
                json!({"service": "github", "path": "/echo", "method": "POST",
                       "body": "aGVsbG8=", "body_encoding": "base64"}),
            )
            .await;
        assert!(!is_error, "{result}");
        let seen = w.upstream.last_request().expect("upstream saw the POST");
        assert_eq!(seen.body_text(), "hello");
        assert_eq!(
            seen.header("content-type").as_deref(),
            Some("application/json")
        );

        let (is_error, services) = mcp.call("aegis_list_services", json!({})).await;
        assert!(!is_error);
        assert_eq!(services["services"][0]["service"], "github");
        assert_eq!(services["services"][0]["credential"], "gh");
        assert_eq!(services["services"][0]["auth_type"], "bearer");
        assert_eq!(services["services"][0]["domains"], json!([host]));
        assert!(!services.to_string().contains(SECRET));

        let (is_error, health) = mcp.call("aegis_health", json!({})).await;
        assert!(!is_error);
        assert_eq!(health["status"], "ok");
        assert_eq!(health["vault"], "default");
        mcp.stop().await;
    });
}

#[test]
fn a_long_body_is_truncated_at_max_response_bytes_and_binary_comes_back_as_base64() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    w.append_config("mcp:\n  max_response_bytes: 1000\n");
    w.runtime.block_on(async {
        let mcp = Mcp::start(&w.env, &[]).await;
        let (is_error, result) = mcp
            .call(
                "aegis_proxy_request",
                json!({"service": "github", "path": "/bytes/5000"}),
            )
            .await;
        assert!(!is_error, "{result}");
        assert_eq!(result["truncated"], true);
        assert_eq!(result["body"].as_str().expect("body").len(), 1000);
        mcp.stop().await;
    });
    // The whole response was relayed, so the request is recorded as allowed.
    let entries = requests_via(&w, "mcp", 1);
    assert_eq!(entries[0]["outcome"], "allowed", "{:?}", entries[0]);
}

#[test]
fn a_call_running_past_mcp_request_timeout_is_upstream_timeout() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    w.append_config("mcp:\n  request_timeout: 300ms\n");
    w.runtime.block_on(async {
        let mcp = Mcp::start(&w.env, &[]).await;
        let (is_error, result) = mcp
            .call(
                "aegis_proxy_request",
                json!({"service": "github", "path": "/slow/2000"}),
            )
            .await;
        assert!(is_error, "{result}");
        assert_eq!(result["error"]["code"], "upstream_timeout");
        mcp.stop().await;
    });
}

#[test]
fn denials_are_tool_errors_with_the_gate_codes_and_ledger_entries_via_mcp() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    w.add_bearer("other", "other", "sk-other-credential-secret-9");
    let token = add_agent(&w, "bot");
    w.ok(&["agent", "grant", "--agent", "bot", "--credential", "gh"]);
    w.runtime.block_on(async {
        let mcp = Mcp::start(&w.env, &[("AEGIS_AGENT_TOKEN", token.as_str())]).await;
        for (arguments, code) in [
            (
                json!({"service": "github", "path": "/x", "target_host": "evil.example"}),
                "domain_blocked",
            ),
            (
                json!({"service": "github", "path": "/x", "targetHost": "evil.example"}),
                "domain_blocked",
            ),
            (
                json!({"service": "other", "path": "/x"}),
                "credential_not_granted",
            ),
            (
                json!({"service": "nosuch", "path": "/x"}),
                "unknown_service",
            ),
            (json!({"service": "github", "path": "x"}), "bad_request"),
        ] {
            let (is_error, result) = mcp.call("aegis_proxy_request", arguments).await;
            assert!(is_error, "{result}");
            assert_eq!(result["error"]["code"], code, "{result}");
            assert!(result["error"]["message"].is_string());
            assert!(result["error"]["request_id"].is_string());
        }
        // Only the granted credential is listed.
        let (_, services) = mcp.call("aegis_list_services", json!({})).await;
        let listed: Vec<&str> = services["services"]
            .as_array()
            .expect("services")
            .iter()
            .filter_map(|s| s["credential"].as_str())
            .collect();
        assert_eq!(listed, ["gh"]);
        mcp.stop().await;
    });
    // Every refusal is recorded, bad arguments too (as a gate request refused at step 1, so
    // without an agent); the checks' refusals name the agent.
    let entries = requests_via(&w, "mcp", 5);
    let codes: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["denial_code"].as_str())
        .collect();
    assert_eq!(
        &codes[..5],
        [
            "domain_blocked",
            "domain_blocked",
            "credential_not_granted",
            "unknown_service",
            "bad_request"
        ]
    );
    assert_eq!(entries[4]["path"], "/github");
    assert_eq!(entries[4]["service"], "github");
    assert_eq!(entries[4]["via"], "mcp");
    assert!(entries.iter().take(3).all(|e| e["agent"] == "bot"));
    let shown = w.ok(&["ledger", "show", "--json", "--limit", "1000"]);
    assert!(!shown.all_output().contains(&token), "token in the ledger");
    let system = w.ok(&["ledger", "show", "--system", "--json"]).json();
    let events: Vec<&str> = system
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(events.contains(&"mcp_started") && events.contains(&"mcp_stopped"));
}

/// One parity row: method, service, path, target host, body, expected code (or "allowed").
type Row<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
);

#[test]
fn one_table_of_requests_gets_the_same_decisions_and_ledger_fields_over_http_and_mcp() {
    let mut w = World::new();
    w.add_bearer("gh", "github", SECRET);
    w.add_bearer("other", "other", "sk-other-credential-secret-9");
    let host = w.upstream.host();
    w.add(
        &[
            "--name",
            "ro",
            "--service",
            "readonly",
            "--domains",
            &host,
            "--scopes",
            "read",
        ],
        "sk-readonly-credential-secret-7",
    );
    w.add(
        &[
            "--name",
            "guarded",
            "--service",
            "guarded",
            "--domains",
            &host,
            "--body-inspection",
            "block",
        ],
        "sk-guarded-credential-secret-5",
    );
    let token = add_agent(&w, "bot");
    for credential in ["gh", "ro", "guarded"] {
        w.ok(&[
            "agent",
            "grant",
            "--agent",
            "bot",
            "--credential",
            credential,
        ]);
    }
    let dir = w.env.path().join("policies");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("bot.yaml"),
        "agent: bot\nrules:\n  - name: gh\n    service: github\n    methods: [GET]\n    paths: [\"/echo.*\", \"/status/.*\"]\n  - name: ro\n    service: readonly\n    methods: [GET, POST]\n    paths: [\"/.*\"]\n  - name: guarded\n    service: guarded\n    paths: [\"/.*\"]\n",
    )
    .expect("policy");
    w.env
        .set_env("AEGIS_GATE_POLICIES_DIR", dir.to_str().expect("utf-8"));
    let leak = format!("{{\"note\":\"{SECRET}\"}}");
    let table: &[Row<'_>] = &[
        ("GET", "github", "/echo", None, None, "allowed"),
        ("GET", "github", "/status/404", None, None, "allowed"),
        (
            "GET",
            "github",
            "/echo",
            Some("evil.example"),
            None,
            "domain_blocked",
        ),
        ("GET", "other", "/x", None, None, "credential_not_granted"),
        ("POST", "readonly", "/x", None, None, "scope_denied"),
        ("GET", "github", "/admin", None, None, "policy_denied"),
        ("DELETE", "github", "/echo", None, None, "policy_denied"),
        ("GET", "nosuch", "/x", None, None, "unknown_service"),
        (
            "POST",
            "guarded",
            "/echo",
            None,
            Some("{\"note\":\"fine\"}"),
            "allowed",
        ),
        (
            "POST",
            "guarded",
            "/echo",
            None,
            Some(leak.as_str()),
            "body_blocked",
        ),
    ];

    let mut gate = Gate::start(&w.env, &[]);
    let mut over_http = Vec::new();
    for (method, service, path, target, body, _) in table {
        let url = format!("{}/{service}{path}", gate.base);
        let agent = format!("X-Aegis-Agent: {token}");
        let target_header = target.map(|t| format!("X-Target-Host: {t}"));
        let mut args = vec!["-X", method, "-H", agent.as_str()];
        if let Some(h) = &target_header {
            args.extend(["-H", h.as_str()]);
        }
        if let Some(body) = body {
            args.extend([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ]);
        }
        args.push(&url);
        let response = curl(&args);
        let denial = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|body| body["error"]["code"].as_str().map(str::to_owned));
        over_http.push(denial.unwrap_or_else(|| "allowed".to_owned()));
    }
    gate.terminate();
    assert_eq!(
        gate.wait_exit(Duration::from_secs(20)),
        0,
        "{}",
        gate.output()
    );

    let (over_mcp, over_mcp_text) = w.runtime.block_on(async {
        let mcp = Mcp::start(&w.env, &[("AEGIS_AGENT_TOKEN", token.as_str())]).await;
        let mut decisions = Vec::new();
        let mut texts = String::new();
        for (method, service, path, target, body, _) in table {
            let mut arguments = json!({"service": service, "path": path, "method": method});
            if let Some(target) = target {
                arguments["target_host"] = json!(target);
            }
            if let Some(body) = body {
                arguments["body"] = json!(body);
            }
            let (is_error, result) = mcp.call("aegis_proxy_request", arguments).await;
            texts.push_str(&result.to_string());
            decisions.push(if is_error {
                result["error"]["code"].as_str().expect("code").to_owned()
            } else {
                "allowed".to_owned()
            });
        }
        mcp.stop().await;
        (decisions, texts)
    });
    let expected: Vec<&str> = table.iter().map(|row| row.5).collect();
    assert!(
        !over_mcp_text.contains(SECRET),
        "the secret reached an MCP result"
    );
    assert_eq!(over_http, expected, "HTTP decisions");
    assert_eq!(over_mcp, expected, "MCP decisions");

    let http_entries = requests_via(&w, "gate", table.len());
    let mcp_entries = requests_via(&w, "mcp", table.len());
    for (http, mcp) in http_entries.iter().zip(&mcp_entries) {
        let (Value::Object(http), Value::Object(mcp)) = (http, mcp) else {
            panic!("entries are objects");
        };
        let mut http_keys: Vec<&String> = http.keys().collect();
        let mut mcp_keys: Vec<&String> = mcp.keys().collect();
        http_keys.sort();
        mcp_keys.sort();
        assert_eq!(http_keys, mcp_keys, "same shape");
        for field in [
            "kind",
            "outcome",
            "denial_code",
            "status_code",
            "service",
            "credential",
            "agent",
            "target_host",
            "method",
            "path",
            "policy_rule",
        ] {
            assert_eq!(
                http.get(field),
                mcp.get(field),
                "{field}: {http:?} vs {mcp:?}"
            );
        }
        assert_eq!(mcp["via"], "mcp");
        assert_eq!(http["via"], "gate");
    }
}

#[test]
fn a_rejected_or_missing_token_stops_mcp_serve_with_exit_3() {
    let mut w = World::new();
    w.add_bearer("gh", "github", SECRET);
    let token = add_agent(&w, "bot");
    let bogus = "aegis_0000000000000000000000000000000000000000000";
    w.env.set_env("AEGIS_AGENT_TOKEN", bogus);
    let run = w.env.run(["mcp", "serve"], "");
    assert_error(&run, 3, "agent");
    assert!(!run.all_output().contains(bogus));

    // None while agent auth is required.
    w.env.unset_env("AEGIS_AGENT_TOKEN");
    w.env.set_env("AEGIS_GATE_REQUIRE_AGENT_AUTH", "true");
    let run = w.env.run(["mcp", "serve"], "");
    assert_error(&run, 3, "agent");

    // --agent-token works but warns; a token file readable by others is refused.
    let file = w.env.path().join("token");
    std::fs::write(&file, format!("{token}\n")).expect("token file");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let run = w.env.run(
        [
            "mcp",
            "serve",
            "--agent-token-file",
            file.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_error(&run, 2, "readable by other users");
    let run = w.env.run(["mcp", "serve", "--agent-token", bogus], "");
    assert!(
        run.stderr
            .contains("warning: --agent-token is visible in process lists")
    );
    assert_eq!(run.code, 3, "{}", run.stderr);

    // The file with mode 0600 is accepted.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let path = file.to_str().expect("utf-8").to_owned();
    w.runtime.block_on(async {
        let mcp = Mcp::start(&w.env, &[("AEGIS_AGENT_TOKEN_FILE", path.as_str())]).await;
        let (is_error, result) = mcp
            .call(
                "aegis_proxy_request",
                json!({"service": "github", "path": "/echo"}),
            )
            .await;
        assert!(is_error, "not granted yet: {result}");
        assert_eq!(result["error"]["code"], "credential_not_granted");
        mcp.stop().await;
    });
}

#[test]
fn mcp_config_prints_valid_json_for_each_host_without_the_master_key_or_a_token() {
    let mut w = World::new();
    let master_key = w.env.env_value("AEGIS_MASTER_KEY").expect("master key");
    let token = add_agent(&w, "bot");
    let file = w.env.path().join("bot.token");
    std::fs::write(&file, &token).expect("token file");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    w.env.set_env("AEGIS_AGENT_TOKEN", &token);
    let file = file.to_str().expect("utf-8").to_owned();
    for host in ["claude", "cursor", "vscode"] {
        for extra in [
            vec![],
            vec!["--agent", "bot"],
            vec!["--agent", "bot", "--token-file", file.as_str()],
            vec!["--transport", "streamable-http"],
        ] {
            let mut args = vec!["mcp", "config", host];
            args.extend(extra.iter().copied());
            let run = w.ok(&args);
            assert!(
                !run.all_output().contains(&master_key),
                "master key: {args:?}"
            );
            assert!(!run.all_output().contains(&token), "token: {args:?}");
            let config: Value = serde_json::from_str(&run.stdout)
                .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", run.stdout));
            let servers = if host == "vscode" {
                &config["servers"]
            } else {
                &config["mcpServers"]
            };
            let (name, entry) = servers
                .as_object()
                .and_then(|m| m.iter().next())
                .expect("one server entry");
            assert!(name.starts_with("aegis"));
            if extra.contains(&"streamable-http") {
                assert_eq!(entry["url"], "http://127.0.0.1:3300/mcp");
                continue;
            }
            let command = entry["command"].as_str().expect("command");
            assert!(std::path::Path::new(command).is_absolute());
            assert_eq!(
                entry["args"],
                json!(["mcp", "serve", "--transport", "stdio"])
            );
            assert_eq!(entry["env"]["AEGIS_VAULT"], "default");
            assert!(entry["env"]["AEGIS_HOME"].is_string());
            if extra.contains(&"--token-file") {
                assert_eq!(entry["env"]["AEGIS_AGENT_TOKEN_FILE"], file.as_str());
                assert!(entry["env"].get("AEGIS_AGENT_TOKEN").is_none());
            }
            if host == "vscode" {
                assert_eq!(entry["type"], "stdio");
            }
        }
    }
}

/// A running `aegis mcp serve --transport streamable-http --port 0`; killed when dropped.
pub(super) struct HttpServer {
    child: std::process::Child,
    /// `127.0.0.1:PORT`; the endpoint is `http://{addr}/mcp`.
    pub(super) addr: String,
}

impl HttpServer {
    /// Starts the server for `env`'s vault and waits for its listening line.
    pub(super) fn start(env: &TestEnv) -> HttpServer {
        use std::io::BufRead as _;
        let mut child = env
            .std_cmd([
                "mcp",
                "serve",
                "--transport",
                "streamable-http",
                "--port",
                "0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn aegis mcp serve");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines.send(line);
            }
        });
        let line = received
            .recv_timeout(Duration::from_secs(20))
            .expect("the listening line within 20s");
        let addr = line
            .strip_prefix("aegis mcp listening on http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        HttpServer { child, addr }
    }

    /// A new HTTP connection to the server, speaking as `token` (anonymous for `None`).
    async fn connect(&self, token: Option<&str>) -> HttpMcp {
        let stream = tokio::net::TcpStream::connect(&self.addr)
            .await
            .expect("connect");
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("HTTP handshake");
        tokio::spawn(connection);
        HttpMcp {
            sender,
            host: self.addr.clone(),
            token: token.map(str::to_owned),
            session: None,
            next_id: 1,
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one POST to `/mcp` answered: status, session header, and the JSON-RPC messages of its
/// body (JSON or server-sent events).
struct Answer {
    status: u16,
    session: Option<String>,
    messages: Vec<Value>,
}

/// A minimal streamable HTTP MCP client on one keep-alive connection: JSON-RPC requests as
/// POSTs to `/mcp`, with the session id and protocol version headers the transport requires.
struct HttpMcp {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    host: String,
    token: Option<String>,
    session: Option<String>,
    next_id: u64,
}

impl HttpMcp {
    async fn post(&mut self, message: &Value, extra: &[(&str, &str)]) -> Answer {
        use http_body_util::BodyExt as _;
        let mut request = http::Request::post("/mcp")
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(session) = &self.session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", PROTOCOL);
        }
        let mut request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(
                message.to_string(),
            )))
            .expect("request");
        for (name, value) in extra {
            let name = http::HeaderName::from_bytes(name.as_bytes()).expect("header name");
            let value = http::HeaderValue::from_str(value).expect("header value");
            request.headers_mut().insert(name, value);
        }
        self.sender.ready().await.expect("connection ready");
        let response = self.sender.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        let messages = if text.trim_start().starts_with('{') {
            vec![serde_json::from_str(&text).unwrap_or(Value::Null)]
        } else {
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str(d.trim()).ok())
                .collect()
        };
        Answer {
            status,
            session,
            messages,
        }
    }

    /// `initialize` then `notifications/initialized`; returns the initialize answer's status.
    async fn initialize(&mut self) -> u16 {
        let answer = self
            .post(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": PROTOCOL, "capabilities": {},
                    "clientInfo": {"name": "aegis-e2e", "version": "1"}}}),
                &[],
            )
            .await;
        if answer.status != 200 {
            return answer.status;
        }
        self.session = Some(answer.session.expect("initialize returns Mcp-Session-Id"));
        let initialized = self
            .post(
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                &[],
            )
            .await;
        assert_eq!(initialized.status, 202);
        answer.status
    }

    /// `tools/call`; the HTTP status and the JSON-RPC result (if any).
    async fn call(&mut self, tool: &str, arguments: Value) -> (u16, Option<Value>) {
        let id = self.next_id;
        self.next_id += 1;
        let answer = self
            .post(
                &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                        "params": {"name": tool, "arguments": arguments}}),
                &[],
            )
            .await;
        let result = answer
            .messages
            .into_iter()
            .find(|m| m["id"] == id)
            .map(|m| m["result"].clone());
        (answer.status, result)
    }
}

const PROTOCOL: &str = "2025-06-18";

#[test]
fn ten_streamable_http_sessions_each_complete_a_hundred_calls() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    let server = HttpServer::start(&w.env);
    w.runtime.block_on(async {
        let mut sessions = tokio::task::JoinSet::new();
        for session in 0..10 {
            let mut client = server.connect(None).await;
            sessions.spawn(async move {
                assert_eq!(client.initialize().await, 200, "session {session}");
                for call in 0..100 {
                    let (status, result) = client
                        .call(
                            "aegis_proxy_request",
                            json!({"service": "github", "path": format!("/echo/{session}/{call}")}),
                        )
                        .await;
                    assert_eq!(status, 200, "session {session} call {call}");
                    let result = result.expect("a result");
                    assert_eq!(result["isError"], false, "{result}");
                    assert_eq!(result["structuredContent"]["status"], 200, "{result}");
                }
            });
        }
        while let Some(done) = sessions.join_next().await {
            done.expect("a session failed");
        }
    });
    assert_eq!(w.upstream.request_count(), 1000);
    // SIGTERM stops the server cleanly and the stop is recorded.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut server = server;
    let exited = aegis_test_support::wait_for(
        "mcp serve to exit after SIGTERM",
        Duration::from_secs(20),
        || server.child.try_wait().ok().flatten(),
    );
    assert!(exited.success(), "exit status {exited}");
    let system = w.ok(&["ledger", "show", "--system", "--json"]).json();
    assert!(
        system
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["event"] == "mcp_stopped"),
        "{system}"
    );
}

#[test]
fn streamable_http_checks_host_origin_identity_session_owner_cap_and_size() {
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    let alice = add_agent(&w, "alice");
    let bob = add_agent(&w, "bob");
    w.ok(&["agent", "grant", "--agent", "alice", "--credential", "gh"]);
    w.append_config("mcp:\n  max_sessions: 2\n  max_request_bytes: 4096\n");
    let server = HttpServer::start(&w.env);
    w.runtime.block_on(async {
        let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "aegis-e2e", "version": "1"}}});
        // DNS rebinding and browser pages are refused.
        let mut probe = server.connect(None).await;
        let foreign_host = probe.post(&initialize, &[("host", "evil.example")]).await;
        assert_eq!(foreign_host.status, 403);
        let mut probe = server.connect(None).await;
        let origin = probe
            .post(&initialize, &[("origin", "https://evil.example")])
            .await;
        assert_eq!(origin.status, 403);
        // A token that is not an agent's.
        let mut stranger = server
            .connect(Some("aegis_0000000000000000000000000000000000000000000"))
            .await;
        let rejected = stranger.post(&initialize, &[]).await;
        assert_eq!(rejected.status, 401);
        assert_eq!(rejected.messages[0]["error"]["code"], "agent_auth_failed");

        // Alice's session is hers: Bob gets 403 on it; her grants apply to her calls.
        let mut as_alice = server.connect(Some(&alice)).await;
        assert_eq!(as_alice.initialize().await, 200);
        let (status, result) = as_alice
            .call(
                "aegis_proxy_request",
                json!({"service": "github", "path": "/echo"}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(result.expect("result")["isError"], false);
        let mut as_bob = server.connect(Some(&bob)).await;
        as_bob.session = as_alice.session.clone();
        let (status, _) = as_bob
            .call(
                "aegis_proxy_request",
                json!({"service": "github", "path": "/echo"}),
            )
            .await;
        assert_eq!(status, 403);
        let mut bob_own = server.connect(Some(&bob)).await;
        assert_eq!(bob_own.initialize().await, 200);
        let (_, result) = bob_own
            .call(
                "aegis_proxy_request",
                json!({"service": "github", "path": "/echo"}),
            )
            .await;
        let result = result.expect("result");
        assert_eq!(result["isError"], true);
        assert!(
            result.to_string().contains("credential_not_granted"),
            "{result}"
        );

        // Two sessions exist: a third initialize is refused.
        let mut third = server.connect(Some(&alice)).await;
        assert_eq!(third.initialize().await, 429);

        // A message above mcp.max_request_bytes.
        let big = "x".repeat(8192);
        let (status, _) = as_alice
            .call(
                "aegis_proxy_request",
                json!({"service": "github", "path": "/echo", "body": big}),
            )
            .await;
        assert_eq!(status, 413);
    });
    let shown = w.ok(&["ledger", "show", "--json", "--limit", "1000"]);
    assert!(!shown.all_output().contains(&alice) && !shown.all_output().contains(&bob));
}
