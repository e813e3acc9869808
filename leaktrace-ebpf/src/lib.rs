//! What the eBPF programs and userspace share: the names by which userspace
//! finds programs, maps and globals in the object, and the `#[repr(C)]`
//! plain-data types that cross the kernel boundary byte for byte.
//!
//! The kernel side must define each name in [`program`], [`map`] and
//! [`global`] exactly as spelled here (aya's macros take literals only);
//! leaktrace's unit tests check the built object against these lists.
#![no_std]

/// The uprobe programs, by function name.
pub mod program {
    /// The `CALL runtime.runqput` in `runtime.newproc.func1` (new `*g` in RBX).
    pub const GOROUTINE_QUEUED: &str = "goroutine_queued";
    /// After a `CALL runtime.newproc1`, or on its `RET`s (new `*g` in RAX).
    pub const GOROUTINE_CREATED: &str = "goroutine_created";
    /// `runtime.gdestroy` or `runtime.goexit0`.
    pub const GOROUTINE_DESTROYED: &str = "goroutine_destroyed";
    /// `runtime.gopark`.
    pub const GOROUTINE_PARKED: &str = "goroutine_parked";
    /// `runtime.exit`.
    pub const PROCESS_EXITING: &str = "process_exiting";
    /// `time.startTimer` (before Go 1.23): every timer and ticker package
    /// time starts.
    pub const TIMER_STARTED: &str = "timer_started";
    /// The `CALL runtime.(*timer).modify` in `time.newTimer` (Go 1.23+).
    pub const TIMER_CREATED: &str = "timer_created";
    /// `time.stopTimer`.
    pub const TIMER_STOPPED: &str = "timer_stopped";
    /// `time.resetTimer` (Go 1.23+) or `time.modTimer` (before): a new
    /// `when` and period.
    pub const TIMER_RESET: &str = "timer_reset";
    /// `time.resetTimer` before Go 1.23: a new `when`, the period kept.
    pub const TIMER_REARMED: &str = "timer_rearmed";
    /// The `CALL runtime.newproc` of one `go` statement (sampled attach mode).
    pub const SITE_CREATING: &str = "site_creating";
    /// `runtime.dieFromSignal`: killed by a signal, `runtime.exit` is never reached.
    pub const PROCESS_DYING: &str = "process_dying";
    /// The `sys_exit` raw tracepoint: descriptors opened and closed.
    pub const FD_SYSCALL: &str = "fd_syscall";

    /// Every program, in the order of their hit counters ([`crate::hit`]).
    pub const ALL: &[&str] = &[
        GOROUTINE_QUEUED,
        GOROUTINE_CREATED,
        GOROUTINE_DESTROYED,
        GOROUTINE_PARKED,
        PROCESS_EXITING,
        TIMER_STARTED,
        TIMER_CREATED,
        TIMER_STOPPED,
        TIMER_RESET,
        TIMER_REARMED,
        SITE_CREATING,
        PROCESS_DYING,
        FD_SYSCALL,
    ];
}

/// Indices of the per-program hit counters in [`map::HITS`]: the position
/// of each program in [`program::ALL`].
pub mod hit {
    pub const GOROUTINE_QUEUED: u32 = 0;
    pub const GOROUTINE_CREATED: u32 = 1;
    pub const GOROUTINE_DESTROYED: u32 = 2;
    pub const GOROUTINE_PARKED: u32 = 3;
    pub const PROCESS_EXITING: u32 = 4;
    pub const TIMER_STARTED: u32 = 5;
    pub const TIMER_CREATED: u32 = 6;
    pub const TIMER_STOPPED: u32 = 7;
    pub const TIMER_RESET: u32 = 8;
    pub const TIMER_REARMED: u32 = 9;
    pub const SITE_CREATING: u32 = 10;
    pub const PROCESS_DYING: u32 = 11;
    pub const FD_SYSCALL: u32 = 12;
    pub const COUNT: u32 = 13;
}

