//! The server configuration: the TOML file (`sipd run --config FILE`), the command-line
//! overrides, and their validation into one [`Config`].
//!
//! Every mistake a user can make here is a [`ConfigError`] naming the file and, when the TOML
//! parser or a key's span tells it, the line. Unknown keys are errors (`deny_unknown_fields`).
//! What is not here: starting anything (see [`crate::server`]), logging setup (the CLI edge).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kemi_runtime::engine::EngineKind;
use kemi_runtime::table::Enabled;
use kemi_runtime::TableError;
use serde::Deserialize;
use toml::Spanned;

use crate::endpoint::Endpoint;
use crate::exports;

/// Default largest message accepted, in octets (Kamailio's `BUF_SIZE`).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 65_535;
/// Default idle time after which a TCP connection is closed.
pub const DEFAULT_TCP_IDLE: Duration = Duration::from_secs(120);

/// What happens to a request whose script run hit a `[limits]` limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnLimit {
    /// Answer `500 Server Internal Error` (unless the script already queued a reply).
    #[default]
    Reply,
    /// Drop the request silently.
    Drop,
}

/// Default per-message instruction budget of `[limits]` (a typical route runs a few thousand).
pub const DEFAULT_MAX_INSTRUCTIONS: u64 = 10_000_000;
/// Default interpreter memory ceiling of `[limits]`, in MiB.
pub const DEFAULT_MAX_MEMORY_MB: u64 = 256;
/// Default Prometheus listen address of `[metrics]`.
pub const DEFAULT_METRICS_LISTEN: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9090);

/// What an instance name may be (`--name`, `name`).
const INSTANCE_NAME_RULE: &str =
    "an instance name is 1 to 64 of A-Z a-z 0-9 _ . - (not starting with .)";

/// `[rpc]`: the JSON-RPC control interface, on unless `[rpc] enabled = false`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcConfig {
    /// The Unix socket (mode 0600).
    pub socket: PathBuf,
    /// Whether the operator named the socket (`[rpc] socket`). A default socket that another
    /// running sipd holds leaves this one without control (a warning says so) instead of
    /// failing the start; a named one in use is an error.
    pub explicit: bool,
    /// An optional HTTP listener (`POST` a JSON-RPC request); meant for loopback.
    pub http: Option<std::net::SocketAddr>,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served.
    pub listen: std::net::SocketAddr,
}

/// `[limits]`: what one script run may consume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitsConfig {
    /// The limits given to every engine.
    pub script: kemi_runtime::engine::limits::ScriptLimits,
    /// The policy for a request whose run hit one.
    pub on_limit: OnLimit,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            script: kemi_runtime::engine::limits::ScriptLimits {
                instructions: Some(DEFAULT_MAX_INSTRUCTIONS),
                memory: usize::try_from(DEFAULT_MAX_MEMORY_MB << 20).ok(),
            },
            on_limit: OnLimit::Reply,
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Log levels accepted by `log_level` and `--log-level`.
pub const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// `sipd run` arguments: where the configuration is and what the command line overrides.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RunArgs {
    /// The TOML configuration file; may be omitted when --listen and --script are given.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen on proto:ip:port (repeatable); replaces the configuration's `listen` list.
    #[arg(long)]
    pub listen: Vec<Endpoint>,
    /// The routing script; replaces the configuration's `script`.
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Number of worker threads.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Log level: trace, debug, info, warn, error or off.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// The instance's name, for several sipd on one host: its default control socket is
    /// `sipd-NAME.sock` (`sipd rpc --name NAME` finds it); replaces the configuration's `name`.
    #[arg(long)]
    pub name: Option<String>,
}

/// `sipd check` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct CheckArgs {
    /// The TOML configuration file to validate.
    #[arg(long)]
    pub config: PathBuf,
}

/// A validated server configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from, if any (for messages).
    pub source: Option<PathBuf>,
    /// Local sockets to listen on.
    pub listen: Vec<Endpoint>,
    /// Worker threads.
    pub workers: usize,
    /// Log level name (one of [`LOG_LEVELS`]).
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// The instance's name (`--name`, `name`), which names its default control socket.
    pub name: Option<String>,
    /// Extra names and addresses that are this proxy (`is_myself`).
    pub aliases: Vec<String>,
    /// Script engine.
    pub engine: EngineKind,
    /// The routing script (absolute or relative to the working directory).
    pub script: PathBuf,
    /// Enabled modules.
    pub modules: Enabled,
    /// Module parameters, per module name.
    pub modparams: BTreeMap<String, toml::Table>,
    /// The store (`[db] url`): `sqlite://<config dir>/sipd.db` by default.
    pub db_url: String,
    /// Where relative paths of the configuration resolve (its directory).
    pub base_dir: PathBuf,
    /// The line of each `[modparam.<module>]` key in the file, for error messages.
    pub modparam_lines: BTreeMap<(String, String), usize>,
    /// Idle time after which a TCP connection is closed.
    pub tcp_idle_timeout: Duration,
    /// Receive and send buffer sizes asked for the UDP sockets, in octets.
    pub udp_buffers: UdpBuffers,
    /// Largest message accepted, in octets (datagrams and stream frames).
    pub max_message_size: usize,
    /// `Server` header value of locally generated replies.
    pub server_header: Option<String>,
    /// The JSON-RPC control interface, when `[rpc]` is present.
    pub rpc: Option<RpcConfig>,
    /// The Prometheus endpoint, when `[metrics]` is present.
    pub metrics: Option<MetricsConfig>,
    /// Script limits.
    pub limits: LimitsConfig,
    /// The Lua engine's options (`[lua]`).
    pub lua: kemi_runtime::engine::lua::LuaOptions,
    /// Transaction timers (`[tm]`).
    pub tm: crate::tm::config::TmConfig,
    /// SIP over TLS (`[tls]`): required by `tls:` listeners, used by outgoing TLS.
    pub tls: Option<crate::transport::tls::TlsConfig>,
    /// SIP over WebSocket (`[websocket]`): origins, frame size, timeouts of `ws:`/`wss:`.
    pub websocket: crate::transport::ws::WsConfig,
    /// Accepted stream connections (tcp, tls, ws, wss) per listener (`[tcp]
    /// max_connections_per_listener`, 0: no limit).
    pub max_conns_per_listener: usize,
    /// Accepted stream connections per source IP (`[tcp] max_connections_per_ip`, 0: no limit).
    pub max_conns_per_ip: usize,
    /// This node's identity among several sharing a store (`[cluster] node`).
    pub node: NodeId,
}

