//! What leaktrace reads of the Go runtime's own data structures: where the
//! fields sit (from DWARF, or from the generated table of known releases).

use crate::GoVersion;

/// Where the `runtime.g` fields leaktrace reads sit in the struct.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GLayout {
    pub goid: u64,
    pub gopc: u64,
    pub startpc: u64,
    pub atomicstatus: u64,
    pub waitreason: u64,
    pub waitsince: u64,
    /// `trackingSeq` (a byte): the runtime adds one each time the goroutine
    /// stops running, so a blocked goroutine whose value has not changed
    /// between two reads did not run in between.
    pub tracking_seq: u64,
    /// Go 1.21+.
    pub parent_goid: Option<u64>,
    /// `sched.pc`, `sched.sp` and `sched.bp`: where a goroutine that is not
    /// running stopped, to unwind its current stack.
    pub sched_pc: u64,
    pub sched_sp: u64,
    pub sched_bp: u64,
    /// `g.waiting`: the sudogs of the channel operations it is blocked in;
    /// with `sudog.c` and `sudog.waitlink`, which channels it waits on.
    pub waiting: u64,
    pub sudog_c: u64,
    pub sudog_waitlink: u64,
    /// `g.m` and `m.curg`: from the `g0` a creation probe runs on, the
    /// goroutine whose `go` statement it is.
    pub m: u64,
    pub m_curg: u64,
}

impl GLayout {
    /// Bytes of `runtime.g` to read to get every field above.
    pub fn span(&self) -> usize {
        let fields = [
            self.goid,
            self.gopc,
            self.startpc,
            self.atomicstatus,
            self.waitreason,
            self.waitsince,
            self.tracking_seq,
            self.parent_goid.unwrap_or(0),
            self.sched_pc,
            self.sched_sp,
            self.sched_bp,
            self.waiting,
        ];
        fields.iter().max().copied().unwrap_or(0) as usize + 8
    }
}

/// Where the runtime keeps its running timers (each P's timer heap), to
/// find tickers by reading memory rather than probing every timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerHeapLayout {
    /// `runtime.p.timers`.
    pub p_timers: u64,
    /// Go 1.23+: `runtime.timers.heap`, a `[]timerWhen` of `{*timer, when}`
    /// inside `p.timers`. Before, `p.timers` itself is a `[]*timer`.
    pub timers_heap: Option<u64>,
    /// `runtime.timer.when`, on the runtime's `nanotime` clock.
    pub timer_when: u64,
    pub timer_period: u64,
    /// `runtime.timer.f`, a func value: `time.sendTime` for tickers.
    pub timer_f: u64,
    /// `runtime.timer.arg`, an `any`; for a ticker its data word is `C`.
    pub timer_arg: u64,
    /// `state` (Go 1.23+, bits; `timerZombie` = stopped) or `status`
    /// (before: an enum; deleted, removing or removed = stopped).
    pub timer_state: u64,
    /// Where the heap's `*timer` sits in its `*time.Ticker`: `timer` in
    /// `runtime.timeTimer` (Go 1.23+), or `r` in `time.Ticker` (8) before;
    /// [`crate::typedesc::NO_TICKERS`] in a program that has no Timer or Ticker.
    pub timer_in_ticker: u64,
}

impl TimerHeapLayout {
    /// Bytes of `runtime.timer` to read to get every field above.
    pub fn timer_span(&self) -> usize {
        [
            self.timer_period,
            self.timer_f,
            self.timer_arg + 8,
            self.timer_state,
        ]
        .into_iter()
        .max()
        .unwrap_or(0) as usize
            + 8
    }

    /// Bytes per entry of a P's heap: `timerWhen` (Go 1.23+) or `*timer`.
    pub fn heap_entry(&self) -> u64 {
        if self.timers_heap.is_some() { 16 } else { 8 }
    }
}

/// One Go release's runtime, as far as leaktrace needs it, for binaries
/// without DWARF (see `runtime_table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownRuntime {
    pub version: GoVersion,
    pub g: GLayout,
    pub timers: TimerHeapLayout,
    /// Offset of `gofunc` in `runtime.moduledata`: where a stripped binary
    /// keeps the base of its inline trees.
    pub moduledata_gofunc: u64,
    pub wait_reasons: &'static [&'static str],
}
