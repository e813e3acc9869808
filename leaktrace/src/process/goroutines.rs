//! The goroutines a process has right now, read from its memory: the
//! `runtime.allgs` slice, then each `runtime.g`.

use leaktrace_gobinary::GLayout;

use super::memory::{Memory, MemoryError};

/// Bounds what a corrupt or hostile `allgs` can make leaktrace read.
pub const MAX_GOROUTINES: u64 = 50_000_000;
const SCAN_BIT: u32 = 0x1000;

/// `runtime.g.atomicstatus`, without the GC's scan bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GStatus {
    Idle,
    Runnable,
    Running,
    Syscall,
    Waiting,
    Dead,
    CopyStack,
    Preempted,
    /// Go 1.26+: the GC proved the goroutine can never wake up.
    Leaked,
    Other(u32),
}

impl GStatus {
    pub fn from_raw(raw: u32) -> Self {
        match raw & !SCAN_BIT {
            0 => Self::Idle,
            1 => Self::Runnable,
            2 => Self::Running,
            3 => Self::Syscall,
            4 => Self::Waiting,
            // 5 and 7 are unused; 11 is Go 1.27's _Gdeadextra.
            6 | 11 => Self::Dead,
            8 => Self::CopyStack,
            9 => Self::Preempted,
            10 => Self::Leaked,
            other => Self::Other(other),
        }
    }

    /// The runtime's number for the status (`_Gwaiting` is 4, ...).
    pub fn code(self) -> u32 {
        match self {
            Self::Idle => 0,
            Self::Runnable => 1,
            Self::Running => 2,
            Self::Syscall => 3,
            Self::Waiting => 4,
            Self::Dead => 6,
            Self::CopyStack => 8,
            Self::Preempted => 9,
            Self::Leaked => 10,
            Self::Other(raw) => raw,
        }
    }

    /// Whether the goroutine is parked, as opposed to running or ready to run.
    pub fn is_blocked(self) -> bool {
        matches!(self, Self::Waiting | Self::Leaked | Self::Syscall)
    }

    /// The name Go's goroutine dump uses for statuses without a wait reason.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Runnable => "runnable",
            Self::Running => "running",
            Self::Syscall => "syscall",
            Self::Waiting => "waiting",
            Self::Dead => "dead",
            Self::CopyStack => "copystack",
            Self::Preempted => "preempted",
            Self::Leaked => "leaked",
            Self::Other(_) => "unknown",
        }
    }
}

/// One goroutine as its `runtime.g` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goroutine {
    /// Address of its `runtime.g`, as in the probes' table.
    pub g: u64,
    pub goid: u64,
    pub parent_goid: Option<u64>,
    pub gopc: u64,
    pub startpc: u64,
    pub status: GStatus,
    pub wait_reason: u8,
    /// The runtime's own approximate block time (CLOCK_MONOTONIC ns), set by
    /// the GC the first time it sees the goroutine blocked; 0 if not yet.
    pub wait_since_ns: i64,
    /// Changes each time the goroutine stops running (`g.trackingSeq`).
    pub tracking_seq: u8,
    /// Where it stopped (`g.sched`): valid while it is not running.
    pub sched_pc: u64,
    pub sched_sp: u64,
    pub sched_bp: u64,
    /// `g.waiting`: the sudogs of the channel operations it is blocked in.
    pub waiting: u64,
}

/// Channel operations of one `select` that leaktrace follows at most.
const MAX_SUDOGS: usize = 64;

/// The channels (`*hchan`) a goroutine blocked in a channel operation or a
/// `select` waits on, following `g.waiting` and `sudog.waitlink`.
pub fn waiting_channels(mem: &dyn Memory, g: &Goroutine, layout: &GLayout) -> Vec<u64> {
    let mut channels = Vec::new();
    let mut sudog = g.waiting;
    // Bounded by steps, not by channels found: a chain of sudogs without a
    // channel that loops (read while the runtime changes it) must end too.
    for _ in 0..MAX_SUDOGS {
        if sudog == 0 {
            break;
        }
        let field = |offset: u64| {
            sudog
                .checked_add(offset)
                .and_then(|at| mem.read_u64(at).ok())
        };
        let (Some(channel), Some(next)) = (field(layout.sudog_c), field(layout.sudog_waitlink))
        else {
            break;
        };
        if channel != 0 {
            channels.push(channel);
        }
        sudog = next;
    }
    channels
}

/// Frames of a current stack that leaktrace reads at most.
const MAX_FRAMES: usize = 64;

