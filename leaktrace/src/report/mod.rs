//! The report: goroutines grouped by the `go` statement that created them
//! (then by creation stack), with a verdict per site. This module builds it;
//! `text` and `json` print it.

pub mod json;
pub mod text;
mod verdict;

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
};

use leaktrace_ebpf::{GoroutineRecord, NO_STACK, SiteCounters, SiteKey, TickerRecord};
use leaktrace_gobinary::{GoBinary, SourceLocation};
use serde::Serialize;

use crate::{
    goroutines::{GStatus, Goroutine},
    ignore::IgnoreRules,
    probes::EventCounts,
    target::Snapshot,
    tickers::{TickerMemory, TimerSemantics},
    timeline::{Timeline, Trend},
};
pub use verdict::{Thresholds, Verdict};

pub const SCHEMA_VERSION: u32 = 1;
/// Goroutine IDs listed per site.
pub const MAX_GOIDS: usize = 10;
/// Distinct creation stacks listed per site.
pub const MAX_STACKS: usize = 10;
/// Frames kept per creation stack.
pub const MAX_STACK_FRAMES: usize = 32;
/// Where every coroutine goroutine (`iter.Pull`, Go 1.23+) starts.
const COROUTINE_START: &str = "runtime.corostart";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `leaktrace run`: the target ran start to finish under the probes.
    Run,
    /// `leaktrace -p`: a window of a running process.
    Attach,
}

/// Who started a site's goroutines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A `go` statement in the program or its dependencies.
    Program,
    /// A `go` statement in the Go standard library.
    StandardLibrary,
    /// The runtime's own goroutines (GC workers, the main goroutine, ...).
    Runtime,
}

/// Whether a blocking time was measured or is the runtime's estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// From the `runtime.gopark` probe: the moment it blocked.
    Exact,
    /// From `runtime.g.waitsince`, which the GC sets when it first sees the
    /// goroutine blocked: a lower bound.
    Runtime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BlockedFor {
    pub longest_ns: u64,
    pub source: TimeSource,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub pid: u32,
    pub executable: String,
    pub go_version: String,
}

/// Live goroutines of a site that share one creation stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreationStack {
    pub count: u64,
    /// From the function with the `go` statement outwards.
    pub frames: Vec<SourceLocation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    pub created_at: SourceLocation,
    pub entry: SourceLocation,
    /// Goroutines from this site alive at the end of the observation.
    pub live: u64,
    /// Created while observed.
    pub created: u64,
    /// Of those, exited while observed.
    pub exited: u64,
    /// Created before the attach and exited while observed.
    pub exited_preexisting: u64,
    /// Wait reason (or status, if not waiting) → how many live goroutines.
    pub states: BTreeMap<String, u64>,
    /// How long the longest-blocked live goroutine has been blocked.
    pub blocked_for: Option<BlockedFor>,
    /// The frame outside the runtime that most of its blocked goroutines are
    /// blocked in, from their current stacks.
    pub blocked_at: Option<SourceLocation>,
    /// Creation stacks of the live goroutines created while observed, most
    /// common first. Goroutines older than the attach have none.
    pub stacks: Vec<CreationStack>,
    /// Attach mode: the live count over the window.
    pub trend: Option<Trend>,
    /// Where the tickers were created whose channels these goroutines wait on.
    pub tickers: Vec<SourceLocation>,
    pub origin: Origin,
    pub verdict: Verdict,
    /// IDs of up to [`MAX_GOIDS`] live goroutines, lowest first.
    pub goids: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub mode: Mode,
    pub target: TargetInfo,
    pub observed_ns: u64,
    /// The target's exit code, if it exited while observed.
    pub exit_code: Option<i32>,
    /// Whether `live` and `states` come from the target's memory (true) or,
    /// when it could not be read, from probe counts alone.
    pub snapshot: bool,
    /// Probe events lost (full tables, unreadable memory); 0 means complete.
    pub dropped: u64,
    pub events: EventCounts,
    pub goroutines: Vec<SiteReport>,
    /// How the target's Go release treats unstopped tickers.
    pub timer_semantics: TimerSemantics,
    /// Tickers created while observed, by the line that created them.
    pub tickers: Vec<TickerSite>,
}

