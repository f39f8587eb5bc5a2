//! The Prometheus exposition (OpenMetrics text) of [`Metrics`], through prometheus-client: one
//! [`Collector`] that sums the workers' counters at scrape time, so nothing on the message path
//! touches prometheus-client (whose `Family` and `Histogram` take locks).

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{Metrics, CALLBACKS, CLASSES, METHODS};
use kemi_runtime::engine::limits::LimitKind;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Extra gauges a layer outside this module contributes (the transaction layer, when present).
pub trait GaugeSource: std::fmt::Debug + Send + Sync {
    /// `(name, help, value)` triples; names get the `sipd_` prefix.
    fn gauges(&self) -> Vec<(&'static str, &'static str, i64)>;

    /// `(name, help, value)` counters; names get the `sipd_` prefix and the `_total` suffix.
    fn counters(&self) -> Vec<(&'static str, &'static str, u64)> {
        Vec::new()
    }
}

/// Several sources as one.
#[derive(Debug)]
pub struct Sources(pub Vec<Arc<dyn GaugeSource>>);

impl GaugeSource for Sources {
    fn gauges(&self) -> Vec<(&'static str, &'static str, i64)> {
        self.0.iter().flat_map(|s| s.gauges()).collect()
    }

    fn counters(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.0.iter().flat_map(|s| s.counters()).collect()
    }
}

/// The collector behind the endpoint.
#[derive(Debug)]
struct SipdCollector {
    metrics: Arc<Metrics>,
    extra: Option<Arc<dyn GaugeSource>>,
}

/// A registry exposing `metrics` (and `extra` gauges), ready to [`render`].
pub fn registry(metrics: Arc<Metrics>, extra: Option<Arc<dyn GaugeSource>>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(SipdCollector { metrics, extra }));
    r
}

/// The OpenMetrics text of `registry`.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut s = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut s, registry)?;
    Ok(s)
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Vec<(&str, &str)>, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

fn histogram(
    m: &mut MetricEncoder,
    labels: &[(&str, &str)],
    h: &super::HistogramSnapshot,
) -> Result<(), std::fmt::Error> {
    let mut fam = m.encode_family(&labels)?;
    fam.encode_histogram::<NoLabelSet>(
        h.sum_ns as f64 / 1e9,
        h.count(),
        &h.pairs(),
        None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
    )
}

impl Collector for SipdCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let t = self.metrics.totals();
        let per_method = |v: &[u64]| -> Vec<(Vec<(&str, &str)>, u64)> {
            METHODS
                .iter()
                .zip(v)
                .filter(|(_, n)| **n > 0)
                .map(|(m, n)| (vec![("method", *m)], *n))
                .collect()
        };
        let per_class = |v: &[[u64; CLASSES.len()]]| -> Vec<(Vec<(&str, &str)>, u64)> {
            let mut out = Vec::new();
            for (m, row) in METHODS.iter().zip(v) {
                for (c, n) in CLASSES.iter().zip(row) {
                    if *n > 0 {
                        out.push((vec![("method", *m), ("class", *c)], *n));
                    }
                }
            }
            out
        };
        counter(
            &mut enc,
            "sipd_requests_received",
            "SIP requests received, by method",
            &per_method(&t.requests_in),
        )?;
        counter(
            &mut enc,
            "sipd_replies_received",
            "SIP replies received, by CSeq method and status class",
            &per_class(&t.replies_in),
        )?;
        counter(
            &mut enc,
            "sipd_requests_forwarded",
            "SIP requests sent out, by method",
            &per_method(&t.requests_out),
        )?;
        counter(
            &mut enc,
            "sipd_replies_relayed",
            "Received SIP replies relayed upstream, by CSeq method and status class",
            &per_class(&t.replies_relayed),
        )?;
        counter(
            &mut enc,
            "sipd_replies_sent_local",
            "SIP replies generated by sipd (script or host), by method and status class",
            &per_class(&t.replies_local),
        )?;
        let errs: Vec<_> = CALLBACKS
            .iter()
            .zip(t.script_errors)
            .map(|(c, n)| (vec![("callback", *c)], n))
            .collect();
        counter(
            &mut enc,
            "sipd_script_errors",
            "Script callback runs that failed (limit hits included)",
            &errs,
        )?;
        let limits: Vec<_> = LimitKind::ALL
            .iter()
            .zip(t.limit_hits)
            .map(|(k, n)| (vec![("limit", k.as_str())], n))
            .collect();
        counter(
            &mut enc,
            "sipd_script_limit_hits",
            "Script runs stopped by a limit of [limits]",
            &limits,
        )?;
        {
            let mut m = enc.encode_descriptor(
                "sipd_route_duration_seconds",
                "Time spent in ksr_request_route / ksr_reply_route per message",
                None,
                MetricType::Histogram,
            )?;
            for (cb, h) in CALLBACKS.iter().zip(t.latency.iter()) {
                histogram(&mut m, &[("callback", cb)], h)?;
            }
        }
        let (ok, rejected) = self.metrics.reloads();
        counter(
            &mut enc,
            "sipd_script_reloads",
            "Script reload requests, by result",
            &[
                (vec![("result", "accepted")], ok),
                (vec![("result", "rejected")], rejected),
            ],
        )?;
        counter(
            &mut enc,
            "sipd_worker_reload_failures",
            "Workers that kept their old script because the new one failed to build there",
            &[(vec![], t.reload_failures)],
        )?;
        let calls: Vec<_> = self
            .metrics
            .export_calls(&t)
            .into_iter()
            .map(|(module, name, n)| (vec![("module", module), ("name", name)], n))
            .collect();
        counter(
            &mut enc,
            "sipd_kemi_calls",
            "KSR export calls, by module and function",
            &calls,
        )?;
        let workers = self.metrics.workers();
        let generation = workers.iter().map(|w| w.generation()).min().unwrap_or(0);
        gauge(
            &mut enc,
            "sipd_script_generation",
            "Script generation every worker runs (lowest)",
            i64::try_from(generation).unwrap_or(i64::MAX),
        )?;
        gauge(
            &mut enc,
            "sipd_workers",
            "Worker threads",
            i64::try_from(workers.len()).unwrap_or(0),
        )?;
        gauge(
            &mut enc,
            "sipd_uptime_seconds",
            "Seconds since the server started",
            i64::try_from(self.metrics.uptime().as_secs()).unwrap_or(0),
        )?;
        let mut info = enc.encode_descriptor(
            "sipd_node_info",
            "This node: its identity ([cluster] node, else the instance name or host name) and version",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(1).encode(
            info.encode_family(&[("node", self.metrics.node()), ("version", crate::VERSION)])?,
        )?;
        if let Some(extra) = &self.extra {
            for (name, help, v) in extra.gauges() {
                gauge(&mut enc, &format!("sipd_{name}"), help, v)?;
            }
            for (name, help, v) in extra.counters() {
                let name = format!("sipd_{name}");
                let m = enc.encode_descriptor(&name, help, None, MetricType::Counter)?;
                ConstCounter::new(v).encode(m)?;
            }
        }
        Ok(())
    }
}
