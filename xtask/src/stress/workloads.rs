//! The workloads themselves; see the module above for what each checks. Each
//! returns the figures it measured, or why it failed.

use std::{
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use super::{
    RELEASE_TIMEOUT, Stress,
    checks::{await_pristine, text_is_pristine},
};
use crate::process::{Guard, Lines, TRACING, Tracer, signal_pid};

/// How long a `leaktrace run` workload may take in all.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);
/// How long a target may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `leaktrace -p` may take to attach.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long leaktrace may take to report and exit once asked to.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

pub fn spawn(stress: &Stress) -> anyhow::Result<String> {
    exact_run(stress, "spawn", 1_000_000, "main.spawnWorker", &[])
}

pub fn stack(stress: &Stress) -> anyhow::Result<String> {
    exact_run(stress, "stack", 2_000, "main.stackWorker", &[])
}

pub fn gc(stress: &Stress) -> anyhow::Result<String> {
    exact_run(stress, "gc", 50_000, "main.gcWorker", &[("GOGC", "1")])
}

/// `leaktrace run` on a target mode whose `n` goroutines all exit: status 0,
/// and created and exited exactly `n` at the site of `entry`, none alive.
fn exact_run(
    stress: &Stress,
    mode: &str,
    n: u64,
    entry: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<String> {
    let report_path = stress.reports.join(format!("{mode}.json"));
    let mut command = stress.run_command(&report_path);
    command
        .arg(mode)
        .arg(format!("-n={n}"))
        .envs(env.iter().copied());
    let started = Instant::now();
    let status = Guard::spawn(command.stdout(Stdio::null()))?
        .wait(RUN_TIMEOUT)?
        .status;
    let traced = started.elapsed().as_secs_f64();
    ensure!(status.code() == Some(0), "leaktrace run: {status}");
    let report = read_report(&report_path)?;
    let site = Site::find(&report, entry)?;
    ensure!(
        site.created == n && site.exited == n && site.live == 0,
        "{entry}: created {}, exited {}, live {}; expected {n}, {n}, 0",
        site.created,
        site.exited,
        site.live
    );
    ensure!(report["dropped"] == 0, "dropped {}", report["dropped"]);
    Ok(format!(
        "run {traced:.1}s, created {} exited {} live {}, dropped 0",
        site.created, site.exited, site.live
    ))
}

pub fn park(stress: &Stress) -> anyhow::Result<String> {
    const STATUS: i32 = 42;
    let report_path = stress.reports.join("park.json");
    let mut command = stress.run_command(&report_path);
    command.args(["park", "-seconds=3", &format!("-exit={STATUS}")]);
    let mut leaktrace = Guard::spawn(command.stdout(Stdio::piped()))?;
    let stdout = leaktrace.stdout()?;
    let rounds: u64 = stdout
        .find_map(RUN_TIMEOUT, |line| {
            line.strip_prefix("rounds ")?.parse().ok()
        })
        .context("the target did not finish its ping-pong")?;
    let status = leaktrace.wait(EXIT_TIMEOUT)?.status;
    ensure!(
        status.code() == Some(STATUS),
        "leaktrace run: {status}, expected the target's {STATUS}"
    );
    let report = read_report(&report_path)?;
    let parked = report["events"]["parked"].as_u64().unwrap_or(0);
    ensure!(
        parked >= rounds,
        "{parked} parks probed for {rounds} round trips"
    );
    Ok(format!(
        "{rounds} round trips, {parked} parks probed, status {STATUS} passed through, dropped {}",
        report["dropped"]
    ))
}

pub fn fork(stress: &Stress) -> anyhow::Result<String> {
    const FORKS: u64 = 300;
    let mut target = Guard::spawn(
        Command::new(&stress.target)
            .arg("fork")
            .stdout(Stdio::piped()),
    )?;
    let stdout = target.stdout()?;
    let forks = |line: &str| line.strip_prefix("forks ")?.parse::<u64>().ok();
    stdout
        .find_map(READY_TIMEOUT, forks)
        .context("the target does not fork")?;
    let mut figures = Vec::new();
    for flags in [&[][..], &["--exact"]] {
        let tracer = Tracer::attach(&stress.leaktrace, target.pid(), flags)?;
        let base = stdout
            .drain()
            .iter()
            .filter_map(|line| forks(line))
            .max()
            .unwrap_or(0);
        let started = Instant::now();
        stdout
            .find_map(READY_TIMEOUT, |line| {
                forks(line).filter(|&count| count >= base + FORKS)
            })
            .context("the target stopped forking while traced")?;
        let took = started.elapsed().as_secs_f64();
        tracer.detach()?;
        target.ensure_running()?;
        ensure!(
            text_is_pristine(target.pid())?,
            "probes left in the target after leaktrace {} detached",
            flags.join(" ")
        );
        figures.push(format!(
            "{}: {FORKS} forks in {took:.1}s",
            config_name(flags)
        ));
    }
    Ok(format!("{}; text pristine", figures.join(", ")))
}

pub fn killed(stress: &Stress) -> anyhow::Result<String> {
    const GOROUTINES: u64 = 200_000;
    const DELAY: Duration = Duration::from_millis(5);
    const DEADLINE: Duration = Duration::from_secs(30);
    let report_path = stress.reports.join("killed.json");
    let _ = std::fs::remove_file(&report_path);
    let mut command = stress.run_command(&report_path);
    command.args(["exitmany", &format!("-n={GOROUTINES}")]);
    let mut leaktrace = Guard::spawn(command.stdout(Stdio::piped()))?;
    let stdout = leaktrace.stdout()?;
    let pid: u32 = stdout
        .find_map(READY_TIMEOUT, |line| {
            line.strip_prefix("ready ")?.parse().ok()
        })
        .context("the target did not start its goroutines")?;
    thread::sleep(DELAY);
    let killed = Instant::now();
    signal_pid(pid, libc::SIGKILL).with_context(|| format!("cannot kill the target {pid}"))?;
    let status = leaktrace
        .wait(DEADLINE)
        .context("leaktrace hangs after its target was killed")?
        .status;
    let exited = killed.elapsed().as_secs_f64();
    ensure!(
        status.code() == Some(128 + libc::SIGKILL),
        "leaktrace run: {status}, expected the target's 137"
    );
    // None of the goroutines exits, so a complete report has them all alive;
    // one that is not must say so (no snapshot, or some dropped).
    let report = read_report(&report_path)?;
    let site = Site::find(&report, "main.exitManyWorker")?;
    let (snapshot, dropped) = (&report["snapshot"], &report["dropped"]);
    let figures = format!(
        "leaktrace exited {exited:.2}s after the SIGKILL with 137; snapshot {snapshot}, \
         dropped {dropped}, created {} exited {} live {}",
        site.created, site.exited, site.live
    );
    ensure!(
        site.live + site.exited == site.created || *snapshot == false || *dropped != 0,
        "report inconsistent: {figures}"
    );
    Ok(figures)
}

pub fn two(stress: &Stress) -> anyhow::Result<String> {
    const BEFORE: u64 = 100;
    const ENTRY: &str = "main.leakWorker";
    let (mut target, stdout) = leaky_target(stress, BEFORE)?;
    let configs: [&[&str]; 2] = [&[], &["--exact"]];
    let mut tracers = Vec::new();
    for (i, flags) in configs.iter().enumerate() {
        let report = stress.reports.join(format!("two-{i}.json"));
        let mut args = vec!["--stuck-after", "100ms", "--json", "-o"];
        let report_arg = report.to_string_lossy().into_owned();
        args.push(&report_arg);
        args.extend_from_slice(flags);
        tracers.push((
            Tracer::attach(&stress.leaktrace, target.pid(), &args)?,
            report,
            *flags,
        ));
    }
    target.signal(libc::SIGUSR1)?;
    let expected = 2 * BEFORE;
    stdout
        .find_map(READY_TIMEOUT, |line| {
            (line == format!("leaked {expected}")).then_some(())
        })
        .context("the target did not leak")?;
    // Long enough for a census to see the last ones.
    thread::sleep(Duration::from_millis(500));
    let mut figures = Vec::new();
    let mut reports = Vec::new();
    for (tracer, report, flags) in tracers {
        tracer.detach()?;
        reports.push((report, flags));
    }
    target.ensure_running()?;
    let pristine = await_pristine(target.pid(), RELEASE_TIMEOUT)?;
    for (report, flags) in reports {
        let report = read_report(&report)?;
        let site = Site::find(&report, ENTRY)?;
        let name = config_name(flags);
        ensure!(
            site.live == expected && site.created == BEFORE && site.verdict == "leak",
            "{name}: live {}, created {}, verdict {}; expected {expected}, {BEFORE}, leak",
            site.live,
            site.created,
            site.verdict
        );
        figures.push(format!(
            "{name}: live {} created {} {}",
            site.live, site.created, site.verdict
        ));
    }
    Ok(format!(
        "{}; text pristine {:.0} ms after both exited",
        figures.join(", "),
        pristine.as_secs_f64() * 1e3
    ))
}

pub fn kill_attach(stress: &Stress) -> anyhow::Result<String> {
    let (mut target, _stdout) = leaky_target(stress, 100)?;
    let mut figures = Vec::new();
    for when in [None, Some(Duration::from_millis(50))] {
        let mut leaktrace = Guard::spawn(
            Command::new(&stress.leaktrace)
                .arg("-p")
                .arg(target.pid().to_string())
                .args(["--exact", "-o", "/dev/null"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )?;
        let started = Instant::now();
        let stderr = leaktrace.stderr()?;
        match when {
            None => stderr
                .find_map(ATTACH_TIMEOUT, |line| {
                    line.starts_with(TRACING).then_some(())
                })
                .context("leaktrace did not attach")?,
            Some(delay) => thread::sleep(delay),
        }
        let at = started.elapsed();
        leaktrace.signal(libc::SIGKILL)?;
        leaktrace.wait(EXIT_TIMEOUT)?;
        let pristine = await_pristine(target.pid(), RELEASE_TIMEOUT)?;
        target.ensure_running()?;
        figures.push(format!(
            "killed {:.0} ms after start{}: pristine after {:.0} ms",
            at.as_secs_f64() * 1e3,
            if when.is_none() { " (attached)" } else { "" },
            pristine.as_secs_f64() * 1e3
        ));
    }
    Ok(figures.join(", "))
}

impl Stress {
    /// `leaktrace run --json -o report -- target`, for the caller to add the
    /// target's arguments.
    fn run_command(&self, report: &Path) -> Command {
        let mut command = Command::new(&self.leaktrace);
        command
            .args(["run", "--json", "-o"])
            .arg(report)
            .arg("--")
            .arg(&self.target);
        command
    }
}

/// The target in `leak` mode with `n` goroutines blocked, ready.
fn leaky_target(stress: &Stress, n: u64) -> anyhow::Result<(Guard, Lines)> {
    let mut target = Guard::spawn(
        Command::new(&stress.target)
            .args(["leak", &format!("-n={n}")])
            .stdout(Stdio::piped()),
    )?;
    let stdout = target.stdout()?;
    stdout
        .find_map(READY_TIMEOUT, |line| (line == "ready").then_some(()))
        .context("the target did not start")?;
    Ok((target, stdout))
}

fn config_name(flags: &[&str]) -> &'static str {
    if flags.contains(&"--exact") {
        "--exact"
    } else {
        "sampled"
    }
}

fn read_report(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The figures of the goroutines of one entry function in a report, summed
/// over their sites.
struct Site {
    live: u64,
    created: u64,
    exited: u64,
    verdict: String,
}

impl Site {
    fn find(report: &Value, entry: &str) -> anyhow::Result<Self> {
        let sites: Vec<&Value> = report["goroutines"]
            .as_array()
            .context("the report has no goroutines")?
            .iter()
            .filter(|site| site["entry"]["function"] == entry)
            .collect();
        if sites.is_empty() {
            bail!("no site of {entry} in the report");
        }
        let sum = |field: &str| sites.iter().filter_map(|site| site[field].as_u64()).sum();
        let verdicts: Vec<&str> = sites
            .iter()
            .filter_map(|site| site["verdict"].as_str())
            .collect();
        Ok(Self {
            live: sum("live"),
            created: sum("created"),
            exited: sum("exited"),
            verdict: verdicts.join("+"),
        })
    }
}
