//! What `leaktrace -p` and `leaktrace agent` watch in a running process over
//! a window: the per-site live counts, sampled by censuses of its memory
//! (sampled) or from the probes' counters (`--exact`), and what the window
//! ends with.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use leaktrace_ebpf::SiteKey;
use leaktrace_gobinary::GoBinary;

use super::{Tracing, elapsed_ns, timer_memory};
use crate::{
    Error,
    analysis::{
        self, SampledEnd, Symbolizer,
        heap::{HeapObservation, in_use_by_bucket},
        timeline::{Sample, Timeline},
    },
    error::one_line,
    probes::{Probes, Seed, SiteCounts, TrackedTimer, plan},
    process::{
        self, Process, Snapshot,
        census::{Census, CensusResult, unwind_stopped},
        heap::HeapProfile,
        tickers::TickerMemory,
    },
    render,
    report::EventCounts,
};

/// How often, at most, sampled mode takes a census.
pub(super) const CENSUS_PERIOD: Duration = Duration::from_millis(100);
/// Sampled mode waits this long between censuses for each second one
/// takes: leaktrace then spends at most 1/20 of a CPU reading memory.
const CENSUS_DUTY: u32 = 20;
/// A first census quicker than this is followed at once by a second.
const QUICK_CENSUS: Duration = Duration::from_millis(50);
/// How often `-p` reads the heap profile over the window, at first.
const HEAP_PERIOD: Duration = Duration::from_secs(1);
/// Heap readings kept over a window; the period doubles past it.
const MAX_HEAP_READINGS: usize = 40;
/// Sampled mode probes at most this many `go` statements for creation stacks.
const MAX_SITE_PROBES: usize = 64;

/// What one attach window has seen so far, by either way of observing.
pub(super) struct Watch {
    pub(super) timeline: Timeline,
    /// Sampled mode: the census state and its last result.
    census: Option<(Census, CensusResult)>,
    /// Sampled mode: the `go` statements probed for creation stacks.
    probed_sites: HashSet<u64>,
    /// Sampled mode: whether to probe suspect sites for creation stacks
    /// (not with `--no-stacks`).
    probe_sites: bool,
    /// Sampled mode: the channels of the tickers last read from the timer
    /// heaps, so that a census can tell which goroutines wait on them.
    ticker_channels: HashSet<u64>,
    /// Exact mode: the site counters when the goroutines were read.
    zero: SiteCounts,
    pub(super) censuses: u64,
    /// `-p`: the heap profile when the window started.
    heap_before: Option<HeapProfile>,
    /// `-p`: bytes in use per bucket at each reading since, and when and how
    /// often to read it.
    heap_between: Vec<HashMap<u64, u64>>,
    heap_read_at: Option<Instant>,
    heap_period: Duration,
}

/// What the window ended with.
pub(super) struct WatchEnd {
    pub(super) snapshot: Option<Snapshot>,
    /// CLOCK_MONOTONIC when the end was read.
    pub(super) clock_ns: u64,
    pub(super) ticker_memory: TickerMemory,
    /// Sampled mode: the running tickers in the timer heaps (exact mode
    /// takes them from its probes).
    pub(super) tickers: Option<HashMap<u64, TrackedTimer>>,
    pub(super) sampled: Option<SampledEnd>,
    pub(super) events: EventCounts,
    pub(super) sites: SiteCounts,
    /// `-p`: the heap profile at the start and at the end of the window.
    pub(super) heap: Option<HeapObservation>,
}

impl Watch {
    /// `-p`: reads the heap profile now, the start of the window its
    /// growth is measured over (not for the agent, which does not report it).
    pub(super) fn read_heap_at_start(&mut self, tracing: &Tracing, process: &Process) {
        self.heap_before = process.heap_profile(&tracing.binary).ok();
        self.heap_read_at = Some(Instant::now());
    }

