//! `leaktrace -p PID`: observe a running process for a while, then report.

use std::time::{Duration, Instant};

use leaktrace_gobinary::GoBinary;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    cli::AttachArgs,
    output::{self, TextStream},
    preflight,
    probes::{AtExit, Probes, next_exit_code},
    report::{AttachThresholds, Mode, Observation, TargetInfo, text},
    target,
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

    let mut probes = Probes::load(&binary, AtExit::Continue)?;
    probes.attach(&binary, &exe, pid, args.probes.probe_placement)?;
    let mut exit_notices = probes.take_exit_notices()?;
    let load_bias = target::bias_of(pid, &binary);
    let started = Instant::now();
    output::note(format!(
        "tracing pid {pid} ({}, {}){}; Ctrl-C to stop",
        shown_path.display(),
        binary.build.version_text,
        args.duration
            .map(|d| format!(" for {}", text::duration(d.as_nanos() as u64)))
            .unwrap_or_default()
    ));

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let deadline = tokio::time::sleep(args.duration.unwrap_or(Duration::MAX / 4));
    tokio::pin!(deadline);
    let mut liveness = tokio::time::interval(LIVENESS_POLL);
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
        }
    };
    let observed_ns = started.elapsed().as_nanos() as u64;

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
            output::note(format!("cannot list the goroutines that predate the attach ({e:#}); reporting those created while observed"));
            let tracked = probes.goroutine_records()?;
            target::read_goroutines_at(pid, &binary, tracked.keys().copied())
        });
        match snapshot {
            Ok(snapshot) => Some(snapshot),
            Err(e) => {
                output::note(format!(
                    "cannot read the goroutines of process {pid}: {e:#}"
                ));
                None
            }
        }
    };
    let (snapshot, now_ns) = match snapshot {
        Some((goroutines, now)) => (Some(goroutines), now),
        None => (None, target::monotonic_ns()),
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
        now_ns,
        sites: probes.site_counters()?,
        records: probes.goroutine_records()?,
        events: probes.event_counts()?,
        thresholds: AttachThresholds {
            stuck_after_ns: args.stuck_after.as_nanos() as u64,
        },
    }
    .into_report(args.output.all);
    // Detach before printing: the target pays for probes only while observed.
    probes.detach();
    output::emit(&report, &args.output, TextStream::Stdout)?;
    Ok(0)
}

fn same_user(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let owner = std::fs::metadata(format!("/proc/{pid}"))
        .map(|m| m.uid())
        .ok();
    // SAFETY: geteuid has no preconditions.
    owner == Some(unsafe { libc::geteuid() })
}
