//! What was observed becomes a [`Report`]: goroutines grouped by the `go`
//! statement that created them (then by creation stack), tickers by the line
//! that created them, each with a verdict.
//!
//! The input is plain data ([`Observation`]) and the binary is reached
//! through [`Symbols`], so all of this runs in unit tests on synthetic data.

pub mod attribution;
pub mod heap;
pub mod ignore;
pub mod interval;
pub mod resources;
pub mod symbols;
pub mod tickers;
pub mod timeline;
mod timers;
pub mod verdict;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use leaktrace_ebpf::SiteKey;
use leaktrace_gobinary::{SourceLocation, is_runtime_function};

use crate::{
    probes::{SiteCounts, StackId, TimerCounts, TrackedGoroutine, TrackedTimer},
    process::{
        Snapshot,
        census::{BlockedSince, CensusResult, StuckGoroutine},
        goroutines::{GStatus, Goroutine},
        tickers::TickerMemory,
    },
    report::{
        AttributedBy, Attribution, BlockedFor, CreationStack, EventCounts, Mode, Origin,
        ProbeCosts, Report, SCHEMA_VERSION, SiteReport, TargetInfo, TestCount, TestLeaks,
        TimeSource, TimerSemantics, Verdict,
    },
};
use ignore::IgnoreRules;
use symbols::unknown;
pub use symbols::{Symbolizer, Symbols};
use timeline::Timeline;
use verdict::Thresholds;

/// A stack's frames past those `skip` matches at the top, at most
/// [`MAX_STACK_FRAMES`], without the runtime's frames at the bottom
/// (runtime.main, goexit), which say nothing.
fn trimmed_frames(
    frames: impl Iterator<Item = SourceLocation>,
    skip: fn(&str) -> bool,
) -> Vec<SourceLocation> {
    let mut frames: Vec<SourceLocation> = frames
        .skip_while(|f| skip(&f.function))
        .take(MAX_STACK_FRAMES)
        .collect();
    while frames
        .last()
        .is_some_and(|f| is_runtime_function(&f.function))
    {
        frames.pop();
    }
    frames
}

/// Goroutine IDs listed per site.
pub const MAX_GOIDS: usize = 10;
/// Distinct creation stacks listed per site.
pub const MAX_STACKS: usize = 10;
pub use heap::MAX_HEAP_SITES;
/// Frames kept per creation stack.
pub const MAX_STACK_FRAMES: usize = 32;
/// Generations of live parents followed to find the test behind a goroutine.
const MAX_LINEAGE: usize = 16;
/// Where `g0` runs the scheduler on behalf of the goroutine that switched to it.
const SCHEDULER: [&str; 2] = ["runtime.schedule", "runtime.mcall"];
/// Where every coroutine goroutine (`iter.Pull`, Go 1.23+) starts.
const COROUTINE_START: &str = "runtime.corostart";

/// Everything the probes and the memory reads saw, as plain data.
#[derive(Debug, Clone)]
pub struct Observation {
    pub mode: Mode,
    pub target: TargetInfo,
    pub observed_ns: u64,
    pub exit_code: Option<i32>,
    /// `run`: the `*g` of the goroutine that called `runtime.exit` (`os.Exit`
    /// in a signal handler's goroutine, `log.Fatal`): it is ending the
    /// program, not leaking, and counts as exited.
    pub exiting_goroutine: Option<u64>,
    /// The target's goroutines at the end, with their current stacks and the
    /// channels they wait on, if they could be read.
    pub snapshot: Option<Snapshot>,
    /// Sampled attach mode: the last census of the goroutines, per site,
    /// instead of a snapshot of each one.
    pub census: Option<SampledEnd>,
    pub sites: SiteCounts,
    /// The kernel's goroutine table, by `*g` address.
    pub goroutines: HashMap<u64, TrackedGoroutine>,
    /// Timers and tickers created while observed (sampled attach mode:
    /// the running tickers in the timer heaps), by `*time.Timer` or
    /// `*time.Ticker` address.
    pub timers: HashMap<u64, TrackedTimer>,
    /// What happened to the timers created at each creation stack.
    pub timer_counts: TimerCounts,
    /// CLOCK_MONOTONIC when the target's state was read: a one-shot timer
    /// due after it is pending.
    pub clock_ns: u64,
    /// Their channels, and which of the pending ones globals refer to.
    pub ticker_memory: TickerMemory,
    /// The runtime's heap profile, if read.
    pub heap: Option<heap::HeapObservation>,
    /// The target's descriptors, if read.
    pub descriptors: Option<resources::DescriptorObservation>,
    /// Creation stacks (run-time return addresses, innermost first).
    pub stacks: HashMap<StackId, Vec<u64>>,
    pub timeline: Option<Timeline>,
    pub events: EventCounts,
    pub timer_semantics: TimerSemantics,
    /// What the probes and memory reads cost.
    pub costs: ProbeCosts,
}