    /// `-p`: reads the heap profile again if a period has passed. Past
    /// [`MAX_HEAP_READINGS`], every other reading goes and the period
    /// doubles, so a long window costs no more.
    fn read_heap_between(&mut self, binary: &GoBinary, process: &Process) {
        if self.heap_before.is_none()
            || self
                .heap_read_at
                .is_some_and(|at| at.elapsed() < self.heap_period)
        {
            return;
        }
        self.heap_read_at = Some(Instant::now());
        if let Ok(profile) = process.heap_profile(binary) {
            self.heap_between.push(in_use_by_bucket(&profile));
        }
        if self.heap_between.len() > MAX_HEAP_READINGS {
            self.heap_between = std::mem::take(&mut self.heap_between)
                .into_iter()
                .step_by(2)
                .collect();
            self.heap_period *= 2;
        }
    }

    /// Exact mode: the goroutines that exist are read and added to the
    /// probes' table; from then on the probes count every event.
    ///
    /// The probes were attached one by one, each while the target ran: what
    /// they counted before the goroutines are read is in the baseline, not
    /// in the window, so the counters are read just before and taken as zero.
    pub(super) fn exact(tracing: &mut Tracing, process: &Process) -> Result<Self, Error> {
        let zero = tracing.probes.site_counts()?;
        let baseline = seed_existing_goroutines(&mut tracing.probes, process, &tracing.binary)?;
        let mut watch = Self {
            timeline: Timeline::new(baseline),
            census: None,
            probed_sites: HashSet::new(),
            probe_sites: false,
            ticker_channels: HashSet::new(),
            censuses: 0,
            zero,
            heap_before: None,
            heap_between: Vec::new(),
            heap_read_at: None,
            heap_period: HEAP_PERIOD,
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
    pub(super) async fn sampled(
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
            ticker_channels: HashSet::new(),
            censuses: 1,
            zero: SiteCounts::new(),
            heap_before: None,
            heap_between: Vec::new(),
            heap_read_at: None,
            heap_period: HEAP_PERIOD,
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

    /// Sampled mode: each site's live goroutines in the last census.
    pub(super) fn live_per_site(&self) -> Option<HashMap<SiteKey, u64>> {
        self.census.as_ref().map(|(_, last)| last.live_per_site())
    }

    /// How long to wait for the next sample: `base`, or longer after a slow
    /// census.
    pub(super) fn period(&self, base: Duration) -> Duration {
        match &self.census {
            Some((_, last)) => base.max(last.took * CENSUS_DUTY),
            None => base,
        }
    }

    /// Adds a sample to the timeline; `false` if none could be taken.
    pub(super) fn sample(
        &mut self,
        probes: &mut Probes,
        binary: &GoBinary,
        process: &Process,
        symbolizer: &Symbolizer<'_>,
        started: Instant,
    ) -> Result<bool, Error> {
        self.read_heap_between(binary, process);
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
        let Ok(result) = process.take_census(census, &self.ticker_channels) else {
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
    pub(super) fn finish(
        &mut self,
        tracing: &mut Tracing,
        process: &Process,
        started: Instant,
        target_exited: bool,
    ) -> Result<WatchEnd, Error> {
        let mut end = if self.census.is_none() {
            let sites = self.since_zero(tracing.probes.site_counts()?);
            exact_end(
                &mut self.timeline,
                sites,
                tracing,
                process,
                started,
                target_exited,
            )?
        } else {
            self.census_end(tracing, process, started, target_exited, false)?
        };
        if !target_exited {
            end.heap = Some(HeapObservation {
                before: self.heap_before.take(),
                between: std::mem::take(&mut self.heap_between),
                after: process
                    .heap_profile(&tracing.binary)
                    .map_err(|e| one_line(&e)),
            });
        }
        Ok(end)
    }

    /// Sampled mode, `leaktrace agent`: what the window has seen until now,
    /// as it would end, from the census [`Self::sample`] just took; it goes on.
    pub(super) fn so_far(
        &mut self,
        tracing: &Tracing,
        process: &Process,
        started: Instant,
    ) -> Result<Option<WatchEnd>, Error> {
        if self.census.is_none() {
            return Ok(None);
        }
        self.census_end(tracing, process, started, false, true)
            .map(Some)
    }

    /// Sampled mode: a last census (unless the target is gone), its stacks
    /// and the tickers; `keep` leaves the census for the next.
    fn census_end(
        &mut self,
        tracing: &Tracing,
        process: &Process,
        started: Instant,
        target_exited: bool,
        keep: bool,
    ) -> Result<WatchEnd, Error> {
        let Some((census, last)) = self.census.as_mut() else {
            return Err(Error::io(
                "reading the census",
                std::io::Error::other("no census in exact mode"),
            ));
        };
        // Tickers from the timer heaps first, so that the last census can
        // tell which goroutines wait on their channels.
        let (tickers, ticker_memory) = if target_exited {
            (HashMap::new(), TickerMemory::default())
        } else {
            heap_tickers(process, &tracing.binary, !keep)
        };
        self.ticker_channels = ticker_memory.channels.values().copied().collect();
        // The library's goroutines that may run the program's code are
        // looked at one by one: at the end, or (the agent) from the next
        // census on.
        let symbolizer = Symbolizer::new(&tracing.binary, process.load_bias());
        census.follow_each_stuck(analysis::library_sites(last, &symbolizer));
        // The agent's last census was taken a moment ago by `sample`.
        let mut at_end = keep;
        if !keep
            && !target_exited
            && let Ok(result) = process.take_census(census, &self.ticker_channels)
        {
            self.censuses += 1;
            self.timeline
                .push(census_sample(&result, &tracing.probes, started)?);
            *last = result;
            at_end = true;
        }
        let last = if keep {
            last.clone()
        } else {
            std::mem::take(last)
        };
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
            clock_ns: process::monotonic_ns(),
            ticker_memory,
            tickers: Some(tickers),
            heap: None,
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
    let clock_ns = process::monotonic_ns();
    let (snapshot, ticker_memory) = if target_exited {
        (None, TickerMemory::default())
    } else {
        let snapshot = final_snapshot(process, tracing);
        let timers = tracing.probes.timers()?;
        let memory = timer_memory(process, &tracing.binary, &timers, clock_ns);
        (snapshot, memory)
    };
    Ok(WatchEnd {
        snapshot,
        clock_ns,
        ticker_memory,
        tickers: None,
        sampled: None,
        events,
        sites,
        heap: None,
    })
}

/// The running tickers in the target's timer heaps, their channels, and
/// which a global refers to; none if the heaps cannot be read, with a note
/// saying why if `say_why` (not for the agent, whose processes may exit at
/// any moment).
fn heap_tickers(
    process: &Process,
    binary: &GoBinary,
    say_why: bool,
) -> (HashMap<u64, TrackedTimer>, TickerMemory) {
    let found = match process.heap_tickers(binary) {
        Ok(found) => found,
        Err(e) => {
            if say_why {
                render::note(format!("tickers not read: {}", one_line(&e)));
            }
            return (HashMap::new(), TickerMemory::default());
        }
    };
    let tickers: HashMap<u64, TrackedTimer> = found
        .tickers
        .iter()
        .map(|(&ticker, &period_ns)| {
            let running = TrackedTimer {
                when_ns: 0,
                period_ns,
                created_ns: 0,
                func: 0,
                creation_stack: None,
                stopped: false,
                resets: 0,
            };
            (ticker, running)
        })
        .collect();
    let running: HashSet<u64> = tickers.keys().copied().collect();
    let memory = process.tickers(binary, running.iter().copied(), &running, []);
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
pub(super) fn sampling_period(window: Option<Duration>) -> Duration {
    window.map_or(Duration::from_secs(1), |w| {
        (w / 20).clamp(Duration::from_millis(100), Duration::from_secs(1))
    })
}

pub(super) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
