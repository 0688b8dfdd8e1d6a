//! The `aegis` binary: parses the command line, loads the configuration, runs one command and
//! turns every failure into one `error:` line (or a JSON object) and the exit code of SPEC.md
//! §4.6. Panics are caught and reported as internal errors without their text.

mod audit;
mod certs;
mod cli;
mod commands;
mod config;
mod config_file;
mod context;
mod demo;
mod engine_runtime;
mod error;
mod logging;
mod master_key;
mod output;
mod policy_files;
mod secret_input;

use std::process::ExitCode;

use clap::Parser as _;
use clap::error::ErrorKind;

use crate::cli::{
    Cli, Command, ConfigCommand, DbCommand, GateArgs, KeyCommand, LedgerCommand, McpCommand,
};
use crate::context::Context;
use crate::error::{CliError, EXIT_USAGE};

fn main() -> ExitCode {
    // The panic text may hold anything; users see one `error:` line. Developers who set
    // RUST_BACKTRACE get the standard report as well.
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let wants_json = std::env::args_os().any(|a| a == "--json");
    let outcome = std::panic::catch_unwind(run).unwrap_or_else(|_| Err(CliError::internal()));
    // Log lines still waiting go out before the final error line and the exit.
    logging::flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            output::error(&err, wants_json);
            ExitCode::from(err.exit)
        }
    }
}

