//! `aegis mcp serve --transport streamable-http` driven by the official MCP Python SDK (PyPI
//! package `mcp`): what a Python agent host would do. The client script is
//! `tests/mcp_sdk/client.py`. When the SDK is not importable, the test installs the pinned
//! version into Cargo's test temp directory with pip (and fails, saying so, if it cannot).

use super::mcp::HttpServer;
use super::support::World;

const SECRET: &str = "sk-mcp-sdk-secret-0123456789abcdef";

#[test]
fn the_official_python_sdk_lists_the_tools_and_calls_through_the_pipeline_over_http() {
    let python_path = sdk_python_path();
    let w = World::new();
    w.add_bearer("gh", "github", SECRET);
    let run = w.ok(&["agent", "add", "--name", "bot", "--json"]);
    let token = run.json()["token"].as_str().expect("token").to_owned();
    w.ok(&["agent", "grant", "--agent", "bot", "--credential", "gh"]);

    let server = HttpServer::start(&w.env);
    let url = format!("http://{}/mcp", server.addr);

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_sdk/client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([url.as_str(), "AEGIS_SDK_TEST_TOKEN"])
        .env("AEGIS_SDK_TEST_TOKEN", &token)
        .env("PYTHONPATH", &python_path)
        .output()
        .expect("run the SDK client");
    drop(server);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SDK client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(
        seen["tools"],
        serde_json::json!(["aegis_health", "aegis_list_services", "aegis_proxy_request"])
    );
    let allowed = &seen["allowed"];
    assert_eq!(allowed["is_error"], false, "{allowed}");
    assert_eq!(allowed["structured"]["status"], 200, "{allowed}");
    let body = allowed["structured"]["body"].as_str().expect("body");
    assert!(body.contains("[REDACTED:gh]"), "{body}");
    assert!(
        !stdout.contains(SECRET),
        "the secret reached the SDK: {stdout}"
    );
    assert!(!stdout.contains(&token), "the token came back: {stdout}");
    let refused = &seen["refused"];
    assert_eq!(refused["is_error"], true, "{refused}");
    let text = refused["text"].as_str().expect("error text");
    let error: serde_json::Value = serde_json::from_str(text).expect("the §10.2 JSON error");
    assert_eq!(error["error"]["code"], "domain_blocked", "{error}");
}

/// The pinned SDK version the test installs when none is importable.
const SDK: &str = "mcp==2.3.0";

/// A `PYTHONPATH` under which `import mcp, httpx2` works: empty when the SDK is installed, else
/// a directory in Cargo's test temp dir that pip installs the pinned SDK into (once).
fn sdk_python_path() -> String {
    let importable = |path: &str| {
        std::process::Command::new("python3")
            .args(["-c", "import mcp, httpx2"])
            .env("PYTHONPATH", path)
            .output()
            .expect("python3 is needed for this test (Debian: apt-get install python3)")
            .status
            .success()
    };
    if importable("") {
        return String::new();
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcp-python-sdk");
    let dir = dir.to_str().expect("utf-8 path").to_owned();
    if !importable(&dir) {
        let install = std::process::Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--target", &dir, SDK])
            .output()
            .expect("run pip");
        assert!(
            install.status.success() && importable(&dir),
            "the MCP Python SDK is missing and pip could not install it: python3 -m pip install '{SDK}' ({})",
            String::from_utf8_lossy(&install.stderr)
        );
    }
    dir
}