/// A node's identity: `[cluster] node`, else the instance `name`, else the host name. It is in
/// `core.info` and the `sipd_node_info` metric always, and on every log line when configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeId {
    /// The identity.
    pub name: String,
    /// Whether `[cluster] node` set it (then log lines carry it).
    pub configured: bool,
}

impl NodeId {
    /// The identity of a node that configured none: `name`, else the host name, else `sipd`.
    pub fn default_for(name: Option<&str>) -> NodeId {
        let host = || {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| valid_node(h))
        };
        NodeId {
            name: name
                .map(str::to_string)
                .or_else(host)
                .unwrap_or_else(|| "sipd".into()),
            configured: false,
        }
    }
}

impl NodeId {
    /// The span every thread of the server runs in: `node{id=...}` on each log line when
    /// `[cluster] node` is configured, nothing otherwise.
    pub fn span(&self) -> tracing::Span {
        if self.configured {
            tracing::info_span!("node", id = %self.name)
        } else {
            tracing::Span::none()
        }
    }
}

/// What a node identity may be: 1 to 64 of `A-Z a-z 0-9 . _ -` (it goes into log lines and
/// metric labels as is).
fn valid_node(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Syntax error, unknown key or bad value type, located by the TOML parser.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value that parsed but is not acceptable.
    #[error("{file}:{line}: {message}")]
    Invalid {
        /// The file (or `command line`).
        file: String,
        /// 1-based line (0 when the value came from the command line or a default).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A required setting is absent.
    #[error("{file}: {message}")]
    Missing {
        /// The file (or `command line`).
        file: String,
        /// What is missing.
        message: String,
    },
    /// The export table could not be built.
    #[error("building the export table: {0}")]
    Table(#[from] TableError),
}

/// Socket buffer sizes of the UDP listen sockets (`[udp]`).
///
/// The kernel's default receive buffer (about 200 KiB) overflows in bursts: a worker busy with
/// one message cannot drain the socket, datagrams are dropped, and the UAs retransmit or give up.
/// Kamailio enlarges its buffers at startup for the same reason. The kernel caps the sizes at
/// `net.core.rmem_max`/`wmem_max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpBuffers {
    /// `SO_RCVBUF`, octets.
    pub receive: usize,
    /// `SO_SNDBUF`, octets.
    pub send: usize,
}

impl Default for UdpBuffers {
    fn default() -> Self {
        UdpBuffers {
            receive: 4 << 20,
            send: 1 << 20,
        }
    }
}

/// The `[udp]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UdpSection {
    /// Octets.
    rcvbuf: Option<Spanned<usize>>,
    /// Octets.
    sndbuf: Option<Spanned<usize>>,
}

/// The `[tcp]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TcpSection {
    /// Seconds.
    idle_timeout: Option<Spanned<u64>>,
    /// Every stream listener (tcp, tls, ws, wss); 0: no limit.
    max_connections_per_listener: Option<usize>,
    /// Every stream listener, counted over all of them; 0: no limit.
    max_connections_per_ip: Option<usize>,
}

/// The `[websocket]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebsocketSection {
    #[serde(default)]
    allowed_origins: Vec<String>,
    /// Octets.
    max_frame_size: Option<Spanned<usize>>,
    handshake_timeout_ms: Option<Spanned<u64>>,
    /// Seconds; 0: no pings.
    ping_interval: Option<u64>,
}

/// The `[rpc]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RpcSection {
    enabled: Option<bool>,
    socket: Option<PathBuf>,
    http: Option<Spanned<String>>,
}

/// The `[metrics]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    listen: Option<Spanned<String>>,
}

/// The `[limits]` table; 0 disables a limit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_instructions: Option<u64>,
    max_memory_mb: Option<Spanned<u64>>,
    on_limit: Option<OnLimit>,
}

/// The `[lua]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LuaSection {
    c_modules: Option<bool>,
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    listen: Vec<Spanned<String>>,
    workers: Option<Spanned<usize>>,
    log_level: Option<Spanned<String>>,
    log_format: Option<LogFormat>,
    name: Option<Spanned<String>>,
    #[serde(default)]
    aliases: Vec<String>,
    cfgengine: Option<Spanned<String>>,
    script: Option<Spanned<PathBuf>>,
    modules: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    modparam: BTreeMap<String, Spanned<toml::Table>>,
    #[serde(default)]
    tcp: TcpSection,
    #[serde(default)]
    udp: UdpSection,
    max_message_size: Option<Spanned<usize>>,
    server_header: Option<String>,
    rpc: Option<RpcSection>,
    metrics: Option<MetricsSection>,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    lua: LuaSection,
    #[serde(default)]
    tm: TmSection,
    #[serde(default)]
    db: DbSection,
    tls: Option<TlsSection>,
    #[serde(default)]
    websocket: WebsocketSection,
    #[serde(default)]
    cluster: ClusterSection,
}

/// The `[tls]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    certificate: Option<Spanned<PathBuf>>,
    private_key: Option<Spanned<PathBuf>>,
    ca_list: Option<Spanned<PathBuf>>,
    min_version: Option<Spanned<String>>,
    handshake_timeout_ms: Option<Spanned<u64>>,
    verify_client: Option<Spanned<String>>,
    #[serde(default)]
    listener: BTreeMap<String, Spanned<TlsListenerSection>>,
    #[serde(default)]
    sni: Vec<Spanned<TlsSniSection>>,
    #[serde(default)]
    client: BTreeMap<String, Spanned<TlsClientSection>>,
}

/// `[tls.listener."ip:port"]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsListenerSection {
    verify_client: Spanned<String>,
}

/// `[[tls.sni]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSniSection {
    server_name: String,
    certificate: Spanned<PathBuf>,
    private_key: Spanned<PathBuf>,
}

/// `[tls.client."ip:port"]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsClientSection {
    server_name: String,
}

/// The `[cluster]` table: what sets this node apart from the others sharing its store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterSection {
    node: Option<Spanned<String>>,
}

/// The `[db]` table: the store shared by the stateful modules.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DbSection {
    url: Option<Spanned<String>>,
    /// Bound of every call to a Redis store, in ms (200); the URL's `?timeout_ms=`.
    timeout_ms: Option<Spanned<u64>>,
}

/// The `[tm]` table: transaction timers in milliseconds (Kamailio's tm `timer_t1`...).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TmSection {
    t1: Option<Spanned<u64>>,
    t2: Option<Spanned<u64>>,
    t4: Option<Spanned<u64>>,
    fr_timer: Option<Spanned<u64>>,
    fr_inv_timer: Option<Spanned<u64>>,
    /// Transactions alive at once (0: no limit); beyond it, 503 with Retry-After.
    max_transactions: Option<Spanned<u64>>,
}