/// What became of the tickers one line of code created.
#[derive(Debug, Clone, Serialize)]
pub struct TickerSite {
    /// The first frame outside the runtime and package time: the NewTicker
    /// or Tick call.
    pub created_at: SourceLocation,
    /// Created and not stopped.
    pub live: u64,
    pub stopped: u64,
    /// The period of the live ones (of all, if none is live), most common first.
    pub period_ns: i64,
    /// Of the live ones: how many a global variable refers to.
    pub referenced: u64,
    /// Goroutines blocked receiving from these tickers' channels, and where
    /// those goroutines were created.
    pub receiving_goroutines: u64,
    pub receivers: Vec<SourceLocation>,
    pub stacks: Vec<CreationStack>,
    pub verdict: TickerVerdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TickerVerdict {
    /// Unstopped and held: by the runtime (before Go 1.23, asynctimerchan=1),
    /// or (Go 1.23+) by a goroutine receiving from it or a global.
    Leak,
    /// Go 1.23+: unstopped, but nothing refers to it; the GC collects it.
    Unreferenced,
    /// All stopped.
    Ok,
}

impl TickerVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leak => "leak",
            Self::Unreferenced => "unreferenced",
            Self::Ok => "ok",
        }
    }
}

impl Report {
    pub fn leaking_sites(&self) -> impl Iterator<Item = &SiteReport> {
        self.goroutines
            .iter()
            .filter(|s| s.verdict == Verdict::Leak)
    }

    pub fn has_leaks(&self) -> bool {
        self.leaking_sites().next().is_some()
            || self
                .tickers
                .iter()
                .any(|t| t.verdict == TickerVerdict::Leak)
    }
}

/// What the probes and the memory snapshot saw, to be turned into a [`Report`].
pub struct Observation<'a> {
    pub binary: &'a GoBinary,
    pub mode: Mode,
    pub target: TargetInfo,
    pub observed_ns: u64,
    pub exit_code: Option<i32>,
    /// Subtracted from run-time PCs to symbolize them (non-zero for PIE).
    pub load_bias: u64,
    /// The target's goroutines at the end, with their current stacks and the
    /// channels they wait on, if they could be read.
    pub snapshot: Option<Snapshot>,
    pub sites: HashMap<SiteKey, SiteCounters>,
    pub records: HashMap<u64, GoroutineRecord>,
    /// Creation stacks by stack id.
    pub creation_stacks: HashMap<i32, Vec<u64>>,
    pub timeline: Option<Timeline>,
    pub events: EventCounts,
    pub thresholds: Thresholds,
    pub ignore: IgnoreRules,
    /// Tickers created while observed, by `*time.Ticker` address.
    pub tickers: HashMap<u64, TickerRecord>,
    pub ticker_memory: TickerMemory,
    pub timer_semantics: TimerSemantics,
}

/// Per-site tallies that become lists once every goroutine is counted.
#[derive(Default)]
struct Tally {
    stacks: HashMap<i32, u64>,
    blocked_at: HashMap<u64, u64>,
    /// Tickers whose channels its goroutines wait on.
    tickers: Vec<u64>,
}

/// Per ticker: how many goroutines wait on its channel, and their sites.
type Receivers = HashMap<u64, (u64, Vec<SiteKey>)>;

