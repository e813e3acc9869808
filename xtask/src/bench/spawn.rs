//! The `spawn` scenario: what leaktrace costs a Go program per goroutine, with
//! every supported Go release, in four configurations:
//! - untraced;
//! - traced by leaktrace (probes on instructions the kernel emulates);
//! - the same with `--no-stacks` (no creation stacks);
//! - traced by leaktrace with `--probe-placement naive`: the same programs at
//!   function entries and on `newproc1`'s RETs, where other eBPF Go tracers
//!   put them.
//!
//! The Go program (tests/go/cmd/spawnbench) starts N goroutines that each call
//! wg.Done and exit, and prints its own wall time per goroutine, so
//! leaktrace's start-up does not count.

use std::process::Command;

use anyhow::Context as _;

use super::{Bench, build_go, median};
use crate::cmd;

/// Goroutines per run unless `--goroutines` says otherwise.
pub const GOROUTINES: u32 = 200_000;

pub fn run(bench: &Bench, versions: &[&str], goroutines: u32) -> anyhow::Result<()> {
    let runs = bench.runs;
    let n = format!("-n={goroutines}");
    println!(
        "spawnbench: {goroutines} goroutines per run, median of {runs} runs; ns per goroutine\n"
    );
    println!(
        "| Go | untraced | leaktrace | --no-stacks | naive probes | leaktrace overhead | --no-stacks overhead | naive overhead | naive / leaktrace |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for version in versions {
        let spawnbench = build_go(version, "spawnbench")?;
        let measure = |traced: Option<&[&str]>| -> anyhow::Result<f64> {
            let mut samples = Vec::new();
            for _ in 0..runs {
                let mut command = match traced {
                    None => Command::new(&spawnbench),
                    Some(options) => {
                        let mut c = Command::new(&bench.leaktrace);
                        c.arg("run")
                            .args(options)
                            .args(["-o", "/dev/null", "--"])
                            .arg(&spawnbench);
                        c
                    }
                };
                let out = cmd::output(command.arg(&n))?;
                let value = out
                    .lines()
                    .find_map(|l| l.strip_prefix("ns_per_goroutine "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .context("spawnbench printed no result")?;
                samples.push(value);
            }
            Ok(median(samples))
        };
        let untraced = measure(None)?;
        let ours = measure(Some(&[]))?;
        let lean = measure(Some(&["--no-stacks"]))?;
        let naive = measure(Some(&["--probe-placement", "naive"]))?;
        let (ours_over, lean_over, naive_over) =
            (ours - untraced, lean - untraced, naive - untraced);
        println!(
            "| {version} | {untraced:.0} | {ours:.0} | {lean:.0} | {naive:.0} | {ours_over:.0} | {lean_over:.0} | {naive_over:.0} | {:.1}x |",
            naive_over / ours_over
        );
    }
    Ok(())
}
