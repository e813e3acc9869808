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
    collections::{HashMap, HashSet},
    io::IsTerminal as _,
    time::{Duration, Instant},
};

use leaktrace_ebpf::SiteKey;
use leaktrace_gobinary::GoBinary;
use tokio::signal::unix::{SignalKind, signal};

use super::{Ending, Tracing, destination, elapsed_ns, policy, preflight, target_info};
use crate::{
    Error,
    analysis::{
        Symbolizer,
        interval::interval,
        timeline::{Sample, Timeline},
        verdict::Thresholds,
    },
    cli::AttachArgs,
    error::one_line,
    probes::{Probes, Seed},
    process::{self, Process, Snapshot},
    render::{self, TextStream, json, live_view::LiveView, text},
    report::Mode,
};

/// How often to check that the target still exists.
const LIVENESS_POLL: Duration = Duration::from_millis(100);

pub async fn attach(args: AttachArgs, pid: u32) -> Result<i32, Error> {
    let executable = process::executable_of(pid)?;
    let binary = GoBinary::open_as(&executable.path, &executable.shown)?;
    super::warn_about(&binary);
    preflight::check_kernel()?;
    preflight::check_capabilities(!process::is_own(pid))?;
    let policy = policy(
        args.ignore.rules()?,
        Thresholds {
            stuck_after_ns: duration_ns(args.stuck_after),
            min_growth: args.min_growth,
        },
        &args.output,
    );
    let process = Process::open(pid, &binary)?;
    let godebug = process.godebug();

    let mut tracing = Tracing::start(Mode::Attach, binary, &args.probes, &executable.path, pid)?;
    let mut exit_notices = tracing.probes.take_exit_notices()?;
    let started = Instant::now();
    let baseline = seed_existing_goroutines(&mut tracing.probes, &process, &tracing.binary)?;
    let existing: u64 = baseline.values().sum();
    render::note(format!(
        "tracing pid {pid} ({}, {}), {existing} goroutines already running{}; Ctrl-C to stop",
        executable.shown.display(),
        tracing.binary.build.version_text,
        args.duration
            .map(|d| format!(", for {}", text::duration(duration_ns(d))))
            .unwrap_or_default()
    ));

    let symbolizer = Symbolizer::new(&tracing.binary, process.load_bias());
    let mut timeline = Timeline::new(baseline);
    let sample_every = args
        .interval
        .unwrap_or_else(|| sampling_period(args.duration));
    let mut live_view =
        (args.interval.is_none() && !args.output.json && std::io::stderr().is_terminal())
            .then(|| LiveView::new(pid));
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|source| Error::io("handling SIGINT", source))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|source| Error::io("handling SIGTERM", source))?;
    let deadline = tokio::time::sleep(args.duration.unwrap_or(Duration::MAX / 4));
    tokio::pin!(deadline);
    let mut liveness = tokio::time::interval(LIVENESS_POLL);
    let mut sampling = tokio::time::interval(sample_every);
    sampling.tick().await; // the first tick is immediate
    timeline.push(take_sample(&tracing.probes, started)?);
    let mut exit_code = None;
    let target_exited = loop {
        tokio::select! {
            _ = &mut deadline => break false,
            _ = interrupt.recv() => break false,
            _ = terminate.recv() => break false,
            _ = liveness.tick() => {
                exit_code = exit_code.or_else(|| exit_notices.next_exit_code(pid));
                if !process::is_alive(pid) { break true }
            }
            _ = sampling.tick() => {
                timeline.push(take_sample(&tracing.probes, started)?);
                let Some(interval) = interval(&symbolizer, &timeline) else { continue };
                if args.interval.is_some() {
                    render::line(&json::interval_line(&interval))?;
                } else if let Some(view) = live_view.as_mut() {
                    view.draw(&interval);
                }
            }
        }
    };
    drop(symbolizer);
    if let Some(view) = live_view.as_mut() {
        view.clear();
    }
    let observed_ns = elapsed_ns(started);
    // The report's counts are this last sample's, so they agree with the trend.
    let last = take_sample(&tracing.probes, started)?;
    let (sites, events) = (last.sites.clone(), last.events);
    timeline.push(last);

    let (snapshot, ticker_memory) = if target_exited {
        let how = exit_code.map_or_else(
            || "was killed".to_string(),
            |code| format!("exited with status {code}"),
        );
        render::note(format!(
            "process {pid} {how} while observed; reporting what was seen until then"
        ));
        (None, Default::default())
    } else {
        let snapshot = final_snapshot(&process, &tracing);
        let tickers = tracing.probes.tickers()?;
        let running: HashSet<u64> = tickers
            .iter()
            .filter(|(_, t)| !t.stopped)
            .map(|(&t, _)| t)
            .collect();
        let memory = process.tickers(&tracing.binary, tickers.keys().copied(), &running);
        (snapshot, memory)
    };
    let ending = Ending {
        target: target_info(pid, &executable.shown, &tracing.binary),
        observed_ns,
        exit_code,
        snapshot,
        ticker_memory,
        timeline: Some(timeline),
        events,
        sites,
        load_bias: process.load_bias(),
        godebug,
    };
    let report = tracing.conclude(ending, &policy)?;
    if args.interval.is_some() && args.output.output.is_none() {
        // NDJSON: the report is the last line.
        render::line(&json::render_line(&report))?;
    } else {
        render::emit(&report, &destination(&args.output, TextStream::Stdout))?;
    }
    Ok(0)
}

