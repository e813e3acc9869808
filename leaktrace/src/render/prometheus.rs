//! `leaktrace agent`'s metrics, in the Prometheus / OpenMetrics text format
//! (`prometheus-client`). The names and labels are a contract, documented in
//! the README ("On a fleet"):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `leaktrace_goroutines` | gauge | pid, exe, go_version, site, function, verdict, wait_reason (+ container_id, pod_uid) |
//! | `leaktrace_goroutine_leaking_sites` | gauge | pid, exe (+ container) |
//! | `leaktrace_tickers` | gauge | pid, exe, site, verdict (+ container) |
//! | `leaktrace_processes_observed` | gauge | |
//! | `leaktrace_dropped_events_total` | counter | |
//! | `leaktrace_probe_hits_total` | counter | pid, probe (+ container) |
//!
//! Each process contributes at most `max_sites` sites (and ticker sites),
//! those with the most goroutines; the rest are summed into `site="other"`.

use std::collections::BTreeMap;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

use crate::report::{Report, SourceLocation, Verdict};

/// The `Content-Type` of [`exposition`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The site that sums those beyond `--max-sites`.
pub const OTHER: &str = "other";

/// The labels of one observed process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessLabels {
    pub pid: u32,
    pub exe: String,
    pub go_version: String,
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
}

impl ProcessLabels {
    /// `pid`, `exe`, then the container labels that are known.
    fn with(&self, more: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        let mut labels = vec![("pid", self.pid.to_string()), ("exe", self.exe.clone())];
        labels.extend(more.iter().map(|(k, v)| (*k, (*v).to_string())));
        if let Some(id) = &self.container_id {
            labels.push(("container_id", id.clone()));
        }
        if let Some(uid) = &self.pod_uid {
            labels.push(("pod_uid", uid.clone()));
        }
        labels
    }
}

/// One series of `leaktrace_goroutines`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoroutineSeries {
    pub site: String,
    pub function: String,
    pub verdict: &'static str,
    pub wait_reason: String,
    pub live: u64,
}

/// One series of `leaktrace_tickers`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TickerSeries {
    pub site: String,
    pub verdict: &'static str,
    pub live: u64,
}

/// What one process's latest report says, as metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessMetrics {
    pub labels: ProcessLabels,
    pub goroutines: Vec<GoroutineSeries>,
    pub leaking_sites: u64,
    pub tickers: Vec<TickerSeries>,
    /// By probe program: hits since the agent attached.
    pub probe_hits: Vec<(String, u64)>,
    /// Events the probes dropped since the agent attached.
    pub dropped: u64,
}

impl ProcessMetrics {
    pub fn from_report(labels: ProcessLabels, report: &Report, max_sites: usize) -> Self {
        let mut sites: Vec<_> = report
            .goroutines
            .iter()
            .filter(|s| s.live > 0 && !matches!(s.verdict, Verdict::Runtime | Verdict::Ignored))
            .collect();
        sites.sort_by_key(|s| std::cmp::Reverse(s.live));
        // Keyed by (site, function, verdict, wait_reason), so that the sum
        // of folded sites adds up per label set.
        let mut goroutines: BTreeMap<(String, String, &'static str, String), u64> = BTreeMap::new();
        for (rank, site) in sites.iter().enumerate() {
            let (at, function) = if rank < max_sites {
                (site_label(&site.created_at), site.entry.function.clone())
            } else {
                (OTHER.to_string(), OTHER.to_string())
            };
            let mut states: Vec<(&String, &u64)> = site.states.iter().collect();
            let counted: u64 = states.iter().map(|(_, n)| **n).sum();
            let unknown = site.live.saturating_sub(counted);
            let unknown_reason = String::from("unknown");
            if unknown > 0 {
                states.push((&unknown_reason, &unknown));
            }
            for (reason, count) in states {
                *goroutines
                    .entry((
                        at.clone(),
                        function.clone(),
                        site.verdict.as_str(),
                        reason.clone(),
                    ))
                    .or_default() += count;
            }
        }
        let mut tickers: Vec<_> = report.tickers.iter().filter(|t| t.live > 0).collect();
        tickers.sort_by_key(|t| std::cmp::Reverse(t.live));
        let mut ticker_series: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for (rank, ticker) in tickers.iter().enumerate() {
            let site = match &ticker.created_at {
                _ if rank >= max_sites => OTHER.to_string(),
                Some(at) => site_label(at),
                None => "unknown".to_string(),
            };
            *ticker_series
                .entry((site, ticker.verdict.as_str()))
                .or_default() += ticker.live;
        }
        Self {
            labels,
            goroutines: goroutines
                .into_iter()
                .map(
                    |((site, function, verdict, wait_reason), live)| GoroutineSeries {
                        site,
                        function,
                        verdict,
                        wait_reason,
                        live,
                    },
                )
                .collect(),
            leaking_sites: report.leaking_sites().count() as u64,
            tickers: ticker_series
                .into_iter()
                .map(|((site, verdict), live)| TickerSeries {
                    site,
                    verdict,
                    live,
                })
                .collect(),
            probe_hits: report
                .costs
                .probes
                .iter()
                .map(|p| (p.program.clone(), p.hits))
                .collect(),
            dropped: report.dropped,
        }
    }
}

/// `file:line` of a `go` statement.
fn site_label(at: &SourceLocation) -> String {
    format!("{}:{}", at.file, at.line)
}

/// Every observed process, and what those gone had dropped (the counter
/// must not go down when one exits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    pub processes: Vec<ProcessMetrics>,
    pub dropped_by_exited: u64,
}