/// Where values come from, to turn spans into lines.
struct Origin<'a> {
    file: String,
    text: &'a str,
}

impl Origin<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text
            .as_bytes()
            .get(..end)
            .map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
            + 1
    }

    fn invalid<T>(&self, spanned: &Spanned<T>, message: String) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line_of(spanned.span().start),
            message,
        }
    }
}

const COMMAND_LINE: &str = "command line";

impl Config {
    /// Read and validate the file at `path`, then apply `args`' overrides. Without a file,
    /// `args` must give `--listen` and `--script`.
    pub fn load(args: &RunArgs) -> Result<Config, ConfigError> {
        match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    file: path.display().to_string(),
                    source,
                })?;
                Config::from_toml(&text, Some(path), args)
            }
            None => Config::from_toml("", None, args),
        }
    }

    /// Validate `text` (the contents of `path`, if any) with `args`' overrides applied.
    pub fn from_toml(
        text: &str,
        path: Option<&Path>,
        args: &RunArgs,
    ) -> Result<Config, ConfigError> {
        let origin = Origin {
            file: path.map_or_else(|| COMMAND_LINE.to_string(), |p| p.display().to_string()),
            text,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let line = origin.line_of(offset);
            let line_start = text
                .get(..offset.min(text.len()))
                .and_then(|t| t.rfind('\n'))
                .map_or(0, |p| p + 1);
            ConfigError::Syntax {
                file: origin.file.clone(),
                line,
                column: offset.saturating_sub(line_start) + 1,
                message: e.message().trim_end().to_string(),
            }
        })?;
        let base_dir = path.and_then(Path::parent).unwrap_or(Path::new(""));

        let listen = if args.listen.is_empty() {
            raw.listen
                .iter()
                .map(|s| {
                    s.get_ref()
                        .parse::<Endpoint>()
                        .map_err(|e| origin.invalid(s, format!("listen: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            args.listen.clone()
        };
        if listen.is_empty() {
            return Err(ConfigError::Missing {
                file: origin.file,
                message:
                    "nothing to listen on: set `listen = [\"udp:127.0.0.1:5060\"]` or pass --listen"
                        .into(),
            });
        }

        let workers = match (args.workers, &raw.workers) {
            (Some(n), _) => n,
            (None, Some(w)) if *w.get_ref() == 0 => {
                return Err(origin.invalid(w, "workers must be at least 1".into()))
            }
            (None, Some(w)) => *w.get_ref(),
            (None, None) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if workers == 0 {
            return Err(ConfigError::Invalid {
                file: COMMAND_LINE.into(),
                line: 0,
                message: "--workers must be at least 1".into(),
            });
        }

        let log_level = match (&args.log_level, &raw.log_level) {
            (Some(l), _) => check_level(l).ok_or_else(|| ConfigError::Invalid {
                file: COMMAND_LINE.into(),
                line: 0,
                message: format!(
                    "--log-level `{l}`: expected one of {}",
                    LOG_LEVELS.join(", ")
                ),
            })?,
            (None, Some(l)) => check_level(l.get_ref()).ok_or_else(|| {
                origin.invalid(
                    l,
                    format!(
                        "log_level `{}`: expected one of {}",
                        l.get_ref(),
                        LOG_LEVELS.join(", ")
                    ),
                )
            })?,
            (None, None) => "info".to_string(),
        };

        let script = match (&args.script, &raw.script) {
            (Some(s), _) => {
                if !s.is_file() {
                    return Err(ConfigError::Missing {
                        file: COMMAND_LINE.into(),
                        message: format!("--script {}: no such file", s.display()),
                    });
                }
                s.clone()
            }
            (None, Some(s)) => {
                let resolved = base_dir.join(s.get_ref());
                if !resolved.is_file() {
                    return Err(
                        origin.invalid(s, format!("script {}: no such file", resolved.display()))
                    );
                }
                resolved
            }
            (None, None) => {
                return Err(ConfigError::Missing {
                    file: origin.file,
                    message: "no routing script: set `script = \"proxy.lua\"` or pass --script"
                        .into(),
                })
            }
        };

        let engine = match &raw.cfgengine {
            Some(name) => EngineKind::from_name(name.get_ref()).ok_or_else(|| {
                origin.invalid(
                    name,
                    format!(
                        "cfgengine `{}`: unknown engine (known: lua)",
                        name.get_ref()
                    ),
                )
            })?,
            None => EngineKind::from_path(&script).ok_or_else(|| ConfigError::Missing {
                file: origin.file.clone(),
                message: format!(
                    "cannot tell the engine from `{}`: set cfgengine = \"lua\"",
                    script.display()
                ),
            })?,
        };

        let all = exports::build_table(&Enabled::All)?;
        let modules = match &raw.modules {
            None => Enabled::All,
            Some(list) => {
                for m in list {
                    if !all.has_module(m.get_ref()) {
                        return Err(origin.invalid(
                            m,
                            format!(
                                "modules: unknown module `{}` (known: {})",
                                m.get_ref(),
                                known(&all)
                            ),
                        ));
                    }
                }
                Enabled::Only(list.iter().map(|m| m.get_ref().clone()).collect())
            }
        };
        let mut modparams = BTreeMap::new();
        for (name, table) in raw.modparam {
            let param_only = modules::setup::PARAM_ONLY
                .iter()
                .find(|(m, _)| *m == name)
                .map(|(_, serves)| *serves);
            if let Some(serves) = param_only {
                if !modules.is_enabled(serves) {
                    return Err(origin.invalid(
                        &table,
                        format!("modparam: module `{name}` serves `{serves}`, which is not in `modules`"),
                    ));
                }
                modparams.insert(name, table.into_inner());
                continue;
            }
            if !all.has_module(&name) {
                return Err(origin.invalid(
                    &table,
                    format!("modparam: unknown module `{name}` (known: {})", known(&all)),
                ));
            }
            if let Enabled::Only(list) = &modules {
                if !list.contains(&name)
                    && !kemi_runtime::table::CORE_MODULES.contains(&name.as_str())
                {
                    return Err(origin.invalid(
                        &table,
                        format!("modparam: module `{name}` is not in `modules`"),
                    ));
                }
            }
            modparams.insert(name, table.into_inner());
        }

        let tcp_idle_timeout = match raw.tcp.idle_timeout {
            Some(s) if *s.get_ref() == 0 => {
                return Err(origin.invalid(&s, "tcp.idle_timeout must be at least 1 second".into()))
            }
            Some(s) => Duration::from_secs(*s.get_ref()),
            None => DEFAULT_TCP_IDLE,
        };
        let buffer = |s: &Option<Spanned<usize>>, default: usize, key: &str| match s {
            Some(s) if !(64 * 1024..=256 << 20).contains(s.get_ref()) => Err(origin.invalid(
                s,
                format!("udp.{key} must be between 65536 and 268435456 octets"),
            )),
            Some(s) => Ok(*s.get_ref()),
            None => Ok(default),
        };
        let udp_buffers = UdpBuffers {
            receive: buffer(&raw.udp.rcvbuf, UdpBuffers::default().receive, "rcvbuf")?,
            send: buffer(&raw.udp.sndbuf, UdpBuffers::default().send, "sndbuf")?,
        };
        let max_message_size = match raw.max_message_size {
            Some(s) if !(512..=16 * 1024 * 1024).contains(s.get_ref()) => {
                return Err(origin.invalid(
                    &s,
                    "max_message_size must be between 512 and 16777216".into(),
                ))
            }
            Some(s) => *s.get_ref(),
            None => DEFAULT_MAX_MESSAGE_SIZE,
        };

        let name = match (&args.name, &raw.name) {
            (Some(n), _) if !crate::rpc::valid_instance_name(n) => {
                return Err(ConfigError::Invalid {
                    file: COMMAND_LINE.into(),
                    line: 0,
                    message: format!("--name `{n}`: {INSTANCE_NAME_RULE}"),
                })
            }
            (Some(n), _) => Some(n.clone()),
            (None, Some(n)) if !crate::rpc::valid_instance_name(n.get_ref()) => {
                return Err(
                    origin.invalid(n, format!("name `{}`: {INSTANCE_NAME_RULE}", n.get_ref()))
                )
            }
            (None, n) => n.as_ref().map(|n| n.get_ref().clone()),
        };
        let rpc = match raw.rpc.unwrap_or_default() {
            RpcSection {
                enabled: Some(false),
                ..
            } => None,
            r => Some(RpcConfig {
                explicit: r.socket.is_some(),
                socket: r.socket.map_or_else(
                    || crate::rpc::default_socket(name.as_deref()),
                    |s| base_dir.join(s),
                ),
                http: match r.http {
                    None => None,
                    Some(h) => Some(h.get_ref().parse().map_err(|e| {
                        origin.invalid(
                            &h,
                            format!("rpc.http `{}`: {e} (expected ip:port)", h.get_ref()),
                        )
                    })?),
                },
            }),
        };
        let metrics = match raw.metrics {
            None => None,
            Some(m) => Some(MetricsConfig {
                listen: match m.listen {
                    None => DEFAULT_METRICS_LISTEN,
                    Some(l) => l.get_ref().parse().map_err(|e| {
                        origin.invalid(
                            &l,
                            format!("metrics.listen `{}`: {e} (expected ip:port)", l.get_ref()),
                        )
                    })?,
                },
            }),
        };
        let mut limits = LimitsConfig::default();
        if let Some(n) = raw.limits.max_instructions {
            limits.script.instructions = (n > 0).then_some(n);
        }
        if let Some(mb) = raw.limits.max_memory_mb {
            let bytes = mb
                .get_ref()
                .checked_mul(1 << 20)
                .and_then(|b| usize::try_from(b).ok());
            limits.script.memory = match (*mb.get_ref(), bytes) {
                (0, _) => None,
                (_, Some(b)) if b >= kemi_runtime::engine::limits::MIN_MEMORY => Some(b),
                _ => {
                    return Err(origin.invalid(
                        &mb,
                        "limits.max_memory_mb must be 0 (no limit) or a number of MiB that fits in memory".into(),
                    ))
                }
            };
        }
        if let Some(p) = raw.limits.on_limit {
            limits.on_limit = p;
        }
        let mut tm = crate::tm::config::TmConfig::default();
        for (value, slot, name) in [
            (&raw.tm.t1, &mut tm.t1, "t1"),
            (&raw.tm.t2, &mut tm.t2, "t2"),
            (&raw.tm.t4, &mut tm.t4, "t4"),
            (&raw.tm.fr_timer, &mut tm.fr, "fr_timer"),
            (&raw.tm.fr_inv_timer, &mut tm.fr_inv, "fr_inv_timer"),
        ] {
            if let Some(ms) = value {
                if !(1..=3_600_000).contains(ms.get_ref()) {
                    return Err(origin.invalid(ms, format!("tm.{name} must be 1..3600000 ms")));
                }
                *slot = Duration::from_millis(*ms.get_ref());
            }
        }
        if let Some(max) = &raw.tm.max_transactions {
            tm.max_transactions = usize::try_from(*max.get_ref())
                .ok()
                .filter(|m| *m <= 1 << 40)
                .ok_or_else(|| {
                    origin.invalid(
                        max,
                        "tm.max_transactions must be 0 (no limit) or a count of transactions"
                            .into(),
                    )
                })?;
        }
        let modparam_lines = modparam_lines(text);
        // Kamailio's tm modparams map onto `[tm]` (the host's transaction layer has no setup fn).
        if let Some(table) = modparams.remove("tm") {
            let in_section: Vec<&str> = [
                ("t1", raw.tm.t1.is_some()),
                ("t2", raw.tm.t2.is_some()),
                ("t4", raw.tm.t4.is_some()),
                ("fr_timer", raw.tm.fr_timer.is_some()),
                ("fr_inv_timer", raw.tm.fr_inv_timer.is_some()),
            ]
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect();
            crate::modsetup::table_params("tm", &table)
                .and_then(|p| tm.apply_modparams(&p, &in_section))
                .map_err(|e| {
                    let line = modparam_lines
                        .get(&(e.module.clone(), e.param.clone()))
                        .or_else(|| modparam_lines.get(&(e.module.clone(), String::new())))
                        .copied()
                        .unwrap_or(0);
                    ConfigError::Invalid {
                        file: origin.file.clone(),
                        line,
                        message: e.to_string(),
                    }
                })?;
        }

        let base_dir = match path {
            Some(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
            None => script.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir
        };
        let tls = match &raw.tls {
            Some(t) => Some(tls_config(t, &origin, &base_dir)?),
            None => None,
        };
        if tls.is_none() {
            if let Some(e) = listen
                .iter()
                .find(|e| e.proto == kemi_runtime::msg::Proto::Tls)
            {
                return Err(ConfigError::Missing {
                    file: origin.file,
                    message: format!(
                        "listen {e}: a tls listener needs a [tls] section with certificate and private_key"
                    ),
                });
            }
        }
        if tls.is_none() {
            if let Some(e) = listen
                .iter()
                .find(|e| e.proto == kemi_runtime::msg::Proto::Wss)
            {
                return Err(ConfigError::Missing {
                    file: origin.file,
                    message: format!(
                        "listen {e}: a wss listener needs a [tls] section with certificate and private_key"
                    ),
                });
            }
        }
        let mut websocket = crate::transport::ws::WsConfig::with_max(max_message_size);
        websocket.allowed_origins = raw.websocket.allowed_origins.clone();
        if let Some(m) = &raw.websocket.max_frame_size {
            if !(512..=16 << 20).contains(m.get_ref()) {
                return Err(origin.invalid(
                    m,
                    "websocket.max_frame_size must be 512..16777216 octets".into(),
                ));
            }
            websocket.max_frame_size = *m.get_ref();
        }
        if let Some(ms) = &raw.websocket.handshake_timeout_ms {
            if !(1..=300_000).contains(ms.get_ref()) {
                return Err(origin.invalid(
                    ms,
                    "websocket.handshake_timeout_ms must be 1..300000".into(),
                ));
            }
            websocket.handshake_timeout = Duration::from_millis(*ms.get_ref());
        }
        if let Some(s) = raw.websocket.ping_interval {
            websocket.ping_interval = Duration::from_secs(s);
        }
        let db_url = match &raw.db.url {
            Some(url) => {
                let mut full = url.get_ref().clone();
                if let Some(ms) = &raw.db.timeout_ms {
                    if !(1..=60_000).contains(ms.get_ref()) {
                        return Err(origin.invalid(ms, "db.timeout_ms must be 1..60000".into()));
                    }
                    if !full.starts_with("redis") {
                        return Err(origin.invalid(
                            ms,
                            "db.timeout_ms applies to a redis:// or rediss:// url".into(),
                        ));
                    }
                    let sep = if full.contains('?') { '&' } else { '?' };
                    full = match full.split_once('#') {
                        Some((head, frag)) => {
                            format!("{head}{sep}timeout_ms={}#{frag}", ms.get_ref())
                        }
                        None => format!("{full}{sep}timeout_ms={}", ms.get_ref()),
                    };
                }
                if let Err(e) = modules::store::open_check(&full) {
                    return Err(origin.invalid(url, format!("db.url: {e}")));
                }
                full
            }
            None => modules::setup::default_db_url(&base_dir),
        };
        let node = match &raw.cluster.node {
            Some(n) if !valid_node(n.get_ref()) => {
                return Err(origin.invalid(
                    n,
                    format!(
                        "cluster.node `{}`: 1 to 64 letters, digits, `.`, `_` or `-`",
                        n.get_ref()
                    ),
                ))
            }
            Some(n) => NodeId {
                name: n.get_ref().clone(),
                configured: true,
            },
            None => NodeId::default_for(name.as_deref()),
        };

        Ok(Config {
            source: path.map(Path::to_path_buf),
            listen,
            workers,
            log_level,
            log_format: args.log_format.or(raw.log_format).unwrap_or_default(),
            name,
            aliases: raw.aliases,
            engine,
            script,
            modules,
            modparams,
            db_url,
            base_dir,
            modparam_lines,
            tcp_idle_timeout,
            udp_buffers,
            max_message_size,
            server_header: raw.server_header,
            rpc,
            metrics,
            limits,
            lua: kemi_runtime::engine::lua::LuaOptions {
                c_modules: raw.lua.c_modules.unwrap_or(true),
            },
            tm,
            tls,
            websocket,
            max_conns_per_listener: raw.tcp.max_connections_per_listener.unwrap_or(0),
            max_conns_per_ip: raw.tcp.max_connections_per_ip.unwrap_or(0),
            node,
        })
    }
}

/// Validate `[tls]`: every file is read now, so a bad certificate stops startup (and `sipd
/// check`) with the file and the line of its key.
fn tls_config(
    t: &TlsSection,
    origin: &Origin<'_>,
    base_dir: &Path,
) -> Result<crate::transport::tls::TlsConfig, ConfigError> {
    use crate::transport::tls::{self, ClientAuth, MinVersion, SniCert, TlsConfig};
    let whole = |message: String| ConfigError::Missing {
        file: origin.file.clone(),
        message,
    };
    let (Some(cert), Some(key)) = (&t.certificate, &t.private_key) else {
        return Err(whole(
            "[tls] needs certificate and private_key (PEM files)".into(),
        ));
    };
    let path = |p: &Spanned<PathBuf>| base_dir.join(p.get_ref());
    let check = |p: &Spanned<PathBuf>, r: Result<(), tls::TlsError>| {
        r.map_err(|e| origin.invalid(p, format!("tls: {e}")))
    };
    check(cert, tls::load_certs(&path(cert)).map(drop))?;
    check(key, tls::load_key(&path(key)).map(drop))?;
    if let Some(ca) = &t.ca_list {
        check(ca, tls::load_roots(&path(ca)).map(drop))?;
    }
    let auth = |v: &Spanned<String>| {
        ClientAuth::parse(v.get_ref()).ok_or_else(|| {
            origin.invalid(
                v,
                format!(
                    "tls verify_client `{}`: expected none, optional or required",
                    v.get_ref()
                ),
            )
        })
    };
    let min_version = match &t.min_version {
        None => MinVersion::Tls12,
        Some(v) if v.get_ref() == "1.2" => MinVersion::Tls12,
        Some(v) if v.get_ref() == "1.3" => MinVersion::Tls13,
        Some(v) => {
            return Err(origin.invalid(
                v,
                format!(
                    "tls.min_version `{}`: expected \"1.2\" or \"1.3\"",
                    v.get_ref()
                ),
            ))
        }
    };
    let handshake_timeout = match &t.handshake_timeout_ms {
        None => tls::DEFAULT_HANDSHAKE_TIMEOUT,
        Some(ms) if !(1..=300_000).contains(ms.get_ref()) => {
            return Err(origin.invalid(ms, "tls.handshake_timeout_ms must be 1..300000".into()))
        }
        Some(ms) => Duration::from_millis(*ms.get_ref()),
    };
    let verify_client = t
        .verify_client
        .as_ref()
        .map(auth)
        .transpose()?
        .unwrap_or_default();
    let mut listeners = Vec::new();
    for (addr, l) in &t.listener {
        let a = addr.parse().map_err(|_| {
            origin.invalid(
                l,
                format!("[tls.listener.\"{addr}\"]: not ip:port (write IPv6 as [::1]:5061)"),
            )
        })?;
        listeners.push((a, auth(&l.get_ref().verify_client)?));
    }
    let mut sni = Vec::new();
    for s in &t.sni {
        let s = s.get_ref();
        check(
            &s.certificate,
            tls::load_certs(&path(&s.certificate)).map(drop),
        )?;
        check(
            &s.private_key,
            tls::load_key(&path(&s.private_key)).map(drop),
        )?;
        sni.push(SniCert {
            server_name: s.server_name.clone(),
            certificate: path(&s.certificate),
            private_key: path(&s.private_key),
        });
    }
    let mut clients = Vec::new();
    for (addr, c) in &t.client {
        let a = addr.parse().map_err(|_| {
            origin.invalid(
                c,
                format!("[tls.client.\"{addr}\"]: not ip:port (write IPv6 as [::1]:5061)"),
            )
        })?;
        clients.push((a, c.get_ref().server_name.clone()));
    }
    let config = TlsConfig {
        certificate: path(cert),
        private_key: path(key),
        ca_list: t.ca_list.as_ref().map(path),
        min_version,
        handshake_timeout,
        verify_client,
        listeners,
        sni,
        clients,
    };
    // The whole set together: the key fits the certificate, client verification has its CAs.
    tls::TlsContext::new(config.clone()).map_err(|e| origin.invalid(key, format!("tls: {e}")))?;
    Ok(config)
}

/// The line of every key of the `[modparam.<module>]` tables in `text` (the table header's line
/// under the key `""`). A plain scan: enough to point at a parameter a module refused.
fn modparam_lines(text: &str) -> BTreeMap<(String, String), usize> {
    let mut lines = BTreeMap::new();
    let mut module: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            module = header
                .trim_end_matches(']')
                .trim()
                .strip_prefix("modparam.")
                .map(|m| m.trim_matches('"').to_string());
            if let Some(m) = &module {
                lines.insert((m.clone(), String::new()), n + 1);
            }
        } else if let (Some(m), Some((key, _))) = (&module, line.split_once('=')) {
            let key = key.trim().trim_matches('"');
            if !key.is_empty() && !key.starts_with('#') {
                lines.entry((m.clone(), key.to_string())).or_insert(n + 1);
            }
        }
    }
    lines
}

impl Config {
    /// `file:line: ` of modparam `module`.`param` (its table when the key is not in the file),
    /// to prefix a module's complaint about it.
    pub fn modparam_origin(&self, module: &str, param: &str) -> String {
        let file = self
            .source
            .as_ref()
            .map_or_else(|| COMMAND_LINE.to_string(), |p| p.display().to_string());
        let line = self
            .modparam_lines
            .get(&(module.to_string(), param.to_string()))
            .or_else(|| {
                self.modparam_lines
                    .get(&(module.to_string(), String::new()))
            });
        match line {
            Some(l) => format!("{file}:{l}"),
            None => file,
        }
    }
}

fn check_level(level: &str) -> Option<String> {
    let l = level.to_ascii_lowercase();
    LOG_LEVELS.contains(&l.as_str()).then_some(l)
}

fn known(table: &kemi_runtime::ExportTable) -> String {
    let names: Vec<&str> = table
        .modules()
        .iter()
        .map(|m| m.name)
        .filter(|n| !n.is_empty())
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temp directory with a script in it, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("sipd-config-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("proxy.lua"), "function ksr_request_route() end\n").unwrap();
            Dir(d)
        }
        fn cfg(&self, text: &str) -> Result<Config, ConfigError> {
            let path = self.0.join("sipd.toml");
            std::fs::write(&path, text).unwrap();
            Config::load(&RunArgs {
                config: Some(path),
                ..RunArgs::default()
            })
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn full_file_resolves_script_next_to_it() {
        let d = Dir::new("full");
        let c = d
            .cfg(
                "listen = [\"udp:127.0.0.1:5060\", \"tcp:[::1]:5060\"]\nworkers = 3\nlog_level = \"debug\"\n\
                 log_format = \"json\"\naliases = [\"sip.example\"]\ncfgengine = \"lua\"\nscript = \"proxy.lua\"\n\
                 modules = [\"sl\", \"maxfwd\"]\nmax_message_size = 4096\n[tcp]\nidle_timeout = 30\n[modparam.maxfwd]\nmax_limit = 70\n",
            )
            .unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(
            (c.workers, c.log_level.as_str(), c.log_format),
            (3, "debug", LogFormat::Json)
        );
        assert_eq!(c.script, d.0.join("proxy.lua"));
        assert_eq!(c.tcp_idle_timeout, Duration::from_secs(30));
        assert!(c.modparams.contains_key("maxfwd"));
        assert!(matches!(c.modules, Enabled::Only(ref m) if m.len() == 2));
    }

    #[test]
    fn lua_c_modules_default_on_and_can_be_turned_off() {
        let d = Dir::new("lua");
        let base = "listen = [\"udp:127.0.0.1:5060\"]\nscript = \"proxy.lua\"\n";
        assert!(d.cfg(base).unwrap().lua.c_modules);
        let off = d.cfg(&format!("{base}[lua]\nc_modules = false\n")).unwrap();
        assert!(!off.lua.c_modules);
        let e = d
            .cfg(&format!("{base}[lua]\nc_module = false\n"))
            .unwrap_err();
        assert!(e.to_string().contains("c_module"), "{e}");
    }

    #[test]
    fn rpc_is_on_by_default_per_instance_name_and_can_be_turned_off() {
        let d = Dir::new("rpc");
        let base = "listen = [\"udp:127.0.0.1:5060\"]\nscript = \"proxy.lua\"\n";
        let on = d.cfg(base).unwrap().rpc.expect("on by default");
        assert!(!on.explicit);
        assert_eq!(on.socket, crate::rpc::default_socket(None));
        let named = d.cfg(&format!("name = \"edge\"\n{base}")).unwrap();
        assert_eq!(named.name.as_deref(), Some("edge"));
        let socket = named.rpc.expect("on").socket;
        assert!(socket.ends_with("sipd-edge.sock"), "{}", socket.display());
        let set = d
            .cfg(&format!("{base}[rpc]\nsocket = \"ctl.sock\"\n"))
            .unwrap();
        assert!(set.rpc.expect("on").explicit);
        assert!(d
            .cfg(&format!("{base}[rpc]\nenabled = false\n"))
            .unwrap()
            .rpc
            .is_none());
        let e = d.cfg(&format!("{base}name = \"a/b\"\n")).unwrap_err();
        assert!(e.to_string().contains("sipd.toml:3:"), "{e}");
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let d = Dir::new("unknown");
        let e = d
            .cfg("listen = [\"udp:127.0.0.1:5060\"]\nscript = \"proxy.lua\"\nworkerz = 2\n")
            .unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, ConfigError::Syntax { line: 3, .. }), "{s}");
        assert!(s.contains("sipd.toml:3:") && s.contains("workerz"), "{s}");
    }

    #[test]
    fn bad_values_name_their_line() {
        let d = Dir::new("bad");
        let e = d
            .cfg("script = \"proxy.lua\"\nlisten = [\n  \"udp:1.2.3.4\",\n]\n")
            .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { line: 3, .. }), "{e}");
        let e = d
            .cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"missing.lua\"\n")
            .unwrap_err();
        assert!(
            matches!(e, ConfigError::Invalid { line: 2, .. })
                && e.to_string().contains("missing.lua"),
            "{e}"
        );
        let e = d.cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\nmodules = [\"sl\", \"nosuch\"]\n").unwrap_err();
        assert!(
            matches!(e, ConfigError::Invalid { line: 3, .. }) && e.to_string().contains("nosuch"),
            "{e}"
        );
        let e = d.cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\n\n[modparam.nosuch]\nx = 1\n").unwrap_err();
        assert!(e.to_string().contains("nosuch"), "{e}");
        let e = d
            .cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\nworkers = \"two\"\n")
            .unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { line: 3, .. }), "{e}");
        let e = d
            .cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\nlog_level = \"loud\"\n")
            .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { line: 3, .. }), "{e}");
    }

    #[test]
    fn command_line_alone_and_overrides() {
        let d = Dir::new("cli");
        let args = RunArgs {
            listen: vec!["udp:127.0.0.1:0".parse().unwrap()],
            script: Some(d.0.join("proxy.lua")),
            workers: Some(1),
            ..RunArgs::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!((c.workers, c.engine), (1, EngineKind::Lua));
        assert!(matches!(c.modules, Enabled::All));
        let e = Config::load(&RunArgs {
            script: None,
            ..args
        })
        .unwrap_err();
        assert!(matches!(e, ConfigError::Missing { .. }), "{e}");
    }

    #[test]
    fn the_node_identity_is_configured_or_defaults_to_the_instance_name() {
        let d = Dir::new("cluster-node");
        let base = "listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\n";
        let c = d
            .cfg(&format!("{base}[cluster]\nnode = \"edge-1.eu\"\n"))
            .unwrap();
        assert_eq!(
            c.node,
            NodeId {
                name: "edge-1.eu".into(),
                configured: true
            }
        );
        let c = d.cfg(&format!("name = \"east\"\n{base}")).unwrap();
        assert_eq!((c.node.name.as_str(), c.node.configured), ("east", false));
        let e = d
            .cfg(&format!("{base}[cluster]\nnode = \"a b\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sipd.toml:4") && e.contains("cluster.node `a b`"),
            "{e}"
        );
        let e = d
            .cfg(&format!("{base}[cluster]\nid = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `id`"), "{e}");
    }

    #[test]
    fn a_refused_modparam_is_located_in_the_file() {
        let d = Dir::new("modparam-line");
        let c = d
            .cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\n\n[modparam.pike]\nsampling_time_unit = 2\nreqs_density = 9\n[db]\nurl = \"sqlite::memory:\"\n")
            .unwrap();
        let e = crate::modsetup::services(&c).unwrap_err();
        let text = crate::modsetup::describe(&c, &e);
        let file = d.0.join("sipd.toml").display().to_string();
        assert!(
            text.starts_with(&format!(
                "{file}:6: modparam pike.reqs_density: unknown parameter"
            )),
            "{text}"
        );
        assert_eq!(c.modparam_origin("pike", "absent"), format!("{file}:4"));
    }

    #[test]
    fn db_redis_url_and_timeout() {
        let d = Dir::new("db-redis");
        let base = "listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\n[db]\n";
        let c = d
            .cfg(&format!(
                "{base}url = \"redis://:pw@127.0.0.1:6379/2\"\ntimeout_ms = 150\n"
            ))
            .unwrap();
        assert_eq!(c.db_url, "redis://:pw@127.0.0.1:6379/2?timeout_ms=150");
        let c = d
            .cfg(&format!(
                "{base}url = \"rediss://h:6380/0#insecure\"\ntimeout_ms = 9\n"
            ))
            .unwrap();
        assert_eq!(c.db_url, "rediss://h:6380/0?timeout_ms=9#insecure");
        let e = d
            .cfg(&format!("{base}url = \"redis://h/0\"\ntimeout_ms = 0\n"))
            .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { line: 5, .. }), "{e}");
        let e = d
            .cfg(&format!(
                "{base}url = \"sqlite::memory:\"\ntimeout_ms = 100\n"
            ))
            .unwrap_err();
        assert!(e.to_string().contains("redis"), "{e}");
        let e = d
            .cfg(&format!("{base}url = \"redis://h/x\"\n"))
            .unwrap_err();
        assert!(e.to_string().contains("db.url"), "{e}");
    }

    /// A self-signed certificate and its key as `cert.pem`/`key.pem` in `d`, plus `ca.pem`.
    fn write_cert(d: &Dir) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(d.0.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(d.0.join("ca.pem"), cert.pem()).unwrap();
        std::fs::write(d.0.join("key.pem"), key.serialize_pem()).unwrap();
    }

    #[test]
    fn websocket_section_listeners_and_connection_limits() {
        use crate::transport::ws::{DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_PING_INTERVAL};
        let d = Dir::new("ws");
        let base =
            "listen = [\"udp:127.0.0.1:5060\", \"ws:127.0.0.1:8080\"]\nscript = \"proxy.lua\"\n\
                    max_message_size = 4096\n";
        // Defaults: any origin, frames up to max_message_size, no connection limits.
        let c = d.cfg(base).unwrap();
        assert_eq!(c.listen[1].proto, kemi_runtime::msg::Proto::Ws);
        assert!(c.websocket.allowed_origins.is_empty());
        assert_eq!(c.websocket.max_frame_size, 4096);
        assert_eq!(c.websocket.handshake_timeout, DEFAULT_HANDSHAKE_TIMEOUT);
        assert_eq!(c.websocket.ping_interval, DEFAULT_PING_INTERVAL);
        assert_eq!((c.max_conns_per_listener, c.max_conns_per_ip), (0, 0));
        let c = d
            .cfg(&format!(
                "{base}[tcp]\nmax_connections_per_listener = 1000\nmax_connections_per_ip = 20\n\
                 [websocket]\nallowed_origins = [\"https://a.example\"]\nmax_frame_size = 8192\n\
                 handshake_timeout_ms = 700\nping_interval = 0\n"
            ))
            .unwrap();
        assert_eq!(c.websocket.allowed_origins, ["https://a.example"]);
        assert_eq!(c.websocket.max_frame_size, 8192);
        assert_eq!(c.websocket.handshake_timeout, Duration::from_millis(700));
        assert!(c.websocket.ping_interval.is_zero());
        assert_eq!((c.max_conns_per_listener, c.max_conns_per_ip), (1000, 20));
        // Bad values name their line; unknown keys are refused; wss needs [tls].
        let e = d
            .cfg(&format!("{base}[websocket]\nmax_frame_size = 10\n"))
            .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { line: 5, .. }), "{e}");
        let e = d
            .cfg(&format!("{base}[websocket]\nhandshake_timeout_ms = 0\n"))
            .unwrap_err();
        assert!(e.to_string().contains("handshake_timeout_ms"), "{e}");
        assert!(d.cfg(&format!("{base}[websocket]\norigin = 1\n")).is_err());
        let e = d
            .cfg("listen = [\"wss:127.0.0.1:8443\"]\nscript = \"proxy.lua\"\n")
            .unwrap_err();
        assert!(
            e.to_string().contains("wss listener needs a [tls] section"),
            "{e}"
        );
    }

    #[test]
    fn tls_section_and_listeners() {
        use crate::transport::tls::{ClientAuth, MinVersion};
        let d = Dir::new("tls");
        write_cert(&d);
        let base =
            "listen = [\"udp:127.0.0.1:5060\", \"tls:127.0.0.1:5061\"]\nscript = \"proxy.lua\"\n";
        let c = d
            .cfg(&format!(
                "{base}[tls]\ncertificate = \"cert.pem\"\nprivate_key = \"key.pem\"\nca_list = \"ca.pem\"\n\
                 min_version = \"1.3\"\nhandshake_timeout_ms = 700\n\
                 [tls.listener.\"127.0.0.1:5061\"]\nverify_client = \"required\"\n\
                 [[tls.sni]]\nserver_name = \"sip.example\"\ncertificate = \"cert.pem\"\nprivate_key = \"key.pem\"\n\
                 [tls.client.\"192.0.2.1:5061\"]\nserver_name = \"carrier.example\"\n"
            ))
            .unwrap();
        assert_eq!(c.listen[1].proto, kemi_runtime::msg::Proto::Tls);
        let t = c.tls.unwrap();
        assert_eq!(t.certificate, d.0.join("cert.pem"));
        assert_eq!(t.min_version, MinVersion::Tls13);
        assert_eq!(t.handshake_timeout, Duration::from_millis(700));
        assert_eq!(
            t.listeners,
            vec![("127.0.0.1:5061".parse().unwrap(), ClientAuth::Required)]
        );
        assert_eq!(t.sni.len(), 1);
        assert_eq!(t.clients[0].1, "carrier.example");

        // A tls listener needs [tls].
        let e = d.cfg(base).unwrap_err();
        assert!(e.to_string().contains("needs a [tls] section"), "{e}");
        // A missing file is named with the line of its key.
        let e = d
            .cfg(&format!(
                "{base}[tls]\ncertificate = \"nope.pem\"\nprivate_key = \"key.pem\"\n"
            ))
            .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { line: 4, .. }), "{e}");
        assert!(e.to_string().contains("nope.pem: cannot read"), "{e}");
        // A key that is not a key; a certificate given as key.
        let e = d
            .cfg(&format!(
                "{base}[tls]\ncertificate = \"cert.pem\"\nprivate_key = \"cert.pem\"\n"
            ))
            .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { line: 5, .. }), "{e}");
        // Client verification without CAs; bad enum values.
        let e = d
            .cfg(&format!(
                "{base}[tls]\ncertificate = \"cert.pem\"\nprivate_key = \"key.pem\"\nverify_client = \"optional\"\n"
            ))
            .unwrap_err();
        assert!(e.to_string().contains("needs tls.ca_list"), "{e}");
        let e = d
            .cfg(&format!(
                "{base}[tls]\ncertificate = \"cert.pem\"\nprivate_key = \"key.pem\"\nverify_client = \"yes\"\n"
            ))
            .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { line: 6, .. }), "{e}");
        let e = d
            .cfg(&format!(
                "{base}[tls]\ncertificate = \"cert.pem\"\nprivate_key = \"key.pem\"\nmin_version = \"1.1\"\n"
            ))
            .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { line: 6, .. }), "{e}");
        let e = d
            .cfg(&format!(
                "{base}[tls]\ncertificate = \"cert.pem\"\nprivate_key = \"key.pem\"\ncertfile = \"x\"\n"
            ))
            .unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { line: 6, .. }), "{e}");
    }

    #[test]
    fn tm_modparams_map_onto_the_tm_section() {
        let d = Dir::new("tm-modparam");
        let c = d
            .cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\n[modparam.tm]\nfr_timer = 20000\nwt_timer = 3000\nauto_inv_100 = 0\nfailure_reply_mode = 0\n")
            .unwrap();
        assert_eq!(c.tm.fr, Duration::from_secs(20));
        assert_eq!(c.tm.t4, Duration::from_secs(3));
        assert!(!c.tm.auto_inv_100);
        assert!(!c.modparams.contains_key("tm"), "consumed by the host");
        let file = d.0.join("sipd.toml").display().to_string();
        let e = d
            .cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\n[tm]\nfr_timer = 1000\n[modparam.tm]\nnoisy_ctimer = 1\n")
            .unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "{file}:6: modparam tm.noisy_ctimer: unknown parameter"
            )),
            "{e}"
        );
        let e = d
            .cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\n[tm]\nfr_timer = 1000\n[modparam.tm]\nfr_timer = 1000\n")
            .unwrap_err();
        assert!(e.to_string().contains("also set as [tm] fr_timer"), "{e}");
    }

    #[test]
    fn tm_max_transactions_is_read_and_checked() {
        let d = Dir::new("tm-max");
        let c = d
            .cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\n[tm]\nmax_transactions = 100\n")
            .unwrap();
        assert_eq!(c.tm.max_transactions, 100);
        let c = d
            .cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\n")
            .unwrap();
        assert_eq!(c.tm.max_transactions, 0, "no limit by default");
        let e = d
            .cfg("listen = [\"udp:127.0.0.1:0\"]\nscript = \"proxy.lua\"\n[tm]\nmax_transactions = 2199023255552\n")
            .unwrap_err();
        assert!(e.to_string().contains(":4: tm.max_transactions"), "{e}");
    }
}
