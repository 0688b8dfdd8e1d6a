//! The command line as clap sees it: global options, commands, flags and value parsers.
//!
//! Values are parsed here into domain types with aegis-core's parsers, so a malformed value is a
//! usage error naming its flag before any command runs.

use std::path::PathBuf;

use aegis_core::auth::{AuthType, InjectHeaderName, QueryParam};
use aegis_core::credential::{InspectionMode, TtlDays};
use aegis_core::names::{AgentName, CredentialName, ServiceName};
use aegis_core::rate::{ParsedRate, Rate};
use aegis_core::scopes::Scopes;
use clap::{Args, Parser, Subcommand};

/// `aegis`: a credential-isolation gateway for AI agents.
#[derive(Debug, Parser)]
#[command(name = "aegis", version, about, disable_help_subcommand = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options accepted by every command, before or after it.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Configuration file (default ./aegis.config.yaml)
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// Vault to operate on (default `default`)
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) vault: Option<String>,
    /// Machine-readable output
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the data directory, a vault and its master key
    Init(InitArgs),
    /// Manage credentials
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Check and show the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check the installation and report problems
    Doctor,
    /// Master key information
    #[command(subcommand)]
    Key(KeyCommand),
    /// Back up and restore the databases
    #[command(subcommand)]
    Db(DbCommand),
    /// Run the gate: agents call http://127.0.0.1:3100/{service}/path
    Gate(GateArgs),
    /// Read and verify the audit ledger
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Manage agents, their tokens and their grants
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Check, list and try out policy files
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Serve MCP to AI hosts, or print a host's MCP configuration
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Send signed event notifications to HTTPS endpoints
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// See Aegis work end to end in a temporary directory (loopback only)
    Demo {
        /// Keep the temporary directory and print its path
        #[arg(long)]
        keep: bool,
    },
}

/// `aegis webhook …` (SPEC.md §18.4).
#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Store a webhook; prints its id (and a generated secret, once)
    Add(WebhookAddArgs),
    /// List webhooks with their last result (never secrets)
    List,
    /// Remove a stored webhook
    Remove(WebhookIdArgs),
    /// Send a test event now and print the status and latency
    Test(WebhookIdArgs),
    /// List credentials expired or expiring soon and queue credential_expiry events
    CheckExpiry(WebhookExpiryArgs),
    /// Check a received delivery's signature (for receivers)
    VerifySignature(WebhookVerifyArgs),
}

/// `aegis webhook add`.
#[derive(Debug, Args)]
pub(crate) struct WebhookAddArgs {
    /// Where to post: https://…, or http:// to a loopback host with --allow-http
    #[arg(long, short = 'u', value_name = "URL", value_parser = parse_webhook_url)]
    pub(crate) url: aegis_core::config::WebhookUrl,
    /// Comma-separated event names, or * for all
    #[arg(long, short = 'e', value_name = "LIST|*", value_parser = parse_webhook_events)]
    pub(crate) events: aegis_core::config::WebhookEvents,
    /// Signing secret, or - (or no value) for standard input; omitted: one is generated and
    /// printed once
    #[arg(long, value_name = "SECRET|-", num_args = 0..=1, default_missing_value = "-")]
    pub(crate) secret: Option<String>,
    /// Allow http:// (only to localhost or a loopback address)
    #[arg(long)]
    pub(crate) allow_http: bool,
    /// Free text shown by webhook list
    #[arg(long, value_name = "TEXT")]
    pub(crate) label: Option<String>,
}

/// `aegis webhook remove` and `aegis webhook test`.
#[derive(Debug, Args)]
pub(crate) struct WebhookIdArgs {
    /// Webhook id (wh_… or cfg-<n>)
    #[arg(long, value_parser = parse_webhook_id)]
    pub(crate) id: aegis_core::webhook::WebhookId,
}

/// `aegis webhook check-expiry`.
#[derive(Debug, Args)]
pub(crate) struct WebhookExpiryArgs {
    /// Window in days (default 7)
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub(crate) days: Option<u32>,
    /// Compatibility: the old spelling of --days
    #[arg(long, hide = true, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub(crate) threshold: Option<u32>,
}

