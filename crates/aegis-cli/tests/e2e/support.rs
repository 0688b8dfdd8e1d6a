//! Shared setup for the binary's end-to-end tests.

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
