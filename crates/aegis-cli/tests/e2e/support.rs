//! Shared setup for the binary's end-to-end tests.

use aegis_test_support::{HttpsUpstream, TestCa};
pub(crate) use aegis_test_support::{Run, TestEnv};

/// A test environment for the `aegis` binary built by this package.
pub(crate) fn env() -> TestEnv {
    TestEnv::new(env!("CARGO_BIN_EXE_aegis"))
}

/// A test environment without a config file.
pub(crate) fn bare_env() -> TestEnv {
    TestEnv::bare(env!("CARGO_BIN_EXE_aegis"))
}

/// An initialised environment with the master key exported.
pub(crate) fn initialised() -> TestEnv {
    let mut env = env();
    env.init();
    env
}

/// Asserts a failure: the exit code, exactly one `error:` line naming `needle`, at most one
/// `hint:` line after it, nothing else on standard error, nothing on standard output.
pub(crate) fn assert_error(run: &Run, code: i32, needle: &str) {
    assert_eq!(run.code, code, "exit code; stderr: {}", run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    assert!(
        !lines.is_empty() && lines[0].starts_with("error: "),
        "first stderr line must be `error:`: {:?}",
        run.stderr
    );
    assert!(
        lines[0].contains(needle),
        "error line {:?} should mention {needle:?}",
        lines[0]
    );
    assert!(lines.len() <= 2, "at most error + hint: {:?}", run.stderr);
    if lines.len() == 2 {
        assert!(
            lines[1].starts_with("hint: "),
            "second line must be a hint: {:?}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains("panicked"),
        "panic text leaked: {}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "nothing on stdout for a failure: {:?}",
        run.stdout
    );
}

/// Adds a bearer credential `name` for `service` on `domains` with `secret` on stdin.
pub(crate) fn add(env: &TestEnv, name: &str, service: &str, domains: &str, secret: &str) -> Run {
    let run = env.run(
        [
            "vault",
            "add",
            "--name",
            name,
            "--service",
            service,
            "--domains",
            domains,
        ],
        &format!("{secret}\n"),
    );
    assert_eq!(run.code, 0, "vault add failed: {}", run.stderr);
    run
}

/// A running `aegis gate` child process; SIGTERM and reaped when dropped.
pub(crate) struct Gate {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub(crate) base: String,
    /// Lines the gate printed on standard output after the listening line.
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Gate {
    /// Starts `aegis gate --port 0 <extra>` and waits for its listening line.
    pub(crate) fn start(env: &TestEnv, extra: &[&str]) -> Gate {
        use std::io::BufRead as _;
        let mut args = vec!["gate", "--port", "0"];
        args.extend_from_slice(extra);
        let mut child = env
            .std_cmd(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn aegis gate");
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out_pipe = child.stdout.take().expect("stdout");
        let err_pipe = child.stderr.take().expect("stderr");
        let out_lines = stdout.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out_pipe)
                .lines()
                .map_while(Result::ok)
            {
                out_lines.lock().expect("lock").push(line);
            }
        });
        let err_lines = stderr.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err_pipe)
                .lines()
                .map_while(Result::ok)
            {
                err_lines.lock().expect("lock").push(line);
            }
        });
        let base = aegis_test_support::wait_for(
            "the gate's listening line",
            std::time::Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "gate exited early ({status}): {:?}",
                        stderr.lock().expect("lock")
                    );
                }
                stdout.lock().expect("lock").iter().find_map(|l| {
                    l.strip_prefix("aegis gate listening on ")
                        .map(|rest| rest.split(' ').next().unwrap_or("").to_owned())
                })
            },
        );
        Gate {
            child,
            base,
            stdout,
            stderr,
        }
    }

    /// The gate's port.
    pub(crate) fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in base URL")
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal named `name` (`TERM`, `HUP`, …) with kill(1).
    pub(crate) fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Kills the process with SIGKILL (no drain, no flush) and reaps it.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Waits for the process to exit and returns its exit code.
    pub(crate) fn wait_exit(&mut self, deadline: std::time::Duration) -> i32 {
        let child = &mut self.child;
        aegis_test_support::wait_for("the gate to exit", deadline, || {
            child.try_wait().ok().flatten()
        })
        .code()
        .unwrap_or(-1)
    }

    /// Everything printed so far on both streams.
    pub(crate) fn output(&self) -> String {
        format!(
            "{}\n{}",
            self.stdout.lock().expect("lock").join("\n"),
            self.stderr.lock().expect("lock").join("\n")
        )
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What curl saw.
pub(crate) struct Curl {
    pub(crate) status: u16,
    pub(crate) headers: String,
    pub(crate) body: Vec<u8>,
}

impl Curl {
    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// A response header's value (case-insensitive name).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Runs curl with `args` and returns status, headers and body.
pub(crate) fn curl(args: &[&str]) -> Curl {
    let dir = tempfile::tempdir().expect("tempdir");
    let headers_file = dir.path().join("headers");
    let body_file = dir.path().join("body");
    let output = std::process::Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-o"])
        .arg(&body_file)
        .arg("-D")
        .arg(&headers_file)
        .args(["-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let status = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    Curl {
        status,
        headers: std::fs::read_to_string(&headers_file).unwrap_or_default(),
        body: std::fs::read(&body_file).unwrap_or_default(),
    }
}

/// Runs SQL statements directly on the vault database, as someone with file access but without
/// the master key could (python3's sqlite3 module: an independent SQLite client).
pub(crate) fn sql(env: &TestEnv, statements: &str) {
    let db = env.data_dir().join("vaults/default/vault.db");
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
            db.to_str().expect("utf-8"),
            statements,
        ])
        .status()
        .expect("python3");
    assert!(status.success(), "{statements}");
}

/// One test's world: data dir, CA, runtime serving the upstream.
pub(crate) struct World {
    pub(crate) env: TestEnv,
    pub(crate) ca: TestCa,
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) upstream: HttpsUpstream,
}

