//! sipd started in-process on port 0 (`sipd::server::Server::start`) with its script in a
//! temporary directory; shut down and cleaned up on drop.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use kemi_runtime::msg::Proto;
use sipd::config::{Config, RunArgs};
use sipd::endpoint::Endpoint;
use sipd::server::{Server, ServerHandle};

use super::Script;

/// Port 0 of `ip` for each of `protos`.
pub fn listen_on(ip: IpAddr, protos: &[Proto]) -> Vec<Endpoint> {
    protos
        .iter()
        .map(|&proto| Endpoint {
            proto,
            addr: SocketAddr::new(ip, 0),
        })
        .collect()
}

/// A running sipd with its script's temporary directory.
pub struct Sipd {
    handle: Option<ServerHandle>,
    script: Script,
}

impl Sipd {
    /// sipd routing with `source` saved as `file` (its extension picks the engine), listening on
    /// `listen` with `workers` workers, logging warnings only; `tune` adjusts the loaded
    /// configuration (given the script's directory) before the start.
    pub fn launch(
        file: &str,
        source: &str,
        listen: Vec<Endpoint>,
        workers: usize,
        tune: impl FnOnce(&mut Config, &Path),
    ) -> Sipd {
        let script = super::script(file, source);
        let args = RunArgs {
            listen,
            script: Some(script.path.clone()),
            workers: Some(workers),
            log_level: Some("warn".into()),
            ..RunArgs::default()
        };
        let mut config = Config::load(&args).expect("sipd configuration");
        // In-process servers of many tests at once: no default control socket unless a test
        // configures one.
        config.rpc = None;
        tune(&mut config, script.dir());
        let handle = Server::start(config).unwrap_or_else(|e| panic!("starting sipd: {e}"));
        Sipd {
            handle: Some(handle),
            script,
        }
    }

    /// sipd on UDP and TCP port 0 of `ip` with `workers` workers, routing with `lua`.
    pub fn start(ip: IpAddr, workers: usize, lua: &str) -> Sipd {
        Sipd::launch(
            "route.lua",
            lua,
            listen_on(ip, &[Proto::Udp, Proto::Tcp]),
            workers,
            |_, _| {},
        )
    }

    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("running")
    }

    /// Where it listens over `proto`, IPv6 or not.
    pub fn addr_in(&self, proto: Proto, v6: bool) -> SocketAddr {
        self.handle().local_addr(proto, v6).expect("bound address")
    }

    /// Where it listens over `proto`, in the family of its first listening address.
    pub fn addr(&self, proto: Proto) -> SocketAddr {
        let v6 = self.handle().local_addrs()[0].addr.is_ipv6();
        self.addr_in(proto, v6)
    }

    /// The script file (rewrite it before a reload).
    pub fn script_path(&self) -> &Path {
        &self.script.path
    }

    /// Stop it now (dropping does the same).
    pub fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
    }
}

impl Drop for Sipd {
    fn drop(&mut self) {
        self.shutdown();
    }
}
