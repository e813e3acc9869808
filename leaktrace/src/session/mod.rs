//! One pipeline for `leaktrace run` ([`run`]), `leaktrace -p` ([`attach`])
//! and `leaktrace agent` ([`agent`], `-p` for every Go process at once):
//! open the binary, plan and attach the probes, read the process, analyse
//! what was observed, render the report. The modes differ only in how they
//! start the target and how long they watch; [`Tracing::conclude`] is where
//! both end.

pub mod agent;
pub mod attach;
pub mod launch;
pub mod preflight;
pub mod run;
mod watch;

use std::{
    collections::{HashMap, HashSet},
    path::Path,
};

use leaktrace_gobinary::GoBinary;

use crate::{
    Error,
    analysis::{
        self, Observation, Policy, SampledEnd, Symbolizer, heap::HeapObservation,
        ignore::IgnoreRules, resources::DescriptorObservation, tickers::timer_semantics,
        timeline::Timeline, verdict::Thresholds,
    },
    cli::{OutputArgs, ProbeArgs},
    probes::{AtExit, ProbeError, ProbePoint, Probes, Settings, SiteCounts, TrackedTimer, plan},
    process::{Process, Snapshot, tickers::TickerMemory},
    render::{self, Destination, Format, TextStream},
    report::{CensusCost, EventCounts, Mode, Observing, ProbeCosts, Report, TargetInfo},
};

/// A binary whose probes are attached to one process.
struct Tracing {
    mode: Mode,
    observing: Observing,
    binary: GoBinary,
    probes: Probes,
    creation_stacks: bool,
}

/// How observing ended: the last counts, and what memory said then.
struct Ending {
    target: TargetInfo,
    observed_ns: u64,
    exit_code: Option<i32>,
    /// `run`: the goroutine that called `runtime.exit`.
    exiting_goroutine: Option<u64>,
    snapshot: Option<Snapshot>,
    /// CLOCK_MONOTONIC when the state above was read: what timers are
    /// pending, and for how long, is judged at this moment.
    clock_ns: u64,
    ticker_memory: TickerMemory,
    timeline: Option<Timeline>,
    events: EventCounts,
    sites: SiteCounts,
    /// To symbolize run-time PCs (0 when it could not be read).
    load_bias: u64,
    /// The target's GODEBUG environment variable.
    godebug: Option<String>,
    /// Sampled attach mode: the last census and what goes with it.
    sampled: Option<SampledEnd>,
    /// Sampled attach mode: censuses taken.
    censuses: u64,
    /// Sampled attach mode: the running tickers read from the timer heaps,
    /// by `*time.Ticker` (exact mode's come from its probes).
    heap_tickers: Option<HashMap<u64, TrackedTimer>>,
    /// The heap profile at the end (and, `-p`, at the start); `None` when
    /// not read.
    heap: Option<HeapObservation>,
    /// The target's descriptors; `None` when not read.
    descriptors: Option<DescriptorObservation>,
}

impl Tracing {
    /// Stage 2: loads the probes for `binary` and attaches them to `pid`,
    /// whose executable is reachable at `path`: every probe (`exact`), or
    /// only the exit probe, to which per-site probes are added later
    /// (`sampled`).
    fn start(
        mode: Mode,
        observing: Observing,
        binary: GoBinary,
        probe_args: &ProbeArgs,
        path: &Path,
        pid: u32,
    ) -> Result<Self, Error> {
        let at_exit = match mode {
            Mode::Run => AtExit::Stop,
            Mode::Attach => AtExit::Continue,
        };
        let creation_stacks = !probe_args.no_stacks;
        let mut probes = Probes::load(
            &binary,
            Settings {
                at_exit,
                creation_stacks,
                debug: probe_args.debug,
                few_sites: observing == Observing::Sampled,
                min_timer_ns: u64::try_from(probe_args.min_timer.as_nanos()).unwrap_or(u64::MAX),
                fd_tgid: if observing == Observing::Exact {
                    pid
                } else {
                    0
                },
            },
        )?;
        let points: Vec<ProbePoint> = match observing {
            Observing::Exact => {
                plan::probe_points(&binary, probe_args.probe_placement).map_err(ProbeError::from)?
            }
            Observing::Sampled => plan::exit_points(&binary).map_err(ProbeError::from)?,
        };
        probes.attach(&binary, &points, path, pid)?;
        // Descriptors are seen at every system call: not in sampled mode,
        // which must cost the target nothing.
        if observing == Observing::Exact
            && let Err(e) = probes.attach_descriptors()
        {
            render::note(format!(
                "descriptors not tracked: {}",
                crate::error::one_line(&e)
            ));
        }
        Ok(Self {
            mode,
            observing,
            binary,
            probes,
            creation_stacks,
        })
    }

    /// Stage 4: reads the kernel's tables, analyses, and detaches the probes
    /// (the target pays for them only while observed).
    fn conclude(self, ending: Ending, policy: &Policy) -> Result<Report, Error> {
        let report = self.analyse(ending, policy)?;
        self.probes.detach();
        Ok(report)
    }