/// `aegis webhook verify-signature`.
#[derive(Debug, Args)]
pub(crate) struct WebhookVerifyArgs {
    /// The webhook's secret, or - (or no value) for standard input
    #[arg(long, value_name = "SECRET|-", num_args = 0..=1, default_missing_value = "-")]
    pub(crate) secret: String,
    /// The X-Aegis-Timestamp header
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub(crate) timestamp: String,
    /// The X-Aegis-Signature header (sha256=…)
    #[arg(long, value_name = "SIGNATURE")]
    pub(crate) signature: String,
    /// File holding the raw body (default: standard input)
    #[arg(long, value_name = "PATH")]
    pub(crate) body_file: Option<PathBuf>,
}

fn parse_webhook_url(text: &str) -> Result<aegis_core::config::WebhookUrl, String> {
    aegis_core::config::WebhookUrl::parse(text)
}

fn parse_webhook_events(text: &str) -> Result<aegis_core::config::WebhookEvents, String> {
    aegis_core::webhook::parse_events_text(text)
}

fn parse_webhook_id(text: &str) -> Result<aegis_core::webhook::WebhookId, String> {
    aegis_core::webhook::WebhookId::parse(text)
}

/// `aegis gate`.
#[derive(Debug, Args)]
pub(crate) struct GateArgs {
    /// Port to listen on (default 3100; 0 picks a free one)
    #[arg(long, short = 'p')]
    pub(crate) port: Option<u16>,
    /// Address to bind (default 127.0.0.1)
    #[arg(long)]
    pub(crate) bind: Option<String>,
    /// Serve TLS (needs --cert and --key, or gate.tls in the config)
    #[arg(long)]
    pub(crate) tls: bool,
    /// PEM certificate chain for TLS
    #[arg(long, value_name = "PEM")]
    pub(crate) cert: Option<PathBuf>,
    /// PEM private key for TLS
    #[arg(long, value_name = "PEM")]
    pub(crate) key: Option<PathBuf>,
    /// Refuse requests without an agent token
    #[arg(long, visible_alias = "agent-auth", conflicts_with = "no_agent_auth")]
    pub(crate) require_agent_auth: bool,
    /// Compatibility: agent auth off (the default)
    #[arg(long, hide = true)]
    pub(crate) no_agent_auth: bool,
    /// Directory of policy files
    #[arg(long, value_name = "DIR")]
    pub(crate) policies_dir: Option<PathBuf>,
    /// enforce or dry-run
    #[arg(long, value_name = "MODE")]
    pub(crate) policy_mode: Option<String>,
}

/// `aegis mcp …`.
#[derive(Debug, Subcommand)]
pub(crate) enum McpCommand {
    /// Run the MCP server for the active vault (stdio, or streamable HTTP on loopback)
    Serve(McpServeArgs),
    /// Print the MCP configuration fragment for an AI host (never a key or token)
    Config(McpConfigArgs),
}

/// `aegis mcp serve`.
#[derive(Debug, Args)]
pub(crate) struct McpServeArgs {
    /// stdio (default) or streamable-http
    #[arg(long, value_name = "TRANSPORT")]
    pub(crate) transport: Option<String>,
    /// Port of the streamable HTTP transport (default 3300; 0 picks a free one)
    #[arg(long, short = 'p')]
    pub(crate) port: Option<u16>,
    /// Agent token (visible in process lists: prefer AEGIS_AGENT_TOKEN or --agent-token-file)
    #[arg(long, value_name = "TOKEN", value_parser = parse_secret_token)]
    pub(crate) agent_token: Option<secrecy::SecretString>,
    /// File holding the agent token (mode 0600)
    #[arg(long, value_name = "PATH")]
    pub(crate) agent_token_file: Option<PathBuf>,
}

/// Which AI host `aegis mcp config` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum McpHost {
    /// Claude Desktop (`mcpServers`)
    Claude,
    /// Cursor (`mcpServers`)
    Cursor,
    /// VS Code (`servers`)
    Vscode,
}

/// `aegis mcp config`.
#[derive(Debug, Args)]
pub(crate) struct McpConfigArgs {
    /// The AI host
    #[arg(value_enum)]
    pub(crate) host: McpHost,
    /// Agent the host acts as (names the server entry and the token placeholder)
    #[arg(long, value_name = "NAME", value_parser = parse_agent_name)]
    pub(crate) agent: Option<AgentName>,
    /// File holding the agent token; the host gets its path, never its content
    #[arg(long, value_name = "PATH")]
    pub(crate) token_file: Option<PathBuf>,
    /// stdio (default) or streamable-http
    #[arg(long, value_name = "TRANSPORT")]
    pub(crate) transport: Option<String>,
}

