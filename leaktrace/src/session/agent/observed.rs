//! One process under `leaktrace agent`: sampled as `leaktrace -p` samples,
//! with a window that slides, reported again and again.

use std::time::{Duration, Instant};

use leaktrace_gobinary::GoBinary;

use super::discovery::Candidate;
use crate::{
    Error,
    analysis::{Policy, Symbolizer, timeline::Timeline},
    cli::ProbeArgs,
    process::{self, Process},
    render::prometheus::{ProcessLabels, ProcessMetrics},
    report::{Mode, Observing, Report},
    session::{Ending, Tracing, elapsed_ns, target_info, watch::Watch},
};

pub struct Observed {
    pub candidate: Candidate,
    pub labels: ProcessLabels,
    tracing: Tracing,
    process: Process,
    watch: Watch,
    /// The executable as the process names it.
    shown: std::path::PathBuf,
    godebug: Option<String>,
    attached: Instant,
    /// When the reported window began, and the next window, begun half a
    /// window later, which replaces it when it is a window old.
    window_start: Instant,
    next_window: Option<Timeline>,
    next_sample: Instant,
}

impl Observed {
    /// Attaches the exit probe and takes the first censuses.
    pub async fn start(
        candidate: Candidate,
        binary: GoBinary,
        probe_args: &ProbeArgs,
    ) -> Result<Self, Error> {
        let pid = candidate.identity.pid;
        let executable = process::executable_of(pid)?;
        let process = Process::open(pid, &binary)?;
        let godebug = process.godebug();
        let mut tracing = Tracing::start(
            Mode::Attach,
            Observing::Sampled,
            binary,
            probe_args,
            &executable.path,
            pid,
        )?;
        let attached = Instant::now();
        let watch = Watch::sampled(&mut tracing, &process, attached).await?;
        let labels = ProcessLabels {
            pid,
            exe: candidate.exe.clone(),
            go_version: tracing.binary.build.version_text.clone(),
            container_id: candidate.container.id.clone(),
            pod_uid: candidate.container.pod_uid.clone(),
        };
        Ok(Self {
            candidate,
            labels,
            tracing,
            process,
            watch,
            shown: executable.shown,
            godebug,
            attached,
            window_start: attached,
            next_window: None,
            next_sample: Instant::now(),
        })
    }

    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.next_sample
    }

    /// A census; the window slides by half when it is a window old.
    /// `false` if none could be taken (the process is exiting).
    pub fn sample(&mut self, period: Duration, window: Duration) -> Result<bool, Error> {
        let symbolizer = Symbolizer::new(&self.tracing.binary, self.process.load_bias());
        let sampled = self.watch.sample(
            &mut self.tracing.probes,
            &self.tracing.binary,
            &self.process,
            &symbolizer,
            self.attached,
        )?;
        drop(symbolizer);
        self.next_sample = Instant::now() + self.watch.period(period);
        if let (Some(next), Some(sample)) = (self.next_window.as_mut(), self.watch.timeline.last())
        {
            next.push(sample.clone());
        }
        let age = self.window_start.elapsed();
        if age >= window
            && let Some(next) = self.next_window.take()
        {
            self.watch.timeline = next;
            self.window_start += window / 2;
        } else if age >= window / 2
            && self.next_window.is_none()
            && let Some(live) = self.watch.live_per_site()
        {
            self.next_window = Some(Timeline::new(live));
        }
        Ok(sampled)
    }

    /// The report of the window so far, as metrics.
    pub fn metrics(&mut self, policy: &Policy, max_sites: usize) -> Result<ProcessMetrics, Error> {
        let report = self.report(policy)?;
        Ok(ProcessMetrics::from_report(
            self.labels.clone(),
            &report,
            max_sites,
        ))
    }

    fn report(&mut self, policy: &Policy) -> Result<Report, Error> {
        let Some(end) = self
            .watch
            .so_far(&self.tracing, &self.process, self.attached)?
        else {
            return Err(Error::io("reporting", std::io::Error::other("not sampled")));
        };
        let ending = Ending {
            target: target_info(self.labels.pid, &self.shown, &self.tracing.binary),
            observed_ns: elapsed_ns(self.window_start),
            exit_code: None,
            exiting_goroutine: None,
            snapshot: end.snapshot,
            clock_ns: end.clock_ns,
            ticker_memory: end.ticker_memory,
            timeline: Some(self.watch.timeline.clone()),
            events: end.events,
            sites: end.sites,
            load_bias: self.process.load_bias(),
            godebug: self.godebug.clone(),
            sampled: end.sampled,
            heap_tickers: end.tickers,
            heap: None,
            descriptors: None,
            censuses: self.watch.censuses,
        };
        self.tracing.analyse(ending, policy)
    }

    /// Detaches every probe from the process (gone, or the agent stopping).
    pub fn stop(self) {
        self.tracing.probes.detach();
    }
}