/// The fleet's metrics, as a scrape returns them.
pub fn exposition(fleet: &Fleet) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(FleetCollector(fleet.clone())));
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

#[derive(Debug)]
struct FleetCollector(Fleet);

impl Collector for FleetCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let fleet = &self.0;
        let gauge = |v: u64| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));

        let mut family = encoder.encode_descriptor(
            "leaktrace_goroutines",
            "Live goroutines by the go statement that created them (site, file:line), the function they run, the site's verdict and their wait reason.",
            None,
            gauge(0).metric_type(),
        )?;
        for process in &fleet.processes {
            for series in &process.goroutines {
                let labels = process.labels.with(&[
                    ("go_version", &process.labels.go_version),
                    ("site", &series.site),
                    ("function", &series.function),
                    ("verdict", series.verdict),
                    ("wait_reason", &series.wait_reason),
                ]);
                gauge(series.live).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "leaktrace_goroutine_leaking_sites",
            "Sites whose goroutines grew over the window and are piling up blocked.",
            None,
            gauge(0).metric_type(),
        )?;
        for process in &fleet.processes {
            let labels = process.labels.with(&[]);
            gauge(process.leaking_sites).encode(family.encode_family(&labels)?)?;
        }

        let mut family = encoder.encode_descriptor(
            "leaktrace_tickers",
            "Live tickers by the line that created them, and their verdict.",
            None,
            gauge(0).metric_type(),
        )?;
        for process in &fleet.processes {
            for series in &process.tickers {
                let labels = process
                    .labels
                    .with(&[("site", &series.site), ("verdict", series.verdict)]);
                gauge(series.live).encode(family.encode_family(&labels)?)?;
            }
        }

        let processes = gauge(fleet.processes.len() as u64);
        processes.encode(encoder.encode_descriptor(
            "leaktrace_processes_observed",
            "Go processes leaktrace observes now.",
            None,
            processes.metric_type(),
        )?)?;

        let dropped = ConstCounter::new(
            fleet
                .processes
                .iter()
                .map(|p| p.dropped)
                .fold(fleet.dropped_by_exited, u64::saturating_add),
        );
        dropped.encode(encoder.encode_descriptor(
            "leaktrace_dropped_events",
            "Events the probes could not record (a full table, a failed read, a lost stack).",
            None,
            dropped.metric_type(),
        )?)?;

        let mut family = encoder.encode_descriptor(
            "leaktrace_probe_hits",
            "Hits of each probe program in each process since it was attached: each costs the process about a microsecond.",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for process in &fleet.processes {
            for (probe, hits) in &process.probe_hits {
                let labels = process.labels.with(&[("probe", probe)]);
                ConstCounter::new(*hits).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{at, report};

    fn labels() -> ProcessLabels {
        ProcessLabels {
            pid: 7,
            exe: "app".into(),
            go_version: "go1.27.4".into(),
            container_id: None,
            pod_uid: Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into()),
        }
    }

    #[test]
    fn sites_beyond_the_limit_are_summed_into_other() {
        let mut report = report();
        let mut second = report.goroutines[0].clone();
        second.created_at = at("main.other", 30);
        second.live = 2;
        second.states = [("select".to_string(), 2)].into();
        second.verdict = Verdict::Suspect;
        let mut third = second.clone();
        third.created_at = at("main.third", 40);
        third.live = 1;
        third.states = [("select".to_string(), 1)].into();
        report.goroutines.extend([second, third]);
        let metrics = ProcessMetrics::from_report(labels(), &report, 1);
        let series: Vec<(&str, &str, &str, u64)> = metrics
            .goroutines
            .iter()
            .map(|s| (s.site.as_str(), s.verdict, s.wait_reason.as_str(), s.live))
            .collect();
        assert_eq!(
            series,
            [
                ("/src/app/main.go:10", "leak", "chan receive", 5),
                ("other", "suspect", "select", 3)
            ]
        );
        assert_eq!(metrics.leaking_sites, 1);
    }

    #[test]
    fn the_exposition_names_the_contract() {
        let fleet = Fleet {
            processes: vec![ProcessMetrics::from_report(labels(), &report(), 50)],
            dropped_by_exited: 4,
        };
        let text = exposition(&fleet);
        for line in [
            "# TYPE leaktrace_goroutines gauge",
            r#"leaktrace_goroutines{pid="7",exe="app",go_version="go1.27.4",site="/src/app/main.go:10",function="main.leak.func1",verdict="leak",wait_reason="chan receive",pod_uid="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"} 5"#,
            r#"leaktrace_goroutine_leaking_sites{pid="7",exe="app",pod_uid="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"} 1"#,
            "leaktrace_processes_observed 1",
            "# TYPE leaktrace_dropped_events counter",
            "leaktrace_dropped_events_total 4",
            "# TYPE leaktrace_probe_hits counter",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
