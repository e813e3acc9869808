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
        self, SampledEnd, Symbolizer,
        ignore::IgnoreRules,
        interval::interval,
        timeline::{Sample, Timeline},
        verdict::Thresholds,
    },
    cli::AttachArgs,
    error::one_line,
    probes::{Probes, Seed, SiteCounts, TrackedTicker, plan},
    process::{
        self, Process, Snapshot,
        census::{Census, CensusResult, unwind_stopped},
        tickers::TickerMemory,
    },
    render::{self, TextStream, json, live_view::LiveView, text},
    report::{EventCounts, Mode, Observing},
};

/// How often to check that the target still exists.
const LIVENESS_POLL: Duration = Duration::from_millis(100);

pub async fn attach(args: AttachArgs, pid: u32) -> Result<i32, Error> {
    let executable = process::executable_of(pid)?;
    let binary = GoBinary::open_as(&executable.path, &executable.shown)?;
    super::warn_about(&binary);
    preflight::check_kernel()?;
    preflight::check_capabilities(!process::is_own(pid))?;
    preflight::check_uprobe_permission()?;
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
        ticker_memory: end.ticker_memory,
        timeline: Some(watch.timeline),
        events: end.events,
        sites: end.sites,
        load_bias: process.load_bias(),
        godebug,
        sampled: end.sampled,
        heap_tickers: end.tickers,
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

/// How often, at most, sampled mode takes a census.
const CENSUS_PERIOD: Duration = Duration::from_millis(100);
/// Sampled mode waits this long between censuses for each second one
/// takes: leaktrace then spends at most 1/20 of a CPU reading memory.
const CENSUS_DUTY: u32 = 20;
/// A first census quicker than this is followed at once by a second.
const QUICK_CENSUS: Duration = Duration::from_millis(50);
/// Sampled mode probes at most this many `go` statements for creation stacks.
const MAX_SITE_PROBES: usize = 64;

/// What one attach window has seen so far, by either way of observing.
struct Watch {
    timeline: Timeline,
    /// Sampled mode: the census state and its last result.
    census: Option<(Census, CensusResult)>,
    /// Sampled mode: the `go` statements probed for creation stacks.
    probed_sites: HashSet<u64>,
    /// Sampled mode: whether to probe suspect sites for creation stacks
    /// (not with `--no-stacks`).
    probe_sites: bool,
    /// Exact mode: the site counters when the goroutines were read.
    zero: SiteCounts,
    censuses: u64,
}

/// What the window ended with.
struct WatchEnd {
    snapshot: Option<Snapshot>,
    ticker_memory: TickerMemory,
    /// Sampled mode: the running tickers in the timer heaps (exact mode
    /// takes them from its probes).
    tickers: Option<HashMap<u64, TrackedTicker>>,
    sampled: Option<SampledEnd>,
    events: EventCounts,
    sites: SiteCounts,
}

impl Watch {
    /// Exact mode: the goroutines that exist are read and added to the
    /// probes' table; from then on the probes count every event.
    ///
    /// The probes were attached one by one, each while the target ran: what
    /// they counted before the goroutines are read is in the baseline, not
    /// in the window, so the counters are read just before and taken as zero.
    fn exact(tracing: &mut Tracing, process: &Process) -> Result<Self, Error> {
        let zero = tracing.probes.site_counts()?;
        let baseline = seed_existing_goroutines(&mut tracing.probes, process, &tracing.binary)?;
        let mut watch = Self {
            timeline: Timeline::new(baseline),
            census: None,
            probed_sites: HashSet::new(),
            probe_sites: false,
            censuses: 0,
            zero,
        };
        let sites = watch.since_zero(tracing.probes.site_counts()?);
        watch.timeline.push(Sample {
            elapsed_ns: 0,
            events: tracing.probes.event_counts()?,
            sites,
        });
        Ok(watch)
    }

    /// Exact mode: the site counters since the goroutines were read.
    fn since_zero(&self, mut counts: SiteCounts) -> SiteCounts {
        for (site, counters) in &mut counts {
            if let Some(zero) = self.zero.get(site) {
                counters.created = counters.created.saturating_sub(zero.created);
                counters.exited = counters.exited.saturating_sub(zero.exited);
                counters.exited_preexisting = counters
                    .exited_preexisting
                    .saturating_sub(zero.exited_preexisting);
            }
        }
        counts
    }

    /// Sampled mode: a first census is the baseline; a second one, shortly
    /// after, shows which goroutines stay blocked, and their `go`
    /// statements are probed for creation stacks before observing starts.
    /// When a census is slow (many goroutines), that waits for the next one,
    /// so that the first report is not delayed.
    async fn sampled(
        tracing: &mut Tracing,
        process: &Process,
        started: Instant,
    ) -> Result<Self, Error> {
        let mut census = process.census(&tracing.binary)?;
        let first = process.take_census(&mut census, &HashSet::new())?;
        let mut watch = Self {
            timeline: Timeline::new(first.live_per_site()),
            census: None,
            probed_sites: HashSet::new(),
            probe_sites: tracing.creation_stacks,
            censuses: 1,
            zero: SiteCounts::new(),
        };
        let first_sample = census_sample(&first, &tracing.probes, started)?;
        watch.timeline.push(first_sample);
        let quick = first.took < QUICK_CENSUS;
        watch.census = Some((census, first));
        if !quick {
            return Ok(watch);
        }
        tokio::time::sleep(CENSUS_PERIOD).await;
        let symbolizer = Symbolizer::new(&tracing.binary, process.load_bias());
        watch.sample(
            &mut tracing.probes,
            &tracing.binary,
            process,
            &symbolizer,
            started,
        )?;
        Ok(watch)
    }

    /// How long to wait for the next sample: `base`, or longer after a slow
    /// census.
    fn period(&self, base: Duration) -> Duration {
        match &self.census {
            Some((_, last)) => base.max(last.took * CENSUS_DUTY),
            None => base,
        }
    }

    /// Adds a sample to the timeline; `false` if none could be taken.
    fn sample(
        &mut self,
        probes: &mut Probes,
        binary: &GoBinary,
        process: &Process,
        symbolizer: &Symbolizer<'_>,
        started: Instant,
    ) -> Result<bool, Error> {
        let Some((census, last)) = self.census.as_mut() else {
            let sites = self.since_zero(probes.site_counts()?);
            self.timeline.push(Sample {
                elapsed_ns: elapsed_ns(started),
                events: probes.event_counts()?,
                sites,
            });
            return Ok(true);
        };
        // The target may be exiting: the liveness poll will say so.
        let Ok(result) = process.take_census(census, &HashSet::new()) else {
            return Ok(false);
        };
        self.censuses += 1;
        self.timeline.push(census_sample(&result, probes, started)?);
        let suspects = if self.probe_sites {
            analysis::suspects(&result, symbolizer)
        } else {
            Vec::new()
        };
        for gopc in suspects {
            if self.probed_sites.len() >= MAX_SITE_PROBES || !self.probed_sites.insert(gopc) {
                continue;
            }
            let link_time = gopc.wrapping_sub(process.load_bias());
            let Some(point) = plan::site_point(binary, link_time) else {
                continue;
            };
            let path = std::path::PathBuf::from(format!("/proc/{}/exe", process.pid()));
            if let Err(e) = probes.attach_point(binary, &point, &path, process.pid()) {
                render::note(format!(
                    "cannot record creation stacks at {}+{:#x}: {}",
                    point.function,
                    point.offset,
                    one_line(&e)
                ));
            }
        }
        *last = result;
        Ok(true)
    }

    /// The last counts, and what memory says at the end.
    fn finish(
        &mut self,
        tracing: &mut Tracing,
        process: &Process,
        started: Instant,
        target_exited: bool,
    ) -> Result<WatchEnd, Error> {
        let Some((census, last)) = self.census.as_mut() else {
            let sites = self.since_zero(tracing.probes.site_counts()?);
            return exact_end(
                &mut self.timeline,
                sites,
                tracing,
                process,
                started,
                target_exited,
            );
        };
        // Tickers from the timer heaps first, so that the last census can
        // tell which goroutines wait on their channels.
        let (tickers, ticker_memory) = if target_exited {
            (HashMap::new(), TickerMemory::default())
        } else {
            heap_tickers(process, &tracing.binary)
        };
        let ticker_channels: HashSet<u64> = ticker_memory.channels.values().copied().collect();
        // The library's goroutines that may run the program's code are
        // looked at one by one, once, at the end.
        let symbolizer = Symbolizer::new(&tracing.binary, process.load_bias());
        census.follow_each_stuck(analysis::library_sites(last, &symbolizer));
        let mut at_end = false;
        if !target_exited && let Ok(result) = process.take_census(census, &ticker_channels) {
            self.censuses += 1;
            self.timeline
                .push(census_sample(&result, &tracing.probes, started)?);
            *last = result;
            at_end = true;
        }
        let last = std::mem::take(last);
        let current_stacks = if at_end {
            last.sites
                .iter()
                .map(|(key, site)| (*key, unwind_stopped(process.memory(), &site.stopped_at)))
                .filter(|(_, stacks)| !stacks.is_empty())
                .collect()
        } else {
            HashMap::new()
        };
        let stuck_stacks = last
            .sites
            .iter()
            .filter(|(_, site)| !site.stuck_goroutines.is_empty())
            .map(|(key, site)| {
                let stacks = site
                    .stuck_goroutines
                    .iter()
                    .map(|g| {
                        process::goroutines::unwind(
                            process.memory(),
                            g.stopped_at.pc,
                            g.stopped_at.bp,
                        )
                    })
                    .collect();
                (*key, stacks)
            })
            .collect();
        let events = census_events(&last, &tracing.probes)?;
        Ok(WatchEnd {
            snapshot: None,
            ticker_memory,
            tickers: Some(tickers),
            events,
            sites: last.counts.clone(),
            sampled: Some(SampledEnd {
                last,
                at_end,
                current_stacks,
                stuck_stacks,
                creation_stacks: HashMap::new(),
            }),
        })
    }
}

/// Exact mode's end: the counters of a last sample, and every goroutine
/// (and the tickers the probes saw) read from memory.
fn exact_end(
    timeline: &mut Timeline,
    sites: SiteCounts,
    tracing: &mut Tracing,
    process: &Process,
    started: Instant,
    target_exited: bool,
) -> Result<WatchEnd, Error> {
    // The report's counts are this last sample's, so they agree with the trend.
    let last = Sample {
        elapsed_ns: elapsed_ns(started),
        events: tracing.probes.event_counts()?,
        sites,
    };
    let (sites, events) = (last.sites.clone(), last.events);
    timeline.push(last);
    let (snapshot, ticker_memory) = if target_exited {
        (None, TickerMemory::default())
    } else {
        let snapshot = final_snapshot(process, tracing);
        let tickers = tracing.probes.tickers()?;
        let running: HashSet<u64> = tickers
            .iter()
            .filter(|(_, t)| !t.stopped)
            .map(|(&t, _)| t)
            .collect();
        let memory = process.tickers(&tracing.binary, tickers.keys().copied(), &running);
        (snapshot, memory)
    };
    Ok(WatchEnd {
        snapshot,
        ticker_memory,
        tickers: None,
        sampled: None,
        events,
        sites,
    })
}

/// The running tickers in the target's timer heaps, their channels, and
/// which a global refers to; none (with a note saying why) if the heaps
/// cannot be read.
fn heap_tickers(
    process: &Process,
    binary: &GoBinary,
) -> (HashMap<u64, TrackedTicker>, TickerMemory) {
    let found = match process.heap_tickers(binary) {
        Ok(found) => found,
        Err(e) => {
            render::note(format!("tickers not read: {}", one_line(&e)));
            return (HashMap::new(), TickerMemory::default());
        }
    };
    let tickers: HashMap<u64, TrackedTicker> = found
        .tickers
        .iter()
        .map(|(&ticker, &period_ns)| {
            let running = TrackedTicker {
                period_ns,
                created_ns: 0,
                creation_stack: None,
                stopped: false,
            };
            (ticker, running)
        })
        .collect();
    let running: HashSet<u64> = tickers.keys().copied().collect();
    let memory = process.tickers(binary, running.iter().copied(), &running);
    (tickers, memory)
}

/// A census as a point of the timeline.
fn census_sample(
    result: &CensusResult,
    probes: &Probes,
    started: Instant,
) -> Result<Sample, Error> {
    Ok(Sample {
        elapsed_ns: elapsed_ns(started),
        events: census_events(result, probes)?,
        sites: result.counts.clone(),
    })
}

/// Sampled mode's event counts: goroutines the censuses saw start and end,
/// and what the kernel dropped (creation stacks).
fn census_events(result: &CensusResult, probes: &Probes) -> Result<EventCounts, Error> {
    let (created, exited) = result.counts.values().fold((0u64, 0u64), |(c, e), s| {
        (
            c.saturating_add(s.created),
            e.saturating_add(s.exited)
                .saturating_add(s.exited_preexisting),
        )
    });
    Ok(EventCounts {
        created,
        exited,
        parked: 0,
        ..probes.event_counts()?
    })
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

/// About twenty samples per window, between 100 ms and 1 s apart.
fn sampling_period(window: Option<Duration>) -> Duration {
    window.map_or(Duration::from_secs(1), |w| {
        (w / 20).clamp(Duration::from_millis(100), Duration::from_secs(1))
    })
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
