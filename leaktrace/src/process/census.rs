//! A census of the target's goroutines, read from its memory while it runs:
//! no probe, no trap, nothing the target pays for.
//!
//! `runtime.allgs` is streamed in batches: one `process_vm_readv` reads the
//! first bytes of [`BATCH`] `runtime.g`s (neighbours as one range), and each
//! goroutine is counted at its creation site as it is decoded, so memory
//! does not grow with the number of goroutines beyond one small [`Slot`]
//! each.
//!
//! `allgs` only grows, and a `runtime.g` is never freed (a dead one is reused
//! in place), so slot `i` of `allgs` is the same `runtime.g` in every census,
//! and its goid tells one occupant from the next. Comparing slot by slot with
//! the previous census tells, without probes:
//! - which goroutines are new since the first census, and which ended
//!   (those that start and end between two censuses are not seen);
//! - which stayed blocked without running in between: the same goid, wait
//!   reason, `sched.pc`/`sched.sp` and `trackingSeq`, which the runtime
//!   changes each time the goroutine stops running. Such a goroutine has
//!   been blocked at least since the census that first saw it so.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    time::{Duration, Instant},
};

use leaktrace_ebpf::{SiteCounters, SiteKey};
use leaktrace_gobinary::GLayout;

use super::{
    goroutines::{self, AllgsError, BATCH, GStatus, Goroutine},
    memory::Memory,
    monotonic_ns,
};
use crate::probes::SiteCounts;

/// Goroutines followed from census to census; the slots cost 24 bytes each.
/// Beyond this, goroutines are still counted, but not followed.
pub const MAX_SLOTS: usize = 1 << 22;
/// Creation sites kept; goroutines of further sites are counted as dropped.
pub const MAX_SITES: usize = 1 << 16;
/// Goroutine IDs, and parent IDs, kept per site.
const MAX_IDS: usize = 10;
/// Blocked goroutines per site whose stacks are unwound, for `blocked at`.
const MAX_UNWOUND: usize = 8;
/// Stuck goroutines of the sites asked about ([`Census::follow_each_stuck`])
/// listed one by one, at most, in one census.
pub const MAX_STUCK_LISTED: usize = 10_000;
/// Channel operations of one `select` followed at most.
const MAX_SUDOGS: usize = 64;

/// What one slot of `allgs` held at the last census.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// 0: empty or dead.
    goid: u64,
    /// A hash of what changes when the goroutine runs.
    fingerprint: u32,
    /// Milliseconds after the first census since when it has been seen
    /// blocked and unchanged; [`NOT_BLOCKED`] if it was not blocked.
    blocked_since_ms: u32,
    /// Index of its site in [`Census::sites`].
    site: u32,
    /// It was alive at the first census.
    baseline: bool,
}

const NOT_BLOCKED: u32 = u32::MAX;

/// How long a blocked goroutine has been blocked, at least, and who says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedSince {
    /// Seen blocked and unchanged by every census since this one
    /// (CLOCK_MONOTONIC ns).
    Census(u64),
    /// `runtime.g.waitsince`, set by a GC that saw it blocked.
    Runtime(u64),
}

impl BlockedSince {
    pub fn at_ns(self) -> u64 {
        match self {
            Self::Census(at) | Self::Runtime(at) => at,
        }
    }
}

/// A blocked goroutine's stopping point, to unwind its stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoppedAt {
    pub pc: u64,
    pub bp: u64,
}

/// One stuck goroutine of a site whose goroutines are looked at one by one:
/// the standard library's, to find those running the program's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StuckGoroutine {
    pub goid: u64,
    /// Go 1.21+.
    pub parent_goid: Option<u64>,
    pub stopped_at: StoppedAt,
    /// It was not there at the first census.
    pub new: bool,
    pub status: GStatus,
    pub wait_reason: u8,
    pub blocked_since: Option<BlockedSince>,
}

/// One site's live goroutines at one census.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteCensus {
    pub live: u64,
    /// (status, wait reason) → goroutines; the reason only means something
    /// for a waiting status. A handful per site, so a list.
    pub states: Vec<((GStatus, u8), u64)>,
    /// The earliest time one of them is known to have been blocked since.
    pub blocked_since: Option<BlockedSince>,
    /// Goroutines seen blocked and unchanged in this census and the one before.
    pub stuck: u64,
    /// The lowest goroutine IDs.
    pub goids: BTreeSet<u64>,
    pub parent_goids: BTreeSet<u64>,
    /// A few blocked ones, to unwind their stacks.
    pub stopped_at: Vec<StoppedAt>,
    /// Of the channels asked about, those its goroutines are blocked
    /// receiving from (or selecting on), and how many on each.
    pub waiting_on: Vec<(u64, u64)>,
    /// For the sites asked about: every stuck goroutine (up to
    /// [`MAX_STUCK_LISTED`] in all).
    pub stuck_goroutines: Vec<StuckGoroutine>,
}

