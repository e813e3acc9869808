//! The `million` scenario: `leaktrace -p --duration 1s` on a process with a
//! million goroutines blocked on a channel (tests/go/cmd/million).
//! leaktrace reads every one of them from the process's memory, so this
//! measures how long until it has attached (its first census done), how
//! long until the report (the 1 s window counts from the attach), how long
//! one census takes, and leaktrace's peak memory; and checks that the
//! report counts exactly the goroutines there are.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};

use crate::process::{Guard, Tracer};

use super::{Bench, CONFIGS, Config, build_go, median, table_header};
use crate::cmd;

/// Goroutines at the main site unless `--goroutines` says otherwise.
pub const GOROUTINES: u32 = 1_000_000;
/// Goroutines at the program's second site.
const FEW: u32 = 10;
/// leaktrace's observation window.
const WINDOW: Duration = Duration::from_secs(1);
/// How long the program may take to start its goroutines.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// One run's measurements.
struct Sample {
    /// Seconds from starting leaktrace to its "tracing pid" line.
    attach: f64,
    /// Seconds from starting leaktrace to its exit, with the report written.
    report: f64,
    /// Seconds the last census of the goroutines took (sampled mode).
    census: Option<f64>,
    peak_rss_mib: f64,
}

pub fn run(bench: &Bench, versions: &[&str], goroutines: u32) -> anyhow::Result<()> {
    println!(
        "million: leaktrace -p --duration 1s on {goroutines} + {FEW} blocked goroutines, median of {} runs\n",
        bench.runs
    );
    let columns = [
        "Go",
        "leaktrace flags",
        "until attached (s)",
        "until the report (s)",
        "one census (s)",
        "peak RSS (MiB)",
    ];
    table_header(&columns);
    let report = cmd::workspace_root().join("target/bench/million-report.json");
    std::fs::create_dir_all(report.parent().context("report path")?)?;
    for version in versions {
        let million = build_go(version, "million")?;
        // One target for every run: leaktrace leaves nothing behind.
        let target = start(&million, goroutines)?;
        for config in CONFIGS {
            let samples = (0..bench.runs)
                .map(|_| measure(bench, &target, goroutines, config, &report))
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(|| format!("million, Go {version}, {}", config.name))?;
            let column = |field: fn(&Sample) -> f64| median(samples.iter().map(field).collect());
            let census = samples
                .iter()
                .filter_map(|s| s.census)
                .collect::<Vec<f64>>();
            let census = if census.is_empty() {
                "-".to_string()
            } else {
                format!("{:.2}", median(census))
            };
            println!(
                "| {version} | {} | {:.2} | {:.2} | {census} | {:.0} |",
                config.name,
                column(|s| s.attach),
                column(|s| s.report),
                column(|s| s.peak_rss_mib),
            );
        }
    }
    Ok(())
}

/// Starts the program and waits until its goroutines are all started.
fn start(million: &Path, goroutines: u32) -> anyhow::Result<Guard> {
    let mut target = Guard::spawn(
        Command::new(million)
            .arg(format!("-n={goroutines}"))
            .stdout(Stdio::piped()),
    )?;
    target
        .stdout()?
        .find_map(READY_TIMEOUT, |line| (line == "ready").then_some(()))
        .context("million did not get ready")?;
    Ok(target)
}

/// One run of `leaktrace -p --duration 1s` on `target`.
fn measure(
    bench: &Bench,
    target: &Guard,
    goroutines: u32,
    config: &Config,
    report: &Path,
) -> anyhow::Result<Sample> {
    let _ = std::fs::remove_file(report);
    let window = format!("{}s", WINDOW.as_secs());
    let mut args = config.flags.to_vec();
    args.extend(["--duration", &window, "--json", "-o"]);
    args.push(report.to_str().context("report path is not UTF-8")?);
    let tracer = Tracer::attach(&bench.leaktrace, target.pid(), &args)?;
    let (attach, attached_at) = (tracer.attach_time, tracer.attached_at);
    let exit = tracer.finish()?;
    let census = check_report(report, goroutines.max(FEW))?;
    Ok(Sample {
        attach: attach.as_secs_f64(),
        report: (attach + (exit.at - attached_at)).as_secs_f64(),
        census,
        peak_rss_mib: exit.peak_rss_kib as f64 / 1024.0,
    })
}

/// Checks that the report's biggest site has `expected` live goroutines;
/// returns how long its last census took, in seconds, if it took any.
fn check_report(report: &Path, expected: u32) -> anyhow::Result<Option<f64>> {
    let text =
        std::fs::read_to_string(report).with_context(|| format!("reading {}", report.display()))?;
    let document: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", report.display()))?;
    let biggest = document["goroutines"]
        .as_array()
        .context("the report has no goroutines array")?
        .iter()
        .filter_map(|site| site["live"].as_u64())
        .max()
        .context("the report has no goroutine sites")?;
    if biggest != u64::from(expected) {
        bail!(
            "the report's biggest site has {biggest} live goroutines, not {expected} ({})",
            report.display()
        );
    }
    Ok(document["costs"]["last_census"]["took_ns"]
        .as_u64()
        .map(|ns| ns as f64 / 1e9))
}
