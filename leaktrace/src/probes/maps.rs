//! Typed access to the kernel's maps. The kernel's records use sentinels
//! (`created_ns == 0` for a goroutine seeded from memory, [`NO_STACK`],
//! `parked_ns == 0`); they are turned into `Option`s here, at the boundary,
//! and go no further.

use std::collections::HashMap;

use aya::maps::{
    HashMap as BpfHashMap, Map, MapData, MapError, PerCpuArray, PerCpuHashMap, RingBuf,
    StackTraceMap,
};
use leaktrace_ebpf::{
    ExitNotice, FdCounters, FdRecord, FdSiteKey, GoroutineRecord, NO_STACK, SiteCounters, SiteKey,
    SiteStack, TimerCounters, TimerRecord, counter, map,
};

use super::{ProbeError, Probes};
use crate::report::EventCounts;

const BPF_NOEXIST: u64 = 1;

/// A creation stack in the kernel's stack table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackId(pub u32);

impl StackId {
    fn from_raw(raw: i32) -> Option<Self> {
        (raw != NO_STACK).then(|| u32::try_from(raw).ok().map(Self))?
    }
}

/// A goroutine's last `runtime.gopark`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Park {
    /// CLOCK_MONOTONIC ns.
    pub at_ns: u64,
    /// The `waitReason` it passed.
    pub reason: u8,
}

/// A goroutine the kernel's table tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedGoroutine {
    pub goid: u64,
    /// Go 1.21+.
    pub parent_goid: Option<u64>,
    pub site: SiteKey,
    /// When the probes saw it created (CLOCK_MONOTONIC ns); `None` for one
    /// that existed before the attach, seeded from memory.
    pub created_ns: Option<u64>,
    pub last_park: Option<Park>,
    pub creation_stack: Option<StackId>,
    /// The creation stack of the goroutine that created it, if that one was
    /// created while observed too.
    pub creator_stack: Option<StackId>,
}

impl TrackedGoroutine {
    pub fn is_seeded(&self) -> bool {
        self.created_ns.is_none()
    }
}

impl From<GoroutineRecord> for TrackedGoroutine {
    fn from(r: GoroutineRecord) -> Self {
        Self {
            goid: r.goid,
            parent_goid: (r.parent_goid != 0).then_some(r.parent_goid),
            site: SiteKey {
                gopc: r.gopc,
                startpc: r.startpc,
            },
            created_ns: (r.created_ns != 0).then_some(r.created_ns),
            last_park: (r.parked_ns != 0).then_some(Park {
                at_ns: r.parked_ns,
                reason: r.park_reason,
            }),
            creation_stack: StackId::from_raw(r.stack_id),
            creator_stack: StackId::from_raw(r.creator_stack_id),
        }
    }
}

/// A goroutine that existed before the attach, to be added to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    /// Its `runtime.g` address, the table's key.
    pub g: u64,
    pub goid: u64,
    pub parent_goid: Option<u64>,
    pub site: SiteKey,
    pub wait_reason: u8,
}

impl From<Seed> for GoroutineRecord {
    fn from(s: Seed) -> Self {
        Self {
            goid: s.goid,
            parent_goid: s.parent_goid.unwrap_or(0),
            gopc: s.site.gopc,
            startpc: s.site.startpc,
            // The kernel's mark for "older than the attach".
            created_ns: 0,
            parked_ns: 0,
            park_reason: s.wait_reason,
            _pad: [0; 3],
            stack_id: NO_STACK,
            creator_stack_id: NO_STACK,
            _pad2: 0,
        }
    }
}

/// A timer or ticker created while attached (a ticker has a period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedTimer {
    /// When it fires next (CLOCK_MONOTONIC ns, the runtime's `nanotime`).
    pub when_ns: i64,
    /// 0 for a one-shot timer.
    pub period_ns: i64,
    pub created_ns: u64,
    /// Its func value (run-time address): `time.sendTime` or `time.goFunc`.
    pub func: u64,
    pub creation_stack: Option<StackId>,
    pub stopped: bool,
    pub resets: u8,
}

impl TrackedTimer {
    pub fn is_ticker(&self) -> bool {
        self.period_ns > 0
    }

