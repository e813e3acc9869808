//! One-shot timers (NewTimer, After, AfterFunc, and the deadlines of
//! `context.WithTimeout`): what the timers each line of code created
//! became, and whether the pending ones leak under the release's semantics.

use std::collections::HashMap;

use leaktrace_gobinary::{SourceLocation, is_runtime_function};

use super::{Analysis, Receivers};
use crate::{
    probes::{StackId, TrackedTimer},
    report::{TimerKind, TimerSemantics, TimerSite, TimerVerdict},
};

/// Frames above a timer's creation that the user did not write: the
/// runtime's, package time's (NewTimer, After, AfterFunc, inlined or not),
/// and package context's (WithTimeout and WithDeadline set an AfterFunc).
fn is_timer_machinery(function: &str) -> bool {
    is_runtime_function(function) || function.starts_with("time.") || is_context(function)
}

fn is_context(function: &str) -> bool {
    function.starts_with("context.")
}

/// What the timers of one creation stack are, from its frames.
struct Origin {
    created_at: SourceLocation,
    /// The outermost API frame below the program: `time.After`,
    /// `context.WithTimeout`, ...
    made_by: Option<String>,
    /// No frame of the program's: a timer the standard library set for itself.
    library: bool,
}

fn origin(analysis: &Analysis<'_>, stack: StackId) -> Option<Origin> {
    let symbols = analysis.symbols.symbols();
    let frames: Vec<SourceLocation> = analysis.creation_frames(stack)?.collect();
    let first = frames
        .iter()
        .position(|f| !is_timer_machinery(&f.function))?;
    let made_by = frames[..first]
        .iter()
        .rev()
        .find(|f| !is_runtime_function(&f.function))
        .map(|f| f.function.clone());
    // A timer the standard library set while working for the program (an
    // HTTP client's timeout) is the program's call's.
    let program = frames[first..]
        .iter()
        .find(|f| !symbols.is_standard_library(f));
    Some(Origin {
        created_at: program.unwrap_or(&frames[first]).clone(),
        made_by,
        library: program.is_none(),
    })
}

/// What a func value's function says the timer does: `time.goFunc` runs a
/// function (AfterFunc), `time.sendTime` sends on a channel.
fn kind_of_func(analysis: &Analysis<'_>, func: u64) -> Option<TimerKind> {
    let pc = *analysis.observation.ticker_memory.func_pcs.get(&func)?;
    let entry = analysis.symbols.goroutine_entry(pc)?;
    match entry.function.as_str() {
        "time.goFunc" => Some(TimerKind::Func),
        "time.sendTime" => Some(TimerKind::Channel),
        _ => None,
    }
}

fn kind_of_api(made_by: Option<&str>) -> Option<TimerKind> {
    match made_by? {
        "time.AfterFunc" => Some(TimerKind::Func),
        f if is_context(f) => Some(TimerKind::Func),
        "time.NewTimer" | "time.After" => Some(TimerKind::Channel),
        _ => None,
    }
}

fn is_ticker_api(made_by: Option<&str>) -> bool {
    matches!(made_by, Some("time.NewTicker" | "time.Tick"))
}

struct Building {
    site: TimerSite,
    library: bool,
    stacks: HashMap<StackId, u64>,
}

fn entry(
    by_line: &mut HashMap<(SourceLocation, TimerKind), Building>,
    created_at: SourceLocation,
    made_by: Option<String>,
    kind: TimerKind,
    library: bool,
) -> &mut Building {
    by_line
        .entry((created_at.clone(), kind))
        .or_insert_with(|| Building {
            site: TimerSite {
                created_at,
                kind,
                made_by,
                created: 0,
                live: 0,
                stopped: 0,
                reset: 0,
                longest_remaining_ns: None,
                referenced: 0,
                receiving_goroutines: 0,
                receivers: Vec::new(),
                stacks: Vec::new(),
                verdict: TimerVerdict::Ok,
            },
            library,
            stacks: HashMap::new(),
        })
}

