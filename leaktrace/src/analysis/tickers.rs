//! Tickers: which Go timer semantics apply, and what became of the tickers
//! each line of code created.

use std::collections::HashMap;

use leaktrace_ebpf::SiteKey;
use leaktrace_gobinary::{GoVersion, SourceLocation, is_runtime_function};

use super::{Analysis, Receivers, symbols::unknown};
use crate::{
    probes::StackId,
    report::{TickerSite, TickerVerdict, TimerSemantics},
};

/// How the target's runtime treats an unstopped ticker. `default_godebug`
/// is the binary's `asynctimerchan` default (from go.mod's go line), `env`
/// the process's GODEBUG environment variable.
pub fn timer_semantics(
    version: GoVersion,
    version_text: &str,
    default_godebug: Option<&str>,
    env: Option<&str>,
) -> TimerSemantics {
    if version < GoVersion::new(1, 23, 0) {
        return TimerSemantics::Async {
            reason: format!("{version_text} holds every running ticker"),
        };
    }
    // Go 1.27 removed the setting.
    if version >= GoVersion::new(1, 27, 0) {
        return TimerSemantics::Sync;
    }
    let from_env = env.and_then(|g| {
        g.split(',')
            .find_map(|kv| kv.strip_prefix("asynctimerchan="))
    });
    let (value, source) = match from_env {
        Some(v) => (Some(v), "GODEBUG"),
        None => (
            default_godebug,
            "the binary's default GODEBUG (go.mod says go < 1.23)",
        ),
    };
    match value {
        Some(v @ ("1" | "2")) => TimerSemantics::Async {
            reason: format!("asynctimerchan={v} from {source}"),
        },
        _ => TimerSemantics::Sync,
    }
}

/// Frames above a ticker's creation: the runtime's, and package time's
/// (NewTicker, Tick), whether called or inlined.
fn is_runtime_or_time(function: &str) -> bool {
    is_runtime_function(function) || function.starts_with("time.")
}

/// Where a ticker was created: the first frame of its creation stack
/// outside the runtime and package time (NewTicker may be inlined). `None`
/// for a ticker found in a timer heap (sampled attach mode), which does not
/// record where it was made.
pub(super) fn ticker_site(
    analysis: &Analysis<'_>,
    stack: Option<StackId>,
) -> Option<SourceLocation> {
    let stack = stack?;
    Some(
        analysis
            .creation_frames(stack)
            .and_then(|mut frames| frames.find(|f| !is_runtime_or_time(&f.function)))
            .unwrap_or_else(|| unknown(0)),
    )
}

