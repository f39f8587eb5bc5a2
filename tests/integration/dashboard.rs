//! `examples/grafana/sipd.json` charts only what sipd exports: every metric its queries name
//! is a family on the `/metrics` endpoint of the shipped registrar example (`examples/
//! registrar.toml`), scraped after real traffic (sipp registrations, one good and one with a
//! wrong password), which also moves the registration and authentication figures.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use kemi_runtime::msg::Proto;
use modules::store::{self, Subscriber};
use sipd::config::{Config, MetricsConfig};

use crate::support::proxy::listen_on;
use crate::support::sipp::{free_addr, Sipp, LOCALHOST_V4 as LO};

fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to /metrics");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

/// The value of the sample `name` (no labels) in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The metric family a query's series belongs to (`_total`, `_bucket` stripped).
fn family(series: &str) -> &str {
    for suffix in ["_total", "_bucket", "_sum", "_count"] {
        if let Some(f) = series.strip_suffix(suffix) {
            return f;
        }
    }
    series
}

fn register(proxy: SocketAddr, password: &str) -> Sipp {
    Sipp::uac("reg", "reg_auth_uac.xml", free_addr(LO), "u1", 1, proxy)
        .timeout(Duration::from_secs(10))
        .wall(Duration::from_secs(15))
        .args(&[
            "-key",
            "user",
            "alice",
            "-key",
            "domain",
            "localhost",
            "-key",
            "cport",
            "5999",
            "-key",
            "expires",
            "600",
            "-au",
            "alice",
            "-ap",
            password,
        ])
        .spawn()
}

#[test]
fn every_dashboard_query_names_a_metric_sipd_exports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("examples/grafana/sipd.json")).expect("dashboard"),
    )
    .expect("dashboard JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() >= 15, "{exprs:?}");

    let db = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", db.path().join("sipd.db").display());
    store::open(&url, Path::new("/"))
        .expect("store")
        .put_subscriber(
            "subscriber",
            &Subscriber {
                username: "alice".into(),
                domain: "localhost".into(),
                password: "right-pw".into(),
                ..Subscriber::default()
            },
        )
        .expect("subscriber");
    let args = sipd::config::RunArgs {
        config: Some(crate::support::example("registrar.toml")),
        listen: listen_on(LO, &[Proto::Udp]),
        log_level: Some("warn".into()),
        ..sipd::config::RunArgs::default()
    };
    let mut config = Config::load(&args).expect("examples/registrar.toml loads");
    config.db_url = url;
    config.rpc = None;
    config.metrics = Some(MetricsConfig {
        listen: SocketAddr::new(LO, 0),
    });
    let handle = sipd::server::Server::start(config).expect("the example starts");
    let proxy = handle.local_addr(Proto::Udp, false).expect("udp address");
    let metrics = handle.metrics_addr().expect("metrics endpoint");

    register(proxy, "right-pw").expect_all_ok();
    // A wrong password: sipp gets a second 401 and fails, as it should.
    let _ = register(proxy, "wrong-pw").finish();
    let text = scrape(metrics);

    for expr in &exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("sipd_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let fam = family(&name);
            assert!(
                text.contains(&format!("# TYPE {fam} ")),
                "the dashboard queries {name}, which sipd does not export ({expr})\n{text}"
            );
            rest = &rest[at + name.len()..];
        }
    }
    assert_eq!(sample(&text, "sipd_usrloc_contacts"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "sipd_auth_successes_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "sipd_auth_failures_total"),
        Some(1.0),
        "{text}"
    );
    handle.shutdown();
}