/// `aegis init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Store the master key in the config file (plain text next to the data)
    #[arg(long)]
    pub(crate) write_secrets: bool,
    /// Move an existing vault aside and start over
    #[arg(long)]
    pub(crate) force: bool,
    /// Also write a self-signed localhost certificate for the gate (compatibility)
    #[arg(long)]
    pub(crate) generate_cert: bool,
}

/// `aegis vault …`.
#[derive(Debug, Subcommand)]
pub(crate) enum VaultCommand {
    /// Add a credential
    Add(AddArgs),
    /// List credentials (never their secrets)
    List,
    /// Remove a credential
    Remove(RemoveArgs),
    /// Replace a credential's secret
    Rotate(RotateArgs),
    /// Change a credential's metadata
    Update(UpdateArgs),
}

/// `aegis agent …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Register an agent and print its token once
    Add(AgentAddArgs),
    /// List agents and their grants (never tokens)
    List,
    /// Remove an agent and its grants
    Remove(AgentNameArgs),
    /// Replace an agent's token; the old one stops working
    Regenerate(AgentTokenArgs),
    /// Let an agent use a credential
    Grant(GrantArgs),
    /// Take a credential away from an agent
    Revoke(GrantArgs),
    /// Set or clear an agent's rate limit across all its credentials
    SetRateLimit(AgentRateArgs),
}

/// `aegis agent add`.
#[derive(Debug, Args)]
pub(crate) struct AgentAddArgs {
    #[command(flatten)]
    pub(crate) token: AgentTokenArgs,
    /// Requests the agent may make across all credentials, e.g. 100/min
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub(crate) rate_limit: Option<ParsedRate>,
}

/// `aegis agent set-rate-limit`.
#[derive(Debug, Args)]
pub(crate) struct AgentRateArgs {
    /// Agent name
    #[arg(long, value_parser = parse_agent_name)]
    pub(crate) agent: AgentName,
    /// A rate such as 100/min, or `none` to remove the limit
    #[arg(long, value_name = "RATE|none", value_parser = parse_optional_rate)]
    pub(crate) limit: Setting<ParsedRate>,
}

/// `aegis agent add` and `aegis agent regenerate`.
#[derive(Debug, Args)]
pub(crate) struct AgentTokenArgs {
    /// Agent name
    #[arg(long, value_parser = parse_agent_name)]
    pub(crate) name: AgentName,
    /// Write the token to this new 0600 file instead of printing it
    #[arg(long, value_name = "PATH")]
    pub(crate) token_file: Option<PathBuf>,
}

/// `aegis agent remove`.
#[derive(Debug, Args)]
pub(crate) struct AgentNameArgs {
    /// Agent name
    #[arg(long, value_parser = parse_agent_name)]
    pub(crate) name: AgentName,
}

/// `aegis agent grant` and `aegis agent revoke`.
#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    /// Agent name
    #[arg(long, value_parser = parse_agent_name)]
    pub(crate) agent: AgentName,
    /// Credential name
    #[arg(long, value_parser = parse_credential_name)]
    pub(crate) credential: CredentialName,
}

/// `aegis policy …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check every policy file and report every problem
    Validate(PolicyDirArgs),
    /// Per file: agent, rules, services, validity; and registered agents without a policy
    List(PolicyDirArgs),
    /// Decide one request with the policy step only (not grants, scopes, domains or limits)
    Test(PolicyTestArgs),
    /// Re-decide recorded requests with the current policy files and list what would change
    Replay(PolicyReplayArgs),
}

/// Where the policy files are: `--policies-dir`, or `gate.policies_dir` from the config.
#[derive(Debug, Args)]
pub(crate) struct PolicyDirArgs {
    /// Directory of policy files (default gate.policies_dir)
    #[arg(long, value_name = "DIR")]
    pub(crate) policies_dir: Option<PathBuf>,
    /// Compatibility: the directory as a positional argument
    #[arg(value_name = "DIR", hide = true)]
    pub(crate) legacy_dir: Option<PathBuf>,
}

