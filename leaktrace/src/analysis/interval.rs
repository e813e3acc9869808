//! What moved in the last sampling interval, for `--interval` and the live view.

use std::collections::HashSet;

use leaktrace_gobinary::is_runtime_function;

use super::{Symbolizer, symbols::unknown, timeline::Timeline};
use crate::report::{Interval, IntervalSite};

/// Sites listed per interval.
const INTERVAL_SITES: usize = 20;

/// The last interval of `timeline`, or `None` before the first sample.
pub fn interval(symbols: &Symbolizer<'_>, timeline: &Timeline) -> Option<Interval> {
    let last = timeline.last()?;
    let previous = timeline.previous();
    let mut live_total = 0;
    let mut sites = Vec::new();
    let mut seen = HashSet::new();
    for key in timeline.sites() {
        if !seen.insert(*key) {
            continue;
        }
        let live = timeline.live(key, last);
        live_total += live;
        let change = previous.map_or(0, |p| live - timeline.live(key, p));
        let created_at = symbols
            .call_site(key.gopc)
            .unwrap_or_else(|| unknown(key.gopc));
        if is_runtime_function(&created_at.function) || (live == 0 && change == 0) {
            continue;
        }
        let counters = last.sites.get(key).copied().unwrap_or_default();
        let entry = symbols
            .goroutine_entry(key.startpc)
            .unwrap_or_else(|| unknown(key.startpc));
        if is_runtime_function(&entry.function) {
            continue;
        }
        sites.push(IntervalSite {
            created_at,
            entry,
            live,
            change,
            created: counters.created,
            exited: counters.exited,
        });
    }
    sites.sort_by_key(|s| std::cmp::Reverse((s.change, s.live)));
    sites.truncate(INTERVAL_SITES);
    let seconds = previous.map_or(0.0, |p| {
        (last.elapsed_ns.saturating_sub(p.elapsed_ns)) as f64 / 1e9
    });
    let rate = |now: u64, then: u64| {
        if seconds > 0.0 {
            now.saturating_sub(then) as f64 / seconds
        } else {
            0.0
        }
    };
    let before = previous.map(|p| p.events).unwrap_or_default();
    Some(Interval {
        elapsed_ns: last.elapsed_ns,
        live: live_total,
        created_per_second: rate(last.events.created, before.created),
        exited_per_second: rate(last.events.exited, before.exited),
        parked_per_second: rate(last.events.parked, before.parked),
        events: last.events,
        sites,
    })
}
