//! The report: goroutines grouped by the `go` statement that created them,
//! with a verdict per site. `model` builds it; `text` and `json` print it.

pub mod json;
pub mod text;
mod verdict;

use std::collections::{BTreeMap, HashMap};

use leaktrace_ebpf::{GoroutineRecord, SiteCounters, SiteKey};
use leaktrace_gobinary::{GoBinary, SourceLocation};
use serde::Serialize;

use crate::{
    goroutines::{GStatus, Goroutine},
    probes::EventCounts,
};
pub use verdict::{AttachThresholds, Verdict};

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
    pub origin: Origin,
    pub verdict: Verdict,
    /// IDs of up to [`MAX_GOIDS`] live goroutines, lowest first.
    pub goids: Vec<u64>,
}

pub const MAX_GOIDS: usize = 10;

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
}

impl Report {
    pub fn leaking_sites(&self) -> impl Iterator<Item = &SiteReport> {
        self.goroutines
            .iter()
            .filter(|s| s.verdict == Verdict::Leak)
    }

    pub fn has_leaks(&self) -> bool {
        self.leaking_sites().next().is_some()
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
    /// The target's goroutines at the end, if they could be read.
    pub snapshot: Option<Vec<Goroutine>>,
    /// CLOCK_MONOTONIC when the snapshot was taken.
    pub now_ns: u64,
    pub sites: HashMap<SiteKey, SiteCounters>,
    pub records: HashMap<u64, GoroutineRecord>,
    pub events: EventCounts,
    pub thresholds: AttachThresholds,
}

impl Observation<'_> {
    pub fn into_report(self, include_all: bool) -> Report {
        let mut by_site: HashMap<SiteKey, SiteReport> = HashMap::new();
        for (&key, counters) in &self.sites {
            let site = self.site(&mut by_site, key);
            site.created = counters.created;
            site.exited = counters.exited;
            site.exited_preexisting = counters.exited_preexisting;
        }
        match &self.snapshot {
            Some(goroutines) => {
                for g in goroutines {
                    let blocked = self.blocked_for(g);
                    let state = self.state_name(g);
                    let site = self.site(
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
                }
            }
            None => {
                // The process is gone: what was created and not destroyed is what lived.
                for record in self.records.values() {
                    let site = self.site(
                        &mut by_site,
                        SiteKey {
                            gopc: record.gopc,
                            startpc: record.startpc,
                        },
                    );
                    site.live += 1;
                    site.goids.push(record.goid);
                }
            }
        }
        let mut goroutines: Vec<SiteReport> = by_site
            .into_values()
            .map(|mut site| {
                site.goids.sort_unstable();
                site.goids.truncate(MAX_GOIDS);
                site.verdict = verdict::judge(self.mode, &site, &self.thresholds);
                site
            })
            .filter(|site| include_all || site.origin != Origin::Runtime)
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
        }
    }

    fn site<'m>(
        &self,
        sites: &'m mut HashMap<SiteKey, SiteReport>,
        key: SiteKey,
    ) -> &'m mut SiteReport {
        sites.entry(key).or_insert_with(|| {
            let (gopc, startpc) = (
                key.gopc.wrapping_sub(self.load_bias),
                key.startpc.wrapping_sub(self.load_bias),
            );
            let created_at = self.binary.call_site(gopc).unwrap_or_else(|| unknown(gopc));
            let entry = self
                .binary
                .goroutine_entry(startpc)
                .unwrap_or_else(|| unknown(startpc));
            SiteReport {
                origin: self.origin(&created_at, &entry),
                entry,
                created_at,
                live: 0,
                created: 0,
                exited: 0,
                exited_preexisting: 0,
                states: BTreeMap::new(),
                blocked_for: None,
                verdict: Verdict::Ok,
                goids: Vec::new(),
            }
        })
    }

    fn origin(&self, created_at: &SourceLocation, entry: &SourceLocation) -> Origin {
        // Like the runtime's isSystemGoroutine: what runs runtime code, except main.
        if entry.function.starts_with("runtime.") || created_at.function.starts_with("runtime.") {
            return Origin::Runtime;
        }
        if self.binary.is_standard_library(created_at) {
            Origin::StandardLibrary
        } else {
            Origin::Program
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

    fn blocked_for(&self, g: &Goroutine) -> Option<BlockedFor> {
        if !g.status.is_blocked() {
            return None;
        }
        let exact = self
            .records
            .get(&g.g)
            .filter(|r| r.goid == g.goid && r.parked_ns != 0 && g.status != GStatus::Syscall);
        if let Some(record) = exact {
            return Some(BlockedFor {
                longest_ns: self.now_ns.saturating_sub(record.parked_ns),
                source: TimeSource::Exact,
            });
        }
        (g.wait_since_ns > 0).then(|| BlockedFor {
            longest_ns: self.now_ns.saturating_sub(g.wait_since_ns as u64),
            source: TimeSource::Runtime,
        })
    }
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
