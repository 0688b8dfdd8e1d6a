//! Test-only helpers shared by the end-to-end suites: a private working directory per test, the
//! real `aegis` binary run inside it with a clean environment, waiting on conditions with a
//! deadline, a throwaway CA ([`TestCa`]) and a recording HTTPS upstream ([`HttpsUpstream`]).
//! Never a dependency of production crates.

pub mod ca;
pub mod upstream;
pub mod webhook_receiver;

pub use ca::{IssuedCert, TestCa};
pub use upstream::{HttpsUpstream, PatternBody, RecordedRequest};
pub use webhook_receiver::{Answer, Delivery, WebhookReceiver};

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// KDF settings written into test configs: the cheapest Argon2id parameters Aegis accepts, so a
/// command that derives keys costs milliseconds instead of the production ~100 ms.
pub const FAST_KDF_YAML: &str = "vault:\n  kdf:\n    memory_kib: 19456\n    iterations: 2\n";

/// One test's world: a temp directory used as the working directory and data home.
pub struct TestEnv {
    dir: tempfile::TempDir,
    bin: PathBuf,
    env: Vec<(String, String)>,
}

impl TestEnv {
    /// A fresh directory with a config file that keeps key derivation cheap.
    ///
    /// `bin` is the binary under test, e.g. `env!("CARGO_BIN_EXE_aegis")`.
    ///
    /// # Panics
    /// When the temp directory or config file cannot be created.
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        let env = Self::bare(bin);
        std::fs::write(env.path().join("aegis.config.yaml"), FAST_KDF_YAML)
            .expect("write test config");
        env
    }

    /// A fresh, empty directory (no config file).
    ///
    /// # Panics
    /// When the temp directory cannot be created.
    pub fn bare(bin: impl Into<PathBuf>) -> Self {
        Self {
            dir: tempfile::tempdir().expect("create temp dir"),
            bin: bin.into(),
            env: Vec::new(),
        }
    }

    /// The working directory of every command run by this environment.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The default data directory (`.aegis` beside the config file).
    pub fn data_dir(&self) -> PathBuf {
        self.path().join(".aegis")
    }

    /// Sets an environment variable for every later command.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// The value of a variable set with [`TestEnv::set_env`].
    pub fn env_value(&self, key: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// Removes an environment variable set with [`TestEnv::set_env`].
    pub fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// The binary as an `assert_cmd` command in this directory, with no inherited `AEGIS_*`
    /// variables and no colour.
    pub fn cmd<I, S>(&self, args: I) -> assert_cmd::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        assert_cmd::Command::from_std(self.std_cmd(args))
    }

    /// The same command as a plain `std::process::Command`, for tests that manage pipes or
    /// signals themselves.
    pub fn std_cmd<I, S>(&self, args: I) -> std::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.current_dir(self.path()).args(args).env("NO_COLOR", "1");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AEGIS_") {
                cmd.env_remove(key);
            }
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Runs the binary with `stdin` and returns its output whatever the exit code.
    pub fn run<I, S>(&self, args: I, stdin: &str) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let output = self
            .cmd(args)
            .write_stdin(stdin)
            .output()
            .expect("run aegis");
        Run::from(output)
    }

    /// `aegis init --json`; returns the master key it printed and exports it for later commands.
    ///
    /// # Panics
    /// When init fails or prints no key.
    pub fn init(&mut self) -> String {
        let run = self.run(["init", "--json"], "");
        assert_eq!(run.code, 0, "init failed: {}", run.stderr);
        let body: serde_json::Value = serde_json::from_str(&run.stdout).expect("init prints JSON");
        let key = body["master_key"]
            .as_str()
            .expect("master_key field")
            .to_owned();
        self.set_env("AEGIS_MASTER_KEY", &key);
        key
    }
}

/// The result of one run of the binary.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output as text.
    pub stdout: String,
    /// Standard error as text.
    pub stderr: String,
}

impl Run {
    /// Parses standard output as JSON.
    ///
    /// # Panics
    /// When standard output is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Both streams, for "never printed" assertions.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Polls `probe` until it yields a value, failing the test after `deadline`.
///
/// # Panics
/// When the deadline passes; the message names what was awaited.
pub fn wait_for<T>(what: &str, deadline: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            start.elapsed() < deadline,
            "gave up after {deadline:?} waiting for {what}"
        );
        std::thread::park_timeout(Duration::from_millis(10)); // poll interval, not a guess
    }
}