/// The maps.
pub mod map {
    /// `*g` address → [`GoroutineRecord`](crate::GoroutineRecord).
    pub const GOROUTINES: &str = "GOROUTINES";
    /// [`SiteKey`](crate::SiteKey) → per-CPU [`SiteCounters`](crate::SiteCounters).
    pub const SITES: &str = "SITES";
    /// Creation stacks, by stack id.
    pub const STACKS: &str = "STACKS";
    /// `*time.Timer` or `*time.Ticker` address → [`TimerRecord`](crate::TimerRecord).
    pub const TIMERS: &str = "TIMERS";
    /// Creation stack id → per-CPU [`TimerCounters`](crate::TimerCounters).
    pub const TIMER_SITES: &str = "TIMER_SITES";
    /// Open descriptor → [`FdRecord`](crate::FdRecord).
    pub const FDS: &str = "FDS";
    /// [`FdSiteKey`](crate::FdSiteKey) → per-CPU [`FdCounters`](crate::FdCounters).
    pub const FD_SITES: &str = "FD_SITES";
    /// Per-CPU event counters, indexed by [`counter`](crate::counter).
    pub const COUNTERS: &str = "COUNTERS";
    /// Ring buffer of [`ExitNotice`](crate::ExitNotice)s.
    pub const EXIT_NOTICES: &str = "EXIT_NOTICES";
    /// Per-CPU hits of each program, indexed by [`hit`](crate::hit).
    pub const HITS: &str = "HITS";
    /// Per-CPU: which rare paths have been logged, by [`counter`](crate::counter).
    pub const LOGGED: &str = "LOGGED";
    /// aya-log's ring buffer of log records (`--debug`).
    pub const LOGS: &str = "AYA_LOGS";
    /// [`SiteStack`](crate::SiteStack) → per-CPU count of goroutines created
    /// there with that creation stack (sampled attach mode).
    pub const SITE_STACKS: &str = "SITE_STACKS";

    pub const ALL: &[&str] = &[
        GOROUTINES,
        SITES,
        STACKS,
        TIMERS,
        TIMER_SITES,
        FDS,
        FD_SITES,
        COUNTERS,
        EXIT_NOTICES,
        HITS,
        SITE_STACKS,
        LOGGED,
        LOGS,
    ];
}

/// The read-only globals userspace sets before loading.
pub mod global {
    /// [`GoLayout`](crate::GoLayout).
    pub const LAYOUT: &str = "LAYOUT";
    /// [`TimerLayout`](crate::TimerLayout).
    pub const TIMER_LAYOUT: &str = "TIMER_LAYOUT";
    /// `u8`: non-zero to record goroutine creation stacks.
    pub const GOROUTINE_STACKS: &str = "GOROUTINE_STACKS";
    /// `u8`: non-zero to SIGSTOP the target in `runtime.exit`.
    pub const STOP_AT_EXIT: &str = "STOP_AT_EXIT";
    /// `u64`: one-shot timers set less than this many nanoseconds ahead are
    /// not tracked (`--min-timer`).
    pub const MIN_TIMER_NS: &str = "MIN_TIMER_NS";
    /// `u32`: the process whose descriptors `fd_syscall` tracks (a raw
    /// tracepoint sees every process's system calls).
    pub const FD_TGID: &str = "FD_TGID";
    /// `u8`: aya-log's level; 0 logs nothing, [`LOG_LEVEL_DEBUG`](crate::LOG_LEVEL_DEBUG) everything.
    pub const LOG_LEVEL: &str = "AYA_LOG_LEVEL";

    pub const ALL: &[&str] = &[
        LAYOUT,
        TIMER_LAYOUT,
        GOROUTINE_STACKS,
        STOP_AT_EXIT,
        MIN_TIMER_NS,
        FD_TGID,
        LOG_LEVEL,
    ];
}

/// Byte offsets of the `runtime.g` fields the probes read, taken from the target's
/// DWARF. Set as a global before the programs are loaded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GoLayout {
    pub g_goid: u64,
    pub g_gopc: u64,
    pub g_startpc: u64,
    /// `runtime.g.parentGoid` exists from Go 1.21 on; [`FIELD_ABSENT`] before.
    pub g_parent_goid: u64,
    /// `runtime.g.m` and `runtime.m.curg`: the creating goroutine, from the
    /// `g0` (R14) a creation probe runs on.
    pub g_m: u64,
    pub m_curg: u64,
}

/// How timers look in the target's Go release, set as a global before load.
/// A timer is known by the address of its `*time.Timer` or `*time.Ticker`
/// (Go 1.23+: the runtime's `timeTimer`, the same object).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerLayout {
    /// Subtracted from the pointer `stopTimer` and `resetTimer` get: 8
    /// before Go 1.23 (`Timer{C, r runtimeTimer}`, they get `&t.r`), 0 after.
    pub handle_from_argument: u64,
    /// Subtracted from the receiver of `(*timer).modify` in `newTimer`
    /// (Go 1.23+): `timer` in `runtime.timeTimer`.
    pub handle_from_receiver: u64,
    /// Offsets in the pre-1.23 `runtimeTimer`, read at `startTimer`.
    pub runtime_timer_when: u64,
    pub runtime_timer_period: u64,
    pub runtime_timer_f: u64,
}

