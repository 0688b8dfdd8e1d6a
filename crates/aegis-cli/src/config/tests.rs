//! End-to-end tests of `load`: real files in a temp directory, an environment snapshot, flags.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aegis_core::config::{LogFormat, PolicyMode};
use secrecy::ExposeSecret;

use super::*;

const SECRET: &str = "hunter2-top-secret-value";

struct Setup {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    flags: Vec<(&'static str, String)>,
}

impl Setup {
    fn new(yaml: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if let Some(yaml) = yaml {
            std::fs::write(dir.path().join("aegis.config.yaml"), yaml).unwrap();
        }
        Self {
            dir,
            env: Vec::new(),
            flags: Vec::new(),
        }
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    fn flag(mut self, key: &'static str, value: &str) -> Self {
        self.flags.push((key, value.to_owned()));
        self
    }

    fn request(&self) -> LoadRequest {
        LoadRequest {
            explicit_path: None,
            env: self.env.iter().cloned().collect(),
            flags: self.flags.clone(),
            cwd: self.dir.path().to_path_buf(),
        }
    }

    fn load(&self) -> Result<Loaded, ConfigErrors> {
        load(self.request())
    }

    fn errors(&self) -> Vec<String> {
        match self.load() {
            Ok(_) => panic!("expected configuration errors"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn source<'a>(loaded: &'a Loaded, key: &str) -> &'a Source {
    loaded.source_of(key).unwrap()
}

fn file_source(line: usize) -> Source {
    Source::File {
        path: PathBuf::from("aegis.config.yaml"),
        line,
    }
}

#[test]
fn no_file_gives_defaults_anchored_in_the_working_directory() {
    let setup = Setup::new(None);
    let loaded = setup.load().unwrap();
    assert_eq!(loaded.path, None);
    assert_eq!(loaded.config.gate.port, 3100);
    assert_eq!(loaded.config.vault.data_dir, setup.path().join(".aegis"));
    assert!(
        loaded
            .entries
            .iter()
            .all(|entry| entry.source == Source::Default)
    );
    assert!(loaded.warnings.is_empty());
}

#[test]
fn the_spec_example_file_loads() {
    let setup = Setup::new(Some(
        "vault: { name: prod, data_dir: ./state }\ngate:\n  bind: 127.0.0.1\n  port: 3100\n  \
         tls: { cert: ./tls/gate.pem, key: ./tls/gate-key.pem }\n  require_agent_auth: true\n  \
         policies_dir: ./policies\n  policy_mode: dry-run\n  timeouts: { connect: 5s, \
         response_headers: 120s }\nledger: { durability: strict, checkpoint_interval: 500 }\n\
         rate_limit: { backend: redis }            # URL taken from AEGIS_REDIS_URL\n\
         observability: { log_format: json, log_level: info, metrics: false }\n\
         dashboard: { enabled: true, port: 3200 }\nmcp: { transport: streamable-http, port: 3300 }\n\
         webhooks:\n  - url: https://hooks.example.net/aegis\n    events: [blocked_request, \
         body_inspection, credential_expiry]\n    secret: a-long-random-shared-secret-value\n",
    ))
    .env("AEGIS_REDIS_URL", "redis://:pw@cache:6379");
    let loaded = setup.load().unwrap();
    let config = &loaded.config;
    assert_eq!(config.vault.name, "prod");
    assert_eq!(config.vault.data_dir, setup.path().join("state"));
    assert_eq!(
        config.gate.tls.cert,
        Some(setup.path().join("tls/gate.pem"))
    );
    assert_eq!(config.gate.policy_mode, PolicyMode::DryRun);
    assert_eq!(
        config.gate.timeouts.response_headers,
        Duration::from_secs(120)
    );
    assert_eq!(config.gate.timeouts.idle_body, Duration::from_secs(60));
    assert_eq!(config.observability.log_format, LogFormat::Json);
    assert_eq!(config.webhooks.len(), 1);
    assert_eq!(loaded.path, Some(setup.path().join("aegis.config.yaml")));
    assert_eq!(loaded.shown_path, Some(PathBuf::from("aegis.config.yaml")));
    assert_eq!(source(&loaded, "gate.port"), &file_source(4));
    assert_eq!(source(&loaded, "webhooks[0].secret"), &file_source(18));
    assert_eq!(
        source(&loaded, "rate_limit.redis_url"),
        &Source::Env("AEGIS_REDIS_URL".into())
    );
}

#[test]
fn unknown_key_is_reported_with_line_and_suggestion() {
    let setup = Setup::new(Some("gate:\n  bind: 127.0.0.1\n  prot: 3100\n"));
    let errors = setup.load().unwrap_err();
    assert_eq!(errors.len(), 1);
    let first = errors.first();
    assert_eq!(
        first.to_string(),
        "aegis.config.yaml:3: unknown key gate.prot"
    );
    assert_eq!(first.hint.as_deref(), Some("did you mean gate.port?"));
    assert_eq!(first.line, Some(3));
    assert_eq!(first.key, "gate.prot");
    let cli = first_error(&errors);
    assert_eq!(cli.exit, 2);
    assert_eq!(cli.code, "config_invalid");
    assert_eq!(cli.hint.as_deref(), Some("did you mean gate.port?"));
}

#[test]
fn duplicate_keys_are_errors() {
    let setup = Setup::new(Some("ledger:\n  durability: strict\n  durability: batch\n"));
    assert_eq!(
        setup.errors(),
        ["aegis.config.yaml:3: duplicate key ledger.durability (first given on line 2)"]
    );
}

#[test]
fn wrong_types_are_errors() {
    let setup = Setup::new(Some(
        "gate:\n  port: three\n  watch: maybe\n  bind: localhost\n",
    ));
    assert_eq!(
        setup.errors(),
        [
            "aegis.config.yaml:2: gate.port: expected an integer from 0 to 65535 (0 picks a free port), found 'three'",
            "aegis.config.yaml:3: gate.watch: expected true or false, found 'maybe'",
            "aegis.config.yaml:4: gate.bind: expected an IP address like 127.0.0.1 or ::1, found \
             'localhost'",
        ]
    );
}

#[test]
fn out_of_range_values_are_errors_on_their_line() {
    let setup = Setup::new(Some(
        "vault:\n  kdf:\n    memory_kib: 1024\nstorage: { poll_interval: 5s }\n",
    ));
    assert_eq!(
        setup.errors(),
        [
            "aegis.config.yaml:3: vault.kdf.memory_kib: expected at least 19456, found 1024",
            "aegis.config.yaml:4: storage.poll_interval: expected at most 2s, found 5s",
        ]
    );
}

#[test]
fn every_error_is_reported_in_file_order_then_environment() {
    let setup = Setup::new(Some(
        "gate:\n  prot: 1\n  port: 70000\nvault:\n  kdf: { parallelism: 99 }\nmcp:\n  port: x\n  \
         port: 2\nwebhooks:\n  - url: https://h.example/x\n    events: ['*']\n    secret: short\n",
    ));
    let errors = setup.errors();
    assert_eq!(errors.len(), 6, "{errors:#?}");
    assert!(errors[0].starts_with("aegis.config.yaml:2: unknown key gate.prot"));
    assert!(errors[1].starts_with("aegis.config.yaml:3: gate.port: expected an integer from 0"));
    assert!(errors[2].starts_with("aegis.config.yaml:5: vault.kdf.parallelism"));
    assert!(errors[3].starts_with("aegis.config.yaml:7: mcp.port"));
    assert!(errors[4].starts_with("aegis.config.yaml:8: duplicate key mcp.port"));
    assert!(
        errors[5].starts_with("aegis.config.yaml:12: webhooks[0].secret: expected at least 16")
    );
    // The environment error comes after the file's.
    let setup = setup.env("AEGIS_LOG_FORMAT", "xml");
    let errors = setup.errors();
    assert_eq!(
        errors.last().unwrap(),
        "environment variable AEGIS_LOG_FORMAT (observability.log_format): expected json, \
         pretty or auto, found 'xml'"
    );
}

#[test]
fn environment_beats_file_and_flag_beats_environment() {
    let setup =
        Setup::new(Some("gate:\n  port: 4000\n  bind: 127.0.0.2\n")).env("AEGIS_GATE_PORT", "5000");
    let loaded = setup.load().unwrap();
    assert_eq!(loaded.config.gate.port, 5000);
    assert_eq!(
        source(&loaded, "gate.port"),
        &Source::Env("AEGIS_GATE_PORT".into())
    );

    let setup = setup.flag("gate.port", "6000");
    let loaded = setup.load().unwrap();
    assert_eq!(loaded.config.gate.port, 6000);
    assert_eq!(source(&loaded, "gate.port"), &Source::Flag);
    // Layering is per key: the file's bind is still in force.
    assert_eq!(
        loaded.config.gate.bind,
        "127.0.0.2".parse::<IpAddr>().unwrap()
    );
    assert_eq!(source(&loaded, "gate.bind"), &file_source(3));
}

#[test]
fn a_bad_file_value_is_reported_even_when_overridden() {
    let setup = Setup::new(Some("gate:\n  port: nope\n")).env("AEGIS_GATE_PORT", "5000");
    assert_eq!(setup.errors().len(), 1);
}

#[test]
fn empty_environment_values_count_as_unset() {
    let setup = Setup::new(Some("gate:\n  port: 4000\n"))
        .env("AEGIS_GATE_PORT", "")
        .env("AEGIS_CONFIG", "")
        .env("AEGIS_MASTER_KEY", "");
    let loaded = setup.load().unwrap();
    assert_eq!(loaded.config.gate.port, 4000);
    assert!(loaded.config.vault.master_key.is_none());
}

#[test]
fn legacy_environment_names_warn_and_lose_to_new_ones() {
    let setup = Setup::new(None)
        .env("AEGIS_PORT", "4100")
        .env("AEGIS_METRICS", "no")
        .env("AEGIS_DATA_DIR", "legacy-data");
    let loaded = setup.load().unwrap();
    assert_eq!(loaded.config.gate.port, 4100);
    assert!(!loaded.config.observability.metrics);
    assert_eq!(
        loaded.config.vault.data_dir,
        setup.path().join("legacy-data")
    );
    assert_eq!(
        source(&loaded, "gate.port"),
        &Source::Env("AEGIS_PORT".into())
    );
    assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w == "environment variable AEGIS_PORT is a legacy name; use AEGIS_GATE_PORT")
    );
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("AEGIS_DATA_DIR") && w.contains("AEGIS_HOME"))
    );