pub(super) fn ticker_sites(analysis: &Analysis<'_>, receivers: &Receivers) -> Vec<TickerSite> {
    struct Building {
        site: TickerSite,
        stacks: HashMap<StackId, u64>,
        periods: HashMap<i64, u64>,
    }
    let obs = analysis.observation;
    // By the line that created them; those whose line is not known, by the
    // site of the goroutines receiving from them.
    let mut by_line: HashMap<(Option<SourceLocation>, Option<SiteKey>), Building> = HashMap::new();
    for (&ticker, tracked) in obs.timers.iter().filter(|(_, t)| t.is_ticker()) {
        let created_at = ticker_site(analysis, tracked.creation_stack);
        let first_receiver = receivers
            .get(&ticker)
            .and_then(|(_, sites)| sites.first().copied())
            .filter(|_| created_at.is_none());
        let building = by_line
            .entry((created_at.clone(), first_receiver))
            .or_insert_with(|| Building {
                site: TickerSite {
                    created_at,
                    live: 0,
                    stopped: 0,
                    period_ns: 0,
                    referenced: 0,
                    receiving_goroutines: 0,
                    receivers: Vec::new(),
                    stacks: Vec::new(),
                    verdict: TickerVerdict::Ok,
                },
                stacks: HashMap::new(),
                periods: HashMap::new(),
            });
        if tracked.stopped {
            building.site.stopped += 1;
            *building.periods.entry(tracked.period_ns).or_default() += 1;
        } else {
            building.site.live += 1;
            *building.periods.entry(tracked.period_ns).or_default() += 2;
            building.site.referenced += u64::from(obs.ticker_memory.referenced.contains(&ticker));
            if let Some(stack) = tracked.creation_stack {
                *building.stacks.entry(stack).or_default() += 1;
            }
        }
        let Some((count, receiving_sites)) = receivers.get(&ticker) else {
            continue;
        };
        building.site.receiving_goroutines += count;
        for &key in receiving_sites {
            let (created_at, _) = analysis.locations(key);
            if !building.site.receivers.contains(&created_at) {
                building.site.receivers.push(created_at);
            }
        }
    }
    let mut sites: Vec<TickerSite> = by_line
        .into_values()
        .map(
            |Building {
                 mut site,
                 stacks,
                 periods,
             }| {
                // Live tickers' periods weigh double, so they win over stopped ones.
                site.period_ns = periods
                    .into_iter()
                    .max_by_key(|&(p, n)| (n, p))
                    .map_or(0, |(p, _)| p);
                site.stacks = analysis.creation_stacks(stacks, is_runtime_or_time);
                site.verdict = verdict(&obs.timer_semantics, &site);
                site
            },
        )
        .collect();
    let order = |site: &TickerSite| {
        let line = |at: &SourceLocation| (at.file.clone(), at.line);
        (
            site.verdict != TickerVerdict::Leak,
            std::cmp::Reverse(site.live),
            site.created_at.as_ref().map(line),
            site.receivers.first().map(line),
        )
    };
    sites.sort_by_key(order);
    sites
}

/// Async semantics: every unstopped ticker leaks. Sync: only one that a
/// receiving goroutine or a global holds; otherwise the GC collects it.
fn verdict(semantics: &TimerSemantics, site: &TickerSite) -> TickerVerdict {
    let held = site.receiving_goroutines > 0 || site.referenced > 0;
    match (semantics, site.live) {
        (_, 0) => TickerVerdict::Ok,
        (TimerSemantics::Async { .. }, _) => TickerVerdict::Leak,
        (TimerSemantics::Sync, _) if held => TickerVerdict::Leak,
        (TimerSemantics::Sync, _) => TickerVerdict::Unreferenced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO122: GoVersion = GoVersion::new(1, 22, 12);
    const GO123: GoVersion = GoVersion::new(1, 23, 5);
    const GO127: GoVersion = GoVersion::new(1, 27, 4);

    #[test]
    fn before_go123_every_running_ticker_is_held() {
        assert_eq!(
            timer_semantics(GO122, "go1.22.12", None, None),
            TimerSemantics::Async {
                reason: "go1.22.12 holds every running ticker".into()
            }
        );
    }

    #[test]
    fn go123_follows_go_mod_and_godebug() {
        assert_eq!(
            timer_semantics(GO123, "go1.23.5", None, None),
            TimerSemantics::Sync
        );
        assert_eq!(
            timer_semantics(GO123, "go1.23.5", Some("1"), None),
            TimerSemantics::Async {
                reason:
                    "asynctimerchan=1 from the binary's default GODEBUG (go.mod says go < 1.23)"
                        .into()
            }
        );
        // The environment wins over the binary's default, either way.
        assert_eq!(
            timer_semantics(
                GO123,
                "go1.23.5",
                Some("1"),
                Some("http2debug=1,asynctimerchan=0")
            ),
            TimerSemantics::Sync
        );
        assert_eq!(
            timer_semantics(GO123, "go1.23.5", None, Some("asynctimerchan=2")),
            TimerSemantics::Async {
                reason: "asynctimerchan=2 from GODEBUG".into()
            }
        );
    }

    #[test]
    fn go127_removed_the_setting() {
        assert_eq!(
            timer_semantics(GO127, "go1.27.4", Some("1"), Some("asynctimerchan=1")),
            TimerSemantics::Sync
        );
    }
}
