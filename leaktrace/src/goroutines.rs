//! The goroutines a process has right now, read from its memory: the
//! `runtime.allgs` slice, then each `runtime.g`.

use std::io;

use leaktrace_gobinary::dwarf::GLayout;

use crate::procmem::ProcessMemory;

/// Bounds what a corrupt or hostile `allgs` can make leaktrace read.
const MAX_GOROUTINES: u64 = 50_000_000;
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
    /// Where it stopped (`g.sched`): valid while it is not running.
    pub sched_pc: u64,
    pub sched_bp: u64,
    /// `g.waiting`: the sudogs of the channel operations it is blocked in.
    pub waiting: u64,
}

/// Channel operations of one `select` that leaktrace follows at most.
const MAX_SUDOGS: usize = 64;

/// The channels (`*hchan`) a goroutine blocked in a channel operation or a
/// `select` waits on, following `g.waiting` and `sudog.waitlink`.
pub fn waiting_channels(mem: &ProcessMemory, g: &Goroutine, layout: &GLayout) -> Vec<u64> {
    let mut channels = Vec::new();
    let mut sudog = g.waiting;
    while sudog != 0 && channels.len() < MAX_SUDOGS {
        let (Ok(channel), Ok(next)) = (
            mem.read_u64(sudog + layout.sudog_c),
            mem.read_u64(sudog + layout.sudog_waitlink),
        ) else {
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
pub fn current_stack(mem: &ProcessMemory, g: &Goroutine) -> Vec<u64> {
    if !matches!(g.status, GStatus::Waiting | GStatus::Leaked) || g.sched_pc == 0 {
        return Vec::new();
    }
    let mut frames = vec![g.sched_pc];
    let mut bp = g.sched_bp;
    while frames.len() < MAX_FRAMES && bp != 0 {
        let (Ok(saved_bp), Ok(ret)) = (mem.read_u64(bp), mem.read_u64(bp + 8)) else {
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

/// Reads every goroutine in `runtime.allgs` that is not dead. `allgs` is the
/// run-time address of the slice header.
pub fn read_all(mem: &ProcessMemory, allgs: u64, layout: &GLayout) -> io::Result<Vec<Goroutine>> {
    let array = mem.read_u64(allgs)?;
    let len = mem.read_u64(allgs + 8)?;
    if len > MAX_GOROUTINES {
        return Err(io::Error::other(format!(
            "runtime.allgs claims {len} goroutines"
        )));
    }
    let mut pointers = vec![0u8; len as usize * 8];
    mem.read_exact(array, &mut pointers)?;
    let addresses = pointers
        .chunks_exact(8)
        .map(|p| u64::from_le_bytes(p.try_into().unwrap_or_default()));
    Ok(read_each(mem, addresses, layout))
}

/// Reads the goroutines at these `runtime.g` addresses, skipping dead ones
/// and any that cannot be read.
pub fn read_each(
    mem: &ProcessMemory,
    addresses: impl IntoIterator<Item = u64>,
    layout: &GLayout,
) -> Vec<Goroutine> {
    let mut raw = vec![0u8; layout.span()];
    let mut goroutines = Vec::new();
    for g in addresses {
        if g != 0 && mem.read_exact(g, &mut raw).is_ok() {
            goroutines.extend(decode(g, &raw, layout));
        }
    }
    goroutines
}

/// Decodes one `runtime.g` from its first bytes; `None` if it is dead.
fn decode(g: u64, raw: &[u8], layout: &GLayout) -> Option<Goroutine> {
    let u64_at = |off: u64| {
        Some(u64::from_le_bytes(
            raw.get(off as usize..off as usize + 8)?.try_into().ok()?,
        ))
    };
    let u32_at = |off: u64| {
        Some(u32::from_le_bytes(
            raw.get(off as usize..off as usize + 4)?.try_into().ok()?,
        ))
    };
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
        wait_reason: *raw.get(layout.waitreason as usize)?,
        wait_since_ns: u64_at(layout.waitsince)? as i64,
        sched_pc: u64_at(layout.sched_pc)?,
        sched_bp: u64_at(layout.sched_bp)?,
        waiting: u64_at(layout.waiting)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