    let setup = setup
        .env("AEGIS_GATE_PORT", "4200")
        .env("AEGIS_HOME", "/srv/aegis");
    let loaded = setup.load().unwrap();
    assert_eq!(loaded.config.gate.port, 4200);
    assert_eq!(loaded.config.vault.data_dir, PathBuf::from("/srv/aegis"));
    assert_eq!(
        loaded.warnings.len(),
        3,
        "legacy names still warn when shadowed"
    );
}

#[test]
fn legacy_keys_warn_and_lose_to_new_spellings() {
    let setup = Setup::new(Some(
        "gate:\n  max_body_size: 1024\n  request_timeout: 1500\n  timeouts:\n    idle_body: 9s\n  \
         max_connections_per_agent: 7\nobservability:\n  dashboard: { enabled: true, port: 4300 }\n",
    ));
    let loaded = setup.load().unwrap();
    let config = &loaded.config;
    assert_eq!(config.gate.max_body_bytes, 1024);
    assert_eq!(
        config.gate.timeouts.response_headers,
        Duration::from_millis(1500)
    );
    assert_eq!(
        config.gate.timeouts.idle_body,
        Duration::from_secs(9),
        "new spelling wins"
    );
    assert_eq!(config.gate.max_concurrent_per_agent, 7);
    assert!(config.dashboard.enabled);
    assert_eq!(config.dashboard.port, 4300);
    assert_eq!(source(&loaded, "gate.timeouts.idle_body"), &file_source(5));
    assert_eq!(
        source(&loaded, "gate.timeouts.response_headers"),
        &file_source(3)
    );
    assert_eq!(loaded.warnings.len(), 5, "{:?}", loaded.warnings);
    assert_eq!(
        loaded.warnings[0],
        "aegis.config.yaml:2: gate.max_body_size is a legacy key; use gate.max_body_bytes"
    );
}

