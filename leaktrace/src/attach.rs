//! `leaktrace -p PID`: observe a running process for a while, then report.
//!
//! After the probes are attached, the goroutines that already exist are read
//! from `runtime.allgs` and added to the kernel's table, so from then on the
//! exit and park probes track old and new goroutines alike: none is counted
//! twice, and none is missed (a goroutine created while the table is read is
//! recorded by the probes; one that exits meanwhile is found dead when the
//! seeded entries are checked, and removed). Site counters are sampled over
//! the window for the growth verdict, the live view and `--interval`.

use std::{
    collections::HashMap,
    io::IsTerminal as _,
    time::{Duration, Instant},
};

use leaktrace_ebpf::SiteKey;
use leaktrace_gobinary::GoBinary;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    cli::AttachArgs,
    goroutines::Goroutine,
    live_view::LiveView,
    output::{self, TextStream},
    preflight,
    probes::{AtExit, Probes, next_exit_code},
    report::{Mode, Observation, TargetInfo, Thresholds, json, text},
    target,
    tickers::{TickerMemory, TimerSemantics},
    timeline::{Sample, Timeline},
};

/// How often to check that the target still exists.
const LIVENESS_POLL: Duration = Duration::from_millis(100);

pub async fn attach(args: AttachArgs, pid: u32) -> anyhow::Result<i32> {
    let (shown_path, exe) = target::executable_of(pid)?;
    let binary = GoBinary::open(&exe).map_err(|e| {
        anyhow::anyhow!(
            "{}",
            e.to_string().replace(
                &exe.display().to_string(),
                &shown_path.display().to_string()
            )
        )
    })?;
    binary
        .warnings
        .iter()
        .for_each(|w| output::note(format!("warning: {w}")));
    preflight::check_kernel()?;
    preflight::check_capabilities(!same_user(pid))?;
    let ignore = args.ignore.rules()?;
    let godebug = target::godebug_of(pid);

    let mut probes = Probes::load(&binary, AtExit::Continue, !args.probes.no_stacks)?;
    probes.attach(&binary, &exe, pid, args.probes.probe_placement)?;
    let mut exit_notices = probes.take_exit_notices()?;
    let load_bias = target::bias_of(pid, &binary);
    let started = Instant::now();
    let baseline = seed_existing_goroutines(&mut probes, pid, &binary)?;
    let existing: u64 = baseline.values().sum();
    output::note(format!(
        "tracing pid {pid} ({}, {}), {existing} goroutines already running{}; Ctrl-C to stop",
        shown_path.display(),
        binary.build.version_text,
        args.duration
            .map(|d| format!(", for {}", text::duration(d.as_nanos() as u64)))
            .unwrap_or_default()
    ));

    let mut timeline = Timeline::new(baseline);
    let sample_every = args
        .interval
        .unwrap_or_else(|| sampling_period(args.duration));
    let mut live_view =
        (args.interval.is_none() && !args.output.json && std::io::stderr().is_terminal())
            .then(|| LiveView::new(pid));
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let deadline = tokio::time::sleep(args.duration.unwrap_or(Duration::MAX / 4));
    tokio::pin!(deadline);
    let mut liveness = tokio::time::interval(LIVENESS_POLL);
    let mut sampling = tokio::time::interval(sample_every);
    sampling.tick().await; // the first tick is immediate
    timeline.push(take_sample(&probes, started)?);
    let mut exit_code = None;
    let target_exited = loop {
        tokio::select! {
            _ = &mut deadline => break false,
            _ = interrupt.recv() => break false,
            _ = terminate.recv() => break false,
            _ = liveness.tick() => {
                exit_code = exit_code.or_else(|| next_exit_code(&mut exit_notices, pid));
                if !target::is_alive(pid) { break true }
            }
            _ = sampling.tick() => {
                timeline.push(take_sample(&probes, started)?);
                if args.interval.is_some() {
                    println!("{}", json::interval_line(&binary, load_bias, &timeline));
                } else if let Some(view) = live_view.as_mut() {
                    view.draw(&binary, load_bias, &timeline);
                }
            }
        }
    };
    if let Some(view) = live_view.as_mut() {
        view.clear();
    }
    let observed_ns = started.elapsed().as_nanos() as u64;
    // The report's counts are this last sample's, so they agree with the trend.
    let last = take_sample(&probes, started)?;
    let (sites, events) = (last.sites.clone(), last.events);
    timeline.push(last);

    let snapshot = if target_exited {
        let how = exit_code.map_or_else(
            || "was killed".to_string(),
            |code| format!("exited with status {code}"),
        );
        output::note(format!(
            "process {pid} {how} while observed; reporting what was seen until then"
        ));
        None
    } else {
        let snapshot = target::read_all_goroutines(pid, &binary).or_else(|e| {
            output::note(format!(
                "cannot list every goroutine ({e:#}); reporting those leaktrace tracks"
            ));
            let tracked = probes.goroutine_records()?;
            target::read_goroutines_at(pid, &binary, tracked.keys().copied())
        });
        snapshot
            .inspect_err(|e| {
                output::note(format!(
                    "cannot read the goroutines of process {pid}: {e:#}"
                ))
            })
            .ok()
    };
    let records = probes.goroutine_records()?;
    let tickers = probes.tickers()?;
    let ticker_memory = if target_exited {
        TickerMemory::default()
    } else {
        target::read_tickers(pid, &binary, load_bias, &tickers).unwrap_or_default()
    };
    let report = Observation {
        binary: &binary,
        mode: Mode::Attach,
        target: TargetInfo {
            pid,
            executable: shown_path.display().to_string(),
            go_version: binary.build.version_text.clone(),
        },
        observed_ns,
        exit_code,
        load_bias,
        snapshot,
        sites,
        creation_stacks: probes.creation_stacks(&records, &tickers),
        records,
        timeline: Some(timeline),
        events,
        thresholds: Thresholds {
            stuck_after_ns: args.stuck_after.as_nanos() as u64,
            min_growth: args.min_growth,
        },
        ignore,
        tickers,
        ticker_memory,
        timer_semantics: TimerSemantics::of(&binary, godebug.as_deref()),
    }
    .into_report(args.output.all);
    // Detach before printing: the target pays for probes only while observed.
    probes.detach();
    if args.interval.is_some() && args.output.output.is_none() {
        // NDJSON: the report is the last line.
        println!("{}", json::render_line(&report));
        return Ok(0);
    }
    output::emit(&report, &args.output, TextStream::Stdout)?;
    Ok(0)
}