/// `aegis policy test`.
#[derive(Debug, Args)]
pub(crate) struct PolicyTestArgs {
    /// Agent name
    #[arg(long, short = 'a', value_parser = parse_agent_name)]
    pub(crate) agent: AgentName,
    /// Service (the first path segment at the gate)
    #[arg(long, short = 's', value_parser = parse_service)]
    pub(crate) service: ServiceName,
    /// HTTP method, e.g. GET (upper-cased)
    #[arg(long, short = 'm', value_parser = parse_method)]
    pub(crate) method: String,
    /// Forwarded path after the service segment, e.g. /rest/api/3/search; a query is ignored
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) path: String,
    /// When: RFC 3339 (default now)
    #[arg(long, value_name = "TIME")]
    pub(crate) at: Option<String>,
    #[command(flatten)]
    pub(crate) dir: PolicyDirArgs,
}

/// `aegis policy replay`.
#[derive(Debug, Args)]
pub(crate) struct PolicyReplayArgs {
    /// Replay requests from: RFC 3339, YYYY-MM-DD or an age like 24h
    #[arg(long, value_name = "TIME")]
    pub(crate) since: String,
    /// Replay requests until: RFC 3339, YYYY-MM-DD or an age like 1h (default now)
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// Only requests recorded with this agent (refusals before agent authentication have none)
    #[arg(long, short = 'a', value_parser = parse_agent_name)]
    pub(crate) agent: Option<AgentName>,
    #[command(flatten)]
    pub(crate) dir: PolicyDirArgs,
}

/// `aegis vault add`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// Credential name
    #[arg(long, short = 'n', value_parser = parse_credential_name)]
    pub(crate) name: CredentialName,
    /// Routing name: the first path segment at the gate
    #[arg(long, short = 's', value_parser = parse_service)]
    pub(crate) service: ServiceName,
    /// Comma-separated allowlist entries
    #[arg(long, short = 'd', value_name = "LIST")]
    pub(crate) domains: String,
    /// The secret; `-` or absent reads standard input
    #[arg(long, value_name = "VALUE")]
    pub(crate) secret: Option<String>,
    /// How the secret is injected
    #[arg(long, short = 'a', value_parser = parse_auth_type, default_value = "bearer")]
    pub(crate) auth_type: AuthType,
    /// Header carrying the secret (header auth)
    #[arg(long, value_parser = parse_header_name)]
    pub(crate) header_name: Option<InjectHeaderName>,
    /// Query parameter carrying the secret (query auth; default `key`)
    #[arg(long, value_parser = parse_query_param)]
    pub(crate) query_param: Option<QueryParam>,
    /// Methods allowed: read, write or *
    #[arg(long, value_parser = parse_scopes, default_value = "*")]
    pub(crate) scopes: Scopes,
    /// Days until the credential expires
    #[arg(long, value_parser = parse_ttl, value_name = "DAYS", allow_hyphen_values = true)]
    pub(crate) ttl: Option<TtlDays>,
    /// Rate limit shared by every agent, e.g. 100/min
    #[arg(long, value_parser = parse_rate, value_name = "RATE", allow_hyphen_values = true)]
    pub(crate) rate_limit: Option<ParsedRate>,
    /// Outbound body inspection: off, warn, block or redact
    #[arg(long, value_parser = parse_inspection, default_value = "block")]
    pub(crate) body_inspection: InspectionMode,
    /// Permit http:// allowlist entries
    #[arg(long)]
    pub(crate) allow_http: bool,
    /// Relay upstream Set-Cookie headers to the agent
    #[arg(long)]
    pub(crate) pass_cookies: bool,
}

/// `aegis vault remove`.
#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    /// Credential name
    #[arg(long, short = 'n', value_parser = parse_credential_name)]
    pub(crate) name: CredentialName,
}

/// `aegis vault rotate`.
#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// Credential name
    #[arg(long, short = 'n', value_parser = parse_credential_name)]
    pub(crate) name: CredentialName,
    /// The new secret; `-` or absent reads standard input
    #[arg(long, value_name = "VALUE", conflicts_with = "rollback")]
    pub(crate) secret: Option<String>,
    /// Keep the old secret recognised for this long, e.g. 24h
    #[arg(long, value_parser = parse_grace, value_name = "DURATION")]
    pub(crate) grace: Option<std::time::Duration>,
    /// Compatibility: grace period in hours
    #[arg(long, value_name = "HOURS", hide = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) grace_period: Option<u32>,
    /// New expiry in days from now
    #[arg(long, value_parser = parse_ttl, value_name = "DAYS", allow_hyphen_values = true)]
    pub(crate) ttl: Option<TtlDays>,
    /// Swap the previous secret back in (during a grace period)
    #[arg(long)]
    pub(crate) rollback: bool,
}