#[test]
fn a_bad_legacy_value_is_reported_once() {
    let setup = Setup::new(Some("gate:\n  request_timeout: 15s\n"));
    assert_eq!(
        setup.errors(),
        [
            "aegis.config.yaml:2: gate.request_timeout: expected an integer number of milliseconds, \
          found '15s'"
        ]
    );
}

#[test]
fn policy_mode_off_is_accepted() {
    let setup = Setup::new(Some("gate: { policy_mode: off }\n"));
    assert_eq!(
        setup.load().unwrap().config.gate.policy_mode,
        PolicyMode::Off
    );
}

#[test]
fn the_legacy_yml_name_is_found() {
    let setup = Setup::new(None);
    std::fs::write(
        setup.path().join("aegis.config.yml"),
        "gate: { port: 4400 }\n",
    )
    .unwrap();
    let loaded = setup.load().unwrap();
    assert_eq!(loaded.config.gate.port, 4400);
    assert_eq!(loaded.shown_path, Some(PathBuf::from("aegis.config.yml")));
    assert_eq!(loaded.warnings.len(), 1);
}

#[test]
fn explicit_missing_file_is_an_error() {
    let setup = Setup::new(None);
    let mut request = setup.request();
    request.explicit_path = Some(PathBuf::from("nowhere.yaml"));
    let errors = load(request).unwrap_err();
    assert_eq!(
        errors.first().to_string(),
        "config file nowhere.yaml does not exist"
    );
    assert_eq!(first_error(&errors).exit, 2);
}

