//! Request bodies for the false-positive and true-positive corpora: chat completions, Anthropic
//! messages, GitHub issues and comments, Slack messages, form posts, multipart uploads and plain
//! text, written for these tests. A small deterministic generator varies the prose, ids, hashes
//! and attachments, so the bodies are realistic and the same on every run.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::Rng;

/// At least 200 bodies that must produce no finding at all.
pub(super) fn false_positives() -> Vec<String> {
    let mut rng = Rng(0xC0FFEE);
    let mut bodies = Vec::new();
    for i in 0..26 {
        let prose = |rng: &mut Rng| {
            let a = PROSE[(rng.next() % PROSE.len() as u64) as usize];
            let b = PROSE[(rng.next() % PROSE.len() as u64) as usize];
            format!("{a} {b}")
        };
        let p1 = prose(&mut rng);
        let p2 = prose(&mut rng);
        let uuid = uuid(&mut rng);
        let sha = rng.chars(64, b"0123456789abcdef");
        let commit = rng.chars(40, b"0123456789abcdef");
        let model = MODELS[i % MODELS.len()];
        let issue = 100 + rng.next() % 9000;
        let ts = format!(
            "17{:08}.{:06}",
            rng.next() % 100_000_000,
            rng.next() % 1_000_000
        );
        let image = STANDARD.encode(rng.bytes(300 + i * 17));
        let code = CODE[i % CODE.len()];
        bodies.push(format!(
            r#"{{"model":"{model}","messages":[{{"role":"system","content":"You are a careful assistant."}},{{"role":"user","content":"{p1}"}}],"temperature":0.{i},"user":"{uuid}"}}"#
        ));
        bodies.push(format!(
            r#"{{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{{"role":"user","content":[{{"type":"text","text":"{p2} What is in this picture?"}},{{"type":"image","source":{{"type":"base64","media_type":"image/png","data":"{image}"}}}}]}}]}}"#
        ));
        bodies.push(format!(
            r#"{{"title":"Token refresh fails after password reset (#{issue})","body":"{p1}\n\nSteps:\n1. Rotate the API key\n2. Call `/v1/session`\n\nCommit {commit}, artifact sha256 {sha}.\n\n```\n{code}\n```","labels":["bug","auth"]}}"#
        ));
        bodies.push(format!(
            r#"{{"body":"Thanks! I reproduced it on {commit:.12}. {p2} Request id {uuid}."}}"#
        ));
        bodies.push(format!(
            r#"{{"channel":"C0{}","text":"{p1}","thread_ts":"{ts}","blocks":[{{"type":"section","text":{{"type":"mrkdwn","text":"*Deploy* `{commit:.7}` finished: {p2}"}}}}]}}"#,
            rng.chars(8, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        ));
        bodies.push(format!(
            "grant_type=authorization_code&code={}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&state={}&note={}",
            rng.chars(20, b"abcdefghijklmnopqrstuvwxyz0123456789"),
            uuid,
            p1.replace(' ', "+").replace(',', "%2C")
        ));
        bodies.push(format!(
            "--boundary{i}\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\n{p2}\r\n--boundary{i}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"chart.png\"\r\nContent-Type: image/png\r\n\r\n{image}\r\n--boundary{i}--\r\n"
        ));
        bodies.push(format!("{p1}\n\n{p2}\n\nsha256:{sha}\n"));
        if i % 2 == 0 {
            bodies.push(format!(
                r#"{{"input":"{p2}","model":"text-embedding-3-small","encoding_format":"float","metadata":{{"trace_id":"{uuid}","build":"{commit}"}}}}"#
            ));
        }
    }
    bodies
}

/// Bodies with one `{}` where a key or secret goes; each must then produce exactly one finding.
pub(super) fn templates() -> Vec<String> {
    let shapes = [
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"here is my key: {} please use it"}]}"#,
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"{}"}]}"#,
        r#"{"messages":[{"role":"user","content":"config:\nOPENAI_API_KEY={}\nDEBUG=1"}]}"#,
        r#"{"title":"Build broken","body":"CI log shows `{}` in the environment"}"#,
        r#"{"body":"Use this token:\n\n{}\n\nthanks"}"#,
        r#"{"channel":"C0123ABC","text":"creds for staging: {}"}"#,
        r#"{"channel":"C0123ABC","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"`{}`"}}]}"#,
        "token={}&channel=general",
        "note=see+attached&secret={}",
        "--b\r\nContent-Disposition: form-data; name=\"env\"\r\n\r\nKEY={}\r\n--b--\r\n",
        "{}",
        "export AWS_ACCESS_KEY_ID={}\n",
        "Authorization: Bearer {}",
        r#"{"input":"summarise: the deploy key is {}."}"#,
        r#"{"tool_calls":[{"function":{"name":"set_env","arguments":"{\"value\":\"{}\"}"}}]}"#,
        r#"[{"op":"add","path":"/secrets/0","value":"{}"}]"#,
        "<note>{}</note>",
        "key: '{}'\n",
        r#"{"a":{"b":{"c":["x","{}","y"]}}}"#,
        "line1\nline2 {}\nline3",
        r#"{"prompt":"(({}))"}"#,
        r#"{"text":"{} is the value"}"#,
    ];
    shapes.iter().map(|s| (*s).to_owned()).collect()
}