/// The current stack of a parked goroutine, innermost first: the PC it
/// stopped at, then the return addresses found by following Go's frame
/// pointers from `g.sched.bp`. Empty for a goroutine that is not parked.
pub fn current_stack(mem: &dyn Memory, g: &Goroutine) -> Vec<u64> {
    if !matches!(g.status, GStatus::Waiting | GStatus::Leaked) {
        return Vec::new();
    }
    unwind(mem, g.sched_pc, g.sched_bp)
}

/// The stack of a goroutine stopped at `pc` with frame pointer `bp`,
/// innermost first.
pub fn unwind(mem: &dyn Memory, pc: u64, bp: u64) -> Vec<u64> {
    if pc == 0 {
        return Vec::new();
    }
    let mut frames = vec![pc];
    let mut bp = bp;
    while frames.len() < MAX_FRAMES && bp != 0 {
        let Some(ret_at) = bp.checked_add(8) else {
            break;
        };
        let (Ok(saved_bp), Ok(ret)) = (mem.read_u64(bp), mem.read_u64(ret_at)) else {
            break;
        };
        if ret == 0 {
            break;
        }
        frames.push(ret);
        // Frames grow towards higher addresses; anything else is a broken chain.
        if saved_bp <= bp {
            break;
        }
        bp = saved_bp;
    }
    frames
}

/// Why `runtime.allgs` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AllgsError {
    #[error("cannot read runtime.allgs")]
    Unreadable(#[from] MemoryError),
    #[error("runtime.allgs claims {0} goroutines, more than leaktrace reads")]
    TooMany(u64),
}

/// Goroutines read per batch: one `process_vm_readv` (the kernel's IOV_MAX).
pub const BATCH: usize = 1024;
/// Goroutines one snapshot holds at most; further ones are counted as
/// dropped (sampled attach mode counts any number without holding them).
pub const MAX_SNAPSHOT: usize = 1 << 21;

/// Every goroutine in `runtime.allgs` that is not dead, and how many could
/// not be read or held. `allgs` is the run-time address of the slice header.
pub fn read_all(
    mem: &dyn Memory,
    allgs: u64,
    layout: &GLayout,
) -> Result<(Vec<Goroutine>, u64), AllgsError> {
    let array = mem.read_u64(allgs)?;
    let len = mem.read_u64(allgs.checked_add(8).ok_or(AllgsError::TooMany(u64::MAX))?)?;
    if len > MAX_GOROUTINES {
        return Err(AllgsError::TooMany(len));
    }
    let len = len as usize;
    let mut goroutines = Vec::new();
    let mut dropped = 0u64;
    let mut pointers = vec![0u8; BATCH * 8];
    for start in (0..len).step_by(BATCH) {
        let count = BATCH.min(len - start);
        let pointers = &mut pointers[..count * 8];
        let at = array.checked_add(start as u64 * 8);
        if at.is_none_or(|at| mem.read(at, pointers).is_err()) {
            dropped += count as u64;
            continue;
        }
        let addresses: Vec<u64> = pointers
            .chunks_exact(8)
            .map(|p| u64::from_le_bytes(p.try_into().unwrap_or_default()))
            .collect();
        let (batch, unreadable) = read_batch(mem, &addresses, layout);
        dropped += unreadable;
        let room = MAX_SNAPSHOT.saturating_sub(goroutines.len());
        dropped += batch.len().saturating_sub(room) as u64;
        goroutines.extend(batch.into_iter().take(room));
    }
    Ok((goroutines, dropped))
}

/// Reads the goroutines at these `runtime.g` addresses, skipping dead ones;
/// and how many could not be read.
pub fn read_each(
    mem: &dyn Memory,
    addresses: impl IntoIterator<Item = u64>,
    layout: &GLayout,
) -> (Vec<Goroutine>, u64) {
    let addresses: Vec<u64> = addresses.into_iter().collect();
    let mut goroutines = Vec::new();
    let mut unreadable = 0;
    for chunk in addresses.chunks(BATCH) {
        let (batch, failed) = read_batch(mem, chunk, layout);
        goroutines.extend(batch);
        unreadable += failed;
    }
    (goroutines, unreadable)
}

/// The live goroutines among up to [`BATCH`] `runtime.g`s, read at once, and
/// how many could not be read.
fn read_batch(mem: &dyn Memory, addresses: &[u64], layout: &GLayout) -> (Vec<Goroutine>, u64) {
    let span = layout.span();
    let mut raw = vec![0u8; addresses.len() * span];
    let mut readable = vec![false; addresses.len()];
    mem.read_blocks(addresses, &mut raw, &mut readable);
    let mut goroutines = Vec::new();
    let mut unreadable = 0;
    for ((&g, bytes), ok) in addresses.iter().zip(raw.chunks_exact(span)).zip(readable) {
        match (g, ok) {
            (0, _) => {}
            (_, false) => unreadable += 1,
            (_, true) => goroutines.extend(decode(g, bytes, layout)),
        }
    }
    (goroutines, unreadable)
}