/// `aegis vault update`.
#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// Credential name
    #[arg(long, short = 'n', value_parser = parse_credential_name)]
    pub(crate) name: CredentialName,
    /// New comma-separated allowlist
    #[arg(long, short = 'd', value_name = "LIST")]
    pub(crate) domains: Option<String>,
    /// New auth type
    #[arg(long, short = 'a', value_parser = parse_auth_type)]
    pub(crate) auth_type: Option<AuthType>,
    /// New header name (header auth)
    #[arg(long, value_parser = parse_header_name)]
    pub(crate) header_name: Option<InjectHeaderName>,
    /// New query parameter (query auth)
    #[arg(long, value_parser = parse_query_param)]
    pub(crate) query_param: Option<QueryParam>,
    /// New scopes
    #[arg(long, value_parser = parse_scopes)]
    pub(crate) scopes: Option<Scopes>,
    /// Days from now until expiry, or `none`
    #[arg(long, value_parser = parse_optional_ttl, value_name = "DAYS|none", allow_hyphen_values = true)]
    pub(crate) ttl: Option<Setting<TtlDays>>,
    /// New rate limit, or `none`
    #[arg(long, value_parser = parse_optional_rate, value_name = "RATE|none", allow_hyphen_values = true)]
    pub(crate) rate_limit: Option<Setting<ParsedRate>>,
    /// New inspection mode
    #[arg(long, value_parser = parse_inspection)]
    pub(crate) body_inspection: Option<InspectionMode>,
    /// Permit http:// entries
    #[arg(long, conflicts_with = "no_allow_http")]
    pub(crate) allow_http: bool,
    /// Forbid http:// entries
    #[arg(long)]
    pub(crate) no_allow_http: bool,
    /// Relay upstream Set-Cookie headers
    #[arg(long, conflicts_with = "no_pass_cookies")]
    pub(crate) pass_cookies: bool,
    /// Strip upstream Set-Cookie headers
    #[arg(long)]
    pub(crate) no_pass_cookies: bool,
}

/// A value an update either sets or clears (`none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Setting<T> {
    /// `none`: remove the value.
    Clear,
    /// A new value.
    Set(T),
}

impl<T> Setting<T> {
    /// The new value, or `None` when cleared.
    pub(crate) fn as_option(&self) -> Option<&T> {
        match self {
            Self::Clear => None,
            Self::Set(value) => Some(value),
        }
    }
}

/// `aegis config …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the configuration file and environment; report every error
    Validate {
        /// Compatibility spelling of --config
        #[arg(long, value_name = "PATH", hide = true)]
        file: Option<PathBuf>,
    },
    /// Show every setting, its value and where it came from (secrets masked)
    Show,
}

/// `aegis ledger …`.
#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Recompute the hash chain and check it ends at the recorded head
    Verify {
        /// Only the last N entries, starting from the stored prev_hash of the first of them
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        last: Option<u64>,
    },
    /// The newest entries, oldest first
    Show {
        #[command(flatten)]
        filter: LedgerFilterArgs,
        /// How many entries (at most 10,000)
        #[arg(long, short = 'n', default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
    },
    /// Write entries as CSV, JSON or JSON lines, or as a signed bundle
    Export {
        #[command(flatten)]
        filter: LedgerFilterArgs,
        /// csv, json or jsonl
        #[arg(
            long,
            short = 'f',
            value_parser = ["csv", "json", "jsonl"],
            required_unless_present = "bundle",
            conflicts_with = "bundle"
        )]
        format: Option<String>,
        /// File to write (0600, atomically); standard output when absent
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Write a signed bundle that verifies offline (needs the master key and -o)
        #[arg(long, requires = "output")]
        bundle: bool,
    },
    /// Check a signed bundle offline; needs no vault, config or master key
    VerifyBundle {
        /// The bundle file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The vault's key as `aegis ledger pubkey` prints it (ed25519:…), or a file holding it
        #[arg(long, value_name = "KEY_OR_FILE")]
        public_key: Option<String>,
    },
    /// Move the entries older than --before into a signed bundle and delete them from the vault
    Archive {
        /// Archive entries older than this: RFC 3339, YYYY-MM-DD or an age like 90d
        #[arg(long, value_name = "TIME")]
        before: String,
        /// Bundle file to create (0600); never overwritten
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
        /// Delete the archived entries without asking
        #[arg(long)]
        confirm: bool,
    },
    /// Print the vault's ledger signing public key and its key id
    Pubkey,
    /// Totals, outcomes by code, requests per service, latency percentiles
    Stats {
        #[command(flatten)]
        filter: LedgerFilterArgs,
    },
}