fn run() -> Result<(), CliError> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return handle_clap_error(&err),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|_| CliError::internal())?;
    runtime.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> Result<(), CliError> {
    let json = cli.global.json;
    let mut flags: Vec<(&'static str, String)> = Vec::new();
    if let Some(vault) = &cli.global.vault {
        flags.push(("vault.name", vault.clone()));
    }
    let mut explicit = cli.global.config.clone();
    if let Command::Config(ConfigCommand::Validate { file: Some(file) }) = &cli.command {
        if explicit.is_none() {
            output::warn(
                "--file is the old spelling of --config; use aegis config validate --config <path>",
            );
            explicit = Some(file.clone());
        } else {
            output::warn("--file is the old spelling of --config; using --config");
        }
    }
    match &cli.command {
        Command::Init(args) => {
            let ctx = Context::load_for_init(explicit, flags, json)?;
            commands::init::run(&ctx, args).await
        }
        Command::Vault(command) => {
            let ctx = Context::load(explicit, flags, json)?;
            commands::vault::run(&ctx, command).await
        }
        Command::Agent(command) => {
            let ctx = Context::load(explicit, flags, json)?;
            commands::agent::run(&ctx, command).await
        }
        Command::Webhook(command) => {
            let ctx = Context::load(explicit, flags, json)?;
            commands::webhook::run(&ctx, command).await
        }
        Command::Policy(command) => {
            flags.extend(commands::policy::dir_flag(command));
            let ctx = Context::load(explicit, flags, json)?;
            commands::policy::run(&ctx, command).await
        }
        Command::Config(ConfigCommand::Validate { .. }) => {
            commands::config::validate(explicit, flags, json)
        }
        Command::Config(ConfigCommand::Show) => {
            let ctx = Context::load(explicit, flags, json)?;
            commands::config::show(&ctx)
        }
        Command::Doctor => {
            let ctx = Context::load(explicit, flags, json);
            commands::doctor::run(ctx.as_ref().map_err(Clone::clone), json).await
        }
        Command::Key(KeyCommand::Where) => {
            let ctx = Context::load(explicit, flags, json)?;
            commands::key::run_where(&ctx)
        }
        Command::Db(DbCommand::Backup { output }) => {
            let ctx = Context::load(explicit, flags, json)?;
            commands::db::backup(&ctx, output.as_deref()).await
        }
        Command::Demo { keep } => commands::demo::run(*keep).await,
        Command::Ledger(LedgerCommand::VerifyBundle { file, public_key }) => {
            commands::ledger::verify_bundle(file, public_key.as_deref(), json)
        }
        Command::Ledger(command) => {
            let ctx = Context::load(explicit, flags, json)?;
            match command {
                LedgerCommand::Verify { last } => commands::ledger::verify(&ctx, *last).await,
                LedgerCommand::Show { filter, limit } => {
                    commands::ledger::show(&ctx, filter, *limit).await
                }
                LedgerCommand::Export {
                    filter,
                    output: Some(output),
                    bundle: true,
                    ..
                } => commands::ledger::export_bundle(&ctx, filter, output).await,
                LedgerCommand::Export {
                    filter,
                    format,
                    output,
                    ..
                } => {
                    let format = format
                        .as_deref()
                        .ok_or_else(|| CliError::usage("--format or --bundle is required"))?;
                    commands::ledger::export(&ctx, filter, format, output.as_deref()).await
                }
                LedgerCommand::VerifyBundle { file, public_key } => {
                    commands::ledger::verify_bundle(file, public_key.as_deref(), json)
                }
                LedgerCommand::Archive {
                    before,
                    output,
                    confirm,
                } => commands::ledger::archive(&ctx, before, output, *confirm).await,
                LedgerCommand::Pubkey => commands::ledger::pubkey(&ctx).await,
                LedgerCommand::Stats { filter } => commands::ledger::stats(&ctx, filter).await,
            }
        }
        Command::Gate(args) => {
            flags.extend(gate_flags(args)?);
            let ctx = Context::load(explicit, flags, json)?;
            commands::gate::run(&ctx, args).await
        }
        Command::Mcp(McpCommand::Serve(args)) => {
            flags.extend(commands::mcp::serve_flags(args));
            let ctx = Context::load(explicit, flags, json)?;
            commands::mcp::serve(&ctx, args).await
        }
        Command::Mcp(McpCommand::Config(args)) => {
            let ctx = Context::load(explicit, flags, json)?;
            commands::mcp::config(&ctx, args)
        }
        Command::Db(DbCommand::Restore { input, force }) => {
            let ctx = Context::load(explicit, flags, json)?;
            commands::db::restore(&ctx, input, *force).await
        }
    }
}

/// The `aegis gate` flags that set configuration keys (flags > env > file > defaults).
fn gate_flags(args: &GateArgs) -> Result<Vec<(&'static str, String)>, CliError> {
    let mut flags = Vec::new();
    if let Some(port) = args.port {
        flags.push(("gate.port", port.to_string()));
    }
    if let Some(bind) = &args.bind {
        flags.push(("gate.bind", bind.clone()));
    }
    if let Some(cert) = &args.cert {
        flags.push(("gate.tls.cert", cert.display().to_string()));
    }
    if let Some(key) = &args.key {
        flags.push(("gate.tls.key", key.display().to_string()));
    }
    if args.require_agent_auth {
        flags.push(("gate.require_agent_auth", "true".to_owned()));
    }
    if args.no_agent_auth {
        output::warn("--no-agent-auth is the default now; it is accepted for compatibility");
        flags.push(("gate.require_agent_auth", "false".to_owned()));
    }
    if let Some(dir) = &args.policies_dir {
        flags.push(("gate.policies_dir", dir.display().to_string()));
    }
    if let Some(mode) = &args.policy_mode {
        flags.push(("gate.policy_mode", mode.clone()));
    }
    if args.tls && args.cert.is_none() != args.key.is_none() {
        return Err(CliError::usage("--cert and --key must be given together"));
    }
    Ok(flags)
}

/// Help and version go to standard output with exit 0; every other clap error becomes one
/// `error:` line (plus clap's tip as the `hint:` line) with exit 2.
fn handle_clap_error(err: &clap::Error) -> Result<(), CliError> {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        output::raw(&err.render().to_string());
        return Ok(());
    }
    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return Err(CliError::new("usage", EXIT_USAGE, "a command is required")
            .with_hint("see aegis --help"));
    }
    let rendered = err.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid command line");
    let message = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    let hint = rendered
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("tip: "))
        .map(str::to_owned)
        .unwrap_or_else(|| "see aegis --help".to_owned());
    Err(CliError::new("usage", EXIT_USAGE, message).with_hint(hint))
}
