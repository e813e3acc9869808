//! `leaktrace run -- CMD`: trace a command from its first instruction to its exit.

use std::{path::Path, process::ExitStatus, time::Duration, time::Instant};

use leaktrace_gobinary::GoBinary;
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
};

use super::{
    Ending, Tracing, descriptors, destination, elapsed_ns, launch, policy, preflight, target_info,
    timer_memory,
};
use crate::{
    EXIT_LEAKS_FOUND, Error,
    analysis::{
        heap::HeapObservation, ignore::IgnoreRules, resources::DescriptorObservation,
        verdict::Thresholds,
    },
    cli::RunArgs,
    error::one_line,
    probes::{Probes, SiteCounts},
    process::{self, Frozen, Process, Snapshot, heap::HeapProfile, tickers::TickerMemory},
    render::{self, RenderError, TextStream},
    report::{EventCounts, Mode, Observing},
};

/// How often to check whether the held command has `exec`ed the Go program.
const EXEC_POLL: Duration = Duration::from_millis(1);

/// What the target's goroutines looked like as it called `runtime.exit`.
#[derive(Default)]
struct AtExit {
    snapshot: Option<Snapshot>,
    tickers: TickerMemory,
    /// CLOCK_MONOTONIC while the command was stopped at exit.
    clock_ns: u64,
    /// The heap profile at exit, or why not.
    heap: Option<Result<HeapProfile, String>>,
    descriptors: Option<DescriptorObservation>,
    /// The probes' counts, read with the snapshot while the command was
    /// stopped: once it resumes to exit, a goroutine it had woken may still
    /// run and end, and be counted as exited while the snapshot has it live.
    counts: Option<(EventCounts, SiteCounts)>,
}

pub async fn run(args: RunArgs) -> Result<i32, Error> {
    let path = launch::resolve_command(&args.command[0])?;
    let binary = GoBinary::open(&path)?;
    super::warn_about(&binary);
    preflight::check(false)?;
    let policy = policy(
        IgnoreRules::from_args(&args.ignore)?,
        Thresholds {
            stuck_after_ns: 0,
            min_growth: 1,
        },
        &args.output,
    );

    let held = launch::HeldCommand::spawn(&path, &args.command)?;
    let pid = held.pid;
    let mut tracing = match Tracing::start(
        Mode::Run,
        Observing::Exact,
        binary,
        &args.probes,
        &path,
        pid,
    ) {
        Ok(tracing) => tracing,
        Err(e) => {
            process::send_signal(pid, libc::SIGKILL);
            return Err(e);
        }
    };
    // SAFETY: the ring buffer owns its map fd, which stays open and unchanged
    // until the AsyncFd is dropped.
    let mut notices = unsafe { AsyncFd::register(tracing.probes.take_exit_notices()?) }
        .map_err(|e| Error::io("watching the exit probe", e.into_parts().1))?;
    // Handle Ctrl-C and SIGTERM before the command runs: one that came in
    // between would kill leaktrace and leave the command orphaned.
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|source| Error::io("handling SIGINT", source))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|source| Error::io("handling SIGTERM", source))?;
    let started = Instant::now();
    let mut child = held.release()?;
    let mut exec_poll = tokio::time::interval(EXEC_POLL);
    // The Go program's image, once the trampoline has exec'd it.
    let mut process: Option<Process> = None;
    let mut at_exit: Option<AtExit> = None;
    let mut exiting_goroutine = None;
    let status: ExitStatus = loop {
        tokio::select! {
            status = child.wait() => {
                break status.map_err(|source| Error::io("waiting for the command", source))?
            }
            _ = exec_poll.tick(), if process.is_none() => {
                process = open_after_exec(pid, &tracing.binary, &path);
            }
            guard = notices.readable_mut() => {
                let mut guard = guard.map_err(|source| Error::io("watching the exit probe", source))?;
                while let Some(exit) = guard.get_inner_mut().next_exit(pid) {
                    exiting_goroutine = exit.exiting_goroutine;
                    if process.is_none() {
                        process = open_after_exec(pid, &tracing.binary, &path);
                    }
                    at_exit = Some(snapshot_at_exit(pid, process.as_ref(), &tracing).await);
                }
                guard.clear_ready();
            }
            // Ctrl-C and SIGTERM go to the command; its exit ends the trace.
            _ = interrupt.recv() => process::send_signal(pid, libc::SIGINT),
            _ = terminate.recv() => process::send_signal(pid, libc::SIGTERM),
        }
    };
    let observed_ns = elapsed_ns(started);
    // The notice can still be queued if the process exited as it was sent.
    if at_exit.is_none() && notices.get_mut().next_exit(pid).is_some() {
        at_exit = Some(AtExit::default());
    }
    let exit_code = exit_code_of(status);
    let at_exit = at_exit.unwrap_or_default();
    if at_exit.snapshot.is_none() {
        render::note(format!(
            "{} ended without a clean exit ({}); live counts come from the probes alone",
            path.display(),
            describe(status)
        ));
    }
    let load_bias = process.as_ref().map_or(0, Process::load_bias);
    let (events, sites) = match at_exit.counts {
        Some(counts) => counts,
        None => (
            tracing.probes.event_counts()?,
            tracing.probes.site_counts()?,
        ),
    };
    let ending = Ending {
        target: target_info(pid, &path, &tracing.binary),
        observed_ns,
        exit_code: Some(exit_code),
        exiting_goroutine,
        snapshot: at_exit.snapshot,
        clock_ns: if at_exit.clock_ns == 0 {
            process::monotonic_ns()
        } else {
            at_exit.clock_ns
        },
        ticker_memory: at_exit.tickers,
        timeline: None,
        events,
        sites,
        load_bias,
        // The command runs with leaktrace's environment.
        godebug: std::env::var("GODEBUG").ok(),
        sampled: None,
        censuses: 0,
        heap_tickers: None,
        heap: at_exit.heap.map(|after| HeapObservation {
            before: None,
            between: Vec::new(),
            after,
        }),
        descriptors: at_exit.descriptors,
    };
    let report = tracing.conclude(ending, &policy)?;
    // A profile that cannot be written does not cost the user the report.
    let side_files = render::write_side_files(
        &report,
        args.output.pprof.as_deref(),
        args.output.sarif.as_deref(),
    );
    match render::emit(&report, &destination(&args.output, TextStream::Stderr)) {
        // The command's status still stands when nobody reads the report.
        Err(RenderError::Closed) | Ok(()) => {}
        Err(e) => return Err(e.into()),
    }
    if args.fail_on_leak && render::github::in_github_actions() {
        match render::github_annotations(&report) {
            Err(RenderError::Closed) | Ok(()) => {}
            Err(e) => return Err(e.into()),
        }
    }
    side_files?;

    Ok(if exit_code != 0 {
        exit_code
    } else if (args.fail_on_leak && report.has_leaks())
        || (args.fail_on_unclosed && report.has_unclosed_resources())
    {
        EXIT_LEAKS_FOUND
    } else {
        0
    })
}

