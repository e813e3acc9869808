//! `cargo xtask soak`: `leaktrace agent` under process churn for a while,
//! to show that what it keeps is bounded by the processes alive.
//!
//! Ten leaking services run at a time, one replaced every `--churn` (each
//! leaks steadily, so the agent probes its `go` statement for stacks). Every
//! minute the agent's resident memory, open descriptors and the processes
//! it observes are printed; at the end every service is killed, and the
//! agent must hold no probe and observe nothing. It fails if the agent's
//! memory after the first minute grew by more than `--max-growth-kib`.

use std::{
    collections::VecDeque,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use clap::Args;

use crate::{cmd, go, process::Guard, setup};

#[derive(Debug, Args)]
pub struct Options {
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Seconds between replacing one service by a new one.
    #[arg(long, default_value_t = 2)]
    churn: u64,
    /// The agent's resident memory may grow this much after the first minute.
    #[arg(long, default_value_t = 8192)]
    max_growth_kib: u64,
}

const SERVICES: usize = 10;

pub fn run(options: Options) -> anyhow::Result<()> {
    setup::ebpf_toolchain()?;
    setup::go_toolchains(&[go::NEWEST])?;
    setup::apt_packages(&["curl"])?;
    cmd::run(cmd::cargo().args(["build", "--release", "--package", "leaktrace"]))?;
    let root = cmd::workspace_root();
    let dir = root.join("target/soak");
    std::fs::create_dir_all(&dir)?;
    let service = dir.join("soak-service");
    go::build(go::NEWEST, "./cmd/service", &service)?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let agent = Guard::spawn(
        Command::new(root.join("target/release/leaktrace"))
            .args(["agent", "--listen", &listen, "--match", "exe=soak-service"])
            .args([
                "--sample-interval",
                "1s",
                "--scan-interval",
                "1s",
                "--window",
                "1m",
            ])
            .args(["--stuck-after", "5s"])
            .stdout(Stdio::null()),
    )?;
    let start_service = || -> anyhow::Result<Guard> {
        let guard = Guard::spawn(
            Command::new(&service)
                .args(["-leak-every", "50ms", "-leak-count", "1000000"])
                .stdout(Stdio::null()),
        )?;
        std::thread::sleep(Duration::from_millis(50));
        guard.signal(libc::SIGUSR2)?;
        Ok(guard)
    };
    let mut services: VecDeque<Guard> = VecDeque::new();
    for _ in 0..SERVICES {
        services.push_back(start_service()?);
    }

    let started = Instant::now();
    let end = started + Duration::from_secs(options.minutes * 60);
    let mut next_report = started;
    let mut replaced = 0u64;
    let mut after_first_minute = None;
    println!("minute  rss_kib  fds  observed  replaced");
    while Instant::now() < end {
        std::thread::sleep(Duration::from_secs(options.churn));
        services.pop_front();
        services.push_back(start_service()?);
        replaced += 1;
        if Instant::now() >= next_report {
            let minute = started.elapsed().as_secs() / 60;
            let rss = rss_kib(agent.pid())?;
            println!(
                "{minute:>6}  {rss:>7}  {:>3}  {:>8}  {replaced:>8}",
                fds(agent.pid())?,
                observed(&listen)?
            );
            if minute >= 1 && after_first_minute.is_none() {
                after_first_minute = Some(rss);
            }
            next_report += Duration::from_secs(60);
        }
    }
    let last_rss = rss_kib(agent.pid())?;
    drop(services);
    // The agent notices within a scan or two.
    std::thread::sleep(Duration::from_secs(5));
    let left = observed(&listen)?;
    let probes = probe_fds(agent.pid())?;
    println!(
        "end: rss {last_rss} KiB; after the services exited: {left} observed, {probes} probe descriptors"
    );
    ensure!(
        left == 0,
        "the agent still observes {left} exited processes"
    );
    ensure!(probes == 0, "the agent kept {probes} probe descriptors");
    if let Some(base) = after_first_minute {
        let growth = last_rss.saturating_sub(base);
        if growth > options.max_growth_kib {
            bail!("the agent's memory grew by {growth} KiB after the first minute");
        }
        println!("soak: passed; memory grew {growth} KiB after the first minute");
    }
    Ok(())
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("the agent is gone")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

fn fds(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

fn probe_fds(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|t| {
            let t = t.to_string_lossy();
            t == "anon_inode:[perf_event]" || t == "anon_inode:bpf-prog"
        })
        .count())
}

/// `leaktrace_processes_observed`, scraped.
fn observed(listen: &str) -> anyhow::Result<u64> {
    let text =
        cmd::output(Command::new("curl").args(["-sf", &format!("http://{listen}/metrics")]))?;
    text.lines()
        .find_map(|l| l.strip_prefix("leaktrace_processes_observed "))
        .and_then(|v| v.trim().parse().ok())
        .context("no leaktrace_processes_observed in the scrape")
}