/// How sampled attach mode ended: the last census, the current stacks of a
/// few blocked goroutines per site, and the creation stacks the per-site
/// probes counted.
#[derive(Debug, Clone, Default)]
pub struct SampledEnd {
    pub last: CensusResult,
    /// Whether the last census was taken at the end (false: the target was
    /// gone, and this is the last one before).
    pub at_end: bool,
    pub current_stacks: HashMap<SiteKey, Vec<Vec<u64>>>,
    /// The standard library's sites with stuck goroutines: the current stack
    /// of each, in the order of `last.sites[key].stuck_goroutines`.
    pub stuck_stacks: HashMap<SiteKey, Vec<Vec<u64>>>,
    /// By `go` statement (run-time `gopc`): creation stack → goroutines.
    pub creation_stacks: HashMap<u64, Vec<(StackId, u64)>>,
}

/// How to judge: the user's thresholds and ignore rules.
#[derive(Debug, Clone)]
pub struct Policy {
    pub thresholds: Thresholds,
    pub ignore: IgnoreRules,
    /// Keep the runtime's and ignored sites in the report (`--all`).
    pub include_all: bool,
}

/// Turns an observation into the report.
pub fn analyse(observation: &Observation, symbols: &Symbolizer<'_>, policy: &Policy) -> Report {
    Analysis {
        observation,
        symbols,
        policy,
    }
    .report()
}

/// What one entry of the report groups: the `go` statement, and for
/// goroutines the standard library started, the program's frame they are
/// attributed to (one `go` statement in net/http serves every request line).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    site: SiteKey,
    attribution: Option<Attribution>,
}

impl GroupKey {
    fn plain(site: SiteKey) -> Self {
        Self {
            site,
            attribution: None,
        }
    }
}

/// Where a goroutine goes in the report, worked out once per distinct
/// (site, current stack, creation stacks): a million goroutines share a few.
#[derive(Debug, Clone)]
struct Placement {
    entry: SourceLocation,
    attribution: Option<Attribution>,
    test: Option<String>,
    blocked_in: Option<SourceLocation>,
}

type Groups = HashMap<GroupKey, (SiteReport, Tally)>;

/// Per-site tallies that become lists once every goroutine is counted.
#[derive(Default)]
struct Tally {
    stacks: HashMap<StackId, u64>,
    blocked_at: HashMap<SourceLocation, u64>,
    /// Test function → live goroutines it created.
    tests: BTreeMap<String, u64>,
    parents: BTreeSet<u64>,
    /// Tickers whose channels its goroutines wait on.
    tickers: Vec<u64>,
}

/// Per ticker: how many goroutines wait on its channel, and their sites.
type Receivers = HashMap<u64, (u64, Vec<SiteKey>)>;

struct Analysis<'a> {
    observation: &'a Observation,
    symbols: &'a Symbolizer<'a>,
    policy: &'a Policy,
}

