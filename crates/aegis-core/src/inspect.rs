//! Outbound inspection (SPEC §14.1–§14.4): finding vault secrets, known key formats and, for
//! `redact` mode, personal data in what an agent is about to send.
//!
//! - `vault_secret`: every form of every vault secret, found by the snapshot's echo-redaction
//!   searcher ([`RedactionSet`]); inspection composes with it instead of building a second one.
//! - Key formats ([`Detector::AwsAccessKey`] … [`Detector::Jwt`]): every occurrence of one of
//!   their prefixes that starts a long enough token run (found by a block scan that costs the
//!   same per byte whatever the text holds), each confirmed on token boundaries by a linear
//!   check of what follows it (character classes and lengths, the PEM label, a JSON decode of a JWT header).
//!   Nothing here backtracks: cost is linear in the input.
//! - PII ([`pii`]): US SSNs, payment cards (network prefix and Luhn), IBANs (country length and
//!   mod 97) and bank account numbers after an `account`/`acct` keyword, masked in place.
//!
//! A [`Finding`] names the detector, the location and the byte offset; it never holds the
//! matched text, so findings can go to the ledger, logs and error bodies. [`Scanner`] scans a
//! body chunk by chunk with findings independent of the chunking. Reading bodies, decoding
//! content codings and deciding what a finding does (record, refuse, mask) is aegis-engine's job.

mod keys;
pub mod pii;
mod stream;

use std::fmt;

use crate::redact::RedactionSet;

pub use stream::Scanner;

/// Findings kept per request: the ledger's `detail.findings` holds at most this many.
pub const MAX_FINDINGS: usize = 20;

/// What found something. The names are public API (ledger, denial messages, webhooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Detector {
    /// A form of a vault secret (SPEC §14.2).
    VaultSecret,
    /// `AKIA`/`ASIA` and 16 upper-case alphanumerics.
    AwsAccessKey,
    /// `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` and 36 alphanumerics, or `github_pat_` and 82.
    GithubToken,
    /// `xox[abpr]-` and at least 10 `[A-Za-z0-9-]`.
    SlackToken,
    /// `sk_live_`/`rk_live_` and at least 24 alphanumerics.
    StripeLiveKey,
    /// `sk-`/`sk-proj-` and at least 32 `[A-Za-z0-9_-]`.
    OpenaiKey,
    /// `sk-ant-` and at least 32 `[A-Za-z0-9_-]`.
    AnthropicKey,
    /// `AIza` and 35 `[A-Za-z0-9_-]`.
    GoogleApiKey,
    /// A `-----BEGIN … PRIVATE KEY-----` line.
    PrivateKeyPem,
    /// Three base64url segments whose first decodes to a JSON object with an `alg` member.
    Jwt,
    /// `ddd-dd-dddd` with a valid area, group and serial.
    UsSsn,
    /// 13–19 digits with a known network prefix and a valid Luhn check.
    PaymentCard,
    /// An IBAN of a known country, of its length, with mod 97 = 1.
    Iban,
    /// 10–17 digits within 32 bytes after `account` or `acct`.
    BankAccount,
    /// A request body in a content coding the gate cannot decode.
    UnscannableEncoding,
}

/// Where in the request a finding is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// The path (without the query string).
    Path,
    /// The query string.
    Query,
    /// The value of the named header (lower-case, as HTTP/2 writes it).
    Header(String),
    /// The (decoded) body.
    Body,
}

/// One thing inspection found: which detector, where, at which byte offset. Never the text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Finding {
    /// The byte offset of the match's first byte within its location.
    pub offset: u64,
    /// What found it.
    pub detector: Detector,
    /// Where it is.
    pub location: Location,
}

/// Whether a detector's findings refuse a request outside `warn` mode (vault secrets and key
/// formats) or are masked in `redact` mode (PII).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorClass {
    /// Vault secrets, key formats and unscannable encodings: refused in `block` and `redact`.
    Secret,
    /// Personal data: masked in `redact` mode, never scanned otherwise.
    Pii,
}

impl Detector {
    /// The snake_case name of SPEC §14.2.
    pub fn name(self) -> &'static str {
        match self {
            Self::VaultSecret => "vault_secret",
            Self::AwsAccessKey => "aws_access_key",
            Self::GithubToken => "github_token",
            Self::SlackToken => "slack_token",
            Self::StripeLiveKey => "stripe_live_key",
            Self::OpenaiKey => "openai_key",
            Self::AnthropicKey => "anthropic_key",
            Self::GoogleApiKey => "google_api_key",
            Self::PrivateKeyPem => "private_key_pem",
            Self::Jwt => "jwt",
            Self::UsSsn => "us_ssn",
            Self::PaymentCard => "payment_card",
            Self::Iban => "iban",
            Self::BankAccount => "bank_account",
            Self::UnscannableEncoding => "unscannable_encoding",
        }
    }

    /// Which class of detector this is.
    pub fn class(self) -> DetectorClass {
        match self {
            Self::UsSsn | Self::PaymentCard | Self::Iban | Self::BankAccount => DetectorClass::Pii,
            _ => DetectorClass::Secret,
        }
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path => f.write_str("path"),
            Self::Query => f.write_str("query"),
            Self::Header(name) => write!(f, "header:{name}"),
            Self::Body => f.write_str("body"),
        }
    }
}

/// Scans a whole value (a path, a query string, a header value, a buffered body) for vault
/// secrets and key formats; the same findings a [`Scanner`] gives for it in any chunking.
/// At most [`MAX_FINDINGS`], the earliest first.
pub fn scan(vault: &RedactionSet, input: &[u8], location: &Location) -> Vec<Finding> {
    let mut findings = stream::Findings::default();
    stream::scan_vault(vault, input, 0, 0, input.len(), &mut findings);
    keys::scan(input, 0, 0, input.len(), &mut findings);
    findings.into_sorted(location)
}

#[cfg(test)]
mod tests;