/// What the kernel keeps per timer or ticker, keyed by its `*time.Timer` or
/// `*time.Ticker` address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerRecord {
    /// When it fires next, on the runtime's clock (`nanotime`,
    /// CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns`).
    pub when_ns: i64,
    /// 0 for a one-shot timer.
    pub period_ns: i64,
    /// `bpf_ktime_get_ns` at creation.
    pub created_ns: u64,
    /// The func value it runs: `time.sendTime` (NewTimer, After, NewTicker)
    /// or `time.goFunc` (AfterFunc).
    pub func: u64,
    /// The creation stack in `STACKS`; [`NO_STACK`] if none.
    pub stack_id: i32,
    /// 1 after `Stop`, 0 again after `Reset`.
    pub stopped: u8,
    /// `Reset`s, saturating at 255.
    pub resets: u8,
    pub _pad: [u8; 2],
}

/// Per creation stack, what happened to the timers created there, counted
/// in the kernel: exact however the per-timer table turns over.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerCounters {
    pub created: u64,
    /// `Stop` calls on these timers.
    pub stopped: u64,
    /// `Reset` calls on these timers.
    pub reset: u64,
}

/// [`global::LOG_LEVEL`] for `--debug`: aya-log's `Debug`.
pub const LOG_LEVEL_DEBUG: u8 = 4;
/// [`global::LOG_LEVEL`] without `--debug`: nothing is logged.
pub const LOG_LEVEL_OFF: u8 = 0;

/// What the kernel keeps per descriptor the target opened while traced.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdRecord {
    /// `bpf_ktime_get_ns` when it was opened.
    pub opened_ns: u64,
    /// The system call that made it (x86-64 number: openat, socket, ...).
    pub syscall: u32,
    /// The user stack that opened it, in `STACKS`; [`NO_STACK`] if none.
    pub stack_id: i32,
    /// The creation stack of the goroutine that opened it (its `*g` is in
    /// R14 at the system call), if the goroutine table has it: a socket
    /// net/http dials from a goroutine of its own belongs to the request.
    pub creator_stack_id: i32,
    pub _pad: u32,
}

/// The stacks that opened a descriptor: its own, and its goroutine's creation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FdSiteKey {
    pub stack_id: i32,
    pub creator_stack_id: i32,
    /// The system call that made the descriptors.
    pub syscall: u32,
    pub _pad: u32,
}

/// Per opening stack, descriptors opened and closed, counted in the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdCounters {
    pub opened: u64,
    pub closed: u64,
}

/// Capacity of the descriptor table (the target's open descriptors).
pub const MAX_FDS: u32 = 1 << 16;
/// Capacity of the per-opening-stack descriptor counters.
pub const MAX_FD_SITES: u32 = 1 << 12;

/// Capacity of the timer table (timers and tickers).
pub const MAX_TIMERS: u32 = 1 << 16;
/// Capacity of the per-creation-stack timer counters.
pub const MAX_TIMER_SITES: u32 = 1 << 12;

/// Marks a field of [`GoLayout`] that the target's Go version does not have.
pub const FIELD_ABSENT: u64 = u64::MAX;

/// What the kernel keeps per goroutine created while leaktrace is attached,
/// keyed by the address of its `runtime.g`. A `g` is recycled only after it is
/// destroyed, so at any moment one address names at most one live goroutine.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GoroutineRecord {
    pub goid: u64,
    /// 0 when unknown (Go < 1.21).
    pub parent_goid: u64,
    /// PC just after the `go` statement's call into the runtime.
    pub gopc: u64,
    /// Entry PC of the function the goroutine runs.
    pub startpc: u64,
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC) at creation; 0 for a goroutine
    /// that existed before the attach (userspace seeds those from `allgs`).
    pub created_ns: u64,
    /// `bpf_ktime_get_ns` at the last `runtime.gopark`; 0 if it never parked.
    pub parked_ns: u64,
    /// The `waitReason` passed to the last `runtime.gopark`.
    pub park_reason: u8,
    pub _pad: [u8; 3],
    /// The creation stack in the `STACKS` map; [`NO_STACK`] if none.
    pub stack_id: i32,
    /// The creation stack of the goroutine whose `go` statement created this
    /// one, if the table had it: the caller's code behind a goroutine the
    /// standard library started from a goroutine of its own (net/http's
    /// connection goroutines come from `dialConnFor`'s).
    pub creator_stack_id: i32,
    pub _pad2: u32,
}