#[test]
fn relative_paths_resolve_against_the_file_or_the_working_directory() {
    let setup = Setup::new(None);
    let sub = setup.path().join("etc");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("a.yaml"), "gate:\n  policies_dir: ./policies\n").unwrap();
    let mut request = setup.request();
    request.explicit_path = Some(PathBuf::from("etc/a.yaml"));
    request
        .env
        .insert("AEGIS_GATE_UPSTREAM_CA_FILE".into(), "ca.pem".into());
    let loaded = load(request).unwrap();
    assert_eq!(loaded.config.gate.policies_dir, Some(sub.join("policies")));
    assert_eq!(
        loaded.config.gate.upstream_ca_file,
        Some(setup.path().join("ca.pem"))
    );
    // The data directory defaults to `.aegis` beside the file.
    assert_eq!(loaded.config.vault.data_dir, sub.join(".aegis"));
    assert_eq!(
        source(&loaded, "gate.policies_dir"),
        &Source::File {
            path: PathBuf::from("etc/a.yaml"),
            line: 2
        }
    );
}

#[test]
fn a_bad_environment_boolean_names_the_variable() {
    let setup = Setup::new(None).env("AEGIS_REQUIRE_AGENT_AUTH", "sure");
    let errors = setup.load().unwrap_err();
    let first = errors.first();
    assert_eq!(
        first.to_string(),
        "environment variable AEGIS_REQUIRE_AGENT_AUTH (gate.require_agent_auth): expected true, \
         false, 1, 0, yes or no, found 'sure'"
    );
    assert_eq!(first.file, None);
}

#[test]
fn environment_booleans_accept_every_spelling() {
    for (text, value) in [
        ("1", true),
        ("yes", true),
        ("TRUE", true),
        ("0", false),
        ("no", false),
    ] {
        let loaded = Setup::new(None)
            .env("AEGIS_GATE_WATCH", text)
            .load()
            .unwrap();
        assert_eq!(loaded.config.gate.watch, value, "{text}");
    }
}

