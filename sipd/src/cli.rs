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
use crate::config::{CheckArgs, Config, LogFormat, RunArgs};
use crate::endpoint::Endpoint;
use crate::router::Router;
use crate::server::Server;
use crate::stubs::{self, StubLang};
use crate::{exports, route_test};

/// sipd: a SIP proxy routed by Lua through Kamailio's KEMI `KSR` API.
#[derive(Debug, Parser)]
#[command(name = "sipd", version = crate::VERSION, about)]
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
    /// Run the stateless proxy until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Validate a configuration and load its script in a real engine, then exit.
    Check(CheckArgs),
    /// Call a JSON-RPC method of a running sipd (`[rpc]`) and print the result as JSON.
    Rpc(RpcArgs),
    /// Edit the permissions address groups in the store (works while sipd runs).
    Address(crate::admin::address::AddressArgs),
    /// Edit the auth_db subscribers in the store (works while sipd runs).
    User(crate::admin::user::UserArgs),
    /// Show SIP traffic live, one line per message, from the HEP copies `siptrace` sends.
    Trace(TraceArgs),
}

/// `sipd trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// Where to receive HEP (the `duplicate_uri` of `[modparam.siptrace]`).
    #[arg(long, default_value = "127.0.0.1:9060")]
    pub hep: std::net::SocketAddr,
    /// Only this Call-ID.
    #[arg(long)]
    pub call_id: Option<String>,
    /// Only this method (requests, and replies by their CSeq).
    #[arg(long)]
    pub method: Option<String>,
    /// Only messages from or to this IP.
    #[arg(long)]
    pub from_ip: Option<std::net::IpAddr>,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
}