/// [`GoroutineRecord::stack_id`] when no creation stack was recorded.
pub const NO_STACK: i32 = -1;

/// A creation site: the `go` statement and the function it starts. One
/// statement can start different functions (`go fn()` with a func value).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SiteKey {
    pub gopc: u64,
    pub startpc: u64,
}

/// A `go` statement (its `gopc`, run-time address) and one creation stack
/// that reached it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SiteStack {
    pub gopc: u64,
    /// In `STACKS`; [`NO_STACK`] if it could not be stored.
    pub stack_id: i32,
    pub _pad: u32,
}

/// Capacity of the site-stack table.
pub const MAX_SITE_STACKS: u32 = 1 << 12;

/// Per creation site counters, aggregated in the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SiteCounters {
    /// Goroutines created here while attached.
    pub created: u64,
    /// Of those, how many exited while attached.
    pub exited: u64,
    /// Goroutines from here that existed before the attach and exited while attached.
    pub exited_preexisting: u64,
}

/// Sent through the ring buffer when the target enters `runtime.exit`, or
/// `runtime.dieFromSignal` (then `code` is 128 + the signal, as a shell
/// reports it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitNotice {
    pub tgid: u32,
    pub code: i32,
    /// The `*g` of the goroutine that called `runtime.exit` (`os.Exit`, a
    /// return from `main.main`, a fatal panic): it is ending the program,
    /// not leaking. 0 when unknown, and for a death by signal.
    pub g: u64,
}

/// Indices of the per-CPU event counters.
pub mod counter {
    pub const CREATED: u32 = 0;
    pub const EXITED: u32 = 1;
    pub const PARKED: u32 = 2;
    /// A creation was not recorded because the goroutine table was full.
    pub const DROPPED_GOROUTINE_TABLE_FULL: u32 = 3;
    /// A creation or exit was not counted because the site table was full.
    pub const DROPPED_SITE_TABLE_FULL: u32 = 4;
    /// Reading the target's memory failed inside a probe (page not resident).
    pub const DROPPED_READ_FAULT: u32 = 5;
    /// The exit notice did not fit in the ring buffer.
    pub const DROPPED_EXIT_NOTICE: u32 = 6;
    /// A creation stack could not be stored (stack table full or collision).
    pub const DROPPED_STACK: u32 = 7;
    /// A timer or ticker was not recorded because the timer table was full,
    /// or its counters because the timer-site table was.
    pub const DROPPED_TIMER_TABLE_FULL: u32 = 8;
    /// A new goroutine's `gopc` or `startpc` read as 0: the layout is not
    /// what leaktrace was told (logged with `--debug`, not a drop).
    pub const UNEXPECTED_LAYOUT: u32 = 9;
    /// One-shot timers set less than `--min-timer` ahead, not tracked (a
    /// filter, not a drop).
    pub const TIMERS_TOO_SHORT: u32 = 10;
    /// A descriptor was not tracked because the descriptor table was full,
    /// or not counted because the descriptor-site table was.
    pub const DROPPED_FD_TABLE_FULL: u32 = 11;
    pub const COUNT: u32 = 12;
}

/// Capacity of the goroutine table. Allocated on demand (`BPF_F_NO_PREALLOC`).
pub const MAX_GOROUTINES: u32 = 1 << 20;
/// Capacity of the creation-site table.
pub const MAX_SITES: u32 = 1 << 16;
/// Capacity of the creation-stack table (distinct stacks).
pub const MAX_STACKS: u32 = 1 << 14;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are repr(C), Copy, and valid for any bit pattern.
    unsafe impl aya::Pod for super::GoLayout {}
    unsafe impl aya::Pod for super::GoroutineRecord {}
    unsafe impl aya::Pod for super::SiteCounters {}
    unsafe impl aya::Pod for super::SiteKey {}
    unsafe impl aya::Pod for super::SiteStack {}
    unsafe impl aya::Pod for super::TimerLayout {}
    unsafe impl aya::Pod for super::TimerRecord {}
    unsafe impl aya::Pod for super::TimerCounters {}
    unsafe impl aya::Pod for super::FdRecord {}
    unsafe impl aya::Pod for super::FdCounters {}
    unsafe impl aya::Pod for super::FdSiteKey {}
    unsafe impl aya::Pod for super::ExitNotice {}
}
