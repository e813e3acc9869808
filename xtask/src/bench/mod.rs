//! `cargo xtask bench`: what tracing with leaktrace costs a Go program. Each
//! scenario measures the same program untraced and traced in one run, and
//! prints one markdown table row per configuration (the median of `--runs`).
//!
//! - `spawn`: the worst case, a program that only starts goroutines
//!   (tests/go/cmd/spawnbench) under `leaktrace run`, in ns per goroutine,
//!   with every Go release; see [`spawn`].
//! - `http`: requests per second of a net/http hello-world server
//!   (tests/go/cmd/httpbench) loaded by `wrk`, before and while `leaktrace -p`
//!   is attached: what a real service pays per request (a goroutine per
//!   connection, parks on network I/O).
//! - `http-timeout`: the same, with a `context.WithTimeout` per request, as
//!   real handlers have: every request also creates and stops a timer, which
//!   the ticker probes see.
//! - `pingpong`: two goroutines handing a value back and forth over
//!   unbuffered channels (tests/go/cmd/pingpong), in ns per round trip: the
//!   worst case for the park probe, which fires on every handoff.
//! - `million`: attaching to a process with a million blocked goroutines
//!   (tests/go/cmd/million): how long leaktrace takes to attach (it reads
//!   every goroutine from the process's memory), how long it takes to report
//!   after a 1 s window, and its peak memory; and that the report counts
//!   exactly the goroutines there are.
//!
//! - `agent`: the `http` server while `leaktrace agent` observes it: the
//!   same requests per second and traps per request, and the agent's CPU.
//!
//! The attach-mode scenarios run leaktrace with its default flags (sampled)
//! and with `--exact` (every goroutine event probed).

mod agent;
mod http;
mod million;
mod pingpong;
mod spawn;

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::{cmd, go, setup};

#[derive(Debug, Args)]
pub struct Options {
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,
    /// Go release to build the programs with, or `all`. Default: the newest,
    /// except for `spawn`, which measures every release.
    #[arg(long, value_name = "VERSION|all")]
    go: Option<String>,
    /// Runs per configuration; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds of load per measurement (`http`, `http-timeout`, `pingpong`).
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Goroutines: per run for `spawn` (default 200,000), blocked in the
    /// target for `million` (default 1,000,000).
    #[arg(long)]
    goroutines: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Spawn,
    Http,
    HttpTimeout,
    Pingpong,
    Million,
    Agent,
    All,
}

impl Scenario {
    const EACH: [Scenario; 6] = [
        Scenario::Spawn,
        Scenario::Http,
        Scenario::HttpTimeout,
        Scenario::Pingpong,
        Scenario::Million,
        Scenario::Agent,
    ];

    fn selected(self) -> Vec<Scenario> {
        match self {
            Scenario::All => Self::EACH.to_vec(),
            one => vec![one],
        }
    }
}

/// A way of running `leaktrace -p`: a name for the table and its flags.
struct Config {
    name: &'static str,
    flags: &'static [&'static str],
}

/// The attach-mode configurations every scenario but `spawn` compares.
const CONFIGS: &[Config] = &[
    Config {
        name: "default",
        flags: &[],
    },
    Config {
        name: "--exact",
        flags: &["--exact"],
    },
];

/// What every scenario needs: the leaktrace binary and the common options.
struct Bench {
    leaktrace: PathBuf,
    runs: usize,
    seconds: u32,
}

pub fn run(options: Options) -> anyhow::Result<()> {
    anyhow::ensure!(options.runs > 0, "--runs must be at least 1");
    anyhow::ensure!(options.seconds > 0, "--seconds must be at least 1");
    let scenarios = options.scenario.selected();
    let versions = go::versions(options.go.as_deref().unwrap_or(go::NEWEST))?;
    let spawn_versions = go::versions(options.go.as_deref().unwrap_or("all"))?;

    setup::ebpf_toolchain()?;
    setup::go_toolchains(if scenarios.contains(&Scenario::Spawn) {
        &spawn_versions
    } else {
        &versions
    })?;
    if scenarios.contains(&Scenario::Http)
        || scenarios.contains(&Scenario::HttpTimeout)
        || scenarios.contains(&Scenario::Agent)
    {
        setup::apt_packages(&["wrk", "curl"])?;
    }
    cmd::run(cmd::cargo().args(["build", "--release", "--package", "leaktrace"]))?;
    let bench = Bench {
        leaktrace: cmd::workspace_root().join("target/release/leaktrace"),
        runs: options.runs,
        seconds: options.seconds,
    };

    for scenario in scenarios {
        match scenario {
            Scenario::Spawn => spawn::run(
                &bench,
                &spawn_versions,
                options.goroutines.unwrap_or(spawn::GOROUTINES),
            )?,
            Scenario::Http => http::run(&bench, &versions, None)?,
            Scenario::HttpTimeout => http::run(&bench, &versions, Some(http::TIMEOUT))?,
            Scenario::Pingpong => pingpong::run(&bench, &versions)?,
            Scenario::Million => million::run(
                &bench,
                &versions,
                options.goroutines.unwrap_or(million::GOROUTINES),
            )?,
            Scenario::Agent => agent::run(&bench, &versions)?,
            Scenario::All => unreachable!("expanded by Scenario::selected"),
        }
        println!();
    }
    Ok(())
}

/// Builds tests/go/cmd/`name` with Go `version` into target/go/`version`/`name`.
fn build_go(version: &str, name: &str) -> anyhow::Result<PathBuf> {
    let binary = cmd::workspace_root()
        .join("target/go")
        .join(version)
        .join(name);
    go::build(version, &format!("./cmd/{name}"), &binary)?;
    Ok(binary)
}

/// The median of `samples`, which must not be empty (the upper one of the two
/// middle samples for an even count).
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Prints a markdown table's header: the column names, then the alignment row
/// (the first two columns left-aligned, the numbers right-aligned).
fn table_header(columns: &[&str]) {
    println!("| {} |", columns.join(" | "));
    let alignment: Vec<&str> = (0..columns.len())
        .map(|i| if i < 2 { "---" } else { "---:" })
        .collect();
    println!("|{}|", alignment.join("|"));
}