/// Decodes one `runtime.g` from its first [`GLayout::span`] bytes; `None`
/// if it is dead.
pub fn decode(g: u64, raw: &[u8], layout: &GLayout) -> Option<Goroutine> {
    let bytes = |off: u64, len: usize| {
        let from = usize::try_from(off).ok()?;
        raw.get(from..from.checked_add(len)?)
    };
    let u64_at = |off: u64| Some(u64::from_le_bytes(bytes(off, 8)?.try_into().ok()?));
    let u32_at = |off: u64| Some(u32::from_le_bytes(bytes(off, 4)?.try_into().ok()?));
    let status = GStatus::from_raw(u32_at(layout.atomicstatus)?);
    if status == GStatus::Dead {
        return None;
    }
    Some(Goroutine {
        g,
        goid: u64_at(layout.goid)?,
        parent_goid: layout.parent_goid.and_then(u64_at),
        gopc: u64_at(layout.gopc)?,
        startpc: u64_at(layout.startpc)?,
        status,
        wait_reason: *bytes(layout.waitreason, 1)?.first()?,
        wait_since_ns: u64_at(layout.waitsince)? as i64,
        tracking_seq: *bytes(layout.tracking_seq, 1)?.first()?,
        sched_pc: u64_at(layout.sched_pc)?,
        sched_sp: u64_at(layout.sched_sp)?,
        sched_bp: u64_at(layout.sched_bp)?,
        waiting: u64_at(layout.waiting)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::memory::Regions;

    /// Go 1.23's `runtime.g`, as the generated table has it.
    fn layout() -> GLayout {
        leaktrace_gobinary::runtime_table::lookup(leaktrace_gobinary::GoVersion::new(1, 23, 0))
            .expect("go1.23 in the table")
            .0
            .g
    }

    /// A `runtime.g` with these fields, as the runtime lays it out.
    fn g_bytes(layout: &GLayout, fields: &[(u64, u64)], status: u32, reason: u8) -> Vec<u8> {
        let mut raw = vec![0u8; layout.span()];
        for &(offset, value) in fields {
            let at = offset as usize;
            raw[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        let at = layout.atomicstatus as usize;
        raw[at..at + 4].copy_from_slice(&status.to_le_bytes());
        raw[layout.waitreason as usize] = reason;
        raw
    }

    #[test]
    fn reads_allgs_and_decodes_each_live_goroutine() {
        let l = layout();
        let mut mem = Regions::new();
        // allgs = {array 0x9000, len 3, cap 4}; the second g is dead.
        mem.map_words(0x8000, &[0x9000, 3, 4]);
        mem.map_words(0x9000, &[0xa000, 0xb000, 0xc000]);
        let waiting = [
            (l.goid, 7),
            (l.gopc, 0x401234),
            (l.startpc, 0x405000),
            (l.waitsince, 123),
            (l.sched_pc, 0x406000),
            (l.sched_bp, 0xd000),
            (l.waiting, 0xe000),
        ];
        let mut fields = waiting.to_vec();
        fields.extend(l.parent_goid.map(|p| (p, 1)));
        mem.map(0xa000, g_bytes(&l, &fields, 4 | SCAN_BIT, 14));
        mem.map(0xb000, g_bytes(&l, &[(l.goid, 8)], 6, 0));
        mem.map(0xc000, g_bytes(&l, &[(l.goid, 9)], 1, 0));
        let (goroutines, dropped) = read_all(&mem, 0x8000, &l).unwrap();
        assert_eq!(dropped, 0);
        assert_eq!(goroutines.len(), 2, "the dead one is skipped");
        assert_eq!(
            goroutines[0],
            Goroutine {
                g: 0xa000,
                goid: 7,
                parent_goid: Some(1),
                gopc: 0x401234,
                startpc: 0x405000,
                status: GStatus::Waiting,
                wait_reason: 14,
                wait_since_ns: 123,
                tracking_seq: 0,
                sched_pc: 0x406000,
                sched_sp: 0,
                sched_bp: 0xd000,
                waiting: 0xe000,
            }
        );
        assert_eq!(
            (goroutines[1].goid, goroutines[1].status),
            (9, GStatus::Runnable)
        );
    }

    #[test]
    fn a_hostile_allgs_length_is_refused() {
        let mut mem = Regions::new();
        mem.map_words(0x8000, &[0x9000, MAX_GOROUTINES + 1, MAX_GOROUTINES + 1]);
        assert!(matches!(
            read_all(&mem, 0x8000, &layout()),
            Err(AllgsError::TooMany(_))
        ));
        assert!(matches!(
            read_all(&mem, u64::MAX - 4, &layout()),
            Err(AllgsError::Unreadable(_))
        ));
    }

    fn parked(sched_pc: u64, sched_bp: u64) -> Goroutine {
        Goroutine {
            g: 0xa000,
            goid: 7,
            parent_goid: None,
            gopc: 0,
            startpc: 0,
            status: GStatus::Waiting,
            wait_reason: 0,
            wait_since_ns: 0,
            tracking_seq: 0,
            sched_pc,
            sched_sp: 0,
            sched_bp,
            waiting: 0,
        }
    }

    #[test]
    fn unwinds_frame_pointers_until_the_chain_ends() {
        let mut mem = Regions::new();
        // Three frames: each {saved bp, return address}, growing upwards, then bp 0.
        mem.map_words(0x7000, &[0x7100, 0x401001]);
        mem.map_words(0x7100, &[0x7200, 0x402002]);
        mem.map_words(0x7200, &[0, 0x403003]);
        assert_eq!(
            current_stack(&mem, &parked(0x400000, 0x7000)),
            vec![0x400000, 0x401001, 0x402002, 0x403003]
        );
    }

    #[test]
    fn unwinding_stops_at_a_broken_or_looping_chain() {
        let mut mem = Regions::new();
        // The second frame points back down: a corrupt chain, not followed.
        mem.map_words(0x7000, &[0x7100, 0x401001]);
        mem.map_words(0x7100, &[0x7000, 0x402002]);
        assert_eq!(
            current_stack(&mem, &parked(0x400000, 0x7000)),
            vec![0x400000, 0x401001, 0x402002]
        );
        // Unmapped, and at the top of the address space: just the PC.
        assert_eq!(
            current_stack(&mem, &parked(0x400000, 0x5000)),
            vec![0x400000]
        );
        assert_eq!(
            current_stack(&mem, &parked(0x400000, u64::MAX - 3)),
            vec![0x400000]
        );
        let mut running = parked(0x400000, 0x7000);
        running.status = GStatus::Running;
        assert!(current_stack(&mem, &running).is_empty());
    }

    #[test]
    fn follows_the_sudogs_of_a_select() {
        let l = layout();
        let mut mem = Regions::new();
        let sudog = |channel: u64, next: u64| {
            let mut raw = vec![0u8; (l.sudog_c.max(l.sudog_waitlink) + 8) as usize];
            raw[l.sudog_c as usize..][..8].copy_from_slice(&channel.to_le_bytes());
            raw[l.sudog_waitlink as usize..][..8].copy_from_slice(&next.to_le_bytes());
            raw
        };
        mem.map(0xe000, sudog(0xc1, 0xe100));
        mem.map(0xe100, sudog(0xc2, 0));
        let mut g = parked(0, 0);
        g.waiting = 0xe000;
        assert_eq!(waiting_channels(&mem, &g, &l), vec![0xc1, 0xc2]);
    }

    #[test]
    fn a_looping_chain_of_empty_sudogs_ends() {
        // Found by the memory fuzz target: sudog.c is 0 and waitlink points
        // back to itself.
        let l = layout();
        let mut raw = vec![0u8; (l.sudog_c.max(l.sudog_waitlink) + 8) as usize];
        raw[l.sudog_waitlink as usize..][..8].copy_from_slice(&0xe000u64.to_le_bytes());
        let mut mem = Regions::new();
        mem.map(0xe000, raw);
        let mut g = parked(0, 0);
        g.waiting = 0xe000;
        assert!(waiting_channels(&mem, &g, &l).is_empty());
    }

    #[test]
    fn decodes_statuses() {
        assert_eq!(GStatus::from_raw(4), GStatus::Waiting);
        assert_eq!(GStatus::from_raw(0x1004), GStatus::Waiting);
        assert_eq!(GStatus::from_raw(6), GStatus::Dead);
        assert_eq!(GStatus::from_raw(11), GStatus::Dead);
        assert!(GStatus::Waiting.is_blocked());
        assert!(!GStatus::Runnable.is_blocked());
        assert_eq!(GStatus::from_raw(42), GStatus::Other(42));
    }
}
