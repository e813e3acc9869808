//! The `http` and `http-timeout` scenarios: requests per second of a net/http
//! hello-world server (tests/go/cmd/httpbench) under `wrk -t1 -c32`,
//! untraced, then with `leaktrace -p` attached to the same process, then
//! untraced again (the baseline is the mean of the two); and the
//! probe traps per request, from leaktrace's report (its `costs`) and wrk's
//! count of requests.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::Context as _;

use crate::process::{Guard, Tracer};

use super::{Bench, CONFIGS, Config, build_go, median, table_header};
use crate::cmd;

/// The per-request timeout of `http-timeout`.
pub const TIMEOUT: &str = "1s";
/// wrk's connections: enough to keep both cores busy.
const CONNECTIONS: &str = "-c32";
/// Load before the first measurement.
pub(super) const WARM_UP_SECONDS: u32 = 1;
/// How long the server may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long wrk may run past its `-d`.
const WRK_GRACE: Duration = Duration::from_secs(30);

/// Measures every configuration with every Go release in `versions`;
/// `timeout` gives each request a context with that timeout.
pub fn run(bench: &Bench, versions: &[&str], timeout: Option<&str>) -> anyhow::Result<()> {
    let what = match timeout {
        None => "hello world".to_string(),
        Some(t) => format!("hello world with a {t} context.WithTimeout per request"),
    };
    println!(
        "httpbench ({what}): wrk -t1 {CONNECTIONS}, {} s per measurement, median of {} runs; requests per second\n",
        bench.seconds, bench.runs
    );
    let columns = [
        "Go",
        "leaktrace flags",
        "untraced req/s",
        "traced req/s",
        "traced / untraced",
        "traps per request",
        "syscall exits per request",
    ];
    table_header(&columns);
    for version in versions {
        let server = build_go(version, "httpbench")?;
        for config in CONFIGS {
            let mut untraced = Vec::new();
            let mut traced = Vec::new();
            let mut traps = Vec::new();
            let mut exits = Vec::new();
            for _ in 0..bench.runs {
                let run = measure(bench, &server, timeout, config)
                    .with_context(|| format!("http, Go {version}, {}", config.name))?;
                untraced.push(run.untraced);
                traced.push(run.traced);
                traps.push(run.traps_per_request);
                exits.push(run.syscall_exits_per_request);
            }
            let (untraced, traced, traps, exits) = (
                median(untraced),
                median(traced),
                median(traps),
                median(exits),
            );
            println!(
                "| {version} | {} | {untraced:.0} | {traced:.0} | {:.2} | {traps:.3} | {exits:.3} |",
                config.name,
                traced / untraced
            );
        }
    }
    Ok(())
}

/// One run's measurements.
struct Run {
    untraced: f64,
    traced: f64,
    /// Uprobe hits while traced, per request served while traced.
    traps_per_request: f64,
    /// Runs of the `sys_exit` raw tracepoint for the target (descriptor
    /// tracking, `--exact`): no trap, a program on the way out of the kernel.
    syscall_exits_per_request: f64,
}

/// One run: starts the server, loads it untraced, attaches leaktrace, loads
/// it again, detaches.
fn measure(
    bench: &Bench,
    server: &Path,
    timeout: Option<&str>,
    config: &Config,
) -> anyhow::Result<Run> {
    let (mut server, url) = start_server(server, timeout)?;

    // Warm up connections, caches and the heap before measuring.
    wrk(&url, WARM_UP_SECONDS)?;
    let untraced = wrk(&url, bench.seconds)?;
    server.ensure_running()?;
    let report = cmd::workspace_root().join("target/bench/http-report.json");
    std::fs::create_dir_all(report.parent().context("report path")?)?;
    let mut args = config.flags.to_vec();
    args.extend(["--json", "-o"]);
    args.push(report.to_str().context("report path is not UTF-8")?);
    let tracer = Tracer::attach(&bench.leaktrace, server.pid(), &args)?;
    let traced = wrk(&url, bench.seconds)?;
    server.ensure_running()?;
    tracer.detach()?;
    let (hits, exits) = probe_hits(&report)?;
    // Untraced again: the baseline is the mean of before and after, so that
    // drift (warming up, the machine's load) does not count as overhead.
    let after = wrk(&url, bench.seconds)?;
    server.ensure_running()?;
    Ok(Run {
        untraced: (untraced.rate + after.rate) / 2.0,
        traced: traced.rate,
        traps_per_request: hits as f64 / traced.requests.max(1) as f64,
        syscall_exits_per_request: exits as f64 / traced.requests.max(1) as f64,
    })
}

/// Starts httpbench on a free port: the server, and its URL.
pub(super) fn start_server(
    server: &Path,
    timeout: Option<&str>,
) -> anyhow::Result<(Guard, String)> {
    let mut command = Command::new(server);
    command
        .args(["-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped());
    if let Some(timeout) = timeout {
        command.args(["-timeout", timeout]);
    }
    let mut server = Guard::spawn(&mut command)?;
    let addr = server
        .stdout()?
        .find_map(LISTEN_TIMEOUT, |line| {
            line.strip_prefix("listening ").map(str::to_owned)
        })
        .context("httpbench did not say where it listens")?;
    Ok((server, format!("http://{addr}/")))
}

/// The program that runs at every system call's exit, in the report's costs.
const SYSCALL_EXIT_PROGRAM: &str = "fd_syscall";

/// The uprobe hits (traps) in a leaktrace report, and the runs of its
/// system-call-exit program.
fn probe_hits(report: &Path) -> anyhow::Result<(u64, u64)> {
    let text =
        std::fs::read_to_string(report).with_context(|| format!("reading {}", report.display()))?;
    let document: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", report.display()))?;
    let probes = document["costs"]["probes"]
        .as_array()
        .context("the report has no costs.probes")?;
    let hits = |exits: bool| -> u64 {
        probes
            .iter()
            .filter(|p| (p["program"] == SYSCALL_EXIT_PROGRAM) == exits)
            .filter_map(|p| p["hits"].as_u64())
            .sum()
    };
    Ok((hits(false), hits(true)))
}

/// What wrk measured.
pub(super) struct Load {
    pub(super) rate: f64,
    pub(super) requests: u64,
}

/// Loads `url` for `seconds`: wrk's requests per second, and requests.
pub(super) fn wrk(url: &str, seconds: u32) -> anyhow::Result<Load> {
    let mut wrk = Guard::spawn(
        Command::new("wrk")
            .args(["-t1", CONNECTIONS, &format!("-d{seconds}s"), url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )?;
    let allowed = Duration::from_secs(seconds.into()) + WRK_GRACE;
    let stderr = wrk.stderr()?;
    let output = wrk
        .stdout()?
        .to_end(allowed)
        .context("reading wrk's output")?;
    let exit = wrk.wait(WRK_GRACE)?;
    anyhow::ensure!(
        exit.status.success(),
        "wrk failed ({}): {}",
        exit.status,
        stderr.rest().join("\n")
    );
    for line in &output {
        let line = line.trim();
        if line.starts_with("Socket errors") || line.starts_with("Non-2xx") {
            eprintln!("xtask: warning: wrk {url}: {line}");
        }
    }
    let rate = output
        .iter()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output: {}", output.join("\n")))?;
    // "  123456 requests in 5.00s, 15.07MB read"
    let requests = output
        .iter()
        .find_map(|line| line.trim().split_once(" requests in "))
        .and_then(|(count, _)| count.trim().parse().ok())
        .with_context(|| format!("no request count in wrk's output: {}", output.join("\n")))?;
    Ok(Load { rate, requests })
}
