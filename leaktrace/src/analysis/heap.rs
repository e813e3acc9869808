//! The in-use heap by allocation site, from the runtime's heap profile read
//! at the start and the end of the observation: which lines' allocations
//! are still in use, and which grew.

use std::collections::HashMap;

use leaktrace_gobinary::{SourceLocation, is_runtime_function};

use super::{Analysis, MAX_STACKS, timeline::trend_of, trimmed_frames};
use crate::{
    process::heap::{HeapBucket, HeapProfile, scaled},
    report::{HeapReport, HeapSite, HeapStack, HeapVerdict, Mode},
};

/// Heap sites listed at most; the rest are counted.
pub const MAX_HEAP_SITES: usize = 100;

/// What was read of the heap profile: at the start of an attach window (if
/// it was read then) and at the end, or why not.
#[derive(Debug, Clone)]
pub struct HeapObservation {
    pub before: Option<HeapProfile>,
    /// `-p`: bytes in use per bucket at each reading between the two.
    pub between: Vec<HashMap<u64, u64>>,
    pub after: Result<HeapProfile, String>,
}

/// Bytes in use per bucket, scaled.
pub fn in_use_by_bucket(profile: &HeapProfile) -> HashMap<u64, u64> {
    profile
        .buckets
        .iter()
        .map(|(&address, bucket)| (address, in_use(bucket, profile.rate).1))
        .filter(|&(_, bytes)| bytes > 0)
        .collect()
}

fn in_use(bucket: &HeapBucket, rate: u64) -> (u64, u64) {
    scaled(
        bucket.allocs.saturating_sub(bucket.frees),
        bucket.size,
        rate,
    )
}

pub(super) fn heap_report(analysis: &Analysis<'_>) -> Option<HeapReport> {
    let obs = analysis.observation;
    let heap = obs.heap.as_ref()?;
    let after = match &heap.after {
        Ok(after) => after,
        Err(why) => {
            return Some(HeapReport {
                unavailable: Some(why.clone()),
                sample_rate: 0,
                window: false,
                inuse_bytes: 0,
                inuse_objects: 0,
                growth_bytes: 0,
                sites: Vec::new(),
                more_sites: 0,
                dropped: 0,
            });
        }
    };
    let window = obs.mode == Mode::Attach && heap.before.is_some();
    struct Building {
        site: HeapSite,
        stacks: Vec<HeapStack>,
        /// Bytes at each reading: before, between, after.
        series: Vec<i64>,
    }
    let readings = heap.between.len() + 2;
    let mut by_line: HashMap<SourceLocation, Building> = HashMap::new();
    let mut frames_of: HashMap<Vec<u64>, Vec<SourceLocation>> = HashMap::new();
    let (mut total_bytes, mut total_objects, mut growth_total) = (0u64, 0u64, 0i64);
    for (address, bucket) in &after.buckets {
        let (objects, bytes) = in_use(bucket, after.rate);
        let (objects_before, bytes_before) = match &heap.before {
            Some(before) if window => before
                .buckets
                .get(address)
                .map_or((0, 0), |b| in_use(b, before.rate)),
            _ => (0, 0),
        };
        if bytes == 0 && bytes_before == 0 {
            continue;
        }
        total_bytes += bytes;
        total_objects += objects;
        let growth = bytes as i64 - bytes_before as i64;
        growth_total += growth;
        let frames = frames_of
            .entry(bucket.stack.clone())
            .or_insert_with(|| allocation_frames(analysis, &bucket.stack))
            .clone();
        let Some(at) = allocated_at(analysis, &frames) else {
            continue;
        };
        let building = by_line.entry(at.clone()).or_insert_with(|| Building {
            site: HeapSite {
                allocated_at: at,
                inuse_bytes: 0,
                inuse_objects: 0,
                growth_bytes: 0,
                growth_objects: 0,
                trend: None,
                stacks: Vec::new(),
                verdict: HeapVerdict::InUse,
            },
            stacks: Vec::new(),
            series: vec![0; readings],
        });
        if window {
            building.series[0] += bytes_before as i64;
            for (i, reading) in heap.between.iter().enumerate() {
                building.series[i + 1] += reading.get(address).copied().unwrap_or(0) as i64;
            }
            building.series[readings - 1] += bytes as i64;
        }
        building.site.inuse_bytes += bytes;
        building.site.inuse_objects += objects;
        building.site.growth_bytes += growth;
        building.site.growth_objects += objects as i64 - objects_before as i64;
        if bytes > 0 {
            match building.stacks.iter_mut().find(|s| s.frames == frames) {
                Some(stack) => {
                    stack.inuse_bytes += bytes;
                    stack.inuse_objects += objects;
                }
                None => building.stacks.push(HeapStack {
                    inuse_bytes: bytes,
                    inuse_objects: objects,
                    frames,
                }),
            }
        }
    }
    let mut sites: Vec<HeapSite> = by_line
        .into_values()
        .map(
            |Building {
                 mut site,
                 mut stacks,
                 series,
             }| {
                stacks.sort_by_key(|s| std::cmp::Reverse(s.inuse_bytes));
                stacks.truncate(MAX_STACKS);
                site.stacks = stacks;
                site.verdict = if window {
                    let trend = trend_of(&series);
                    let growing = trend.rising;
                    site.trend = Some(trend);
                    if growing {
                        HeapVerdict::Growing
                    } else {
                        HeapVerdict::Steady
                    }
                } else {
                    HeapVerdict::InUse
                };
                site
            },
        )
        .collect();
    sites.sort_by(|a, b| {
        (
            b.growth_bytes,
            b.inuse_bytes,
            &a.allocated_at.file,
            a.allocated_at.line,
        )
            .cmp(&(
                a.growth_bytes,
                a.inuse_bytes,
                &b.allocated_at.file,
                b.allocated_at.line,
            ))
    });
    let more_sites = sites.len().saturating_sub(MAX_HEAP_SITES) as u64;
    sites.truncate(MAX_HEAP_SITES);
    Some(HeapReport {
        unavailable: None,
        sample_rate: after.rate,
        window,
        inuse_bytes: total_bytes,
        inuse_objects: total_objects,
        growth_bytes: if window {
            growth_total
        } else {
            total_bytes as i64
        },
        sites,
        more_sites,
        dropped: after.dropped + heap.before.as_ref().map_or(0, |b| b.dropped),
    })
}

/// The allocation stack's frames, from the allocating function outwards,
/// without the runtime's frames on either end (mallocgc and its callers
/// above; runtime.main and goexit below).
fn allocation_frames(analysis: &Analysis<'_>, stack: &[u64]) -> Vec<SourceLocation> {
    trimmed_frames(analysis.symbols.stack_frames(stack), is_runtime_function)
}

/// The program's first frame, or the first frame if the standard library
/// allocated on its own.
fn allocated_at(analysis: &Analysis<'_>, frames: &[SourceLocation]) -> Option<SourceLocation> {
    let symbols = analysis.symbols.symbols();
    frames
        .iter()
        .find(|f| !symbols.is_standard_library(f))
        .or(frames.first())
        .cloned()
}
