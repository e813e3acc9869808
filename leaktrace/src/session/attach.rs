//! `leaktrace -p PID`: observe a running process for a while, then report.
//!
//! By default (sampled), the goroutines are counted from the target's memory
//! by repeated censuses ([`crate::process::census`]), which cost the target
//! nothing; the only probes are on `runtime.exit` and on the `go`
//! statements whose goroutines stay blocked and never end, for their
//! creation stacks.
//!
//! With `--exact`, every creation, exit and park is probed. After the probes
//! are attached, the goroutines that already exist are read from
//! `runtime.allgs` and added to the kernel's table, so from then on the exit
//! and park probes track old and new goroutines alike: none is counted twice,
//! and none is missed (a goroutine created while the table is read is
//! recorded by the probes; one that exits meanwhile is found dead when the
//! seeded entries are checked, and removed).
//!
//! Either way, per-site live counts are sampled over the window for the
//! growth verdict, the live view and `--interval`.

use std::{
    io::IsTerminal as _,
    time::{Duration, Instant},
};

use leaktrace_gobinary::GoBinary;
use tokio::signal::unix::{SignalKind, signal};

use super::{
    Ending, Tracing, destination, elapsed_ns, policy, preflight, target_info,
    watch::{CENSUS_PERIOD, Watch, duration_ns, sampling_period},
};
use crate::{
    Error,
    analysis::{Symbolizer, ignore::IgnoreRules, interval::interval, verdict::Thresholds},
    cli::AttachArgs,
    process::{self, Process},
    render::{self, TextStream, json, live_view::LiveView, text},
    report::{Mode, Observing},
};

/// How often to check that the target still exists.
const LIVENESS_POLL: Duration = Duration::from_millis(100);

pub async fn attach(args: AttachArgs, pid: u32) -> Result<i32, Error> {
    let executable = process::executable_of(pid)?;
    let binary = GoBinary::open_as(&executable.path, &executable.shown)?;
    super::warn_about(&binary);
    preflight::check(!process::is_own(pid))?;
    let policy = policy(
        IgnoreRules::from_args(&args.ignore)?,
        Thresholds {
            stuck_after_ns: duration_ns(args.stuck_after),
            min_growth: args.min_growth,
        },
        &args.output,
    );
    let process = Process::open(pid, &binary)?;
    let godebug = process.godebug();
    let observing = if args.exact {
        Observing::Exact
    } else {
        Observing::Sampled
    };

    let mut tracing = Tracing::start(
        Mode::Attach,
        observing,
        binary,
        &args.probes,
        &executable.path,
        pid,
    )?;
    let mut exit_notices = tracing.probes.take_exit_notices()?;
    let started = Instant::now();
    let mut watch = match observing {
        Observing::Exact => Watch::exact(&mut tracing, &process)?,
        Observing::Sampled => Watch::sampled(&mut tracing, &process, started).await?,
    };
    watch.read_heap_at_start(&tracing, &process);
    let descriptors_before =
        crate::process::fds::count_by_kind(crate::process::fds::read(pid).values());
    render::note(format!(
        "tracing pid {pid} ({}, {}), {} goroutines already running{}; Ctrl-C to stop",
        executable.shown.display(),
        tracing.binary.build.version_text,
        watch.timeline.baseline_total(),
        args.duration
            .map(|d| format!(", for {}", text::duration(duration_ns(d))))
            .unwrap_or_default()
    ));

    let symbolizer = Symbolizer::new(&tracing.binary, process.load_bias());
    let mut live_view =
        (args.interval.is_none() && !args.output.json && std::io::stderr().is_terminal())
            .then(|| LiveView::new(pid));
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|source| Error::io("handling SIGINT", source))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|source| Error::io("handling SIGTERM", source))?;
    // The window counts from the attach, first censuses included.
    let deadline = tokio::time::sleep_until(
        tokio::time::Instant::from_std(started) + args.duration.unwrap_or(Duration::MAX / 4),
    );
    tokio::pin!(deadline);
    let mut liveness = tokio::time::interval(LIVENESS_POLL);
    // --interval is the user's to choose; otherwise censuses keep to their
    // duty cycle.
    let default_period = match observing {
        Observing::Exact => sampling_period(args.duration),
        Observing::Sampled => CENSUS_PERIOD,
    };
    let period = |watch: &Watch| {
        args.interval
            .unwrap_or_else(|| watch.period(default_period))
    };
    let next_sample = tokio::time::sleep(period(&watch));
    tokio::pin!(next_sample);
    let mut exit_code = None;
    let target_exited = loop {
        tokio::select! {
            _ = &mut deadline => break false,
            _ = interrupt.recv() => break false,
            _ = terminate.recv() => break false,
            _ = liveness.tick() => {
                tracing.probes.flush_logs();
                exit_code = exit_code.or_else(|| exit_notices.next_exit(pid).map(|e| e.code));
                if !process::is_alive(pid) { break true }
            }
            _ = &mut next_sample => {
                let sampled = watch.sample(&mut tracing.probes, &tracing.binary, &process, &symbolizer, started)?;
                next_sample
                    .as_mut()
                    .reset(tokio::time::Instant::now() + period(&watch));
                if !sampled {
                    continue;
                }
                let Some(interval) = interval(&symbolizer, &watch.timeline) else { continue };
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
    if target_exited {
        let how = exit_code.map_or_else(
            || "was killed".to_string(),
            |code| format!("exited with status {code}"),
        );
        render::note(format!(
            "process {pid} {how} while observed; reporting what was seen until then"
        ));
    }
    let end = watch.finish(&mut tracing, &process, started, target_exited)?;
    let ending = Ending {
        target: target_info(pid, &executable.shown, &tracing.binary),
        observed_ns,
        exit_code,
        // A process that exits while attached is not read at its exit.
        exiting_goroutine: None,
        snapshot: end.snapshot,
        clock_ns: end.clock_ns,
        ticker_memory: end.ticker_memory,
        timeline: Some(watch.timeline),
        events: end.events,
        sites: end.sites,
        load_bias: process.load_bias(),
        godebug,
        sampled: end.sampled,
        heap_tickers: end.tickers,
        heap: end.heap,
        descriptors: (!target_exited)
            .then(|| super::descriptors(&tracing.probes, pid, observing, Some(descriptors_before))),
        censuses: watch.censuses,
    };
    let report = tracing.conclude(ending, &policy)?;
    // A profile that cannot be written does not cost the user the report.
    let side_files = render::write_side_files(
        &report,
        args.output.pprof.as_deref(),
        args.output.sarif.as_deref(),
    );
    if args.interval.is_some() && args.output.output.is_none() {
        // NDJSON: the report is the last line.
        render::line(&json::render_line(&report))?;
    } else {
        render::emit(&report, &destination(&args.output, TextStream::Stdout))?;
    }
    side_files?;
    Ok(0)
}