    /// A one-shot timer that has neither fired nor been stopped at `now_ns`;
    /// a ticker that is not stopped.
    pub fn is_pending(&self, now_ns: u64) -> bool {
        !self.stopped && (self.is_ticker() || self.when_ns > now_ns as i64)
    }
}

impl From<TimerRecord> for TrackedTimer {
    fn from(r: TimerRecord) -> Self {
        Self {
            when_ns: r.when_ns,
            period_ns: r.period_ns,
            created_ns: r.created_ns,
            func: r.func,
            creation_stack: StackId::from_raw(r.stack_id),
            stopped: r.stopped != 0,
            resets: r.resets,
        }
    }
}

/// Per creation stack (`None`: not recorded), the timers' counters summed
/// over CPUs.
pub type TimerCounts = HashMap<Option<StackId>, TimerCounters>;

/// A descriptor the target opened while traced and has not closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedFd {
    pub opened_ns: u64,
    /// The x86-64 system call that made it.
    pub syscall: u32,
    pub stack: Option<StackId>,
    /// The creation stack of the goroutine that opened it.
    pub creator_stack: Option<StackId>,
}

impl From<FdRecord> for TrackedFd {
    fn from(r: FdRecord) -> Self {
        Self {
            opened_ns: r.opened_ns,
            syscall: r.syscall,
            stack: StackId::from_raw(r.stack_id),
            creator_stack: StackId::from_raw(r.creator_stack_id),
        }
    }
}

/// Per opening stack, opening goroutine's creation stack (`None`: not
/// recorded) and system call, descriptors opened and closed.
pub type FdCounts = HashMap<(Option<StackId>, Option<StackId>, u32), FdCounters>;

/// Per creation site counters, summed over CPUs.
pub type SiteCounts = HashMap<SiteKey, SiteCounters>;

impl Probes {
    pub fn event_counts(&self) -> Result<EventCounts, ProbeError> {
        let counters: PerCpuArray<&MapData, u64> = typed(self.map(map::COUNTERS)?)?;
        let sum = |index: u32| -> u64 {
            counters
                .get(&index, 0)
                .map(|v| v.iter().fold(0u64, |a, &c| a.saturating_add(c)))
                .unwrap_or(0)
        };
        Ok(EventCounts {
            created: sum(counter::CREATED),
            exited: sum(counter::EXITED),
            parked: sum(counter::PARKED),
            dropped_goroutine_table_full: sum(counter::DROPPED_GOROUTINE_TABLE_FULL),
            dropped_site_table_full: sum(counter::DROPPED_SITE_TABLE_FULL),
            dropped_read_fault: sum(counter::DROPPED_READ_FAULT),
            dropped_exit_notice: sum(counter::DROPPED_EXIT_NOTICE),
            dropped_stack: sum(counter::DROPPED_STACK),
            dropped_timer_table_full: sum(counter::DROPPED_TIMER_TABLE_FULL),
            timers_too_short: sum(counter::TIMERS_TOO_SHORT),
            dropped_fd_table_full: sum(counter::DROPPED_FD_TABLE_FULL),
        })
    }

    pub fn site_counts(&self) -> Result<SiteCounts, ProbeError> {
        let sites: PerCpuHashMap<&MapData, SiteKey, SiteCounters> = typed(self.map(map::SITES)?)?;
        let mut counts = HashMap::new();
        for entry in sites.iter() {
            let (site, per_cpu) = entry.map_err(|e| ProbeError::ReadMap(Box::new(e)))?;
            let total = per_cpu
                .iter()
                .fold(SiteCounters::default(), |a, c| SiteCounters {
                    created: a.created.saturating_add(c.created),
                    exited: a.exited.saturating_add(c.exited),
                    exited_preexisting: a.exited_preexisting.saturating_add(c.exited_preexisting),
                });
            counts.insert(site, total);
        }
        Ok(counts)
    }

    /// The goroutines in the kernel's table, by `*g` address.
    pub fn goroutines(&self) -> Result<HashMap<u64, TrackedGoroutine>, ProbeError> {
        let table: BpfHashMap<&MapData, u64, GoroutineRecord> = typed(self.map(map::GOROUTINES)?)?;
        // An entry deleted while iterating is skipped, not an error worth failing for.
        Ok(table
            .iter()
            .flatten()
            .map(|(g, record)| (g, record.into()))
            .collect())
    }

