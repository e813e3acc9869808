//! `cargo xtask bench`: what leaktrace costs a Go program per goroutine, with
//! every supported Go release, in three configurations:
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

use crate::{cmd, go, setup};

pub fn run(goroutines: u32, runs: usize) -> anyhow::Result<()> {
    setup::all()?;
    cmd::run(cmd::cargo().args(["build", "--release", "--package", "leaktrace"]))?;
    let root = cmd::workspace_root();
    let leaktrace = root.join("target/release/leaktrace");
    let n = format!("-n={goroutines}");
    println!(
        "spawnbench: {goroutines} goroutines per run, median of {runs} runs; ns per goroutine\n"
    );
    println!(
        "| Go | untraced | leaktrace | --no-stacks | naive probes | leaktrace overhead | --no-stacks overhead | naive overhead | naive / leaktrace |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (version, _) in go::TOOLCHAINS {
        let bench = root.join("target/go").join(version).join("spawnbench");
        go::build(version, "./cmd/spawnbench", &bench)?;
        let measure = |traced: Option<&[&str]>| -> anyhow::Result<f64> {
            let mut samples = Vec::new();
            for _ in 0..runs {
                let mut command = match traced {
                    None => Command::new(&bench),
                    Some(options) => {
                        let mut c = Command::new(&leaktrace);
                        c.arg("run")
                            .args(options)
                            .args(["-o", "/dev/null", "--"])
                            .arg(&bench);
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
            samples.sort_by(f64::total_cmp);
            Ok(samples[samples.len() / 2])
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
