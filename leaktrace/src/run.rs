//! `leaktrace run -- CMD`: trace a command from its first instruction to its exit.

use std::{process::ExitStatus, time::Instant};

use anyhow::Context as _;
use leaktrace_gobinary::GoBinary;
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
};

use crate::{
    cli::RunArgs,
    launch::{HeldCommand, resolve_command},
    output::{self, TextStream},
    preflight,
    probes::{AtExit, Probes, next_exit_code},
    report::{Mode, Observation, Report, TargetInfo, Thresholds},
    target::{self, Frozen, Snapshot},
    tickers::{TickerMemory, TimerSemantics},
};

/// What the target's goroutines looked like as it called `runtime.exit`.
struct ExitSnapshot {
    snapshot: Option<Snapshot>,
    tickers: TickerMemory,
    load_bias: u64,
}

pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let path = resolve_command(&args.command[0])?;
    let binary = GoBinary::open(&path)?;
    binary
        .warnings
        .iter()
        .for_each(|w| output::note(format!("warning: {w}")));
    preflight::check_kernel()?;
    preflight::check_capabilities(false)?;

    let mut probes = Probes::load(&binary, AtExit::Stop, !args.probes.no_stacks)?;
    let held = HeldCommand::spawn(&path, &args.command)?;
    let pid = held.pid;
    if let Err(e) = probes.attach(&binary, &path, pid, args.probes.probe_placement) {
        target::send_signal(pid, libc::SIGKILL);
        return Err(e);
    }
    // SAFETY: the ring buffer owns its map fd, which stays open and unchanged
    // until the AsyncFd is dropped.
    let mut notices = unsafe { AsyncFd::register(probes.take_exit_notices()?) }
        .map_err(|e| e.into_parts().1)
        .context("watching the exit probe")?;
    let started = Instant::now();
    let mut child = held.release()?;

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut at_exit: Option<ExitSnapshot> = None;
    let status: ExitStatus = loop {
        tokio::select! {
            status = child.wait() => break status.context("waiting for the command")?,
            guard = notices.readable_mut() => {
                let mut guard = guard?;
                while next_exit_code(guard.get_inner_mut(), pid).is_some() {
                    at_exit = Some(snapshot_at_exit(pid, &binary, &probes).await);
                }
                guard.clear_ready();
            }
            // Ctrl-C and SIGTERM go to the command; its exit ends the trace.
            _ = interrupt.recv() => target::send_signal(pid, libc::SIGINT),
            _ = terminate.recv() => target::send_signal(pid, libc::SIGTERM),
        }
    };
    let observed_ns = started.elapsed().as_nanos() as u64;
    if at_exit.is_none() {
        // The notice can still be queued if the process exited as it was sent.
        if next_exit_code(notices.get_mut(), pid).is_some() {
            at_exit = Some(ExitSnapshot {
                snapshot: None,
                tickers: TickerMemory::default(),
                load_bias: 0,
            });
        }
    }
    let exit_code = exit_code_of(status);
    if at_exit.as_ref().is_none_or(|s| s.snapshot.is_none()) {
        output::note(format!(
            "{} ended without a clean exit ({}); live counts come from the probes alone",
            path.display(),
            describe(status)
        ));
    }

    let (snapshot, ticker_memory, load_bias) = match at_exit {
        Some(s) => (s.snapshot, s.tickers, s.load_bias),
        None => (None, TickerMemory::default(), 0),
    };
    let records = probes.goroutine_records()?;
    let tickers = probes.tickers()?;
    let report: Report = Observation {
        binary: &binary,
        mode: Mode::Run,
        target: TargetInfo {
            pid,
            executable: path.display().to_string(),
            go_version: binary.build.version_text.clone(),
        },
        observed_ns,
        exit_code: Some(exit_code),
        load_bias,
        snapshot,
        sites: probes.site_counters()?,
        creation_stacks: probes.creation_stacks(&records, &tickers),
        records,
        timeline: None,
        events: probes.event_counts()?,
        thresholds: Thresholds {
            stuck_after_ns: 0,
            min_growth: 1,
        },
        ignore: args.ignore.rules()?,
        tickers,
        ticker_memory,
        // The command runs with leaktrace's environment.
        timer_semantics: TimerSemantics::of(&binary, std::env::var("GODEBUG").ok().as_deref()),
    }
    .into_report(args.output.all);
    probes.detach();
    output::emit(&report, &args.output, TextStream::Stderr)?;

    Ok(if exit_code != 0 {
        exit_code
    } else if args.fail_on_leak && report.has_leaks() {
        crate::EXIT_LEAKS_FOUND
    } else {
        0
    })
}

/// The exit probe has sent SIGSTOP: wait for it to take hold, read, release.
/// The probes saw every goroutine since the first instruction, so the ones to
/// read are those they saw created and not destroyed.
async fn snapshot_at_exit(pid: u32, binary: &GoBinary, probes: &Probes) -> ExitSnapshot {
    let frozen = Frozen(pid);
    if !frozen.wait_stopped().await {
        output::note(
            "the command did not stop at exit in time; its goroutines are read while it runs",
        );
    }
    let load_bias = target::bias_of(pid, binary);
    let tracked = probes
        .goroutine_records()
        .map(|r| r.into_keys().collect::<Vec<_>>());
    let read = tracked.and_then(|tracked| target::read_goroutines_at(pid, binary, tracked));
    let snapshot = read
        .inspect_err(|e| {
            output::note(format!(
                "cannot read the command's goroutines at exit: {e:#}"
            ))
        })
        .ok();
    let tickers = probes
        .tickers()
        .and_then(|tickers| target::read_tickers(pid, binary, load_bias, &tickers))
        .inspect_err(|e| output::note(format!("cannot read the command's tickers at exit: {e:#}")))
        .unwrap_or_default();
    drop(frozen);
    ExitSnapshot {
        snapshot,
        tickers,
        load_bias,
    }
}

fn exit_code_of(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match status.signal() {
        Some(signal) => format!("killed by signal {signal}"),
        None => format!("exit status {}", status.code().unwrap_or(-1)),
    }
}
