//! `aegis demo`: the whole path end to end on the embedded default, in a temporary directory
//! and on loopback only. It runs the real `aegis` commands (init, vault add, gate) as a user
//! would, puts a local HTTPS echo API behind the gate, acts as an agent, and shows for each step
//! what the agent sent, what the upstream received (the secret masked) and what came back.

use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::demo::agent;
use crate::demo::upstream::EchoUpstream;
use crate::error::CliError;
use crate::output;

/// Runs `aegis demo [--keep]`.
pub(crate) async fn run(keep: bool) -> Result<(), CliError> {
    let dir = tempfile::Builder::new()
        .prefix("aegis-demo-")
        .tempdir()
        .map_err(|e| CliError::io("create", Path::new("a temporary directory"), &e))?;
    let root = dir.path().to_path_buf();
    output::line(format!(
        "Aegis demo: everything lives in {} and on 127.0.0.1 only.",
        root.display()
    ));
    output::line("");
    let result = scenario(&root).await;
    if keep {
        let kept = dir.keep();
        output::line("");
        output::line(format!(
            "Kept {} — try: cd {} && aegis vault list",
            kept.display(),
            kept.display()
        ));
    }
    result
}

async fn scenario(root: &Path) -> Result<(), CliError> {
    let upstream = EchoUpstream::start(root).await?;
    let port = upstream.addr.port();
    output::line(format!(
        "upstream  a local HTTPS API on localhost:{port} (throwaway CA)"
    ));

    let exe = std::env::current_exe()
        .map_err(|e| CliError::io("find", Path::new("the aegis binary"), &e))?;
    let run = |args: &[&str], stdin: &str, key: Option<&str>| -> Result<String, CliError> {
        let mut cmd = aegis_command(&exe, root, key, &upstream.ca_file);
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CliError::io("run", &exe, &e))?;
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| CliError::io("run", &exe, &e))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(CliError::failure(
                "internal",
                format!(
                    "demo step `aegis {}` failed: {}",
                    args.join(" "),
                    stderr.lines().next().unwrap_or("")
                ),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };

    let init = run(&["init", "--json"], "", None)?;
    let key = serde_json::from_str::<serde_json::Value>(&init)
        .ok()
        .and_then(|v| v["master_key"].as_str().map(str::to_owned))
        .ok_or_else(|| CliError::failure("internal", "demo step `aegis init` printed no key"))?;
    output::line(
        "vault     aegis init: a new vault in ./.aegis, master key kept in this process only",
    );

    let mut secret_bytes = [0u8; 12];
    aegis_core::crypto::random_bytes(&mut secret_bytes)?;
    let secret = format!("demo-sk-{}", hex::encode(secret_bytes));
    let domain = format!("localhost:{port}");
    run(
        &[
            "vault",
            "add",
            "--name",
            "demo",
            "--service",
            "demo",
            "--domains",
            &domain,
        ],
        &format!("{secret}\n"),
        Some(&key),
    )?;
    output::line(format!(
        "credential demo: bearer {}, allowed only for {domain}",
        mask(&secret)
    ));

    let (mut gate, gate_addr) = start_gate(&exe, root, &key, &upstream.ca_file)?;
    output::line(format!("gate      aegis gate on http://{gate_addr}"));
    output::line("");

    let outcome = steps(gate_addr, &upstream, &secret).await;
    stop_gate(&mut gate);
    outcome?;

    // The audit ledger: every step above, and the vault changes before it, hash-chained.
    output::line("ledger    aegis ledger show");
    let shown = run(&["ledger", "show", "--limit", "20"], "", None)?;
    for line in shown.lines() {
        output::line(format!("   {line}"));
    }
    let verified = run(&["ledger", "verify"], "", None)?;
    output::line(format!(
        "ledger    aegis ledger verify: {}",
        verified.trim()
    ));
    if shown.contains(secret.as_str()) {
        return Err(CliError::failure("demo", "the ledger shows the secret"));
    }
    output::line("");
    output::line("All steps behaved as specified.");
    Ok(())
}

