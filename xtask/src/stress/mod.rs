//! `cargo xtask stress`: leaktrace under load and abuse, with every Go release
//! (`--go`), kept out of `cargo xtask test` because it takes minutes. Each
//! workload runs tests/go/cmd/stress in one of its modes:
//!
//! - `spawn`: 1,000,000 goroutines that exit at once, under `leaktrace run`:
//!   created and exited exactly 1,000,000 at their site, none alive.
//! - `stack`: 2,000 goroutines recurse to depths 1..200 with 1 KiB frames
//!   (their stacks grow and move up to seven times), park at the bottom, and
//!   are released; exact counts.
//! - `gc`: with GOGC=1 (the collector always running), 50,000 goroutines
//!   allocate and park, 1,000 at a time; exact counts.
//! - `park`: two goroutines ping-pong over channels for 3 s, the highest park
//!   rate; the target completes and its exit status (42) passes through.
//! - `fork`: the target runs /bin/true in a loop while `leaktrace -p` (sampled,
//!   then `--exact`) is attached for 300 of them; the target keeps running and
//!   its text is pristine after each detach.
//! - `killed`: `leaktrace run` on a target that starts 200,000 blocked
//!   goroutines and calls os.Exit(0), SIGKILLed a few milliseconds after it
//!   says so (while leaktrace reads its goroutines): leaktrace exits within
//!   30 s with status 137.
//! - `two`: two `leaktrace -p` at once (sampled and `--exact`) on a target
//!   that leaks 100 more goroutines to the 100 it has: both report 200 alive
//!   at the site, 100 created, verdict `leak`; the text is pristine after.
//! - `kill-attach`: `leaktrace -p --exact` SIGKILLed right after it says it is
//!   tracing, and once 50 ms after its start: the target keeps running and its
//!   text is pristine again within 2 s.
//!
//! After every workload, no leaktrace eBPF program it loaded may be left in
//! the kernel (`bpftool prog show`). One line per workload and Go release,
//! then the totals; the exit status is non-zero if any failed.

mod checks;
mod workloads;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

use crate::{cmd, go, setup};

#[derive(Debug, Args)]
pub struct Options {
    /// Go release to build the target with, or `all`.
    #[arg(long, value_name = "VERSION|all", default_value = "all")]
    go: String,
    /// Which workload to run (default: every one).
    #[arg(long, value_enum, default_value_t = Workload::All)]
    workload: Workload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    Spawn,
    Stack,
    Gc,
    Park,
    Fork,
    Killed,
    Two,
    KillAttach,
    All,
}

impl Workload {
    const EACH: [Workload; 8] = [
        Workload::Spawn,
        Workload::Stack,
        Workload::Gc,
        Workload::Park,
        Workload::Fork,
        Workload::Killed,
        Workload::Two,
        Workload::KillAttach,
    ];

    fn selected(self) -> Vec<Workload> {
        match self {
            Workload::All => Self::EACH.to_vec(),
            one => vec![one],
        }
    }

    fn name(self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_string())
            .unwrap_or_default()
    }
}

/// What every workload needs.
pub struct Stress {
    leaktrace: PathBuf,
    /// The target, built with the Go release under test.
    target: PathBuf,
    /// Where the workloads write leaktrace's reports.
    reports: PathBuf,
}

/// How long the kernel may take to drop probes and programs once their last
/// file descriptor is closed.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn run(options: Options) -> anyhow::Result<()> {
    let versions = go::versions(&options.go)?;
    setup::ebpf_toolchain()?;
    setup::go_toolchains(&versions)?;
    setup::apt_packages(&["bpftool"])?;
    cmd::run(cmd::cargo().args(["build", "--release", "--package", "leaktrace"]))?;
    let root = cmd::workspace_root();
    let reports = root.join("target/stress");
    std::fs::create_dir_all(&reports).with_context(|| format!("creating {}", reports.display()))?;

    let (mut passed, mut failed) = (0, 0);
    for version in versions {
        let target = root.join("target/go").join(version).join("stress");
        go::build(version, "./cmd/stress", &target)?;
        let stress = Stress {
            leaktrace: root.join("target/release/leaktrace"),
            target,
            reports: reports.clone(),
        };
        for workload in options.workload.selected() {
            let started = Instant::now();
            let outcome = checked(workload, &stress);
            let wall = started.elapsed().as_secs_f64();
            let name = workload.name();
            match outcome {
                Ok(figures) => {
                    passed += 1;
                    println!("PASS {name:<11} Go {version:<4} {wall:6.1}s  {figures}");
                }
                Err(error) => {
                    failed += 1;
                    println!("FAIL {name:<11} Go {version:<4} {wall:6.1}s  {error:#}");
                }
            }
        }
    }
    println!("stress: {passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} stress workload(s) failed");
    }
    Ok(())
}

/// Runs one workload, then checks that it left no program in the kernel.
fn checked(workload: Workload, stress: &Stress) -> anyhow::Result<String> {
    let programs = checks::Programs::before()?;
    let figures = match workload {
        Workload::Spawn => workloads::spawn(stress),
        Workload::Stack => workloads::stack(stress),
        Workload::Gc => workloads::gc(stress),
        Workload::Park => workloads::park(stress),
        Workload::Fork => workloads::fork(stress),
        Workload::Killed => workloads::killed(stress),
        Workload::Two => workloads::two(stress),
        Workload::KillAttach => workloads::kill_attach(stress),
        Workload::All => unreachable!("expanded by Workload::selected"),
    }?;
    programs.ensure_none_left(RELEASE_TIMEOUT)?;
    Ok(figures)
}
