//! The report's schema: plain data, serialized as leaktrace's JSON (schema
//! version [`SCHEMA_VERSION`], documented in the README) and rendered as text
//! by [`crate::render`]. Nothing here computes anything; [`crate::analysis`]
//! fills it in.

use std::collections::BTreeMap;

pub use leaktrace_gobinary::SourceLocation;
use serde::Serialize;

#[cfg(test)]
pub(crate) mod fixtures;

pub const SCHEMA_VERSION: u32 = 1;

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

/// How goroutines the standard library started are the program's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributedBy {
    /// They run the program's code (a test function, a callback, a handler):
    /// the outermost of its frames on their current stacks.
    Running,
    /// They work for a call of the program's (an HTTP request, a started
    /// command): the innermost of its frames on their creation stacks,
    /// through the goroutine that created them if the library started them
    /// from a goroutine of its own.
    CreatedFor,
}

/// A recognised way the standard library starts goroutines for the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// `testing.tRunner` running a `Test…`, `Benchmark…` or `Fuzz…` function.
    TestGoroutine,
    /// A `time.AfterFunc` callback.
    TimerCallback,
    /// A `context.AfterFunc` callback.
    ContextCallback,
    /// net/http's server goroutine running the program's handler.
    HttpHandler,
    /// net/http's connection goroutines (`readLoop`, `writeLoop`) waiting for
    /// a response body to be read or closed: a leak.
    ResponseBodyNotClosed,
    /// net/http's connection goroutines of a keep-alive connection idle in
    /// the pool: not a leak.
    IdleConnection,
    /// os/exec's goroutines copying a started command's output, alive because
    /// `Wait` was not called (or did not return): a leak.
    CommandNotWaited,
}

impl Pattern {
    /// Whether goroutines found in this state are the program's leak when
    /// they are left at exit, even though the library started them.
    pub fn is_programs(self) -> bool {
        !matches!(self, Self::IdleConnection)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::TestGoroutine => "the test's own goroutine",
            Self::TimerCallback => "a time.AfterFunc callback",
            Self::ContextCallback => "a context.AfterFunc callback",
            Self::HttpHandler => "an HTTP handler",
            Self::ResponseBodyNotClosed => "response body never closed",
            Self::IdleConnection => "idle keep-alive connection",
            Self::CommandNotWaited => "command started and never waited for",
        }
    }
}

/// The program's frame that goroutines the standard library started are
/// attributed to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Attribution {
    /// `None`: a recognised pattern that is the program's, whose call is not
    /// known because no creation stacks were recorded for these goroutines
    /// (sampled attach mode, `--no-stacks`).
    pub frame: Option<SourceLocation>,
    pub by: AttributedBy,
    pub pattern: Option<Pattern>,
}

impl Attribution {
    /// Whether this makes the goroutines the program's, to be judged as its
    /// own `go` statements are: running its code, or in a recognised state
    /// that only the program can end (an unclosed body, an unwaited command).
    pub fn is_programs(&self) -> bool {
        match (self.by, self.pattern) {
            (_, Some(pattern)) => pattern.is_programs(),
            (AttributedBy::Running, None) => true,
            (AttributedBy::CreatedFor, None) => false,
        }
    }
}

/// Live goroutines of a site that one test function's goroutine created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestCount {
    /// `TestFoo`, `BenchmarkFoo`, `ExampleFoo` or `FuzzFoo`, without the package.
    pub name: String,
    pub live: u64,
}

/// Per test function: what it left behind (`go test -exec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestLeaks {
    pub name: String,
    pub leaked_goroutines: u64,
    pub leaking_sites: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Goroutines the program started and never ended: at exit (`run`), or
    /// piling up blocked while observed (`-p`).
    Leak,
    /// `-p` only: goroutines blocked longer than `--stuck-after`, but the site
    /// did not grow while observed. Long-lived by design, or an old leak.
    Suspect,
    /// Nothing from this site is left, or nothing looks stuck.
    Ok,
    /// Alive, but started by the standard library (signal handling, net/http
    /// internals); not counted as the program's leak.
    Library,
    /// The runtime's own goroutines; shown only with `--all`.
    Runtime,
    /// Matched an ignore rule (`--ignore-*`, `--config`); shown only with `--all`.
    Ignored,
}

