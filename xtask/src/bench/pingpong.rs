//! The `pingpong` scenario: ns per round trip of two goroutines handing a
//! value back and forth over unbuffered channels (tests/go/cmd/pingpong),
//! which reports every 500 ms. Each round trip parks both goroutines once,
//! so this is the worst case for the park probe.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::Context as _;

use crate::process::{Guard, Lines, Tracer};

use super::{Bench, CONFIGS, Config, build_go, median, table_header};

/// How often pingpong reports, per second.
const WINDOWS_PER_SECOND: u32 = 2;
/// How long one window's line may take.
const WINDOW_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(bench: &Bench, versions: &[&str]) -> anyhow::Result<()> {
    let windows = bench.seconds * WINDOWS_PER_SECOND;
    println!(
        "pingpong: {windows} windows of 500 ms untraced then traced, median of {} runs; ns per round trip\n",
        bench.runs
    );
    let columns = [
        "Go",
        "leaktrace flags",
        "untraced ns",
        "traced ns",
        "throughput traced / untraced",
    ];
    table_header(&columns);
    for version in versions {
        let pingpong = build_go(version, "pingpong")?;
        for config in CONFIGS {
            let mut untraced = Vec::new();
            let mut traced = Vec::new();
            for _ in 0..bench.runs {
                let (before, during) = measure(bench, &pingpong, windows, config)
                    .with_context(|| format!("pingpong, Go {version}, {}", config.name))?;
                untraced.push(before);
                traced.push(during);
            }
            let (untraced, traced) = (median(untraced), median(traced));
            println!(
                "| {version} | {} | {untraced:.0} | {traced:.0} | {:.2} |",
                config.name,
                untraced / traced
            );
        }
    }
    Ok(())
}

/// One run: the median ns per round trip over `windows` windows with
/// leaktrace attached, and over as many untraced before and after.
fn measure(
    bench: &Bench,
    pingpong: &Path,
    windows: u32,
    config: &Config,
) -> anyhow::Result<(f64, f64)> {
    let mut program = Guard::spawn(Command::new(pingpong).stdout(Stdio::piped()))?;
    let reports = program.stdout()?;
    read_windows(&reports, 1)?; // start-up
    let untraced = read_windows(&reports, windows)?;

    let mut args = config.flags.to_vec();
    args.extend(["-o", "/dev/null", "--json"]);
    let tracer = Tracer::attach(&bench.leaktrace, program.pid(), &args)?;
    // Windows that ended while leaktrace was attaching, then the one it
    // attached in, were partly traced.
    reports.drain();
    read_windows(&reports, 1)?;
    let traced = read_windows(&reports, windows)?;
    tracer.detach()?;
    // Untraced again, so that drift does not count as overhead.
    reports.drain();
    read_windows(&reports, 1)?;
    let mut untraced = untraced;
    untraced.extend(read_windows(&reports, windows)?);
    Ok((median(untraced), median(traced)))
}

/// The next `count` windows' ns per round trip.
fn read_windows(reports: &Lines, count: u32) -> anyhow::Result<Vec<f64>> {
    (0..count)
        .map(|_| {
            reports
                .find_map(WINDOW_TIMEOUT, |line| {
                    line.strip_prefix("ns_per_round_trip ")
                        .and_then(|ns| ns.trim().parse().ok())
                })
                .context("pingpong stopped reporting")
        })
        .collect()
}