/// One census: every site's live goroutines, and the counters since the first.
#[derive(Debug, Clone, Default)]
pub struct CensusResult {
    /// CLOCK_MONOTONIC when it was taken.
    pub now_ns: u64,
    pub sites: HashMap<SiteKey, SiteCensus>,
    /// Since the first census, per site: goroutines seen new (`created`), of
    /// those seen ended (`exited`), and of the first census's, ended
    /// (`exited_preexisting`).
    pub counts: SiteCounts,
    /// Goroutines alive, of every site.
    pub live: u64,
    /// How long the census took.
    pub took: Duration,
    /// Bytes read from the target.
    pub bytes_read: u64,
    /// Goroutines that could not be read, or were not followed or counted
    /// (past [`MAX_SLOTS`] or [`MAX_SITES`]).
    pub dropped: u64,
}

impl CensusResult {
    /// Live goroutines per site.
    pub fn live_per_site(&self) -> HashMap<SiteKey, u64> {
        self.sites.iter().map(|(k, s)| (*k, s.live)).collect()
    }
}

/// The state kept from one census to the next.
pub struct Census {
    layout: GLayout,
    /// Run-time address of `runtime.allgs`.
    allgs: u64,
    slots: Vec<Slot>,
    site_keys: Vec<SiteKey>,
    site_index: HashMap<SiteKey, u32>,
    counts: Vec<SiteCounters>,
    /// The last site looked up: neighbours in `allgs` often share one.
    last_site: Option<(SiteKey, u32)>,
    first_ns: Option<u64>,
    /// Sites whose stuck goroutines the next census lists one by one.
    follow_each: HashSet<SiteKey>,
    listed: usize,
}

impl Census {
    pub fn new(layout: GLayout, allgs: u64) -> Self {
        Self {
            layout,
            allgs,
            slots: Vec::new(),
            site_keys: Vec::new(),
            site_index: HashMap::new(),
            counts: Vec::new(),
            last_site: None,
            first_ns: None,
            follow_each: HashSet::new(),
            listed: 0,
        }
    }

    /// Has the next census list every stuck goroutine of `sites` (in
    /// [`SiteCensus::stuck_goroutines`]), to unwind each.
    pub fn follow_each_stuck(&mut self, sites: HashSet<SiteKey>) {
        self.follow_each = sites;
    }