impl Verdict {
    /// Order in the report: the worst first.
    pub fn rank(self) -> u8 {
        match self {
            Self::Leak => 0,
            Self::Suspect => 1,
            Self::Library => 2,
            Self::Ok => 3,
            Self::Ignored => 4,
            Self::Runtime => 5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leak => "leak",
            Self::Suspect => "suspect",
            Self::Ok => "ok",
            Self::Library => "library",
            Self::Runtime => "runtime",
            Self::Ignored => "ignored",
        }
    }
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
    /// Sampled attach mode: seen blocked, and not run since (unchanged
    /// `trackingSeq`), by every census since this long ago: a lower bound.
    Sampled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BlockedFor {
    pub longest_ns: u64,
    pub source: TimeSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetInfo {
    pub pid: u32,
    pub executable: String,
    pub go_version: String,
}

/// Probe hits since attach, summed over CPUs, and what was lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EventCounts {
    pub created: u64,
    pub exited: u64,
    pub parked: u64,
    pub dropped_goroutine_table_full: u64,
    pub dropped_site_table_full: u64,
    pub dropped_read_fault: u64,
    pub dropped_exit_notice: u64,
    pub dropped_stack: u64,
    pub dropped_timer_table_full: u64,
    /// One-shot timers set less than `--min-timer` ahead, not tracked: a
    /// filter, not a loss.
    pub timers_too_short: u64,
    /// Descriptors not tracked: their table was full.
    pub dropped_fd_table_full: u64,
}

impl EventCounts {
    pub fn dropped(&self) -> u64 {
        self.dropped_goroutine_table_full
            + self.dropped_site_table_full
            + self.dropped_read_fault
            + self.dropped_exit_notice
            + self.dropped_stack
            + self.dropped_timer_table_full
            + self.dropped_fd_table_full
    }
}

/// How leaktrace observed: every probe event (`exact`), or censuses of the
/// target's memory with probes only where creation stacks are wanted
/// (`sampled`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Observing {
    #[default]
    Exact,
    Sampled,
}

/// One eBPF program's probes and what they cost the target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeCost {
    pub program: String,
    /// Probe points it is attached at.
    pub points: u32,
    pub hits: u64,
    pub hits_per_second: f64,
    /// The estimated cost of one hit to the target, in ns: the trap (which
    /// depends on whether the kernel emulates the probed instruction or
    /// single-steps it), plus the program's work.
    pub estimated_ns_per_hit: u64,
}

/// What observing cost the target: its time in the probes, estimated from
/// their hits. Memory reads (censuses) cost the target nothing; they are
/// leaktrace's own time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProbeCosts {
    pub observing: Observing,
    pub probes: Vec<ProbeCost>,
    /// Estimated time the target's threads spent in probes, in ns.
    pub estimated_target_ns: u64,
    /// That, as a share of one CPU over the observed time.
    pub estimated_cpu_share: f64,
    /// Sampled mode: censuses of the goroutines taken, and the last one.
    pub censuses: u64,
    pub last_census: Option<CensusCost>,
}

/// One census of the goroutines from memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CensusCost {
    pub goroutines: u64,
    pub took_ns: u64,
    pub bytes_read: u64,
}

/// Live goroutines (or tickers) of a site that share one creation stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreationStack {
    pub count: u64,
    /// From the function with the `go` statement (or the NewTicker call) outwards.
    pub frames: Vec<SourceLocation>,
}

/// How a site's live count moved over the attach window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trend {
    /// Live count at each sample, first to last (at most twenty points).
    pub live: Vec<i64>,
    /// It ended higher than it started, and rose in at least as many sampling
    /// intervals as it fell.
    pub rising: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Where the one-shot timers were created whose channels they wait on.
    pub timers: Vec<SourceLocation>,
    pub origin: Origin,
    /// For goroutines the standard library started: the program's frame
    /// they belong to, if any.
    pub attributed_to: Option<Attribution>,
    /// The test function whose goroutine created them (or that they run),
    /// when exactly one did; `tests` lists them all.
    pub test: Option<String>,
    pub tests: Vec<TestCount>,
    pub verdict: Verdict,
    /// IDs of up to ten live goroutines, lowest first.
    pub goids: Vec<u64>,
    /// The goroutines whose `go` statements created the live ones (Go 1.21+,
    /// `runtime.g.parentGoid`): up to ten distinct IDs, lowest first.
    pub parent_goids: Vec<u64>,
}

/// How the target's Go release treats an unstopped ticker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TimerSemantics {
    /// Before Go 1.23, or `asynctimerchan=1`: the runtime holds every running
    /// ticker, so every unstopped one leaks.
    Async { reason: String },
    /// Go 1.23+: an unstopped ticker that nothing references is collected.
    Sync,
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

