//! Running tickers, read from the runtime's timer heaps: every P
//! (`runtime.allp`) keeps the timers that will fire in a heap, and a ticker
//! is a timer with a period that sends on its channel (`time.sendTime`).
//! Reading them costs the target nothing, where a probe on the timer
//! functions would trap on every timer a service makes (each
//! `context.WithTimeout`, `time.After`, ...).
//!
//! What the heaps hold follows the release's semantics: before Go 1.23
//! every running ticker is there; from Go 1.23 a ticker's timer is there
//! only while a goroutine is blocked on its channel (or with
//! `asynctimerchan=1`), which is exactly when it leaks.

use std::collections::HashMap;

use leaktrace_gobinary::TimerHeapLayout;

use super::memory::{Memory, MemoryError};

/// Ps leaktrace reads at most (GOMAXPROCS is capped at 2^20, but a
/// corrupt length must not make it read gigabytes).
const MAX_PS: u64 = 1 << 14;
/// Timers read at most, over all heaps.
const MAX_TIMERS: u64 = 1 << 20;

/// Go 1.23+: `timerZombie`, a stopped timer still in a heap.
const TIMER_ZOMBIE: u64 = 4;
/// Before Go 1.23: `timerDeleted`, `timerRemoving`, `timerRemoved`.
const STOPPED_STATUSES: [u64; 3] = [3, 4, 5];
/// Before Go 1.23: `timerNoStatus`, not in a heap.
const NO_STATUS: u64 = 0;

/// Why the timer heaps could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TimerHeapError {
    #[error("the binary does not describe the runtime's timers")]
    NoLayout,
    #[error("cannot find runtime.allp: no symbol table, and runtime.preemptall does not show it")]
    NoAllp,
    #[error("cannot read the timer heaps")]
    Unreadable(#[from] MemoryError),
}

/// The running tickers found in the heaps: `*time.Ticker` → period (ns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeapTickers {
    pub tickers: HashMap<u64, i64>,
    /// Timers not read: past [`MAX_TIMERS`], or unreadable.
    pub dropped: u64,
}

/// Reads every P's timer heap. `allp` and `send_time` (the entry of
/// `time.sendTime`, if known) are run-time addresses.
pub fn read(
    mem: &dyn Memory,
    allp: u64,
    layout: &TimerHeapLayout,
    send_time: Option<u64>,
) -> Result<HeapTickers, MemoryError> {
    let array = mem.read_u64(allp)?;
    let procs = mem.read_u64(allp.wrapping_add(8))?.min(MAX_PS);
    let mut ps = vec![0u8; procs as usize * 8];
    mem.read(array, &mut ps)?;
    let mut found = HeapTickers::default();
    let mut budget = MAX_TIMERS;
    for p in words(&ps).filter(|&p| p != 0) {
        let heap = p
            .wrapping_add(layout.p_timers)
            .wrapping_add(layout.timers_heap.unwrap_or(0));
        let (Ok(entries_at), Ok(len)) = (mem.read_u64(heap), mem.read_u64(heap.wrapping_add(8)))
        else {
            continue;
        };
        let len = len.min(budget);
        budget -= len;
        if len == 0 {
            continue;
        }
        let mut entries = vec![0u8; (len * layout.heap_entry()) as usize];
        if mem.read(entries_at, &mut entries).is_err() {
            found.dropped += len;
            continue;
        }
        let timers: Vec<u64> = entries
            .chunks_exact(layout.heap_entry() as usize)
            .filter_map(|entry| entry.get(..8))
            .map(|word| u64::from_le_bytes(word.try_into().unwrap_or_default()))
            .collect();
        read_timers(mem, &timers, layout, send_time, &mut found);
    }
    Ok(found)
}