    /// Adds goroutines that existed before the attach to the kernel's table,
    /// so the exit and park probes track them like new ones. Never replaces a
    /// record the probes made. Returns how many were added.
    pub fn seed(&mut self, seeds: impl IntoIterator<Item = Seed>) -> Result<usize, ProbeError> {
        let mut table: BpfHashMap<&mut MapData, u64, GoroutineRecord> =
            typed(self.map_mut(map::GOROUTINES)?)?;
        let mut added = 0;
        for seed in seeds {
            if table
                .insert(seed.g, GoroutineRecord::from(seed), BPF_NOEXIST)
                .is_ok()
            {
                added += 1;
            }
        }
        Ok(added)
    }

    /// Removes seeded records of goroutines (`*g`, goid) that turned out to be gone.
    pub fn unseed(&mut self, gone: &[(u64, u64)]) -> Result<(), ProbeError> {
        let mut table: BpfHashMap<&mut MapData, u64, GoroutineRecord> =
            typed(self.map_mut(map::GOROUTINES)?)?;
        for &(g, goid) in gone {
            let seeded = table
                .get(&g, 0)
                .is_ok_and(|r| r.goid == goid && TrackedGoroutine::from(r).is_seeded());
            if seeded {
                let _ = table.remove(&g);
            }
        }
        Ok(())
    }

    /// Every timer and ticker the table holds, by `*time.Timer` or
    /// `*time.Ticker` address.
    pub fn timers(&self) -> Result<HashMap<u64, TrackedTimer>, ProbeError> {
        let table: BpfHashMap<&MapData, u64, TimerRecord> = typed(self.map(map::TIMERS)?)?;
        Ok(table
            .iter()
            .flatten()
            .map(|(t, record)| (t, record.into()))
            .collect())
    }

    /// What happened to the timers created at each creation stack.
    pub fn timer_counts(&self) -> Result<TimerCounts, ProbeError> {
        let sites: PerCpuHashMap<&MapData, i32, TimerCounters> =
            typed(self.map(map::TIMER_SITES)?)?;
        let mut counts = TimerCounts::new();
        for entry in sites.iter() {
            let (stack, per_cpu) = entry.map_err(|e| ProbeError::ReadMap(Box::new(e)))?;
            let total = per_cpu
                .iter()
                .fold(TimerCounters::default(), |a, c| TimerCounters {
                    created: a.created.saturating_add(c.created),
                    stopped: a.stopped.saturating_add(c.stopped),
                    reset: a.reset.saturating_add(c.reset),
                });
            counts.insert(StackId::from_raw(stack), total);
        }
        Ok(counts)
    }

    /// The descriptors opened while traced and still open, by number.
    pub fn fds(&self) -> Result<HashMap<u32, TrackedFd>, ProbeError> {
        let table: BpfHashMap<&MapData, u32, FdRecord> = typed(self.map(map::FDS)?)?;
        Ok(table
            .iter()
            .flatten()
            .map(|(fd, record)| (fd, record.into()))
            .collect())
    }

    /// Per opening stack, the descriptors opened and closed while traced.
    pub fn fd_counts(&self) -> Result<FdCounts, ProbeError> {
        let sites: PerCpuHashMap<&MapData, FdSiteKey, FdCounters> =
            typed(self.map(map::FD_SITES)?)?;
        let mut counts = FdCounts::new();
        for entry in sites.iter() {
            let (stack, per_cpu) = entry.map_err(|e| ProbeError::ReadMap(Box::new(e)))?;
            let total = per_cpu
                .iter()
                .fold(FdCounters::default(), |a, c| FdCounters {
                    opened: a.opened.saturating_add(c.opened),
                    closed: a.closed.saturating_add(c.closed),
                });
            counts.insert(
                (
                    StackId::from_raw(stack.stack_id),
                    StackId::from_raw(stack.creator_stack_id),
                    stack.syscall,
                ),
                total,
            );
        }
        Ok(counts)
    }

    /// The return addresses of these creation stacks, innermost first.
    pub fn stacks(
        &self,
        ids: impl IntoIterator<Item = StackId>,
    ) -> Result<HashMap<StackId, Vec<u64>>, ProbeError> {
        let table: StackTraceMap<&MapData> = typed(self.map(map::STACKS)?)?;
        let mut stacks = HashMap::new();
        for id in ids {
            if stacks.contains_key(&id) {
                continue;
            }
            // A stack evicted by a hash collision is simply not shown.
            if let Ok(trace) = table.get(&id.0, 0) {
                stacks.insert(id, trace.frames().iter().map(|f| f.ip).collect());
            }
        }
        Ok(stacks)
    }