/// What became of the tickers one line of code created.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TickerSite {
    /// The first frame outside the runtime and package time: the NewTicker
    /// or Tick call. `None` in sampled attach mode, where tickers are read
    /// from the runtime's timer heaps, which do not record it.
    pub created_at: Option<SourceLocation>,
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

/// What a one-shot timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Sends the time on its channel: `time.NewTimer`, `time.After`.
    Channel,
    /// Runs a function: `time.AfterFunc`, and `context.WithTimeout`'s deadline.
    Func,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerVerdict {
    /// Pending and held until it fires: by the runtime (an AfterFunc, or any
    /// timer before Go 1.23 semantics), or (Go 1.23+) by a goroutine
    /// receiving from it or a global.
    Leak,
    /// Go 1.23+: a pending channel timer nothing refers to; the GC collects it.
    Unreferenced,
    /// Pending timers the standard library set for itself (net/http's idle
    /// connections), with no frame of the program's on their creation stacks.
    Library,
    /// None pending: all fired or stopped.
    Ok,
}

impl TimerVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leak => "leak",
            Self::Unreferenced => "unreferenced",
            Self::Library => "library",
            Self::Ok => "ok",
        }
    }
}

/// What became of the one-shot timers one line of code created.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerSite {
    /// The first frame of the creation stack outside the runtime and
    /// packages time and context: the NewTimer, After, AfterFunc or
    /// WithTimeout call (for a timer the standard library set while
    /// working for the program, the program's innermost frame).
    pub created_at: SourceLocation,
    pub kind: TimerKind,
    /// The API that made them: `time.After`, `time.AfterFunc`,
    /// `context.WithTimeout`, ...
    pub made_by: Option<String>,
    /// Created while observed (`--min-timer` and longer).
    pub created: u64,
    /// Still pending: neither fired nor stopped.
    pub live: u64,
    /// `Stop` calls.
    pub stopped: u64,
    /// `Reset` calls.
    pub reset: u64,
    /// How long until the last pending one fires.
    pub longest_remaining_ns: Option<u64>,
    /// Of the pending ones: how many a global variable refers to.
    pub referenced: u64,
    /// Goroutines blocked receiving from their channels, and where those
    /// goroutines were created.
    pub receiving_goroutines: u64,
    pub receivers: Vec<SourceLocation>,
    /// Creation stacks of the pending ones.
    pub stacks: Vec<CreationStack>,
    pub verdict: TimerVerdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceVerdict {
    /// Still open: at exit (`run`), or more opened than closed while
    /// observed (`-p --exact`).
    Leak,
    /// Open, but the standard library's own (a keep-alive connection idle
    /// in net/http's pool, a server's listener it started).
    Library,
    /// The runtime's own (the network poller's epoll and wakeup descriptors).
    Runtime,
    /// None left open, or not growing.
    Ok,
}

impl ResourceVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leak => "leak",
            Self::Library => "library",
            Self::Runtime => "runtime",
            Self::Ok => "ok",
        }
    }
}

/// The descriptors one line of code opened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceSite {
    /// The program's first frame on the opening stack (`os.Open`'s caller);
    /// for a descriptor the standard library opened from a goroutine it
    /// started for the program (net/http's dial), the program's frame on
    /// that goroutine's creation stack (`attributed_by`: `created_for`).
    pub created_at: SourceLocation,
    pub attributed_by: Option<AttributedBy>,
    /// What they are, from `/proc/PID/fd` for the open ones, else from the
    /// system call: `file`, `tcp`, `tcp6`, `udp`, `udp6`, `unix`, `socket`,
    /// `pipe`, `eventpoll`, `eventfd`, `pidfd`, ...
    pub kind: String,
    /// Opened while observed and still open at the end.
    pub open: u64,
    /// Opened and closed while observed.
    pub opened: u64,
    pub closed: u64,
    /// Up to five of the open ones: a file's path, a socket's `local -> peer`.
    pub examples: Vec<String>,
    /// Opening stacks of the open ones.
    pub stacks: Vec<CreationStack>,
    pub verdict: ResourceVerdict,
}

impl ResourceSite {
    pub fn new(created_at: SourceLocation, attributed_by: Option<AttributedBy>) -> Self {
        Self {
            created_at,
            attributed_by,
            kind: String::new(),
            open: 0,
            opened: 0,
            closed: 0,
            examples: Vec::new(),
            stacks: Vec::new(),
            verdict: ResourceVerdict::Ok,
        }
    }
}