impl Analysis<'_> {
    fn report(&self) -> Report {
        let obs = self.observation;
        let mut receivers: Receivers = HashMap::new();
        let mut by_site: Groups = HashMap::new();
        for (&key, counters) in &obs.sites {
            let (site, _) = self.site(&mut by_site, GroupKey::plain(key));
            site.created = counters.created;
            site.exited = counters.exited;
            site.exited_preexisting = counters.exited_preexisting;
        }
        match (&obs.snapshot, &obs.census) {
            (Some(snapshot), _) => self.count_live(snapshot, &mut by_site, &mut receivers),
            (None, Some(sampled)) => self.count_census(sampled, &mut by_site, &mut receivers),
            (None, None) => {
                // The process is gone: what was created and not destroyed is what lived.
                for tracked in obs.goroutines.values() {
                    let (site, tally) = self.site(&mut by_site, GroupKey::plain(tracked.site));
                    site.live += 1;
                    site.goids.push(tracked.goid);
                    tally.parents.extend(tracked.parent_goid);
                    if let Some(stack) = tracked.creation_stack {
                        *tally.stacks.entry(stack).or_default() += 1;
                    }
                }
            }
        }
        let tickers = tickers::ticker_sites(self, &receivers);
        let timers = timers::timer_sites(self, &receivers);
        let mut goroutines: Vec<SiteReport> = by_site
            .into_iter()
            // A go statement's plain entry is left empty when all of its
            // goroutines were attributed to the program's frames.
            .filter(|(_, (site, _))| {
                site.live + site.created + site.exited + site.exited_preexisting > 0
            })
            .map(|(key, (site, tally))| self.finish_site(key.site, site, tally))
            .filter(|site| {
                self.policy.include_all
                    || !matches!(site.verdict, Verdict::Runtime | Verdict::Ignored)
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
                .then_with(|| attributed_line(a).cmp(&attributed_line(b)))
        });
        let tests = test_leaks(&goroutines);
        let (resources, descriptors) = resources::resource_sites(self, &goroutines);
        Report {
            schema_version: SCHEMA_VERSION,
            mode: obs.mode,
            target: obs.target.clone(),
            observed_ns: obs.observed_ns,
            exit_code: obs.exit_code,
            snapshot: obs.snapshot.is_some() || obs.census.as_ref().is_some_and(|c| c.at_end),
            dropped: obs.events.dropped() + obs.census.as_ref().map_or(0, |c| c.last.dropped),
            events: obs.events,
            costs: obs.costs.clone(),
            goroutines,
            timer_semantics: obs.timer_semantics.clone(),
            tickers,
            timers,
            heap: heap::heap_report(self),
            resources,
            descriptors,
            tests,
        }
    }

    /// Counts each goroutine of the snapshot at its site, or with the
    /// program's frame it is attributed to.
    fn count_live(&self, snapshot: &Snapshot, by_site: &mut Groups, receivers: &mut Receivers) {
        let obs = self.observation;
        let ticker_of_channel = self.ticker_of_channel();
        let tracked_of = |g: &Goroutine| obs.goroutines.get(&g.g).filter(|t| t.goid == g.goid);
        // Goroutines the runtime starts from no goroutine (timer callbacks) have parent 0.
        let parent_of = |g: &Goroutine| {
            g.parent_goid
                .or(tracked_of(g).and_then(|t| t.parent_goid))
                .filter(|&p| p != 0)
        };
        let mut placements: Vec<Placement> = Vec::new();
        let mut seen = HashMap::new();
        let placed: Vec<usize> = snapshot
            .goroutines
            .iter()
            .map(|g| {
                let tracked = tracked_of(g);
                let current = snapshot
                    .current_stacks
                    .get(&g.g)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let creation = tracked.and_then(|t| t.creation_stack);
                let creator = tracked.and_then(|t| t.creator_stack);
                *seen
                    .entry((site_of(g), current, creation, creator))
                    .or_insert_with(|| {
                        placements.push(self.place(site_of(g), current, creation, creator));
                        placements.len() - 1
                    })
            })
            .collect();
        let unclosed = unclosed_connections(
            snapshot
                .goroutines
                .iter()
                .zip(&placed)
                .map(|(g, &p)| (parent_of(g), &placements[p])),
        );
        let mut upgraded = HashMap::new();
        // A goroutine whose creation chain names no test inherits its live
        // ancestors': a test's manager goroutine, alive, and its workers.
        // Only a test binary has tests to inherit.
        let by_goid: HashMap<u64, usize> = if placements.iter().any(|p| p.test.is_some()) {
            snapshot
                .goroutines
                .iter()
                .enumerate()
                .map(|(i, g)| (g.goid, i))
                .collect()
        } else {
            HashMap::new()
        };
        let test_of = |mut i: usize| -> Option<&str> {
            for _ in 0..MAX_LINEAGE {
                if let Some(test) = &placements[placed[i]].test {
                    return Some(test);
                }
                i = *by_goid.get(&parent_of(&snapshot.goroutines[i])?)?;
            }
            None
        };
        let tests: Vec<Option<String>> = (0..placed.len())
            .map(|i| test_of(i).map(str::to_string))
            .collect();
        for ((g, &placement), test) in snapshot.goroutines.iter().zip(&placed).zip(&tests) {
            if obs.exiting_goroutine == Some(g.g) {
                let (site, _) = self.site(by_site, GroupKey::plain(site_of(g)));
                site.exited += 1;
                continue;
            }
            let p = &placements[placement];
            let read_loop = parent_of(g)
                .and_then(|parent| unclosed.get(&parent))
                .filter(|_| attribution::is_write_loop(&p.entry));
            let placement = match read_loop {
                Some(attribution) => {
                    upgraded
                        .entry((placement, attribution))
                        .or_insert_with(|| Placement {
                            attribution: Some((*attribution).clone()),
                            ..p.clone()
                        })
                }
                None => p,
            };
            let tracked = tracked_of(g);
            let blocked = blocked_for(g, tracked, snapshot.now_ns);
            let state = self.state_name(g);
            let key = GroupKey {
                site: site_of(g),
                attribution: placement.attribution.clone(),
            };
            let attributed = key.attribution.is_some();
            let (site, tally) = self.site(by_site, key);
            site.live += 1;
            if attributed && tracked.is_some_and(|t| !t.is_seeded()) {
                site.created += 1;
            }
            *site.states.entry(state).or_default() += 1;
            site.blocked_for = longest(site.blocked_for, blocked);
            site.goids.push(g.goid);
            tally.parents.extend(parent_of(g));
            if let Some(stack) = tracked.and_then(|t| t.creation_stack) {
                *tally.stacks.entry(stack).or_default() += 1;
            }
            if let Some(at) = &placement.blocked_in {
                *tally.blocked_at.entry(at.clone()).or_default() += 1;
            }
            if let Some(test) = test {
                *tally.tests.entry(test.clone()).or_default() += 1;
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
                sites.push(site_of(g));
            }
        }
        // What was attributed elsewhere was created here too: the plain entry
        // keeps the rest, so that its created − exited is its live count.
        let moved: Vec<(SiteKey, u64)> = by_site
            .iter()
            .filter(|(key, _)| key.attribution.is_some())
            .map(|(key, (site, _))| (key.site, site.created))
            .collect();
        for (key, created) in moved {
            if let Some((plain, _)) = by_site.get_mut(&GroupKey::plain(key)) {
                plain.created = plain.created.saturating_sub(created);
            }
        }
    }

    /// Where goroutines of `key` with this current stack and these creation
    /// stacks (theirs, their creator's) go in the report.
    fn place(
        &self,
        key: SiteKey,
        current: &[u64],
        creation: Option<StackId>,
        creator: Option<StackId>,
    ) -> Placement {
        let symbols = self.symbols.symbols();
        let current: Vec<SourceLocation> = self.symbols.stack_frames(current).collect();
        let chain: Vec<SourceLocation> = [creation, creator]
            .into_iter()
            .flatten()
            .filter_map(|id| self.creation_frames(id))
            .flatten()
            .collect();
        let (created_at, entry) = self.locations(key);
        // Coroutines are the program's by their creation stacks, as a whole
        // (`coroutine_origin`): the program's iterator runs in every one.
        let from_library = self.origin(&created_at, &entry) == Origin::StandardLibrary
            && entry.function != COROUTINE_START;
        let attribution = from_library
            .then(|| attribution::attribute(symbols, &entry, &created_at, &current, &chain))
            .flatten();
        Placement {
            test: attribution::test_name(symbols, &current)
                .or_else(|| attribution::test_name(symbols, &chain)),
            blocked_in: attribution::blocked_in(symbols, &current).cloned(),
            attribution,
            entry,
        }
    }

    /// Counts each site of the last census.
    fn count_census(&self, sampled: &SampledEnd, by_site: &mut Groups, receivers: &mut Receivers) {
        let ticker_of_channel = self.ticker_of_channel();
        let now_ns = sampled.last.now_ns;
        let symbols = self.symbols.symbols();
        // The library's stuck goroutines, placed once per distinct stack; the
        // connections' goroutines are paired across their two sites.
        let mut placements: HashMap<(SiteKey, &[u64]), Placement> = HashMap::new();
        for (&key, stacks) in &sampled.stuck_stacks {
            for stack in stacks {
                placements
                    .entry((key, stack.as_slice()))
                    .or_insert_with(|| self.place(key, stack, None, None));
            }
        }
        let stuck: HashMap<SiteKey, Vec<(&StuckGoroutine, &Placement)>> = sampled
            .stuck_stacks
            .iter()
            .filter_map(|(&key, stacks)| {
                let census = sampled.last.sites.get(&key)?;
                let placed = census
                    .stuck_goroutines
                    .iter()
                    .zip(stacks)
                    .map(|(g, stack)| (g, &placements[&(key, stack.as_slice())]))
                    .collect();
                Some((key, placed))
            })
            .collect();
        let unclosed = unclosed_connections(
            stuck
                .values()
                .flatten()
                .map(|&(g, placement)| (g.parent_goid, placement)),
        );
        for (&key, census) in &sampled.last.sites {
            let (site, tally) = self.site(by_site, GroupKey::plain(key));
            site.live = census.live;
            for &((status, reason), count) in &census.states {
                *site
                    .states
                    .entry(self.status_name(status, reason))
                    .or_default() += count;
            }
            site.blocked_for = census
                .blocked_since
                .map(|since| blocked_since(since, now_ns));
            site.goids.extend(&census.goids);
            tally.parents.extend(&census.parent_goids);
            for stack in sampled.current_stacks.get(&key).into_iter().flatten() {
                let frames: Vec<SourceLocation> = self.symbols.stack_frames(stack).collect();
                if let Some(at) = attribution::blocked_in(symbols, &frames) {
                    *tally.blocked_at.entry(at.clone()).or_default() += 1;
                }
            }
            // One go statement may start different functions (a func value):
            // its stacks are shown with each.
            for &(stack, count) in sampled.creation_stacks.get(&key.gopc).into_iter().flatten() {
                *tally.stacks.entry(stack).or_default() += count;
            }
            for &(channel, count) in &census.waiting_on {
                let Some(&ticker) = ticker_of_channel.get(&channel) else {
                    continue;
                };
                tally.tickers.push(ticker);
                let (waiting, sites) = receivers.entry(ticker).or_default();
                *waiting += count;
                sites.push(key);
            }
            if let Some(stuck) = stuck.get(&key) {
                self.attribute_stuck(key, stuck, &unclosed, now_ns, by_site);
            }
        }
    }

    /// Moves the stuck goroutines of a standard-library site that run the
    /// program's code out of its entry, into entries for the program's
    /// frames: one per attribution, with those goroutines' own counts.
    fn attribute_stuck(
        &self,
        key: SiteKey,
        stuck: &[(&StuckGoroutine, &Placement)],
        unclosed: &HashMap<u64, &Attribution>,
        now_ns: u64,
        by_site: &mut Groups,
    ) {
        for &(g, placement) in stuck {
            // A connection's writeLoop goes with its readLoop, if that one
            // waits for an unclosed body.
            let attribution = g
                .parent_goid
                .and_then(|parent| unclosed.get(&parent).copied())
                .filter(|_| attribution::is_write_loop(&placement.entry))
                .or(placement.attribution.as_ref())
                .filter(|a| a.is_programs())
                .cloned();
            let Some(attribution) = attribution else {
                continue;
            };
            let state = self.status_name(g.status, g.wait_reason);
            if let Some((plain, _)) = by_site.get_mut(&GroupKey::plain(key)) {
                plain.live = plain.live.saturating_sub(1);
                if let Some(count) = plain.states.get_mut(&state) {
                    *count -= 1;
                    if *count == 0 {
                        plain.states.remove(&state);
                    }
                }
                if g.new {
                    plain.created = plain.created.saturating_sub(1);
                }
                plain.goids.retain(|&goid| goid != g.goid);
            }
            let (site, tally) = self.site(
                by_site,
                GroupKey {
                    site: key,
                    attribution: Some(attribution),
                },
            );
            site.live += 1;
            site.created += u64::from(g.new);
            *site.states.entry(state).or_default() += 1;
            site.blocked_for = longest(
                site.blocked_for,
                g.blocked_since.map(|since| blocked_since(since, now_ns)),
            );
            site.goids.push(g.goid);
            tally.parents.extend(g.parent_goid);
            if let Some(at) = &placement.blocked_in {
                *tally.blocked_at.entry(at.clone()).or_default() += 1;
            }
            if let Some(test) = &placement.test {
                *tally.tests.entry(test.clone()).or_default() += 1;
            }
        }
    }

    /// Channel → the ticker whose `C` it is.
    fn ticker_of_channel(&self) -> HashMap<u64, u64> {
        self.observation
            .ticker_memory
            .channels
            .iter()
            .filter(|&(_, &channel)| channel != 0)
            .map(|(&ticker, &channel)| (channel, ticker))
            .collect()
    }

    fn finish_site(&self, key: SiteKey, mut site: SiteReport, tally: Tally) -> SiteReport {
        let obs = self.observation;
        for timer in &tally.tickers {
            let Some(tracked) = obs.timers.get(timer) else {
                continue;
            };
            let Some(at) = tickers::ticker_site(self, tracked.creation_stack) else {
                continue;
            };
            let list = if tracked.is_ticker() {
                &mut site.tickers
            } else {
                &mut site.timers
            };
            if !list.contains(&at) {
                list.push(at);
            }
        }
        site.goids.sort_unstable();
        site.goids.truncate(MAX_GOIDS);
        site.parent_goids = tally.parents.into_iter().take(MAX_GOIDS).collect();
        site.stacks = self.creation_stacks(tally.stacks, is_runtime_function);
        if site.entry.function == COROUTINE_START {
            site.origin = self.coroutine_origin(&site.stacks);
        }
        site.blocked_at = most_common(tally.blocked_at);
        site.tests = tally
            .tests
            .into_iter()
            .map(|(name, live)| TestCount { name, live })
            .collect();
        site.tests
            .sort_by(|a, b| b.live.cmp(&a.live).then_with(|| a.name.cmp(&b.name)));
        site.test = match site.tests.as_slice() {
            [only] => Some(only.name.clone()),
            _ => None,
        };
        // The timeline follows go statements; an attributed part has none.
        site.trend = obs
            .timeline
            .as_ref()
            .filter(|_| site.attributed_to.is_none())
            .and_then(|t| t.trend(&key));
        site.verdict = verdict::judge(obs.mode, &site, &self.policy.thresholds);
        let top = site.blocked_at.as_ref().map(|l| l.function.as_str());
        // A library goroutine running the program's function (a test, a
        // callback) is ignored by that function's name too.
        let running = site
            .attributed_to
            .as_ref()
            .filter(|a| a.by == AttributedBy::Running)
            .and_then(|a| a.frame.as_ref())
            .map(|f| f.function.as_str());
        let ignore = &self.policy.ignore;
        if site.origin != Origin::Runtime
            && (ignore.ignores(&site.entry.function, top, &site.created_at.function)
                || running.is_some_and(|f| ignore.ignores(f, None, "")))
        {
            site.verdict = Verdict::Ignored;
        }
        site
    }

    /// Where a site's `go` statement is, and the function it starts.
    fn locations(&self, key: SiteKey) -> (SourceLocation, SourceLocation) {
        let created_at = self
            .symbols
            .call_site(key.gopc)
            .unwrap_or_else(|| unknown(key.gopc));
        let entry = self
            .symbols
            .goroutine_entry(key.startpc)
            .unwrap_or_else(|| unknown(key.startpc));
        (created_at, entry)
    }

    fn site<'m>(
        &self,
        sites: &'m mut Groups,
        key: GroupKey,
    ) -> (&'m mut SiteReport, &'m mut Tally) {
        let (site, tally) = sites.entry(key).or_insert_with_key(|key| {
            let (created_at, entry) = self.locations(key.site);
            let site = SiteReport {
                origin: self.origin(&created_at, &entry),
                attributed_to: key.attribution.clone(),
                test: None,
                tests: Vec::new(),
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
                timers: Vec::new(),
                verdict: Verdict::Ok,
                goids: Vec::new(),
                parent_goids: Vec::new(),
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
        counts: HashMap<StackId, u64>,
        skip: fn(&str) -> bool,
    ) -> Vec<CreationStack> {
        let mut stacks: Vec<CreationStack> = counts
            .into_iter()
            .filter_map(|(id, count)| {
                let frames = trimmed_frames(self.creation_frames(id)?, skip);
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

    /// The frames of a creation stack, past the probe's own instruction, up
    /// to the scheduler: a goroutine the scheduler starts (a timer's
    /// `AfterFunc`) is created on `g0`, whose frame pointers lead on into
    /// whichever goroutine happened to switch to it, which did not create it.
    fn creation_frames(&self, id: StackId) -> Option<impl Iterator<Item = SourceLocation> + '_> {
        let stack = self.observation.stacks.get(&id)?;
        Some(
            self.symbols
                .stack_frames(stack.get(1..).unwrap_or_default())
                .take_while(|f| !SCHEDULER.contains(&f.function.as_str())),
        )
    }

    fn origin(&self, created_at: &SourceLocation, entry: &SourceLocation) -> Origin {
        origin(self.symbols, created_at, entry)
    }

    /// A coroutine's `go` statement is always in `iter.Pull`; it belongs to
    /// the program when the program called `iter.Pull`.
    fn coroutine_origin(&self, stacks: &[CreationStack]) -> Origin {
        let symbols = self.symbols.symbols();
        let from_program =
            |stack: &CreationStack| stack.frames.iter().any(|f| !symbols.is_standard_library(f));
        if !stacks.is_empty() && stacks.iter().all(from_program) {
            Origin::Program
        } else {
            Origin::StandardLibrary
        }
    }

    fn state_name(&self, g: &Goroutine) -> String {
        self.status_name(g.status, g.wait_reason)
    }

    /// The wait reason of a waiting goroutine, else its status.
    fn status_name(&self, status: GStatus, wait_reason: u8) -> String {
        match status {
            GStatus::Waiting | GStatus::Leaked => self
                .symbols
                .symbols()
                .wait_reason(wait_reason)
                .map(str::to_string)
                .unwrap_or_else(|| status.name().to_string()),
            other => other.name().to_string(),
        }
    }
}

/// Who started a site's goroutines: like the runtime's isSystemGoroutine,
/// what runs runtime code is the runtime's, except main and coroutines.
fn origin(symbols: &Symbolizer<'_>, created_at: &SourceLocation, entry: &SourceLocation) -> Origin {
    let runtime_entry = is_runtime_function(&entry.function) && entry.function != COROUTINE_START;
    if runtime_entry || is_runtime_function(&created_at.function) {
        return Origin::Runtime;
    }
    if symbols.symbols().is_standard_library(created_at) {
        Origin::StandardLibrary
    } else {
        Origin::Program
    }
}

/// Sampled attach mode: the standard library's sites with stuck goroutines,
/// whose goroutines the last census lists one by one, to find those that
/// run the program's code (a handler blocked forever, an AfterFunc callback).
pub fn library_sites(census: &CensusResult, symbols: &Symbolizer<'_>) -> HashSet<SiteKey> {
    census
        .sites
        .iter()
        .filter(|(_, site)| site.stuck > 0)
        .filter(|(key, _)| site_origin(**key, symbols) == Some(Origin::StandardLibrary))
        .map(|(key, _)| *key)
        .collect()
}

/// Who started a site's goroutines, if its PCs symbolize.
fn site_origin(key: SiteKey, symbols: &Symbolizer<'_>) -> Option<Origin> {
    let created_at = symbols.call_site(key.gopc)?;
    let entry = symbols.goroutine_entry(key.startpc)?;
    Some(origin(symbols, &created_at, &entry))
}

/// Sampled attach mode: the `go` statements (run-time `gopc`) that look like
/// leaks in a census, to record creation stacks at: the program's own,
/// with goroutines that stayed blocked since the census before, none of
/// which has ended while observed. A worker pool qualifies too, but its
/// probe only fires if it starts new goroutines.
pub fn suspects(census: &CensusResult, symbols: &Symbolizer<'_>) -> Vec<u64> {
    let mut gopcs: Vec<u64> = census
        .sites
        .iter()
        .filter(|(_, site)| site.stuck > 0)
        .filter(|(key, _)| {
            census
                .counts
                .get(key)
                .is_none_or(|c| c.exited == 0 && c.exited_preexisting == 0)
        })
        .filter(|(key, _)| site_origin(**key, symbols) == Some(Origin::Program))
        .map(|(key, _)| key.gopc)
        .collect();
    gopcs.sort_unstable();
    gopcs.dedup();
    gopcs
}

fn site_of(g: &Goroutine) -> SiteKey {
    SiteKey {
        gopc: g.gopc,
        startpc: g.startpc,
    }
}

/// How long `g` has been blocked, as of `now_ns` (CLOCK_MONOTONIC): exactly,
/// if the park probe saw it block; else the runtime's lower bound.
fn blocked_for(
    g: &Goroutine,
    tracked: Option<&TrackedGoroutine>,
    now_ns: u64,
) -> Option<BlockedFor> {
    if !g.status.is_blocked() {
        return None;
    }
    let parked = tracked
        .and_then(|t| t.last_park)
        .filter(|_| g.status != GStatus::Syscall);
    if let Some(park) = parked {
        return Some(BlockedFor {
            longest_ns: now_ns.saturating_sub(park.at_ns),
            source: TimeSource::Exact,
        });
    }
    (g.wait_since_ns > 0).then(|| BlockedFor {
        longest_ns: now_ns.saturating_sub(g.wait_since_ns as u64),
        source: TimeSource::Runtime,
    })
}

/// The attribution of each connection's `readLoop` waiting for an unclosed
/// body, by parent goroutine (its `dialConn`'s, which started the
/// connection's `writeLoop` too).
fn unclosed_connections<'p>(
    goroutines: impl Iterator<Item = (Option<u64>, &'p Placement)>,
) -> HashMap<u64, &'p Attribution> {
    goroutines
        .filter(|(_, p)| attribution::is_unclosed_read_loop(&p.entry, p.attribution.as_ref()))
        .filter_map(|(parent, p)| Some((parent?, p.attribution.as_ref()?)))
        .collect()
}

/// How long since `since`, and who says so.
fn blocked_since(since: BlockedSince, now_ns: u64) -> BlockedFor {
    BlockedFor {
        longest_ns: now_ns.saturating_sub(since.at_ns()),
        source: match since {
            BlockedSince::Census(_) => TimeSource::Sampled,
            BlockedSince::Runtime(_) => TimeSource::Runtime,
        },
    }
}

/// The location most goroutines share; ties go to the first by file and line.
fn most_common(counts: HashMap<SourceLocation, u64>) -> Option<SourceLocation> {
    counts
        .into_iter()
        .max_by(|(a, n), (b, m)| {
            n.cmp(m)
                .then_with(|| (&b.file, b.line, &b.function).cmp(&(&a.file, a.line, &a.function)))
        })
        .map(|(at, _)| at)
}

/// The attributed frame's place, to order entries of one `go` statement.
fn attributed_line(site: &SiteReport) -> Option<(&str, u32)> {
    site.attributed_to
        .as_ref()
        .and_then(|a| a.frame.as_ref())
        .map(|frame| (frame.file.as_str(), frame.line))
}

/// Per test function: the goroutines and sites it leaked, most first.
fn test_leaks(sites: &[SiteReport]) -> Vec<TestLeaks> {
    let mut by_test: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for site in sites.iter().filter(|s| s.verdict == Verdict::Leak) {
        for test in &site.tests {
            let (goroutines, sites) = by_test.entry(&test.name).or_default();
            *goroutines += test.live;
            *sites += 1;
        }
    }
    let mut tests: Vec<TestLeaks> = by_test
        .into_iter()
        .map(|(name, (leaked_goroutines, leaking_sites))| TestLeaks {
            name: name.to_string(),
            leaked_goroutines,
            leaking_sites,
        })
        .collect();
    tests.sort_by_key(|t| std::cmp::Reverse(t.leaked_goroutines));
    tests
}

fn longest(a: Option<BlockedFor>, b: Option<BlockedFor>) -> Option<BlockedFor> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.longest_ns > a.longest_ns { b } else { a }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests;