/// Every goroutine at the end; failing that, those the probes track.
fn final_snapshot(process: &Process, tracing: &Tracing) -> Option<Snapshot> {
    match process.all_goroutines(&tracing.binary) {
        Ok(snapshot) => Some(snapshot),
        Err(e) => {
            render::note(format!(
                "cannot list every goroutine ({}); reporting those leaktrace tracks",
                one_line(&e)
            ));
            let tracked = tracing
                .probes
                .goroutines()
                .inspect_err(|e| {
                    render::note(format!(
                        "cannot read the goroutines of process {}: {}",
                        process.pid(),
                        one_line(e)
                    ))
                })
                .ok()?;
            Some(process.goroutines_at(&tracing.binary, tracked.into_keys()))
        }
    }
}

/// Reads the goroutines that exist, adds them to the kernel's table, and
/// returns how many each site had: the baseline of the growth trend.
fn seed_existing_goroutines(
    probes: &mut Probes,
    process: &Process,
    binary: &GoBinary,
) -> Result<HashMap<SiteKey, u64>, Error> {
    let existing = match process.all_goroutines(binary) {
        Ok(snapshot) => snapshot.goroutines,
        Err(e) => {
            render::note(format!(
                "cannot read the goroutines that predate the attach ({}); only new ones are tracked",
                one_line(&e)
            ));
            return Ok(HashMap::new());
        }
    };
    probes.seed(existing.iter().map(|g| Seed {
        g: g.g,
        goid: g.goid,
        parent_goid: g.parent_goid,
        site: SiteKey {
            gopc: g.gopc,
            startpc: g.startpc,
        },
        wait_reason: g.wait_reason,
    }))?;
    // Any that exited between the read and the seeding must not linger.
    let still_there: HashMap<u64, u64> = process
        .goroutines_at(binary, existing.iter().map(|g| g.g))
        .goroutines
        .iter()
        .map(|g| (g.g, g.goid))
        .collect();
    let gone: Vec<(u64, u64)> = existing
        .iter()
        .filter(|g| still_there.get(&g.g) != Some(&g.goid))
        .map(|g| (g.g, g.goid))
        .collect();
    probes.unseed(&gone)?;
    // A goroutine created after the probes attached but before allgs was read
    // is in both; the probes' record (with its creation time) wins, so it
    // counts as created while observed, not as pre-existing.
    let tracked = probes.goroutines()?;
    let mut baseline = HashMap::new();
    for g in &existing {
        let seeded = tracked
            .get(&g.g)
            .is_some_and(|t| t.goid == g.goid && t.is_seeded());
        if seeded {
            *baseline
                .entry(SiteKey {
                    gopc: g.gopc,
                    startpc: g.startpc,
                })
                .or_default() += 1;
        }
    }
    Ok(baseline)
}

fn take_sample(probes: &Probes, started: Instant) -> Result<Sample, Error> {
    Ok(Sample {
        elapsed_ns: elapsed_ns(started),
        events: probes.event_counts()?,
        sites: probes.site_counts()?,
    })
}

/// About twenty samples per window, between 100 ms and 1 s apart.
fn sampling_period(window: Option<Duration>) -> Duration {
    window.map_or(Duration::from_secs(1), |w| {
        (w / 20).clamp(Duration::from_millis(100), Duration::from_secs(1))
    })
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