impl Observation<'_> {
    pub fn into_report(self, include_all: bool) -> Report {
        let symbols = Symbolizer::new(self.binary, self.load_bias);
        let ticker_of_channel: HashMap<u64, u64> = self
            .ticker_memory
            .channels
            .iter()
            .map(|(&ticker, &channel)| (channel, ticker))
            .collect();
        let mut receivers: Receivers = HashMap::new();
        let mut by_site: HashMap<SiteKey, (SiteReport, Tally)> = HashMap::new();
        for (&key, counters) in &self.sites {
            let (site, _) = self.site(&symbols, &mut by_site, key);
            site.created = counters.created;
            site.exited = counters.exited;
            site.exited_preexisting = counters.exited_preexisting;
        }
        match &self.snapshot {
            Some(snapshot) => {
                for g in &snapshot.goroutines {
                    let blocked = self.blocked_for(g, snapshot.now_ns);
                    let state = self.state_name(g);
                    let record = self.records.get(&g.g).filter(|r| r.goid == g.goid);
                    let top = snapshot
                        .current_stacks
                        .get(&g.g)
                        .and_then(|stack| symbols.first_outside_runtime(stack));
                    let (site, tally) = self.site(
                        &symbols,
                        &mut by_site,
                        SiteKey {
                            gopc: g.gopc,
                            startpc: g.startpc,
                        },
                    );
                    site.live += 1;
                    *site.states.entry(state).or_default() += 1;
                    site.blocked_for = longest(site.blocked_for, blocked);
                    site.goids.push(g.goid);
                    if let Some(stack_id) = record.map(|r| r.stack_id).filter(|&id| id != NO_STACK)
                    {
                        *tally.stacks.entry(stack_id).or_default() += 1;
                    }
                    if let Some(pc) = top {
                        *tally.blocked_at.entry(pc).or_default() += 1;
                    }
                    let channels = snapshot
                        .waiting_channels
                        .get(&g.g)
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    for ticker in channels.iter().filter_map(|c| ticker_of_channel.get(c)) {
                        tally.tickers.push(*ticker);
                        let (count, sites) = receivers.entry(*ticker).or_default();
                        *count += 1;
                        sites.push(SiteKey {
                            gopc: g.gopc,
                            startpc: g.startpc,
                        });
                    }
                }
            }
            None => {
                // The process is gone: what was created and not destroyed is what lived.
                for record in self.records.values() {
                    let key = SiteKey {
                        gopc: record.gopc,
                        startpc: record.startpc,
                    };
                    let (site, tally) = self.site(&symbols, &mut by_site, key);
                    site.live += 1;
                    site.goids.push(record.goid);
                    if record.stack_id != NO_STACK {
                        *tally.stacks.entry(record.stack_id).or_default() += 1;
                    }
                }
            }
        }
        let ticker_sites = self.ticker_sites(&symbols, &receivers, &by_site);
        let ticker_site_of: HashMap<u64, SourceLocation> = self
            .tickers
            .iter()
            .map(|(&ticker, record)| (ticker, self.ticker_site(&symbols, record.stack_id)))
            .collect();
        let mut goroutines: Vec<SiteReport> = by_site
            .into_iter()
            .map(|(key, (mut site, tally))| {
                for ticker in &tally.tickers {
                    if let Some(at) = ticker_site_of
                        .get(ticker)
                        .filter(|at| !site.tickers.contains(at))
                    {
                        site.tickers.push(at.clone());
                    }
                }
                site.goids.sort_unstable();
                site.goids.truncate(MAX_GOIDS);
                site.stacks = self.creation_stacks(&symbols, tally.stacks, is_runtime);
                if site.entry.function == COROUTINE_START {
                    site.origin = self.coroutine_origin(&site.stacks);
                }
                site.blocked_at =
                    most_common(tally.blocked_at).and_then(|pc| symbols.call_site(pc));
                site.trend = self.timeline.as_ref().and_then(|t| t.trend(&key));
                site.verdict = verdict::judge(self.mode, &site, &self.thresholds);
                let top = site.blocked_at.as_ref().map(|l| l.function.as_str());
                if site.origin != Origin::Runtime
                    && self
                        .ignore
                        .ignores(&site.entry.function, top, &site.created_at.function)
                {
                    site.verdict = Verdict::Ignored;
                }
                site
            })
            .filter(|site| {
                include_all || !matches!(site.verdict, Verdict::Runtime | Verdict::Ignored)
            })
            .collect();
        goroutines.sort_by(|a, b| {
            (
                a.verdict.rank(),
                b.live,
                b.created,
                &a.created_at.file,
                a.created_at.line,
            )
                .cmp(&(
                    b.verdict.rank(),
                    a.live,
                    a.created,
                    &b.created_at.file,
                    b.created_at.line,
                ))
        });
        Report {
            schema_version: SCHEMA_VERSION,
            mode: self.mode,
            target: self.target.clone(),
            observed_ns: self.observed_ns,
            exit_code: self.exit_code,
            snapshot: self.snapshot.is_some(),
            dropped: self.events.dropped(),
            events: self.events,
            goroutines,
            timer_semantics: self.timer_semantics.clone(),
            tickers: ticker_sites,
        }
    }

    /// Where a ticker was created: the first frame of its creation stack
    /// outside the runtime and package time (NewTicker may be inlined).
    fn ticker_site(&self, symbols: &Symbolizer<'_>, stack_id: i32) -> SourceLocation {
        self.creation_stacks
            .get(&stack_id)
            .into_iter()
            .flatten()
            .skip(1) // the probe's own instruction
            .filter(|&&pc| !symbols.is_wrapper(pc))
            .flat_map(|&pc| symbols.call_frames(pc))
            .find(|f| !is_runtime_or_time(&f.function))
            .unwrap_or_else(|| unknown(0))
    }

    fn ticker_sites(
        &self,
        symbols: &Symbolizer<'_>,
        receivers: &Receivers,
        goroutine_sites: &HashMap<SiteKey, (SiteReport, Tally)>,
    ) -> Vec<TickerSite> {
        struct Building {
            site: TickerSite,
            stacks: HashMap<i32, u64>,
            periods: HashMap<i64, u64>,
        }
        let mut by_line: HashMap<SourceLocation, Building> = HashMap::new();
        for (&ticker, record) in &self.tickers {
            let created_at = self.ticker_site(symbols, record.stack_id);
            let building = by_line
                .entry(created_at.clone())
                .or_insert_with(|| Building {
                    site: TickerSite {
                        created_at,
                        live: 0,
                        stopped: 0,
                        period_ns: 0,
                        referenced: 0,
                        receiving_goroutines: 0,
                        receivers: Vec::new(),
                        stacks: Vec::new(),
                        verdict: TickerVerdict::Ok,
                    },
                    stacks: HashMap::new(),
                    periods: HashMap::new(),
                });
            if record.stopped == 0 {
                building.site.live += 1;
                *building.periods.entry(record.period_ns).or_default() += 2;
                building.site.referenced +=
                    u64::from(self.ticker_memory.referenced.contains(&ticker));
                *building.stacks.entry(record.stack_id).or_default() += 1;
            } else {
                building.site.stopped += 1;
                *building.periods.entry(record.period_ns).or_default() += 1;
            }
            let Some((count, receiving_sites)) = receivers.get(&ticker) else {
                continue;
            };
            building.site.receiving_goroutines += count;
            for key in receiving_sites {
                if let Some((receiver, _)) = goroutine_sites.get(key)
                    && !building.site.receivers.contains(&receiver.created_at)
                {
                    building.site.receivers.push(receiver.created_at.clone());
                }
            }
        }
        let mut sites: Vec<TickerSite> = by_line
            .into_values()
            .map(
                |Building {
                     mut site,
                     stacks,
                     periods,
                 }| {
                    // Live tickers' periods weigh double, so they win over stopped ones.
                    site.period_ns = periods
                        .into_iter()
                        .max_by_key(|&(p, n)| (n, p))
                        .map_or(0, |(p, _)| p);
                    site.stacks = self.creation_stacks(symbols, stacks, is_runtime_or_time);
                    let held = site.receiving_goroutines > 0 || site.referenced > 0;
                    site.verdict = match (&self.timer_semantics, site.live) {
                        (_, 0) => TickerVerdict::Ok,
                        (TimerSemantics::Async { .. }, _) => TickerVerdict::Leak,
                        (TimerSemantics::Sync, _) if held => TickerVerdict::Leak,
                        (TimerSemantics::Sync, _) => TickerVerdict::Unreferenced,
                    };
                    site
                },
            )
            .collect();
        sites.sort_by(|a, b| {
            (
                a.verdict != TickerVerdict::Leak,
                std::cmp::Reverse(a.live),
                &a.created_at.file,
                a.created_at.line,
            )
                .cmp(&(
                    b.verdict != TickerVerdict::Leak,
                    std::cmp::Reverse(b.live),
                    &b.created_at.file,
                    b.created_at.line,
                ))
        });
        sites
    }

    fn site<'m>(
        &self,
        symbols: &Symbolizer<'_>,
        sites: &'m mut HashMap<SiteKey, (SiteReport, Tally)>,
        key: SiteKey,
    ) -> (&'m mut SiteReport, &'m mut Tally) {
        let (site, tally) = sites.entry(key).or_insert_with(|| {
            let created_at = symbols
                .call_site(key.gopc)
                .unwrap_or_else(|| unknown(key.gopc));
            let entry = symbols
                .goroutine_entry(key.startpc)
                .unwrap_or_else(|| unknown(key.startpc));
            let site = SiteReport {
                origin: self.origin(&created_at, &entry),
                entry,
                created_at,
                live: 0,
                created: 0,
                exited: 0,
                exited_preexisting: 0,
                states: BTreeMap::new(),
                blocked_for: None,
                blocked_at: None,
                stacks: Vec::new(),
                trend: None,
                tickers: Vec::new(),
                verdict: Verdict::Ok,
                goids: Vec::new(),
            };
            (site, Tally::default())
        });
        (site, tally)
    }

    /// Symbolized creation stacks, most common first, from the first frame
    /// `skip` does not match (for goroutines: past newproc and its system-stack
    /// closure; for tickers: past package time too), without the runtime's
    /// frames at the bottom (runtime.main, goexit), which say nothing.
    fn creation_stacks(
        &self,
        symbols: &Symbolizer<'_>,
        counts: HashMap<i32, u64>,
        skip: fn(&str) -> bool,
    ) -> Vec<CreationStack> {
        let mut stacks: Vec<CreationStack> = counts
            .into_iter()
            .filter_map(|(id, count)| {
                let mut frames: Vec<SourceLocation> = self
                    .creation_stacks
                    .get(&id)?
                    .iter()
                    .skip(1) // the probe's own instruction
                    .filter(|&&pc| !symbols.is_wrapper(pc))
                    .flat_map(|&pc| symbols.call_frames(pc))
                    .skip_while(|f| skip(&f.function))
                    .take(MAX_STACK_FRAMES)
                    .collect();
                while frames.last().is_some_and(|f| is_runtime(&f.function)) {
                    frames.pop();
                }
                (!frames.is_empty()).then_some(CreationStack { count, frames })
            })
            .collect();
        stacks.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.frames.len().cmp(&b.frames.len()))
        });
        stacks.truncate(MAX_STACKS);
        stacks
    }

    fn origin(&self, created_at: &SourceLocation, entry: &SourceLocation) -> Origin {
        // Like the runtime's isSystemGoroutine: what runs runtime code, except
        // main and coroutines.
        let runtime_entry =
            entry.function.starts_with("runtime.") && entry.function != COROUTINE_START;
        if runtime_entry || created_at.function.starts_with("runtime.") {
            return Origin::Runtime;
        }
        if self.binary.is_standard_library(created_at) {
            Origin::StandardLibrary
        } else {
            Origin::Program
        }
    }

    /// A coroutine's `go` statement is always in `iter.Pull`; it belongs to
    /// the program when the program called `iter.Pull`.
    fn coroutine_origin(&self, stacks: &[CreationStack]) -> Origin {
        let from_program = |stack: &CreationStack| {
            stack
                .frames
                .iter()
                .any(|f| !self.binary.is_standard_library(f))
        };
        if !stacks.is_empty() && stacks.iter().all(from_program) {
            Origin::Program
        } else {
            Origin::StandardLibrary
        }
    }

    fn state_name(&self, g: &Goroutine) -> String {
        match g.status {
            GStatus::Waiting | GStatus::Leaked => self
                .binary
                .wait_reasons
                .get(usize::from(g.wait_reason))
                .filter(|name| !name.is_empty())
                .cloned()
                .unwrap_or_else(|| g.status.name().to_string()),
            other => other.name().to_string(),
        }
    }

    /// How long `g` has been blocked, as of `now_ns` (CLOCK_MONOTONIC).
    fn blocked_for(&self, g: &Goroutine, now_ns: u64) -> Option<BlockedFor> {
        if !g.status.is_blocked() {
            return None;
        }
        let exact = self
            .records
            .get(&g.g)
            .filter(|r| r.goid == g.goid && r.parked_ns != 0 && g.status != GStatus::Syscall);
        if let Some(record) = exact {
            return Some(BlockedFor {
                longest_ns: now_ns.saturating_sub(record.parked_ns),
                source: TimeSource::Exact,
            });
        }
        (g.wait_since_ns > 0).then(|| BlockedFor {
            longest_ns: now_ns.saturating_sub(g.wait_since_ns as u64),
            source: TimeSource::Runtime,
        })
    }
}