async fn steps(gate: SocketAddr, upstream: &EchoUpstream, secret: &str) -> Result<(), CliError> {
    let mut failures = Vec::new();

    // 1. An allowed request: the agent holds no key, the upstream receives the real one.
    let before = upstream.seen().len();
    let answer = agent::send(gate, "GET", "/demo/v1/hello", &[], "").await?;
    let seen = upstream.seen();
    let received = seen.get(before);
    step(
        "1. allowed request",
        "GET /demo/v1/hello (no credential)",
        &received.map_or_else(|| "nothing".to_owned(), |s| describe(s, secret)),
        &answer,
        answer.status == 200
            && received.and_then(|s| s.authorization.as_deref())
                == Some(&*format!("Bearer {secret}")),
        "allowed: credential injected at the boundary",
        &mut failures,
    );

    // 2. A host that is not on the allowlist: refused before anything leaves.
    let before = upstream.seen().len();
    let answer = agent::send(
        gate,
        "GET",
        "/demo/v1/hello",
        &[("X-Target-Host", "evil.example")],
        "",
    )
    .await?;
    let leaked = upstream.seen().len() != before;
    step(
        "2. request naming a host off the allowlist",
        "GET /demo/v1/hello with X-Target-Host: evil.example",
        if leaked {
            "a request (this is a failure)"
        } else {
            "nothing"
        },
        &answer,
        answer.status == 403 && answer.body.contains("domain_blocked") && !leaked,
        "blocked: domain_blocked",
        &mut failures,
    );

    // 3. A body that carries the secret (an agent that found it somewhere else): refused
    // before anything leaves.
    let before = upstream.seen().len();
    let leak = format!("{{\"note\":\"{secret}\"}}");
    let answer = agent::send(
        gate,
        "POST",
        "/demo/v1/notes",
        &[("Content-Type", "application/json")],
        &leak,
    )
    .await?;
    let leaked = upstream.seen().len() != before;
    step(
        "3. request whose body carries the secret",
        &format!("POST /demo/v1/notes {{\"note\":\"{}\"}}", mask(secret)),
        if leaked {
            "a request (this is a failure)"
        } else {
            "nothing"
        },
        &answer,
        answer.status == 403 && answer.body.contains("body_blocked") && !leaked,
        "blocked: body_blocked (vault_secret in body)",
        &mut failures,
    );

    // 4. An upstream that echoes the credential: the agent gets it redacted.
    let answer = agent::send(gate, "GET", "/demo/echo-auth", &[], "").await?;
    let seen = upstream.seen();
    step(
        "4. upstream echoes the secret back",
        "GET /demo/echo-auth",
        &seen
            .last()
            .map_or_else(|| "nothing".to_owned(), |s| describe(s, secret)),
        &answer,
        answer.status == 200
            && !answer.body.contains(secret)
            && answer.body.contains("[REDACTED:demo]"),
        "allowed: the echoed secret was redacted before reaching the agent",
        &mut failures,
    );

    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::failure(
            "demo",
            format!(
                "demo step(s) did not behave as specified: {}",
                failures.join(", ")
            ),
        ))
    }
}

#[allow(clippy::too_many_arguments)]
fn step(
    title: &str,
    sent: &str,
    received: &str,
    answer: &agent::Answer,
    ok: bool,
    decision: &str,
    failures: &mut Vec<String>,
) {
    output::line(title);
    output::line(format!("   agent sent         {sent}"));
    output::line(format!("   upstream received  {received}"));
    let body: String = answer.body.chars().take(160).collect();
    output::line(format!("   agent got back     {} {body}", answer.status));
    output::line(format!(
        "   decision           {}",
        if ok {
            decision.to_owned()
        } else {
            format!("UNEXPECTED ({decision} was expected)")
        }
    ));
    output::line("");
    if !ok {
        failures.push(title.to_owned());
    }
}

fn describe(seen: &crate::demo::upstream::Seen, secret: &str) -> String {
    let auth = match seen.authorization.as_deref() {
        Some(value) => value.replace(secret, &mask(secret)),
        None => "no Authorization".to_owned(),
    };
    format!("{} {}  Authorization: {auth}", seen.method, seen.target)
}

/// `de…mo (24 bytes)`: enough to recognise the value, never enough to use it.
fn mask(secret: &str) -> String {
    let head: String = secret.chars().take(2).collect();
    let tail: String = secret
        .chars()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head}…{tail} ({} bytes)", secret.len())
}

fn aegis_command(exe: &Path, root: &Path, key: Option<&str>, ca_file: &Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.current_dir(root);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AEGIS_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("AEGIS_UPSTREAM_CA", ca_file).env("NO_COLOR", "1");
    if let Some(key) = key {
        cmd.env("AEGIS_MASTER_KEY", key);
    }
    cmd
}

fn start_gate(
    exe: &Path,
    root: &Path,
    key: &str,
    ca_file: &Path,
) -> Result<(Child, SocketAddr), CliError> {
    let mut child = aegis_command(exe, root, Some(key), ca_file)
        .args(["gate", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| CliError::io("run", exe, &e))?;
    let stdout = child.stdout.take().ok_or_else(CliError::internal)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.strip_prefix("aegis gate listening on http://") {
                let _ = tx.send(rest.split(' ').next().unwrap_or("").to_owned());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .ok()
        .and_then(|text| text.parse::<SocketAddr>().ok());
    match addr {
        Some(addr) => Ok((child, addr)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(CliError::failure(
                "internal",
                "demo step `aegis gate` did not start",
            ))
        }
    }
}

fn stop_gate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