#[test]
fn secrets_are_masked_in_show_and_absent_from_debug_and_errors() {
    let key = "A".repeat(43);
    let setup = Setup::new(Some(&format!(
        "vault:\n  master_key: {key}\nstorage:\n  url: postgres://aegis:{SECRET}@db/aegis\n\
         webhooks:\n  - url: https://h.example/x\n    events: ['*']\n    secret: {SECRET}\n"
    )))
    .env("AEGIS_REDIS_URL", &format!("rediss://:{SECRET}@cache:6380"));
    let loaded = setup.load().unwrap();
    assert_eq!(
        loaded
            .config
            .vault
            .master_key
            .as_ref()
            .map(|k| k.expose_secret().to_owned()),
        Some(key.clone())
    );
    let text = show_text(&loaded);
    let json = show_json(&loaded).to_string();
    let debug = format!("{loaded:?}");
    for output in [&text, &json, &debug] {
        assert!(!output.contains(SECRET), "{output}");
        assert!(!output.contains(&key), "{output}");
    }
    assert!(
        text.contains("vault.master_key = ********  (file:aegis.config.yaml:2)"),
        "{text}"
    );
    assert!(
        text.contains(
            "storage.url = postgres://aegis:********@db/aegis  (file:aegis.config.yaml:4)"
        )
    );
    assert!(
        text.contains(
            "rate_limit.redis_url = rediss://:********@cache:6380  (env:AEGIS_REDIS_URL)"
        )
    );
    assert!(
        text.contains("webhooks[0].secret = ********  (file:aegis.config.yaml:8)"),
        "{text}"
    );
}

#[test]
fn load_request_debug_hides_values() {
    let setup = Setup::new(None)
        .env("AEGIS_MASTER_KEY", SECRET)
        .flag("vault.name", SECRET);
    let debug = format!("{:?}", setup.request());
    assert!(debug.contains("AEGIS_MASTER_KEY"), "{debug}");
    assert!(!debug.contains(SECRET), "{debug}");
}

#[test]
fn an_invalid_secret_is_never_echoed() {
    let setup = Setup::new(Some(&format!(
        "vault:\n  master_key: {SECRET}\nwebhooks:\n  - url: https://h.example/x\n    events: ['*']\n    \
         secret: hunter2\n"
    )))
    .env("AEGIS_MASTER_KEY", SECRET)
    .env("AEGIS_STORAGE_URL", &format!("mysql://u:{SECRET}@db"));
    let errors = setup.load().unwrap_err();
    let text = validate_text(&Err(errors.clone()));
    let json = validate_json(&Err(errors.clone())).to_string();
    let debug = format!("{errors:?}");
    for output in [&text, &json, &debug] {
        assert!(!output.contains(SECRET), "{output}");
        assert!(!output.contains("hunter2"), "{output}");
    }
    assert!(
        text.contains(
            "error: environment variable AEGIS_MASTER_KEY (vault.master_key): expected 43 base64url"
        ),
        "{text}"
    );
    assert!(
        text.contains("environment variable AEGIS_STORAGE_URL (storage.url)"),
        "{text}"
    );
    assert!(
        text.contains("aegis.config.yaml:6: webhooks[0].secret"),
        "{text}"
    );
}

#[test]
fn show_lists_every_key_with_its_source() {
    let setup = Setup::new(Some("gate:\n  port: 4000\n"))
        .env("AEGIS_LOG_LEVEL", "debug")
        .flag("vault.name", "ops");
    let loaded = setup.load().unwrap();
    let text = show_text(&loaded);
    assert!(
        text.contains("gate.port = 4000  (file:aegis.config.yaml:2)"),
        "{text}"
    );
    assert!(text.contains("observability.log_level = debug  (env:AEGIS_LOG_LEVEL)"));
    assert!(text.contains("vault.name = ops  (flag)"));
    assert!(text.contains("gate.max_body_bytes = 100MiB  (default)"));
    assert!(text.contains("gate.tls.cert = (unset)  (default)"));
    assert_eq!(text.lines().count(), schema::KEYS.len() + 1);

    let json = show_json(&loaded);
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), schema::KEYS.len() + 1);
    let port = rows.iter().find(|row| row["key"] == "gate.port").unwrap();
    assert_eq!(
        port,
        &serde_json::json!({"key": "gate.port", "value": "4000", "source": "file:aegis.config.yaml:2"})
    );
    let cert = rows
        .iter()
        .find(|row| row["key"] == "gate.tls.cert")
        .unwrap();
    assert_eq!(cert["value"], serde_json::Value::Null);
}