/// Run-time PCs to source locations, with the load bias removed and a cache:
/// ten thousand goroutines usually share a handful of PCs.
struct Symbolizer<'a> {
    binary: &'a GoBinary,
    load_bias: u64,
    cache: RefCell<HashMap<(u64, bool), Option<SourceLocation>>>,
    frames_cache: RefCell<HashMap<u64, Vec<SourceLocation>>>,
}

impl<'a> Symbolizer<'a> {
    fn new(binary: &'a GoBinary, load_bias: u64) -> Self {
        Self {
            binary,
            load_bias,
            cache: RefCell::new(HashMap::new()),
            frames_cache: RefCell::new(HashMap::new()),
        }
    }

    /// The call that returns to `pc` (a return address or `gopc`).
    fn call_site(&self, pc: u64) -> Option<SourceLocation> {
        self.cached(pc, false, |pc| self.binary.call_site(pc))
    }

    fn goroutine_entry(&self, pc: u64) -> Option<SourceLocation> {
        self.cached(pc, true, |pc| self.binary.goroutine_entry(pc))
    }

    /// The frames, inlined ones first, of the call that returns to `pc`.
    fn call_frames(&self, pc: u64) -> Vec<SourceLocation> {
        self.frames_cache
            .borrow_mut()
            .entry(pc)
            .or_insert_with(|| self.binary.call_frames(pc.wrapping_sub(self.load_bias)))
            .clone()
    }