    /// Stage 4 with the probes left in place: `leaktrace agent` reports
    /// again and again.
    fn analyse(&self, mut ending: Ending, policy: &Policy) -> Result<Report, Error> {
        let costs = self.costs(&ending)?;
        let goroutines = self.probes.goroutines()?;
        let timers = match ending.heap_tickers.take() {
            Some(tickers) => tickers,
            None => self.probes.timers()?,
        };
        let timer_counts = self.probes.timer_counts()?;
        let mut stacks = self.probes.stacks(
            goroutines
                .values()
                .flat_map(|g| [g.creation_stack, g.creator_stack])
                .flatten()
                .chain(timers.values().filter_map(|t| t.creation_stack))
                .chain(timer_counts.keys().flatten().copied())
                .chain(ending.descriptors.iter().flat_map(|d| {
                    let open = d
                        .open
                        .iter()
                        .flat_map(|(_, t, _)| [t.stack, t.creator_stack]);
                    let counted = d.counts.keys().flat_map(|&(s, c, _)| [s, c]);
                    open.chain(counted).flatten()
                })),
        )?;
        if let Some(sampled) = ending.sampled.as_mut() {
            sampled.creation_stacks = self.probes.site_stacks()?;
            let site_stacks = self.probes.stacks(
                sampled
                    .creation_stacks
                    .values()
                    .flatten()
                    .map(|&(id, _)| id),
            )?;
            // A site probe's stack starts at its own `CALL runtime.newproc`;
            // the `go` statement's return address, after it, names the line
            // as for every other creation stack (whose first frame is skipped).
            for (id, mut stack) in site_stacks {
                if let Some(&call) = stack.first() {
                    stack.insert(1, call.wrapping_add(5));
                }
                stacks.insert(id, stack);
            }
        }
        let build = &self.binary.build;
        let observation = Observation {
            mode: self.mode,
            target: ending.target,
            observed_ns: ending.observed_ns,
            exit_code: ending.exit_code,
            exiting_goroutine: ending.exiting_goroutine,
            snapshot: ending.snapshot,
            census: ending.sampled,
            sites: ending.sites,
            goroutines,
            timers,
            timer_counts,
            clock_ns: ending.clock_ns,
            ticker_memory: ending.ticker_memory,
            heap: ending.heap,
            descriptors: ending.descriptors,
            stacks,
            timeline: ending.timeline,
            events: ending.events,
            timer_semantics: timer_semantics(
                build.version,
                &build.version_text,
                self.binary.default_godebug("asynctimerchan"),
                ending.godebug.as_deref(),
            ),
            costs,
        };
        let symbolizer = Symbolizer::new(&self.binary, ending.load_bias);
        Ok(analysis::analyse(&observation, &symbolizer, policy))
    }
}

impl Tracing {
    /// What the probes cost the target, and the censuses leaktrace.
    fn costs(&self, ending: &Ending) -> Result<ProbeCosts, Error> {
        let probes = self
            .probes
            .costs(ending.observed_ns, self.creation_stacks)?;
        let estimated_target_ns = probes
            .iter()
            .map(|p| p.hits.saturating_mul(p.estimated_ns_per_hit))
            .fold(0u64, u64::saturating_add);
        let last_census = ending.sampled.as_ref().map(|s| CensusCost {
            goroutines: s.last.live,
            took_ns: u64::try_from(s.last.took.as_nanos()).unwrap_or(u64::MAX),
            bytes_read: s.last.bytes_read,
        });
        Ok(ProbeCosts {
            observing: self.observing,
            probes,
            estimated_target_ns,
            estimated_cpu_share: if ending.observed_ns == 0 {
                0.0
            } else {
                estimated_target_ns as f64 / ending.observed_ns as f64
            },
            censuses: ending.censuses,
            last_census,
        })
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

/// What memory says about the timers and tickers the probes track, as of
/// `now_ns` (CLOCK_MONOTONIC): their channels, which pending ones globals
/// hold, and what their func values run.
fn timer_memory(
    process: &Process,
    binary: &GoBinary,
    timers: &HashMap<u64, TrackedTimer>,
    now_ns: u64,
) -> TickerMemory {
    let pending: HashSet<u64> = timers
        .iter()
        .filter(|(_, t)| t.is_pending(now_ns))
        .map(|(&t, _)| t)
        .collect();
    let funcs: HashSet<u64> = timers.values().map(|t| t.func).collect();
    process.tickers(binary, timers.keys().copied(), &pending, funcs)
}

/// The descriptors the probes saw opened and not closed, with what
/// `/proc/PID/fd` says each is, and the counts per opening stack; without
/// probes (sampled `-p`), the counts by kind alone.
fn descriptors(
    probes: &Probes,
    pid: u32,
    observing: Observing,
    before_attach: Option<std::collections::BTreeMap<String, u64>>,
) -> DescriptorObservation {
    let now = crate::process::fds::read(pid);
    let at_end = crate::process::fds::count_by_kind(now.values());
    let (open, counts) = match observing {
        Observing::Exact => {
            let tracked = probes.fds().unwrap_or_default();
            // A descriptor /proc no longer lists was closed without a
            // close the probe saw: by exec (close-on-exec), or close_range.
            let open = tracked
                .into_iter()
                .filter_map(|(fd, t)| Some((fd, t, now.get(&fd)?.clone())))
                .collect();
            (open, probes.fd_counts().unwrap_or_default())
        }
        Observing::Sampled => (Vec::new(), Default::default()),
    };
    DescriptorObservation {
        open,
        counts,
        before_attach,
        at_end,
    }
}

fn elapsed_ns(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