fn read_timers(
    mem: &dyn Memory,
    timers: &[u64],
    layout: &TimerHeapLayout,
    send_time: Option<u64>,
    found: &mut HeapTickers,
) {
    let span = layout.timer_span();
    let mut raw = vec![0u8; timers.len() * span];
    let mut readable = vec![false; timers.len()];
    mem.read_blocks(timers, &mut raw, &mut readable);
    for ((&timer, bytes), ok) in timers.iter().zip(raw.chunks_exact(span)).zip(readable) {
        if !ok {
            found.dropped += 1;
            continue;
        }
        let word = |offset: u64| {
            let at = usize::try_from(offset).ok()?;
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let period = word(layout.timer_period).unwrap_or(0) as i64;
        if period <= 0 {
            continue;
        }
        let stopped = match layout.timers_heap {
            Some(_) => word(layout.timer_state).unwrap_or(0) & 0xff & TIMER_ZOMBIE != 0,
            None => {
                let status = word(layout.timer_state).unwrap_or(0) & 0xffff_ffff;
                status == NO_STATUS || STOPPED_STATUSES.contains(&status)
            }
        };
        if stopped {
            continue;
        }
        // `f` is a func value: a pointer to the code pointer.
        let sends = match send_time {
            Some(send_time) => word(layout.timer_f)
                .and_then(|f| mem.read_u64(f).ok())
                .is_some_and(|pc| pc == send_time),
            None => true,
        };
        if sends {
            found
                .tickers
                .insert(timer.wrapping_sub(layout.timer_in_ticker), period);
        }
    }
}

fn words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::memory::Regions;

    fn go123() -> TimerHeapLayout {
        leaktrace_gobinary::runtime_table::lookup(leaktrace_gobinary::GoVersion::new(1, 23, 0))
            .expect("go1.23 in the table")
            .0
            .timers
    }

    const ALLP: u64 = 0x1000;
    const SEND_TIME: u64 = 0x40_0000;
    const SEND_TIME_FUNCVAL: u64 = 0x50_0000;
    const OTHER_FUNCVAL: u64 = 0x50_0010;

    fn timer(l: &TimerHeapLayout, period: i64, f: u64, state: u8) -> Vec<u8> {
        let mut raw = vec![0u8; l.timer_span()];
        raw[l.timer_period as usize..][..8].copy_from_slice(&period.to_le_bytes());
        raw[l.timer_f as usize..][..8].copy_from_slice(&f.to_le_bytes());
        raw[l.timer_state as usize] = state;
        raw
    }

    #[test]
    fn finds_running_tickers_in_every_heap() {
        let l = go123();
        let mut mem = Regions::new();
        mem.map_words(SEND_TIME_FUNCVAL, &[SEND_TIME, 0x40_1000]);
        // allp = [p0, p1]; p0's heap has a ticker, a one-shot timer and a
        // stopped ticker; p1's has a ticker and an AfterFunc with a period.
        let (p0, p1) = (0x2000u64, 0x20_000u64);
        mem.map_words(ALLP, &[0x3000, 2, 2]);
        mem.map_words(0x3000, &[p0, p1]);
        let heap_of = |p: u64| p + l.p_timers + l.timers_heap.unwrap();
        mem.map_words(heap_of(p0), &[0x4000, 3, 3]);
        mem.map_words(heap_of(p1), &[0x5000, 2, 2]);
        // Heap entries are {*timer, when}.
        mem.map_words(0x4000, &[0x10_000, 1, 0x11_000, 2, 0x12_000, 3]);
        mem.map_words(0x5000, &[0x13_000, 1, 0x14_000, 2]);
        mem.map(0x10_000, timer(&l, 1_000_000_000, SEND_TIME_FUNCVAL, 1));
        mem.map(0x11_000, timer(&l, 0, SEND_TIME_FUNCVAL, 1));
        mem.map(0x12_000, timer(&l, 5, SEND_TIME_FUNCVAL, 1 | 4));
        mem.map(0x13_000, timer(&l, 7, SEND_TIME_FUNCVAL, 1));
        mem.map(0x14_000, timer(&l, 9, OTHER_FUNCVAL, 1));
        let found = read(&mem, ALLP, &l, Some(SEND_TIME)).unwrap();
        let offset = l.timer_in_ticker;
        assert_eq!(
            found.tickers,
            HashMap::from([(0x10_000 - offset, 1_000_000_000), (0x13_000 - offset, 7)])
        );
        assert_eq!(found.dropped, 0);
    }

    #[test]
    fn a_corrupt_heap_is_bounded_and_counted() {
        let l = go123();
        let mut mem = Regions::new();
        let p0 = 0x2000u64;
        mem.map_words(ALLP, &[0x3000, u64::MAX, u64::MAX]);
        mem.map_words(0x3000, &[p0]);
        assert!(
            read(&mem, ALLP, &l, None).is_err(),
            "allp too short to read"
        );
        mem.map_words(ALLP, &[0x3000, 1, 1]);
        mem.map_words(p0 + l.p_timers + l.timers_heap.unwrap(), &[0x4000, 1, 1]);
        mem.map_words(0x4000, &[0xdead_0000, 0]);
        let found = read(&mem, ALLP, &l, None).unwrap();
        assert!(found.tickers.is_empty());
        assert_eq!(found.dropped, 1);
    }
}