fn uuid(rng: &mut Rng) -> String {
    let hex = rng.chars(32, b"0123456789abcdef");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

impl Rng {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() & 0xFF) as u8).collect()
    }
}

const MODELS: &[&str] = &["gpt-4o", "gpt-4o-mini", "o3-mini", "gpt-4.1"];

const PROSE: &[&str] = &[
    "Can you explain how the password reset token is generated and when it expires?",
    "Our secret sauce is the caching layer, not the model.",
    "The key insight is that the token bucket refills every second.",
    "Please review the API key rotation policy and suggest improvements.",
    "I forgot my password again; where do I reset it?",
    "Store the secret in the vault, never in the repository.",
    "The access token expired at 10:42 and the refresh token was revoked.",
    "Which key should I press to open the command palette?",
    "What is the difference between a public key and a private key in TLS?",
    "Tokenization splits text into tokens; the model sees about 4 characters per token.",
    "The primary key of the users table is a UUID.",
    "Set the environment variable OPENAI_API_KEY before running the script.",
    "Summarise this thread about the SSO secret rotation in three bullet points.",
    "The build failed with exit code 137 after 14 minutes.",
    "Translate into French: the keys are on the kitchen table.",
    "Write a haiku about a forgotten password.",
    "Our account manager will reach out next week about the renewal.",
    "The invoice total was 1,250.00 EUR, due on 2025-03-31.",
    "Call me at +1 415 555 0100 if the deploy breaks again.",
    "See https://docs.example.com/auth/tokens#refresh for the token lifecycle.",
    "Version 2.14.3 fixes the race in the session store.",
    "Use sk- followed by your key; never paste the key itself here.",
    "The JWT header says alg HS256, but the server expects RS256.",
    "Rotate the AWS keys quarterly and audit the IAM policies.",
    "Our GitHub tokens are fine-grained and expire after 30 days.",
    "Meeting notes: discussed the secret scanning false positives, action items below.",
    "The customer account was created on 2024-11-02 and upgraded in March.",
    "Benchmark: 512 MiB/s on one core, 3.2x the previous release.",
    "Error: key 'timeout' not found in section [gate] of the config file.",
    "Ask-key, task-list and risk-score are just identifiers in our schema.",
];

const CODE: &[&str] = &[
    "client = OpenAI(api_key=os.environ[\\\"OPENAI_API_KEY\\\"])",
    "const token = process.env.GITHUB_TOKEN ?? ''",
    "if password == confirm { save(user) }",
    "let secret = vault.get(\\\"db\\\").await?;",
    "curl -H \\\"Authorization: Bearer $TOKEN\\\" https://api.example.com/v1/me",
    "-----BEGIN CERTIFICATE-----",
];