/// The process, once `/proc/PID/exe` is the Go program rather than the
/// trampoline: only then do its memory and load bias mean anything.
fn open_after_exec(pid: u32, binary: &GoBinary, path: &Path) -> Option<Process> {
    process::runs_file(pid, path)
        .then(|| Process::open(pid, binary).ok())
        .flatten()
}

/// The exit probe has sent SIGSTOP: wait for it to take hold, read, release.
/// The probes saw every goroutine since the first instruction, so the ones to
/// read are those they saw created and not destroyed.
async fn snapshot_at_exit(pid: u32, process: Option<&Process>, tracing: &Tracing) -> AtExit {
    // Released when this returns, whatever happens.
    let frozen = Frozen(pid);
    let Some(process) = process else {
        render::note("cannot read the command's memory at exit");
        return AtExit::default();
    };
    if !frozen.wait_stopped().await {
        render::note(
            "the command did not stop at exit in time; its goroutines are read while it runs",
        );
    }
    let snapshot = read_tracked(process, &tracing.binary, &tracing.probes)
        .inspect_err(|e| {
            render::note(format!(
                "cannot read the command's goroutines at exit: {}",
                one_line(e)
            ))
        })
        .ok()
        // Killed while being read (SIGKILL, or its memory gone): part of a
        // snapshot would look complete and be wrong; the probes' counts stand.
        .filter(|snapshot| {
            let whole = snapshot.dropped == 0;
            if !whole {
                render::note(format!(
                    "the command ended while its goroutines were read ({} could not be read); \
                     live counts come from the probes alone",
                    snapshot.dropped
                ));
            }
            whole
        });
    let clock_ns = process::monotonic_ns();
    let tickers = match tracing.probes.timers() {
        Ok(timers) => timer_memory(process, &tracing.binary, &timers, clock_ns),
        Err(e) => {
            render::note(format!(
                "cannot read the command's timers at exit: {}",
                one_line(&e)
            ));
            TickerMemory::default()
        }
    };
    let heap = process
        .heap_profile(&tracing.binary)
        .map_err(|e| one_line(&e));
    let descriptors = descriptors(&tracing.probes, pid, Observing::Exact, None);
    let counts = tracing
        .probes
        .event_counts()
        .and_then(|events| Ok((events, tracing.probes.site_counts()?)))
        .ok();
    drop(frozen);
    AtExit {
        snapshot,
        tickers,
        clock_ns,
        heap: Some(heap),
        descriptors: Some(descriptors),
        counts,
    }
}

fn read_tracked(
    process: &Process,
    binary: &GoBinary,
    probes: &Probes,
) -> Result<Snapshot, crate::probes::ProbeError> {
    let tracked = probes.goroutines()?;
    Ok(process.goroutines_at(binary, tracked.into_keys()))
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