/// Filters shared by `ledger show` and `ledger export`.
#[derive(Debug, Args)]
pub(crate) struct LedgerFilterArgs {
    /// Only this service
    #[arg(long, short = 's')]
    pub(crate) service: Option<String>,
    /// Only this agent
    #[arg(long)]
    pub(crate) agent: Option<String>,
    /// Only refused requests
    #[arg(long)]
    pub(crate) blocked: bool,
    /// Only system events
    #[arg(long)]
    pub(crate) system: bool,
    /// Not before: RFC 3339, YYYY-MM-DD or an age like 24h
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Not after: RFC 3339, YYYY-MM-DD or an age like 24h
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
}

/// `aegis key …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Show which master-key source is in use (never the key)
    Where,
}

/// `aegis db …`.
#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Write a consistent copy of every database to a new directory
    Backup {
        /// Directory to create (default ./aegis-backup-<time>)
        #[arg(long, short = 'o', visible_alias = "out", value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Replace the databases with a backup (the replaced files go to archive/)
    Restore {
        /// Backup directory written by `aegis db backup`
        #[arg(long, short = 'i', value_name = "DIR")]
        input: PathBuf,
        /// Replace existing databases
        #[arg(long)]
        force: bool,
    },
}

fn parse_credential_name(text: &str) -> Result<CredentialName, String> {
    CredentialName::parse(text).map_err(|e| e.to_string())
}

fn parse_agent_name(text: &str) -> Result<AgentName, String> {
    AgentName::parse(text).map_err(|e| e.to_string())
}

/// A token given on the command line, held as a secret from the moment it is parsed (so `Debug`
/// of the parsed arguments shows `[REDACTED]`).
fn parse_secret_token(text: &str) -> Result<secrecy::SecretString, String> {
    Ok(secrecy::SecretString::from(text))
}

fn parse_service(text: &str) -> Result<ServiceName, String> {
    ServiceName::parse(text).map_err(|e| e.to_string())
}

/// An HTTP method token, upper-cased (policies compare methods exactly, in upper case).
fn parse_method(text: &str) -> Result<String, String> {
    let is_token = !text.is_empty()
        && text.len() <= 32
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if is_token {
        Ok(text.to_ascii_uppercase())
    } else {
        Err("expected an HTTP method name such as GET or POST".to_owned())
    }
}

fn parse_auth_type(text: &str) -> Result<AuthType, String> {
    AuthType::parse(text).map_err(|e| e.to_string())
}

fn parse_header_name(text: &str) -> Result<InjectHeaderName, String> {
    InjectHeaderName::parse(text).map_err(|e| e.to_string())
}

fn parse_query_param(text: &str) -> Result<QueryParam, String> {
    QueryParam::parse(text).map_err(|e| e.to_string())
}

fn parse_scopes(text: &str) -> Result<Scopes, String> {
    Scopes::parse(text).map_err(|e| e.to_string())
}

fn parse_ttl(text: &str) -> Result<TtlDays, String> {
    TtlDays::parse(text).map_err(|e| e.to_string())
}

fn parse_optional_ttl(text: &str) -> Result<Setting<TtlDays>, String> {
    if text == "none" {
        Ok(Setting::Clear)
    } else {
        parse_ttl(text).map(Setting::Set)
    }
}

fn parse_rate(text: &str) -> Result<ParsedRate, String> {
    Rate::parse(text).map_err(|e| e.to_string())
}

fn parse_optional_rate(text: &str) -> Result<Setting<ParsedRate>, String> {
    if text == "none" {
        Ok(Setting::Clear)
    } else {
        parse_rate(text).map(Setting::Set)
    }
}

fn parse_inspection(text: &str) -> Result<InspectionMode, String> {
    InspectionMode::parse(text)
}

fn parse_grace(text: &str) -> Result<std::time::Duration, String> {
    let duration = aegis_core::units::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("the grace period must be longer than zero".to_owned());
    }
    Ok(duration)
}