    /// Reads every goroutine once and compares it with the last census.
    /// Goroutines blocked on one of `channels` (e.g. tickers' channels) are
    /// counted per site in [`SiteCensus::waiting_on`].
    pub fn take(
        &mut self,
        mem: &dyn Memory,
        channels: &HashSet<u64>,
    ) -> Result<CensusResult, AllgsError> {
        let started = Instant::now();
        let array = mem.read_u64(self.allgs)?;
        let len_at = self
            .allgs
            .checked_add(8)
            .ok_or(AllgsError::TooMany(u64::MAX))?;
        let len = mem.read_u64(len_at)?;
        if len > goroutines::MAX_GOROUTINES {
            return Err(AllgsError::TooMany(len));
        }
        let len = len as usize;
        let now_ns = monotonic_ns();
        let first = self.first_ns.is_none();
        let first_ns = *self.first_ns.get_or_insert(now_ns);
        let now_ms = u32::try_from((now_ns - first_ns) / 1_000_000).unwrap_or(NOT_BLOCKED - 1);

        let span = self.layout.span();
        let mut result = CensusResult {
            now_ns,
            ..Default::default()
        };
        let mut sites: Vec<SiteCensus> = Vec::new();
        let mut pointers = vec![0u8; BATCH * 8];
        let mut raw = vec![0u8; BATCH * span];
        let mut addresses = Vec::with_capacity(BATCH);
        let mut readable = vec![false; BATCH];
        let mut blocked_in_channels: Vec<(u32, u64)> = Vec::new();
        for start in (0..len).step_by(BATCH) {
            let count = BATCH.min(len - start);
            let at = array.checked_add(start as u64 * 8);
            let pointers = &mut pointers[..count * 8];
            if at.is_none_or(|at| mem.read(at, pointers).is_err()) {
                result.dropped += count as u64;
                self.vanish(start, count);
                continue;
            }
            result.bytes_read += pointers.len() as u64;
            addresses.clear();
            addresses.extend(
                pointers
                    .chunks_exact(8)
                    .map(|p| u64::from_le_bytes(p.try_into().unwrap_or_default())),
            );
            let raw = &mut raw[..count * span];
            readable[..count].fill(false);
            mem.read_blocks(&addresses, raw, &mut readable[..count]);
            for (offset, (&g, bytes)) in addresses.iter().zip(raw.chunks_exact(span)).enumerate() {
                let index = start + offset;
                if g == 0 || !readable[offset] {
                    if g != 0 {
                        result.dropped += 1;
                    }
                    self.vanish(index, 1);
                    continue;
                }
                result.bytes_read += span as u64;
                match goroutines::decode(g, bytes, &self.layout) {
                    Some(goroutine) => {
                        let site =
                            self.count(index, &goroutine, first, now_ms, &mut result, &mut sites);
                        if let Some(site) = site
                            && !channels.is_empty()
                            && goroutine.status == GStatus::Waiting
                            && goroutine.waiting != 0
                        {
                            blocked_in_channels.push((site, goroutine.waiting));
                        }
                    }
                    None => self.vanish(index, 1),
                }
            }
            self.link_channels(mem, &blocked_in_channels, channels, &mut sites);
            blocked_in_channels.clear();
        }
        result.sites = self
            .site_keys
            .iter()
            .zip(sites)
            .filter(|(_, site)| site.live > 0)
            .map(|(key, site)| (*key, site))
            .collect();
        result.counts = self
            .site_keys
            .iter()
            .zip(&self.counts)
            .map(|(k, c)| (*k, *c))
            .collect();
        result.took = started.elapsed();
        self.follow_each.clear();
        self.listed = 0;
        Ok(result)
    }

    /// The goroutines in slots `start..start + count` are gone (or unreadable).
    fn vanish(&mut self, start: usize, count: usize) {
        let end = self.slots.len().min(start.saturating_add(count));
        for index in start.min(end)..end {
            let slot = std::mem::take(&mut self.slots[index]);
            if slot.goid != 0 {
                self.ended(slot);
            }
        }
    }

    fn ended(&mut self, slot: Slot) {
        if let Some(counts) = self.counts.get_mut(slot.site as usize) {
            if slot.baseline {
                counts.exited_preexisting += 1;
            } else {
                counts.exited += 1;
            }
        }
    }

    /// Which of `channels` each goroutine blocked in a channel operation
    /// waits on: its sudogs (`g.waiting`, then `sudog.waitlink`), read in
    /// one batch for the first, one by one for the rest of a `select`.
    fn link_channels(
        &self,
        mem: &dyn Memory,
        blocked: &[(u32, u64)],
        channels: &HashSet<u64>,
        sites: &mut [SiteCensus],
    ) {
        if blocked.is_empty() {
            return;
        }
        let (c, link) = (self.layout.sudog_c, self.layout.sudog_waitlink);
        let span = c.max(link) as usize + 8;
        let sudogs: Vec<u64> = blocked.iter().map(|&(_, sudog)| sudog).collect();
        let mut raw = vec![0u8; sudogs.len() * span];
        let mut readable = vec![false; sudogs.len()];
        mem.read_blocks(&sudogs, &mut raw, &mut readable);
        for ((&(site, _), bytes), ok) in blocked.iter().zip(raw.chunks_exact(span)).zip(readable) {
            let word = |at: u64| {
                bytes
                    .get(at as usize..at as usize + 8)
                    .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
            };
            let (Some(first), Some(next), true) = (word(c), word(link), ok) else {
                continue;
            };
            let mut waited = vec![first];
            let mut sudog = next;
            while sudog != 0 && waited.len() < MAX_SUDOGS {
                let (Ok(channel), Ok(following)) = (
                    mem.read_u64(sudog.wrapping_add(c)),
                    mem.read_u64(sudog.wrapping_add(link)),
                ) else {
                    break;
                };
                waited.push(channel);
                sudog = following;
            }
            let Some(site) = sites.get_mut(site as usize) else {
                continue;
            };
            for channel in waited.into_iter().filter(|ch| channels.contains(ch)) {
                match site.waiting_on.iter_mut().find(|(ch, _)| *ch == channel) {
                    Some((_, count)) => *count += 1,
                    None => site.waiting_on.push((channel, 1)),
                }
            }
        }
    }