    /// Sampled attach mode: per `go` statement (run-time `gopc`), the
    /// creation stacks its probe counted, and how many goroutines each.
    pub fn site_stacks(&self) -> Result<HashMap<u64, Vec<(StackId, u64)>>, ProbeError> {
        let table: PerCpuHashMap<&MapData, SiteStack, u64> = typed(self.map(map::SITE_STACKS)?)?;
        let mut stacks: HashMap<u64, Vec<(StackId, u64)>> = HashMap::new();
        for (key, per_cpu) in table.iter().flatten() {
            let count = per_cpu.iter().fold(0u64, |a, &c| a.saturating_add(c));
            if let Some(id) = StackId::from_raw(key.stack_id) {
                stacks.entry(key.gopc).or_default().push((id, count));
            }
        }
        Ok(stacks)
    }

    /// The ring buffer the exit probe writes to; taken once.
    pub fn take_exit_notices(&mut self) -> Result<ExitNotices, ProbeError> {
        let ring = self
            .ebpf
            .take_map(map::EXIT_NOTICES)
            .ok_or(ProbeError::MissingMap(map::EXIT_NOTICES))?;
        Ok(ExitNotices(typed(ring)?))
    }
}

/// Notices the exit probe sends when the target enters `runtime.exit`.
pub struct ExitNotices(pub RingBuf<MapData>);

impl std::os::fd::AsRawFd for ExitNotices {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// A process entering `runtime.exit` (or dying by a signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessExit {
    pub code: i32,
    /// The `*g` of the goroutine that called `runtime.exit`, if known.
    pub exiting_goroutine: Option<u64>,
}

impl ExitNotices {
    /// The next `runtime.exit` of process `pid`, if any.
    pub fn next_exit(&mut self, pid: u32) -> Option<ProcessExit> {
        while let Some(item) = self.0.next() {
            if item.len() < size_of::<ExitNotice>() {
                continue;
            }
            // SAFETY: the probe wrote an ExitNotice; read_unaligned copes with alignment.
            let notice: ExitNotice = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
            if notice.tgid == pid {
                return Some(ProcessExit {
                    code: notice.code,
                    exiting_goroutine: (notice.g != 0).then_some(notice.g),
                });
            }
        }
        None
    }
}

pub(super) fn typed<M, T>(map: M) -> Result<T, ProbeError>
where
    T: TryFrom<M, Error = MapError>,
{
    T::try_from(map).map_err(|e| ProbeError::ReadMap(Box::new(e)))
}

impl Probes {
    pub(super) fn map(&self, name: &'static str) -> Result<&Map, ProbeError> {
        self.ebpf.map(name).ok_or(ProbeError::MissingMap(name))
    }

    fn map_mut(&mut self, name: &'static str) -> Result<&mut Map, ProbeError> {
        self.ebpf.map_mut(name).ok_or(ProbeError::MissingMap(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_sentinels_become_options() {
        let seeded = TrackedGoroutine::from(GoroutineRecord::from(Seed {
            g: 0xc000,
            goid: 5,
            parent_goid: None,
            site: SiteKey {
                gopc: 1,
                startpc: 2,
            },
            wait_reason: 14,
        }));
        assert_eq!(
            seeded,
            TrackedGoroutine {
                goid: 5,
                parent_goid: None,
                site: SiteKey {
                    gopc: 1,
                    startpc: 2
                },
                created_ns: None,
                last_park: None,
                creation_stack: None,
                creator_stack: None,
            }
        );
        assert!(seeded.is_seeded());
        let created = TrackedGoroutine::from(GoroutineRecord {
            goid: 6,
            parent_goid: 1,
            created_ns: 100,
            parked_ns: 200,
            park_reason: 9,
            stack_id: 3,
            ..Default::default()
        });
        assert_eq!(created.created_ns, Some(100));
        assert_eq!(created.parent_goid, Some(1));
        assert_eq!(
            created.last_park,
            Some(Park {
                at_ns: 200,
                reason: 9
            })
        );
        assert_eq!(created.creation_stack, Some(StackId(3)));
    }
}
