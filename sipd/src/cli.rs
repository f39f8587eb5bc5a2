//! The command line (`clap`): `sipd api list`, `sipd route-test`, and the server commands.
//! This is the binary's edge: errors get `anyhow` context here and become an exit status.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kemi_runtime::engine::EngineKind;
use kemi_runtime::table::Enabled;

use crate::api::{self, ApiFormat};
use crate::endpoint::Endpoint;
use crate::{exports, route_test};

/// sipd: a SIP proxy routed by Lua through Kamailio's KEMI `KSR` API.
#[derive(Debug, Parser)]
#[command(name = "sipd", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect the KSR API.
    Api {
        /// What to show.
        #[command(subcommand)]
        command: ApiCommand,
    },
    /// Run the routing script on one SIP message, without a network, and print the outcome as JSON.
    RouteTest(RouteTestArgs),
}

/// `sipd api ...`.
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// List every export: module, name, return type, parameter types.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: ApiFormat,
    },
}

/// `sipd route-test ...`.
#[derive(Debug, clap::Args)]
pub struct RouteTestArgs {
    /// The routing script.
    #[arg(long)]
    pub script: PathBuf,
    /// The engine (`lua`); by default taken from the script's extension.
    #[arg(long)]
    pub engine: Option<String>,
    /// The SIP message to route (raw bytes, CRLF line ends).
    #[arg(long)]
    pub msg: PathBuf,
    /// Where the message comes from, as proto:ip:port (default udp:127.0.0.1:5060).
    #[arg(long)]
    pub src: Option<Endpoint>,
}

/// Pick the engine from an explicit name, else from the script's extension.
pub fn engine_kind(name: Option<&str>, script: &std::path::Path) -> Result<EngineKind> {
    match name {
        Some(n) => EngineKind::from_name(n).with_context(|| format!("unknown engine `{n}` (known: lua)")),
        None => EngineKind::from_path(script).with_context(|| {
            format!("cannot tell the engine from `{}`: use --engine lua", script.display())
        }),
    }
}

/// Parse the command line and run it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sipd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Api { command: ApiCommand::List { format } } => {
            let table = exports::build_table(&Enabled::All).context("building the export table")?;
            print!("{}", api::render(&table, format));
            Ok(ExitCode::SUCCESS)
        }
        Command::RouteTest(args) => {
            let kind = engine_kind(args.engine.as_deref(), &args.script)?;
            let table = Arc::new(exports::build_table(&Enabled::All).context("building the export table")?);
            let report = route_test::run(table, kind, &args.script, &args.msg, args.src)?;
            println!("{}", serde_json::to_string_pretty(&report).context("encoding the report")?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