    /// Whether the return address `pc` is in a compiler-generated wrapper.
    fn is_wrapper(&self, pc: u64) -> bool {
        self.binary
            .is_wrapper(pc.wrapping_sub(self.load_bias).wrapping_sub(1))
    }

    /// The first return address in `stack` whose function is not the runtime's.
    fn first_outside_runtime(&self, stack: &[u64]) -> Option<u64> {
        stack
            .iter()
            .copied()
            .find(|&pc| self.call_site(pc).is_some_and(|l| !is_runtime(&l.function)))
    }

    fn cached(
        &self,
        pc: u64,
        entry: bool,
        resolve: impl Fn(u64) -> Option<SourceLocation>,
    ) -> Option<SourceLocation> {
        self.cache
            .borrow_mut()
            .entry((pc, entry))
            .or_insert_with(|| resolve(pc.wrapping_sub(self.load_bias)))
            .clone()
    }
}

/// Frames above a ticker's creation: the runtime's, and package time's
/// (NewTicker, Tick), whether called or inlined.
fn is_runtime_or_time(function: &str) -> bool {
    is_runtime(function) || function.starts_with("time.")
}

fn is_runtime(function: &str) -> bool {
    function.starts_with("runtime.") || function.starts_with("internal/runtime/")
}

fn most_common(counts: HashMap<u64, u64>) -> Option<u64> {
    counts
        .into_iter()
        .max_by_key(|&(pc, n)| (n, std::cmp::Reverse(pc)))
        .map(|(pc, _)| pc)
}