/// `sipd rpc METHOD [PARAMS...]`.
#[derive(Debug, clap::Args)]
pub struct RpcArgs {
    /// The method, e.g. `app_lua.reload`, `core.uptime`, `system.listMethods`.
    pub method: String,
    /// Parameters: numbers, true/false/null and JSON arrays/objects are passed as such,
    /// anything else as a string; `s:TEXT` forces a string.
    pub params: Vec<String>,
    /// The control socket (default: `[rpc] socket` of --config, else the default path).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Read the socket path from this configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The instance started with `--name NAME` (its default socket).
    #[arg(long, conflicts_with = "socket")]
    pub name: Option<String>,
    /// Talk HTTP to this address (`[rpc] http`) instead of the Unix socket.
    #[arg(long, conflicts_with = "socket")]
    pub http: Option<std::net::SocketAddr>,
    /// One line of JSON instead of pretty-printed.
    #[arg(long)]
    pub compact: bool,
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
    /// Write typed editor stubs of the whole KSR API (LuaLS, TypeScript, Python).
    Stubs {
        /// The language.
        #[arg(long, value_enum)]
        lang: StubLang,
        /// The directory to write into (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// `sipd route-test ...`.
#[derive(Debug, clap::Args)]
pub struct RouteTestArgs {
    /// The routing script.
    #[arg(long)]
    pub script: PathBuf,
    /// The engine (`lua`, `jsdt`, `python`); by default taken from the script's extension.
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
        Some(n) => EngineKind::from_name(n)
            .with_context(|| format!("unknown engine `{n}` (known: {})", known_engines())),
        None => EngineKind::from_path(script).with_context(|| {
            format!(
                "cannot tell the engine from `{}`: use --engine lua",
                script.display()
            )
        }),
    }
}

/// The engine names this build knows, for error messages.
fn known_engines() -> String {
    EngineKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
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
        Command::Api {
            command: ApiCommand::List { format },
        } => {
            let table = exports::build_table(&Enabled::All).context("building the export table")?;
            print!("{}", api::render(&table, format));
            Ok(ExitCode::SUCCESS)
        }
        Command::Api {
            command: ApiCommand::Stubs { lang, out },
        } => {
            let table = exports::build_table(&Enabled::All).context("building the export table")?;
            let path = stubs::write(&table, lang, &out)
                .with_context(|| format!("writing stubs into {}", out.display()))?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::RouteTest(args) => {
            let kind = engine_kind(args.engine.as_deref(), &args.script)?;
            let table =
                Arc::new(exports::build_table(&Enabled::All).context("building the export table")?);
            let report = route_test::run(table, kind, &args.script, &args.msg, args.src)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&report).context("encoding the report")?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run_server(&args),
        Command::Check(args) => check_config(&args),
        Command::Rpc(args) => rpc_call(&args),
        Command::Address(args) => crate::admin::address::run(&args),
        Command::User(args) => crate::admin::user::run(&args),
        Command::Trace(args) => {
            let filter = crate::trace::Filter {
                call_id: args.call_id,
                method: args.method,
                ip: args.from_ip,
            };
            crate::trace::run(args.hep, &filter, args.count)
                .with_context(|| format!("receiving HEP on {}", args.hep))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `sipd rpc`: one call, the result on stdout; an RPC error on stderr with exit status 1.
fn rpc_call(args: &RpcArgs) -> Result<ExitCode> {
    use crate::rpc::client::{self, ClientError};
    let params: Vec<serde_json::Value> =
        args.params.iter().map(|p| client::parse_param(p)).collect();
    let result = match (&args.http, &args.socket, &args.config) {
        (Some(addr), _, _) => client::call_http(*addr, &args.method, &params),
        (None, Some(path), _) => client::call(path, &args.method, &params),
        (None, None, Some(cfg)) => {
            let config = Config::load(&RunArgs {
                config: Some(cfg.clone()),
                name: args.name.clone(),
                ..RunArgs::default()
            })?;
            let rpc = config
                .rpc
                .with_context(|| format!("{}: [rpc] enabled = false", cfg.display()))?;
            client::call(&rpc.socket, &args.method, &params)
        }
        (None, None, None) => client::call(
            &crate::rpc::default_socket(args.name.as_deref()),
            &args.method,
            &params,
        ),
    };
    let render = |v: &serde_json::Value| {
        if args.compact {
            serde_json::to_string(v)
        } else {
            serde_json::to_string_pretty(v)
        }
    };
    match result {
        Ok(v) => {
            println!("{}", render(&v).context("encoding the result")?);
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Rpc {
            code,
            message,
            data,
        }) => {
            let e = serde_json::json!({"code": code, "message": message, "data": data});
            eprintln!("{}", render(&e).context("encoding the error")?);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// `sipd run`: start the server, wait for SIGINT or SIGTERM, stop it.
fn run_server(args: &RunArgs) -> Result<ExitCode> {
    let config = Config::load(args)?;
    init_logging(&config.log_level, config.log_format);
    let node = config.node.span();
    let _node = node.enter();
    let described = config.clone();
    let server = Server::start(config).map_err(|e| match &e {
        crate::server::ServerError::Modules(m) => {
            anyhow::anyhow!("{}", crate::modsetup::describe(&described, m))
        }
        _ => anyhow::Error::new(e).context("starting the server"),
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal runtime")?;
    // READY=1 only once the signal handlers are in place: a SIGHUP sent right after it (a
    // `systemctl reload`) must reload, not kill sipd by the default action.
    rt.block_on(wait_for_signal(&server, crate::notify::ready))
        .context("waiting for signals")?;
    crate::notify::stopping();
    tracing::info!("stopping");
    let mut server = server;
    let stuck = server.stop_within(crate::server::SHUTDOWN_GRACE);
    if !stuck.is_empty() {
        // A worker stuck in a script cannot be joined; exiting the process ends it.
        tracing::error!(workers = ?stuck, "workers still running a script after {:?}; exiting anyway", crate::server::SHUTDOWN_GRACE);
        std::process::exit(1);
    }
    drop(server);
    Ok(ExitCode::SUCCESS)
}

/// Reload the script, telling the service manager (`RELOADING=1`, then `READY=1`).
fn reload_notified(
    server: &crate::server::ServerHandle,
) -> Result<crate::reload::Reloaded, kemi_runtime::engine::LoadError> {
    crate::notify::notify("RELOADING=1");
    let result = server.reload();
    crate::notify::ready();
    result
}

/// Install the signal handlers, call `installed`, then resolve on the first SIGINT or SIGTERM;
/// reload the script (and the TLS certificates) on each SIGHUP meanwhile.
async fn wait_for_signal(
    server: &crate::server::ServerHandle,
    installed: impl FnOnce(),
) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut int = signal(SignalKind::interrupt())?;
        installed();
        loop {
            tokio::select! {
                _ = int.recv() => return Ok(()),
                _ = term.recv() => return Ok(()),
                _ = hup.recv() => {
                    match reload_notified(server) {
                        Ok(r) => tracing::info!(old = r.old, new = r.new, "SIGHUP: script reloaded"),
                        Err(e) => tracing::warn!("SIGHUP: reload rejected, the running script stays: {e}"),
                    }
                    // The certificates are re-read with the script (as RPC `tls.reload` does).
                    if server.tls().is_some() {
                        match server.reload_tls() {
                            Ok(()) => tracing::info!("SIGHUP: tls certificates reloaded"),
                            Err(e) => tracing::warn!("SIGHUP: tls reload rejected, the running certificates stay: {e}"),
                        }
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = server;
        installed();
        tokio::signal::ctrl_c().await
    }
}

/// Install the global `tracing` subscriber (once; later calls are ignored), on stderr: colours
/// only when stderr is a terminal and `NO_COLOR` is unset; under systemd (stderr is the journal,
/// `JOURNAL_STREAM`) no timestamp, since the journal stamps each line itself.
fn init_logging(level: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let style = LogStyle::from_env(std::io::stderr().is_terminal());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(style.colour)
        .with_writer(std::io::stderr);
    let _ = match (format, style.timestamps) {
        (LogFormat::Text, true) => builder.try_init(),
        (LogFormat::Text, false) => builder.without_time().try_init(),
        (LogFormat::Json, true) => builder.json().try_init(),
        (LogFormat::Json, false) => builder.json().without_time().try_init(),
    };
}

/// How log lines look, from where they go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LogStyle {
    /// ANSI colours.
    colour: bool,
    /// A timestamp at the start of each line.
    timestamps: bool,
}

impl LogStyle {
    /// For stderr (`terminal` when it is one) and this process's environment.
    fn from_env(terminal: bool) -> LogStyle {
        LogStyle::new(
            terminal,
            std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            std::env::var_os("JOURNAL_STREAM").is_some(),
        )
    }

    /// Colours on a terminal unless `no_color` (<https://no-color.org>); no timestamps when the
    /// journal takes stderr.
    fn new(terminal: bool, no_color: bool, journal: bool) -> LogStyle {
        LogStyle {
            colour: terminal && !no_color,
            timestamps: !journal,
        }
    }
}

/// `sipd check`: validate the configuration and load the script once.
fn check_config(args: &CheckArgs) -> Result<ExitCode> {
    let config = Config::load(&RunArgs {
        config: Some(args.config.clone()),
        ..RunArgs::default()
    })?;
    let table =
        Arc::new(exports::build_table(&config.modules).context("building the export table")?);
    let mut router = Router::load(config.engine, &config.script, Arc::clone(&table))?;
    let companions = router.engine_mut().companions();
    // Module parameters are checked by setting the modules up on a private in-memory store, so
    // that `check` creates no database file.
    let mut offline = config.clone();
    offline.db_url = "sqlite::memory:".into();
    offline
        .modparams
        .values_mut()
        .for_each(|t| drop(t.remove("db_url")));
    if let Err(e) = crate::modsetup::services(&offline) {
        anyhow::bail!("{}", crate::modsetup::describe(&config, &e));
    }
    println!(
        "{}: OK ({} listen socket(s), {} script {})",
        args.config.display(),
        config.listen.len(),
        config.engine,
        config.script.display()
    );
    // The script and the companions it loaded: every KSR name sipd cannot call, as warnings.
    let all = exports::build_table(&Enabled::All).context("building the export table")?;
    let mut files = vec![(config.script.clone(), None)];
    files.extend(companions.into_iter().map(|c| (c.path, Some(c.text))));
    let mut missing = 0;
    for (path, text) in files {
        let text = match text {
            Some(t) => String::from_utf8_lossy(&t).into_owned(),
            None => std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        };
        for m in crate::script_scan::scan(&text, config.engine, &table, &all) {
            missing += 1;
            println!(
                "{}:{}: warning: {}: {}",
                path.display(),
                m.line,
                m.name,
                m.why
            );
        }
    }
    if missing > 0 {
        println!("{missing} KSR name(s) the script uses cannot be called in sipd (warnings)");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::LogStyle;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(LogStyle::new(true, false, false).colour);
        assert!(!LogStyle::new(false, false, false).colour);
        assert!(!LogStyle::new(true, true, false).colour);
        assert!(!LogStyle::new(false, false, true).timestamps);
        assert!(LogStyle::new(false, false, false).timestamps);
    }
}
