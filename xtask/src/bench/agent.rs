//! The `agent` scenario: the `http` scenario's server (tests/go/cmd/httpbench
//! under `wrk`), untraced, then while `leaktrace agent` observes it, then
//! untraced again; with the probe traps per request, from the agent's own
//! `leaktrace_probe_hits_total`, and the CPU the agent itself used. The
//! agent samples every second here, five times its default rate.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::{
    Bench, build_go,
    http::{WARM_UP_SECONDS, start_server, wrk},
    median, table_header,
};
use crate::{cmd, process::Guard};

/// How long the agent may take to find the server and report it.
const OBSERVED_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(bench: &Bench, versions: &[&str]) -> anyhow::Result<()> {
    println!(
        "httpbench (hello world) under `leaktrace agent --sample-interval 1s`: wrk -t1 -c32, {} s per measurement, median of {} runs\n",
        bench.seconds, bench.runs
    );
    table_header(&[
        "Go",
        "observed by",
        "untraced req/s",
        "observed req/s",
        "observed / untraced",
        "traps per request",
        "agent CPU",
    ]);
    for version in versions {
        let server = build_go(version, "httpbench")?;
        let (mut untraced, mut observed, mut traps, mut cpu) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..bench.runs {
            let run = measure(bench, &server).with_context(|| format!("agent, Go {version}"))?;
            untraced.push(run.untraced);
            observed.push(run.observed);
            traps.push(run.traps_per_request);
            cpu.push(run.agent_cpu);
        }
        let (untraced, observed) = (median(untraced), median(observed));
        println!(
            "| {version} | agent | {untraced:.0} | {observed:.0} | {:.2} | {:.3} | {:.1}% |",
            observed / untraced,
            median(traps),
            median(cpu) * 100.0
        );
    }
    Ok(())
}

struct Run {
    untraced: f64,
    observed: f64,
    traps_per_request: f64,
    /// The agent's CPU time per second of observing.
    agent_cpu: f64,
}

fn measure(bench: &Bench, server: &Path) -> anyhow::Result<Run> {
    let (mut server_process, url) = start_server(server, None)?;
    wrk(&url, WARM_UP_SECONDS)?;
    let before = wrk(&url, bench.seconds)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let agent = Guard::spawn(
        Command::new(&bench.leaktrace)
            .args(["agent", "--listen", &listen, "--match", "exe=httpbench"])
            .args(["--sample-interval", "1s", "--scan-interval", "1s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let deadline = Instant::now() + OBSERVED_TIMEOUT;
    while scrape_value(&listen, "leaktrace_processes_observed").unwrap_or(0.0) < 1.0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the agent never observed httpbench"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (hits_before, cpu_before, at) = (hits(&listen)?, cpu_seconds(agent.pid())?, Instant::now());
    let observed = wrk(&url, bench.seconds)?;
    let (hits_after, cpu_after) = (hits(&listen)?, cpu_seconds(agent.pid())?);
    let seconds = at.elapsed().as_secs_f64();
    server_process.ensure_running()?;
    drop(agent);
    let after = wrk(&url, bench.seconds)?;
    server_process.ensure_running()?;
    Ok(Run {
        untraced: (before.rate + after.rate) / 2.0,
        observed: observed.rate,
        traps_per_request: (hits_after - hits_before) / observed.requests.max(1) as f64,
        agent_cpu: (cpu_after - cpu_before) / seconds,
    })
}

/// Every `leaktrace_probe_hits_total` series, summed.
fn hits(listen: &str) -> anyhow::Result<f64> {
    Ok(scrape(listen)?
        .lines()
        .filter(|l| l.starts_with("leaktrace_probe_hits_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

fn scrape_value(listen: &str, metric: &str) -> Option<f64> {
    scrape(listen)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' ')?.parse().ok())
}

fn scrape(listen: &str) -> anyhow::Result<String> {
    cmd::output(Command::new("curl").args(["-sf", &format!("http://{listen}/metrics")]))
}

/// User and system CPU time of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &stat[stat.rfind(')').context("odd /proc/PID/stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime), counted from the state (field 3).
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}
