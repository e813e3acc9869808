//! One pipeline for `leaktrace run` ([`run`]) and `leaktrace -p` ([`attach`]):
//! open the binary, plan and attach the probes, read the process, analyse
//! what was observed, render the report. The modes differ only in how they
//! start the target and how long they watch; [`Tracing::conclude`] is where
//! both end.

pub mod attach;
pub mod launch;
pub mod preflight;
pub mod run;

use std::path::Path;

use leaktrace_gobinary::GoBinary;

use crate::{
    Error,
    analysis::{
        self, Observation, Policy, Symbolizer, ignore::IgnoreRules, tickers::timer_semantics,
        timeline::Timeline, verdict::Thresholds,
    },
    cli::{OutputArgs, ProbeArgs},
    probes::{AtExit, ProbeError, Probes, Settings, SiteCounts, plan},
    process::{Snapshot, tickers::TickerMemory},
    render::{self, Destination, Format, TextStream},
    report::{EventCounts, Mode, Report, TargetInfo},
};

/// A binary whose probes are attached to one process.
struct Tracing {
    mode: Mode,
    binary: GoBinary,
    probes: Probes,
}

/// How observing ended: the last counts, and what memory said then.
struct Ending {
    target: TargetInfo,
    observed_ns: u64,
    exit_code: Option<i32>,
    snapshot: Option<Snapshot>,
    ticker_memory: TickerMemory,
    timeline: Option<Timeline>,
    events: EventCounts,
    sites: SiteCounts,
    /// To symbolize run-time PCs (0 when it could not be read).
    load_bias: u64,
    /// The target's GODEBUG environment variable.
    godebug: Option<String>,
}

impl Tracing {
    /// Stages 1 and 2: checks the machine, then loads the probes for `binary`
    /// and attaches them to `pid`, whose executable is reachable at `path`.
    fn start(
        mode: Mode,
        binary: GoBinary,
        probe_args: &ProbeArgs,
        path: &Path,
        pid: u32,
    ) -> Result<Self, Error> {
        let at_exit = match mode {
            Mode::Run => AtExit::Stop,
            Mode::Attach => AtExit::Continue,
        };
        let mut probes = Probes::load(
            &binary,
            Settings {
                at_exit,
                creation_stacks: !probe_args.no_stacks,
            },
        )?;
        let points =
            plan::probe_points(&binary, probe_args.probe_placement).map_err(ProbeError::from)?;
        probes.attach(&binary, &points, path, pid)?;
        Ok(Self {
            mode,
            binary,
            probes,
        })
    }

    /// Stage 4: reads the kernel's tables, analyses, and detaches the probes
    /// (the target pays for them only while observed).
    fn conclude(self, ending: Ending, policy: &Policy) -> Result<Report, Error> {
        let goroutines = self.probes.goroutines()?;
        let tickers = self.probes.tickers()?;
        let stacks = self.probes.stacks(
            goroutines
                .values()
                .filter_map(|g| g.creation_stack)
                .chain(tickers.values().filter_map(|t| t.creation_stack)),
        )?;
        let build = &self.binary.build;
        let observation = Observation {
            mode: self.mode,
            target: ending.target,
            observed_ns: ending.observed_ns,
            exit_code: ending.exit_code,
            snapshot: ending.snapshot,
            sites: ending.sites,
            goroutines,
            tickers,
            ticker_memory: ending.ticker_memory,
            stacks,
            timeline: ending.timeline,
            events: ending.events,
            timer_semantics: timer_semantics(
                build.version,
                &build.version_text,
                self.binary.default_godebug("asynctimerchan"),
                ending.godebug.as_deref(),
            ),
        };
        let symbolizer = Symbolizer::new(&self.binary, ending.load_bias);
        let report = analysis::analyse(&observation, &symbolizer, policy);
        self.probes.detach();
        Ok(report)
    }
}

/// Stage 1: what the user should know about the binary.
fn warn_about(binary: &GoBinary) {
    for warning in &binary.warnings {
        render::note(format!("warning: {warning}"));
    }
}

fn policy(ignore: IgnoreRules, thresholds: Thresholds, output: &OutputArgs) -> Policy {
    Policy {
        thresholds,
        ignore,
        include_all: output.all,
    }
}

fn destination(output: &OutputArgs, text_stream: TextStream) -> Destination {
    Destination {
        format: if output.json {
            Format::Json
        } else {
            Format::Text
        },
        file: output.output.clone(),
        text_stream,
    }
}

fn target_info(pid: u32, executable: &Path, binary: &GoBinary) -> TargetInfo {
    TargetInfo {
        pid,
        executable: executable.display().to_string(),
        go_version: binary.build.version_text.clone(),
    }
}

fn elapsed_ns(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