impl World {
    /// An initialised data dir trusting a fresh test CA, and an HTTPS upstream signed by it.
    pub(crate) fn new() -> World {
        let mut env = env();
        env.init();
        let ca = TestCa::new();
        let ca_file = ca.write_ca_pem(env.path());
        env.set_env("AEGIS_UPSTREAM_CA", ca_file.to_str().expect("utf-8"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let upstream = runtime.block_on(HttpsUpstream::start(&ca));
        World {
            env,
            ca,
            runtime,
            upstream,
        }
    }

    /// `aegis vault add` with `extra`, the secret on standard input; must succeed.
    pub(crate) fn add(&self, extra: &[&str], secret: &str) {
        let mut args = vec!["vault", "add"];
        args.extend_from_slice(extra);
        let run = self.env.run(&args, &format!("{secret}\n"));
        assert_eq!(run.code, 0, "vault add failed: {}", run.stderr);
    }

    /// A bearer credential `name` for `service` on the upstream's host.
    pub(crate) fn add_bearer(&self, name: &str, service: &str, secret: &str) {
        let host = self.upstream.host();
        self.add(
            &["--name", name, "--service", service, "--domains", &host],
            secret,
        );
    }

    /// Appends YAML to the test's config file (before the gate starts).
    pub(crate) fn append_config(&self, yaml: &str) {
        let config = self.env.path().join("aegis.config.yaml");
        let mut text = std::fs::read_to_string(&config).expect("config");
        text.push_str(yaml);
        std::fs::write(&config, text).expect("config");
    }

    /// Starts `aegis gate --port 0 <extra>`.
    pub(crate) fn gate(&self, extra: &[&str]) -> Gate {
        Gate::start(&self.env, extra)
    }

    /// Runs an `aegis` command that must succeed.
    pub(crate) fn ok(&self, args: &[&str]) -> Run {
        let run = self.env.run(args, "");
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        run
    }
}