#[test]
fn validate_reports_ok_with_the_path_or_every_error() {
    let setup = Setup::new(Some("gate:\n  port: 4000\n"));
    let outcome = setup.load();
    assert_eq!(validate_text(&outcome), "ok aegis.config.yaml");
    assert_eq!(validate_json(&outcome)["ok"], true);

    let setup = Setup::new(Some("gate:\n  prot: 1\n  bind: x\n"));
    let outcome = setup.load();
    assert_eq!(
        validate_text(&outcome),
        "error: aegis.config.yaml:2: unknown key gate.prot\nhint: did you mean gate.port?\n\
         error: aegis.config.yaml:3: gate.bind: expected an IP address like 127.0.0.1 or ::1, \
         found 'x'"
    );
    assert!(outcome.is_err());
    let json = validate_json(&outcome);
    assert_eq!(json["errors"][0]["line"], 2);
    assert_eq!(json["errors"][0]["key"], "gate.prot");
    assert_eq!(json["errors"][0]["hint"], "did you mean gate.port?");
}

#[test]
fn invalid_yaml_is_one_located_error() {
    let setup = Setup::new(Some("gate:\n  port: [1, 2\n"));
    let errors = setup.errors();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("aegis.config.yaml:"), "{errors:?}");
    assert!(errors[0].contains("invalid YAML"), "{errors:?}");
}

#[test]
fn tls_halves_and_port_clashes_are_reported() {
    let setup = Setup::new(Some(
        "gate:\n  tls: { cert: c.pem }\ndashboard:\n  enabled: true\n  port: 3100\n",
    ));
    assert_eq!(
        setup.errors(),
        [
            "aegis.config.yaml:2: gate.tls.cert: needs gate.tls.key as well: certificate and key \
             are given together",
            "aegis.config.yaml:5: dashboard.port: must differ from gate.port (3100): both \
             listeners are opened by the same process",
        ]
    );
}

#[test]
fn redis_without_a_url_points_at_the_backend_line() {
    let setup = Setup::new(Some("rate_limit:\n  backend: redis\n"));
    assert_eq!(
        setup.errors(),
        [
            "aegis.config.yaml:2: rate_limit.backend: redis needs rate_limit.redis_url (or AEGIS_REDIS_URL)"
        ]
    );
}

#[test]
fn list_flags_and_unknown_flag_keys() {
    let loaded = Setup::new(None)
        .flag("gate.allowed_hosts", "a.example,b.example")
        .load()
        .unwrap();
    assert_eq!(loaded.config.gate.allowed_hosts, ["a.example", "b.example"]);
    let errors = Setup::new(None).flag("gate.prot", "1").errors();
    assert_eq!(
        errors,
        ["unknown key gate.prot given by a command-line flag"]
    );
}

proptest::proptest! {
    #[test]
    fn secret_env_values_never_reach_output_or_errors(secret in "[A-Za-z0-9]{12,44}") {
        let setup = Setup::new(None)
            .env("AEGIS_MASTER_KEY", &secret)
            .env("AEGIS_STORAGE_URL", &format!("postgres://u:{secret}@db/a"))
            .env("AEGIS_REDIS_URL", &format!("redis{secret}"));
        let outcome = setup.load();
        let mut seen = vec![validate_text(&outcome), validate_json(&outcome).to_string()];
        match &outcome {
            Ok(loaded) => {
                seen.push(show_text(loaded));
                seen.push(show_json(loaded).to_string());
                seen.push(format!("{loaded:?}"));
            }
            Err(errors) => seen.push(format!("{errors:?}")),
        }
        for text in seen {
            proptest::prop_assert!(!text.contains(&secret), "{}", text);
        }
    }
}