pub(super) fn timer_sites(analysis: &Analysis<'_>, receivers: &Receivers) -> Vec<TimerSite> {
    let obs = analysis.observation;
    let mut origins: HashMap<StackId, Option<Origin>> = HashMap::new();
    let mut origin_of = |stack: StackId| -> Option<(SourceLocation, Option<String>, bool)> {
        origins
            .entry(stack)
            .or_insert_with(|| origin(analysis, stack))
            .as_ref()
            .map(|o| (o.created_at.clone(), o.made_by.clone(), o.library))
    };
    let mut by_line: HashMap<(SourceLocation, TimerKind), Building> = HashMap::new();
    // What the table's records say of their stacks, where the frames do not
    // name the API (a creation stack cut short).
    let mut recorded: HashMap<StackId, (bool, Option<TimerKind>)> = HashMap::new();
    for tracked in obs.timers.values() {
        if let Some(stack) = tracked.creation_stack {
            recorded.insert(
                stack,
                (tracked.is_ticker(), kind_of_func(analysis, tracked.func)),
            );
        }
    }
    // The kernel's counters: every timer created, stopped or reset.
    for (&stack, counts) in &obs.timer_counts {
        let Some(stack) = stack else { continue };
        let Some((created_at, made_by, library)) = origin_of(stack) else {
            continue;
        };
        let (ticker, recorded_kind) = recorded.get(&stack).copied().unwrap_or_default();
        if ticker || is_ticker_api(made_by.as_deref()) {
            continue;
        }
        let Some(kind) = kind_of_api(made_by.as_deref()).or(recorded_kind) else {
            continue;
        };
        let building = entry(&mut by_line, created_at, made_by, kind, library);
        building.site.created += counts.created;
        building.site.stopped += counts.stopped;
        building.site.reset += counts.reset;
    }
    // The table: which are pending now.
    for (&timer, tracked) in &obs.timers {
        if tracked.is_ticker() || !tracked.is_pending(obs.clock_ns) {
            continue;
        }
        let Some((created_at, made_by, library)) = tracked.creation_stack.and_then(&mut origin_of)
        else {
            continue;
        };
        let Some(kind) = kind_of_func(analysis, tracked.func).or(kind_of_api(made_by.as_deref()))
        else {
            continue;
        };
        let building = entry(&mut by_line, created_at, made_by, kind, library);
        add_pending(&mut building.site, tracked, obs.clock_ns);
        building.site.referenced += u64::from(obs.ticker_memory.referenced.contains(&timer));
        if let Some(stack) = tracked.creation_stack {
            *building.stacks.entry(stack).or_default() += 1;
        }
        if let Some((count, sites)) = receivers.get(&timer) {
            building.site.receiving_goroutines += count;
            for &key in sites {
                let (at, _) = analysis.locations(key);
                if !building.site.receivers.contains(&at) {
                    building.site.receivers.push(at);
                }
            }
        }
    }
    let mut sites: Vec<TimerSite> = by_line
        .into_values()
        .map(
            |Building {
                 mut site,
                 library,
                 stacks,
             }| {
                site.stacks = analysis.creation_stacks(stacks, is_timer_machinery);
                site.verdict = verdict(&obs.timer_semantics, &site, library);
                site
            },
        )
        .collect();
    sites.sort_by_key(|site| {
        (
            site.verdict != TimerVerdict::Leak,
            std::cmp::Reverse(site.live),
            site.created_at.file.clone(),
            site.created_at.line,
        )
    });
    sites
}

fn add_pending(site: &mut TimerSite, timer: &TrackedTimer, now_ns: u64) {
    site.live += 1;
    let remaining = timer.when_ns.saturating_sub(now_ns as i64).max(0) as u64;
    site.longest_remaining_ns = Some(site.longest_remaining_ns.unwrap_or(0).max(remaining));
}

/// An AfterFunc is held by the runtime until it fires, with everything its
/// function refers to, on every release; a channel timer too before Go 1.23
/// semantics. From Go 1.23 a channel timer is held only by what refers to
/// it: a goroutine blocked on its channel, or a global.
fn verdict(semantics: &TimerSemantics, site: &TimerSite, library: bool) -> TimerVerdict {
    let held = site.receiving_goroutines > 0 || site.referenced > 0;
    match (semantics, site.kind) {
        _ if site.live == 0 => TimerVerdict::Ok,
        _ if library => TimerVerdict::Library,
        (_, TimerKind::Func) | (TimerSemantics::Async { .. }, _) => TimerVerdict::Leak,
        (TimerSemantics::Sync, TimerKind::Channel) if held => TimerVerdict::Leak,
        (TimerSemantics::Sync, TimerKind::Channel) => TimerVerdict::Unreferenced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(kind: TimerKind, live: u64, receiving: u64, referenced: u64) -> TimerSite {
        TimerSite {
            created_at: SourceLocation {
                function: "main.f".into(),
                file: "/src/main.go".into(),
                line: 1,
            },
            kind,
            made_by: None,
            created: live,
            live,
            stopped: 0,
            reset: 0,
            longest_remaining_ns: None,
            referenced,
            receiving_goroutines: receiving,
            receivers: Vec::new(),
            stacks: Vec::new(),
            verdict: TimerVerdict::Ok,
        }
    }

    #[test]
    fn verdicts_follow_the_release_semantics() {
        let async_ = TimerSemantics::Async {
            reason: "go1.22".into(),
        };
        let sync = TimerSemantics::Sync;
        use TimerKind::{Channel, Func};
        let cases = [
            (&async_, site(Channel, 3, 0, 0), false, TimerVerdict::Leak),
            (
                &sync,
                site(Channel, 3, 0, 0),
                false,
                TimerVerdict::Unreferenced,
            ),
            (&sync, site(Channel, 1, 1, 0), false, TimerVerdict::Leak),
            (&sync, site(Channel, 1, 0, 1), false, TimerVerdict::Leak),
            (&sync, site(Func, 2, 0, 0), false, TimerVerdict::Leak),
            (&async_, site(Func, 2, 0, 0), true, TimerVerdict::Library),
            (&sync, site(Func, 0, 0, 0), false, TimerVerdict::Ok),
        ];
        for (semantics, site, library, expected) in cases {
            assert_eq!(verdict(semantics, &site, library), expected, "{site:?}");
        }
    }

    #[test]
    fn the_api_says_what_a_timer_does() {
        assert_eq!(kind_of_api(Some("time.After")), Some(TimerKind::Channel));
        assert_eq!(
            kind_of_api(Some("context.WithTimeout")),
            Some(TimerKind::Func)
        );
        assert_eq!(kind_of_api(Some("time.NewTicker")), None);
        assert!(is_ticker_api(Some("time.Tick")));
        assert!(is_timer_machinery("context.WithDeadlineCause"));
        assert!(!is_timer_machinery("main.handler"));
    }
}