    /// Counts one live goroutine in slot `index`; its site's index, if kept.
    fn count(
        &mut self,
        index: usize,
        g: &Goroutine,
        first: bool,
        now_ms: u32,
        result: &mut CensusResult,
        sites: &mut Vec<SiteCensus>,
    ) -> Option<u32> {
        let key = SiteKey {
            gopc: g.gopc,
            startpc: g.startpc,
        };
        let Some(site) = self.intern(key) else {
            result.dropped += 1;
            return None;
        };
        let blocked = matches!(g.status, GStatus::Waiting | GStatus::Leaked);
        let fingerprint = fingerprint(g);
        let mut unchanged_since = None;
        let mut new = !first;
        // Slots grow with the goroutines actually read, not with what a
        // (possibly corrupt) `allgs` length claims.
        if index >= self.slots.len() && index < MAX_SLOTS {
            self.slots.resize(index + 1, Slot::default());
        }
        match self.slots.get_mut(index) {
            Some(slot) if slot.goid == g.goid => {
                new = !slot.baseline;
                if blocked
                    && slot.blocked_since_ms != NOT_BLOCKED
                    && slot.fingerprint == fingerprint
                {
                    unchanged_since = Some(slot.blocked_since_ms);
                } else {
                    slot.blocked_since_ms = if blocked { now_ms } else { NOT_BLOCKED };
                }
                slot.fingerprint = fingerprint;
            }
            Some(slot) => {
                let previous = std::mem::replace(
                    slot,
                    Slot {
                        goid: g.goid,
                        fingerprint,
                        blocked_since_ms: if blocked { now_ms } else { NOT_BLOCKED },
                        site,
                        baseline: first,
                    },
                );
                if previous.goid != 0 {
                    self.ended(previous);
                }
                if !first {
                    self.counts[site as usize].created += 1;
                }
            }
            None => result.dropped += 1,
        }

        result.live += 1;
        let first_ns = self.first_ns.unwrap_or(result.now_ns);
        let site_index = site;
        let site = site as usize;
        if sites.len() <= site {
            sites.resize_with(site + 1, SiteCensus::default);
        }
        let entry = &mut sites[site];
        entry.live += 1;
        let state = (g.status, g.wait_reason);
        match entry.states.iter_mut().find(|(s, _)| *s == state) {
            Some((_, count)) => *count += 1,
            None => entry.states.push((state, 1)),
        }
        keep_lowest(&mut entry.goids, g.goid);
        if let Some(parent) = g.parent_goid.filter(|&p| p != 0) {
            keep_lowest(&mut entry.parent_goids, parent);
        }
        if !g.status.is_blocked() {
            return Some(site_index);
        }
        let seen =
            unchanged_since.map(|ms| BlockedSince::Census(first_ns + u64::from(ms) * 1_000_000));
        let runtime =
            (g.wait_since_ns > 0).then_some(BlockedSince::Runtime(g.wait_since_ns as u64));
        let own_since = [seen, runtime]
            .into_iter()
            .flatten()
            .min_by_key(|s| s.at_ns());
        entry.blocked_since = [own_since, entry.blocked_since]
            .into_iter()
            .flatten()
            .min_by_key(|s| s.at_ns());
        if unchanged_since.is_some() {
            entry.stuck += 1;
            if self.listed < MAX_STUCK_LISTED && self.follow_each.contains(&key) {
                self.listed += 1;
                entry.stuck_goroutines.push(StuckGoroutine {
                    goid: g.goid,
                    parent_goid: g.parent_goid.filter(|&p| p != 0),
                    stopped_at: StoppedAt {
                        pc: g.sched_pc,
                        bp: g.sched_bp,
                    },
                    new,
                    status: g.status,
                    wait_reason: g.wait_reason,
                    blocked_since: own_since,
                });
            }
        }
        if blocked && entry.stopped_at.len() < MAX_UNWOUND {
            entry.stopped_at.push(StoppedAt {
                pc: g.sched_pc,
                bp: g.sched_bp,
            });
        }
        Some(site_index)
    }

    fn intern(&mut self, key: SiteKey) -> Option<u32> {
        if let Some((last, index)) = self.last_site
            && last == key
        {
            return Some(index);
        }
        let index = self.lookup_or_add(key)?;
        self.last_site = Some((key, index));
        Some(index)
    }