/// Reads the goroutines that exist, adds them to the kernel's table, and
/// returns how many each site had: the baseline of the growth trend.
fn seed_existing_goroutines(
    probes: &mut Probes,
    pid: u32,
    binary: &GoBinary,
) -> anyhow::Result<HashMap<SiteKey, u64>> {
    let existing = match target::read_all_goroutines(pid, binary) {
        Ok(snapshot) => snapshot.goroutines,
        Err(e) => {
            output::note(format!(
                "cannot read the goroutines that predate the attach ({e:#}); only new ones are tracked"
            ));
            return Ok(HashMap::new());
        }
    };
    probes.seed(&existing)?;
    // Any that exited between the read and the seeding must not linger.
    let still_there: HashMap<u64, u64> =
        target::read_goroutines_at(pid, binary, existing.iter().map(|g| g.g))
            .map(|s| s.goroutines.iter().map(|g| (g.g, g.goid)).collect())
            .unwrap_or_default();
    let gone: Vec<(u64, u64)> = existing
        .iter()
        .filter(|g| still_there.get(&g.g) != Some(&g.goid))
        .map(|g| (g.g, g.goid))
        .collect();
    probes.unseed(&gone)?;
    // A goroutine created after the probes attached but before allgs was read
    // is in both; the probes' record (with its creation time) wins, so it
    // counts as created while observed, not as pre-existing.
    let records = probes.goroutine_records()?;
    let seeded = |g: &&Goroutine| {
        records
            .get(&g.g)
            .is_some_and(|r| r.goid == g.goid && r.created_ns == 0)
    };
    let mut baseline = HashMap::new();
    for g in existing.iter().filter(seeded) {
        *baseline.entry(site_of(g)).or_default() += 1;
    }
    Ok(baseline)
}

fn site_of(g: &Goroutine) -> SiteKey {
    SiteKey {
        gopc: g.gopc,
        startpc: g.startpc,
    }
}

fn take_sample(probes: &Probes, started: Instant) -> anyhow::Result<Sample> {
    Ok(Sample {
        elapsed_ns: started.elapsed().as_nanos() as u64,
        events: probes.event_counts()?,
        sites: probes.site_counters()?,
    })
}

/// About twenty samples per window, between 100 ms and 1 s apart.
fn sampling_period(window: Option<Duration>) -> Duration {
    window.map_or(Duration::from_secs(1), |w| {
        (w / 20).clamp(Duration::from_millis(100), Duration::from_secs(1))
    })
}

fn same_user(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let owner = std::fs::metadata(format!("/proc/{pid}"))
        .map(|m| m.uid())
        .ok();
    // SAFETY: geteuid has no preconditions.
    owner == Some(unsafe { libc::geteuid() })
}