fn longest(a: Option<BlockedFor>, b: Option<BlockedFor>) -> Option<BlockedFor> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.longest_ns > a.longest_ns { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn unknown(pc: u64) -> SourceLocation {
    SourceLocation {
        function: format!("?{pc:#x}"),
        file: String::new(),
        line: 0,
    }
}

/// One site's movement in the last sampling interval (`--interval`, live view).
#[derive(Debug, Clone, Serialize)]
pub struct IntervalSite {
    pub created_at: SourceLocation,
    pub entry: SourceLocation,
    pub live: i64,
    /// Change of `live` since the previous sample.
    pub change: i64,
    pub created: u64,
    pub exited: u64,
}

/// What moved in the last interval: totals, rates and the sites that are not
/// the runtime's, fastest-growing first.
#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    pub elapsed_ns: u64,
    pub live: i64,
    pub created_per_second: f64,
    pub exited_per_second: f64,
    pub parked_per_second: f64,
    pub events: EventCounts,
    pub sites: Vec<IntervalSite>,
}

/// Sites listed per interval.
const INTERVAL_SITES: usize = 20;

pub fn interval(binary: &GoBinary, load_bias: u64, timeline: &Timeline) -> Option<Interval> {
    let last = timeline.last()?;
    let symbols = Symbolizer::new(binary, load_bias);
    let previous = timeline.previous();
    let mut live_total = 0;
    let mut sites = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for key in timeline.sites() {
        if !seen.insert(*key) {
            continue;
        }
        let live = timeline.live(key, last);
        live_total += live;
        let change = previous.map_or(0, |p| live - timeline.live(key, p));
        let created_at = symbols
            .call_site(key.gopc)
            .unwrap_or_else(|| unknown(key.gopc));
        if is_runtime(&created_at.function) || (live == 0 && change == 0) {
            continue;
        }
        let counters = last.sites.get(key).copied().unwrap_or_default();
        let entry = symbols
            .goroutine_entry(key.startpc)
            .unwrap_or_else(|| unknown(key.startpc));
        if is_runtime(&entry.function) {
            continue;
        }
        sites.push(IntervalSite {
            created_at,
            entry,
            live,
            change,
            created: counters.created,
            exited: counters.exited,
        });
    }
    sites.sort_by_key(|s| std::cmp::Reverse((s.change, s.live)));
    sites.truncate(INTERVAL_SITES);
    let seconds = previous.map_or(0.0, |p| {
        (last.elapsed_ns.saturating_sub(p.elapsed_ns)) as f64 / 1e9
    });
    let rate = |now: u64, then: u64| {
        if seconds > 0.0 {
            now.saturating_sub(then) as f64 / seconds
        } else {
            0.0
        }
    };
    let before = previous.map(|p| p.events).unwrap_or_default();
    Some(Interval {
        elapsed_ns: last.elapsed_ns,
        live: live_total,
        created_per_second: rate(last.events.created, before.created),
        exited_per_second: rate(last.events.exited, before.exited),
        parked_per_second: rate(last.events.parked, before.parked),
        events: last.events,
        sites,
    })
}