    fn lookup_or_add(&mut self, key: SiteKey) -> Option<u32> {
        if let Some(&index) = self.site_index.get(&key) {
            return Some(index);
        }
        if self.site_keys.len() >= MAX_SITES {
            return None;
        }
        let index = u32::try_from(self.site_keys.len()).ok()?;
        self.site_keys.push(key);
        self.counts.push(SiteCounters::default());
        self.site_index.insert(key, index);
        Some(index)
    }
}

/// What changes when a goroutine runs: `trackingSeq` each time it stops
/// running; the wait reason and where it stopped, each time it blocks.
fn fingerprint(g: &Goroutine) -> u32 {
    // A multiply-rotate mix (as in rustc's FxHash): cheap, and a collision
    // needs a goroutine that ran to also land on the same 32 bits.
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let status = u64::from(g.status.code());
    let words = [
        u64::from(g.tracking_seq) | u64::from(g.wait_reason) << 8 | status << 16,
        g.sched_pc,
        g.sched_sp,
    ];
    let hash = words
        .iter()
        .fold(0u64, |h, &w| (h.rotate_left(5) ^ w).wrapping_mul(K));
    (hash >> 32) as u32
}

fn keep_lowest(ids: &mut BTreeSet<u64>, id: u64) {
    if ids.len() < MAX_IDS {
        ids.insert(id);
    } else if ids.last().is_some_and(|&max| id < max) {
        ids.insert(id);
        ids.pop_last();
    }
}

