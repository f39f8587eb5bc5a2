//! `stats.get_statistics`: the counters as Kamailio's `group:name = value` lines, filtered by
//! `all`, a group (`core:`) or one statistic (`core:rcv_requests`).

use super::{Metrics, CLASSES, METHODS};

/// Every statistic as `(group, name, value)`, in a stable order.
pub fn list(m: &Metrics) -> Vec<(&'static str, String, u64)> {
    let t = m.totals();
    let mut out: Vec<(&'static str, String, u64)> = Vec::new();
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    let sum2 = |v: &[[u64; CLASSES.len()]]| v.iter().flatten().sum::<u64>();
    out.push(("core", "rcv_requests".into(), sum(&t.requests_in)));
    out.push(("core", "rcv_replies".into(), sum2(&t.replies_in)));
    out.push(("core", "fwd_requests".into(), sum(&t.requests_out)));
    out.push(("core", "fwd_replies".into(), sum2(&t.replies_relayed)));
    for (i, method) in METHODS.iter().enumerate() {
        let n = t.requests_in.get(i).copied().unwrap_or(0);
        out.push((
            "core",
            format!("rcv_requests_{}", method.to_ascii_lowercase()),
            n,
        ));
    }
    for (c, class) in CLASSES.iter().enumerate() {
        let n: u64 = t.replies_in.iter().filter_map(|row| row.get(c)).sum();
        out.push(("core", format!("rcv_replies_{class}"), n));
    }
    out.push(("sl", "sent_replies".into(), sum2(&t.replies_local)));
    for (c, class) in CLASSES.iter().enumerate() {
        let n: u64 = t.replies_local.iter().filter_map(|row| row.get(c)).sum();
        out.push(("sl", format!("{class}_replies"), n));
    }
    let (ok, rejected) = m.reloads();
    out.push(("script", "errors".into(), sum(&t.script_errors)));
    out.push((
        "script",
        "limit_instructions".into(),
        t.limit_hits.first().copied().unwrap_or(0),
    ));
    out.push((
        "script",
        "limit_memory".into(),
        t.limit_hits.get(1).copied().unwrap_or(0),
    ));
    out.push(("script", "reloads".into(), ok));
    out.push(("script", "reloads_rejected".into(), rejected));
    out.push(("script", "kemi_calls".into(), t.calls.iter().sum()));
    out
}

/// Why a statistics filter matched nothing.
#[derive(Debug, thiserror::Error)]
#[error("no statistic matches `{0}` (use all, a group such as core: or a name such as core:rcv_requests)")]
pub struct NoSuchStatistic(pub String);

/// The lines matching `filters` (each `all`, `group:` or `group:name`), Kamailio's shape.
pub fn lines(m: &Metrics, filters: &[String]) -> Result<Vec<String>, NoSuchStatistic> {
    let all = list(m);
    let mut out = Vec::new();
    for f in filters {
        let before = out.len();
        for (group, name, v) in &all {
            let hit = match f.split_once(':') {
                _ if f == "all" => true,
                Some((g, "")) => g == *group,
                Some((g, n)) => g == *group && n == name,
                None => f == name,
            };
            if hit {
                out.push(format!("{group}:{name} = {v}"));
            }
        }
        if out.len() == before {
            return Err(NoSuchStatistic(f.clone()));
        }
    }
    Ok(out)
}