/// Every descriptor of the target, by kind, from `/proc/PID/fd`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DescriptorSummary {
    /// `-p`: those open when the window started (opened before the attach).
    pub before_attach: Option<BTreeMap<String, u64>>,
    /// Those open at the end.
    pub at_end: BTreeMap<String, u64>,
}

/// The in-use heap, from the runtime's own heap profile (what `go tool pprof
/// -inuse_space` shows), by allocation site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeapReport {
    /// Why there is none, if not read (`sites` is then empty): the binary was
    /// linked without memory profiling, `MemProfileRate` is 0, no symbols.
    pub unavailable: Option<String>,
    /// `runtime.MemProfileRate`: one allocation sampled per this many bytes;
    /// counts are scaled back as pprof does.
    pub sample_rate: u64,
    /// Attach mode: the in-use heap was read at the start and at the end of
    /// the window, and `growth_*` is the difference; run mode: once, at exit.
    pub window: bool,
    /// As of the target's last GC before the end.
    pub inuse_bytes: u64,
    pub inuse_objects: u64,
    pub growth_bytes: i64,
    /// By allocation site, the fastest-growing first (run mode: the largest).
    pub sites: Vec<HeapSite>,
    /// Sites not listed, past the first [`crate::analysis::MAX_HEAP_SITES`].
    pub more_sites: u64,
    /// Profile buckets that could not be read.
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeapVerdict {
    /// Attach mode: more bytes in use at the end of the window than at its
    /// start, rising in at least as many readings as it fell.
    Growing,
    /// Attach mode: not growing.
    Steady,
    /// Run mode: in use at exit (there is no window to grow over).
    InUse,
}

impl HeapVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Growing => "growing",
            Self::Steady => "steady",
            Self::InUse => "in_use",
        }
    }
}

/// The heap allocated at one line and still in use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeapSite {
    /// The first frame of the allocation stack outside the runtime (and
    /// the standard library, when a frame of the program's is further out).
    pub allocated_at: SourceLocation,
    pub inuse_bytes: u64,
    pub inuse_objects: u64,
    /// Attach mode: change over the window; run mode: equal to `inuse_*`.
    pub growth_bytes: i64,
    pub growth_objects: i64,
    /// Attach mode: bytes in use at each reading of the heap profile over
    /// the window (about one a second; `live` holds bytes here).
    pub trend: Option<Trend>,
    /// Allocation stacks with what is in use from each, most bytes first.
    pub stacks: Vec<HeapStack>,
    pub verdict: HeapVerdict,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeapStack {
    pub inuse_bytes: u64,
    pub inuse_objects: u64,
    /// Leaf first, from the allocating function outwards.
    pub frames: Vec<SourceLocation>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// What observing cost the target.
    pub costs: ProbeCosts,
    /// How the target's Go release treats unstopped tickers.
    pub timer_semantics: TimerSemantics,
    /// Tickers created while observed, by the line that created them.
    pub tickers: Vec<TickerSite>,
    /// One-shot timers created while observed, by the line that created them.
    pub timers: Vec<TimerSite>,
    /// The in-use heap by allocation site; `None` when not read (the target
    /// was gone, or `leaktrace agent`).
    pub heap: Option<HeapReport>,
    /// Descriptors opened while observed (`run`, `-p --exact`), by the line
    /// that opened them, leaks first.
    pub resources: Vec<ResourceSite>,
    /// Every descriptor by kind, at the start (`-p`) and at the end; `None`
    /// when not read.
    pub descriptors: Option<DescriptorSummary>,
    /// `go test` binaries: the tests that leaked, most goroutines first.
    pub tests: Vec<TestLeaks>,
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
            || self.timers.iter().any(|t| t.verdict == TimerVerdict::Leak)
    }

    /// Descriptors the program opened and left open (`--fail-on-unclosed`).
    pub fn has_unclosed_resources(&self) -> bool {
        self.resources
            .iter()
            .any(|r| r.verdict == ResourceVerdict::Leak)
    }
}

/// One site's movement in the last sampling interval (`--interval`, live view).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    pub elapsed_ns: u64,
    pub live: i64,
    pub created_per_second: f64,
    pub exited_per_second: f64,
    pub parked_per_second: f64,
    pub events: EventCounts,
    pub sites: Vec<IntervalSite>,
}