/// The current stacks of a site's sampled blocked goroutines.
pub fn unwind_stopped(mem: &dyn Memory, stopped: &[StoppedAt]) -> Vec<Vec<u64>> {
    stopped
        .iter()
        .map(|s| goroutines::unwind(mem, s.pc, s.bp))
        .filter(|stack| !stack.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::memory::Regions;

    fn layout() -> GLayout {
        leaktrace_gobinary::runtime_table::lookup(leaktrace_gobinary::GoVersion::new(1, 23, 0))
            .expect("go1.23 in the table")
            .0
            .g
    }

    const ALLGS: u64 = 0x8000;
    const ARRAY: u64 = 0x9000;
    const SITE_A: SiteKey = SiteKey {
        gopc: 0x401005,
        startpc: 0x402000,
    };
    const SITE_B: SiteKey = SiteKey {
        gopc: 0x403005,
        startpc: 0x404000,
    };

    /// A goroutine in synthetic memory.
    #[derive(Clone, Copy)]
    struct G {
        goid: u64,
        site: SiteKey,
        status: u32,
        seq: u8,
    }

    fn g_bytes(l: &GLayout, g: G) -> Vec<u8> {
        let mut raw = vec![0u8; l.span()];
        let mut put = |offset: u64, value: u64| {
            raw[offset as usize..offset as usize + 8].copy_from_slice(&value.to_le_bytes());
        };
        put(l.goid, g.goid);
        put(l.gopc, g.site.gopc);
        put(l.startpc, g.site.startpc);
        put(l.sched_pc, 0x405000);
        raw[l.atomicstatus as usize..][..4].copy_from_slice(&g.status.to_le_bytes());
        raw[l.waitreason as usize] = 14;
        raw[l.tracking_seq as usize] = g.seq;
        raw
    }

    /// `allgs` holding these goroutines (None: a nil slot), at 0x10000 apart.
    fn memory(goroutines: &[Option<G>]) -> Regions {
        let l = layout();
        let mut mem = Regions::new();
        let addresses: Vec<u64> = (0..goroutines.len() as u64)
            .map(|i| 0x10000 + i * 0x10000)
            .collect();
        mem.map_words(
            ALLGS,
            &[ARRAY, goroutines.len() as u64, goroutines.len() as u64],
        );
        mem.map_words(ARRAY, &addresses);
        for (g, address) in goroutines.iter().zip(&addresses) {
            if let Some(g) = g {
                mem.map(*address, g_bytes(&l, *g));
            }
        }
        mem
    }

    fn take(census: &mut Census, mem: &Regions) -> Result<CensusResult, AllgsError> {
        census.take(mem, &HashSet::new())
    }

    const WAITING: u32 = 4;
    const RUNNABLE: u32 = 1;
    const DEAD: u32 = 6;

    fn g(goid: u64, site: SiteKey, status: u32, seq: u8) -> Option<G> {
        Some(G {
            goid,
            site,
            status,
            seq,
        })
    }

    #[test]
    fn follows_goroutines_from_census_to_census() {
        let mut census = Census::new(layout(), ALLGS);
        let first = take(
            &mut census,
            &memory(&[
                g(1, SITE_A, WAITING, 7),
                g(2, SITE_A, WAITING, 3),
                g(3, SITE_B, RUNNABLE, 0),
                g(4, SITE_B, DEAD, 0),
            ]),
        )
        .unwrap();
        assert_eq!(first.live, 3);
        assert_eq!(first.sites[&SITE_A].live, 2);
        assert_eq!(first.sites[&SITE_A].stuck, 0, "nothing to compare with yet");
        assert_eq!(first.counts[&SITE_A], SiteCounters::default());

        // goid 2 ran in between (its trackingSeq moved); goid 3 ended and its
        // g now runs goid 9, a new one at site A; slot 4 got goid 10.
        let second = take(
            &mut census,
            &memory(&[
                g(1, SITE_A, WAITING, 7),
                g(2, SITE_A, WAITING, 4),
                g(9, SITE_A, WAITING, 0),
                g(10, SITE_B, RUNNABLE, 0),
            ]),
        )
        .unwrap();
        let a = &second.sites[&SITE_A];
        assert_eq!((a.live, a.stuck), (3, 1), "only goid 1 stayed blocked");
        assert_eq!(a.goids, BTreeSet::from([1, 2, 9]));
        assert_eq!(a.states, vec![((GStatus::Waiting, 14), 3)]);
        assert!(matches!(a.blocked_since, Some(BlockedSince::Census(at)) if at < second.now_ns));
        assert_eq!(
            second.counts[&SITE_A],
            SiteCounters {
                created: 1,
                exited: 0,
                exited_preexisting: 0
            }
        );
        assert_eq!(
            second.counts[&SITE_B],
            SiteCounters {
                created: 1,
                exited: 0,
                exited_preexisting: 1
            }
        );

        // goid 9 (new) ends; the slot is nil now.
        let third = take(
            &mut census,
            &memory(&[
                g(1, SITE_A, WAITING, 7),
                g(2, SITE_A, WAITING, 4),
                None,
                g(10, SITE_B, RUNNABLE, 0),
            ]),
        )
        .unwrap();
        assert_eq!(third.counts[&SITE_A].exited, 1);
        assert_eq!(third.sites[&SITE_A].stuck, 2);
    }

    #[test]
    fn stuck_goroutines_of_the_sites_asked_about_are_listed_once() {
        let mut census = Census::new(layout(), ALLGS);
        let before = [g(1, SITE_A, WAITING, 7), g(2, SITE_B, WAITING, 1)];
        take(&mut census, &memory(&before)).unwrap();
        let after = [
            g(1, SITE_A, WAITING, 7),
            g(2, SITE_B, WAITING, 1),
            g(3, SITE_A, WAITING, 0),
        ];
        take(&mut census, &memory(&after)).unwrap();
        census.follow_each_stuck(HashSet::from([SITE_A]));
        let asked = take(&mut census, &memory(&after)).unwrap();
        let listed: Vec<(u64, bool)> = asked.sites[&SITE_A]
            .stuck_goroutines
            .iter()
            .map(|g| (g.goid, g.new))
            .collect();
        assert_eq!(listed, [(1, false), (3, true)], "stuck, old and new");
        assert!(
            asked.sites[&SITE_B].stuck_goroutines.is_empty(),
            "not asked"
        );
        let next = take(&mut census, &memory(&after)).unwrap();
        assert!(
            next.sites[&SITE_A].stuck_goroutines.is_empty(),
            "only the census asked"
        );
    }

    #[test]
    fn a_hostile_allgs_is_refused() {
        let mut mem = Regions::new();
        mem.map_words(
            ALLGS,
            &[
                ARRAY,
                goroutines::MAX_GOROUTINES + 1,
                goroutines::MAX_GOROUTINES + 1,
            ],
        );
        let mut census = Census::new(layout(), ALLGS);
        assert!(matches!(
            take(&mut census, &mem),
            Err(AllgsError::TooMany(_))
        ));
        let mut census = Census::new(layout(), u64::MAX - 4);
        assert!(take(&mut census, &mem).is_err());
    }

    #[test]
    fn unreadable_goroutines_are_counted_as_dropped() {
        let mut mem = memory(&[g(1, SITE_A, WAITING, 0), g(2, SITE_A, WAITING, 0)]);
        // The second g's memory is gone.
        mem.map_words(ARRAY, &[0x10000, 0xdead0000]);
        let result = take(&mut Census::new(layout(), ALLGS), &mem).unwrap();
        assert_eq!((result.live, result.dropped), (1, 1));
    }
}
