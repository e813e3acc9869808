//! One-shot timer leaks: time.After in a select loop (seed 1, §2), timers
//! never stopped, stopped, reset, AfterFunc, context.WithTimeout with and
//! without cancel, and a goroutine blocked on time.After, built with every
//! installed Go toolchain, with go.mod saying go 1.19 and (for Go 1.23+
//! toolchains) go 1.23, which changes what a pending channel timer means.

use leaktrace_e2e::{build_in, go_versions, marker_line, privileged, run_traced_with, tagged_line};
use serde_json::Value;

const TIMERS: &str = "cmd/timers/main.go";
const HOUR: u64 = 3_600_000_000_000;

/// One expected timer site.
struct Timer {
    marker: &'static str,
    function: &'static str,
    made_by: &'static str,
    kind: &'static str,
    created: u64,
    live: u64,
    stopped: u64,
    reset: u64,
    referenced: u64,
    receiving: u64,
    /// Under Go 1.23+ semantics; before, every pending timer is held.
    verdict: &'static str,
    /// How far ahead the pending ones were set, in hours.
    hours: u64,
}

fn minor(version: &str) -> u32 {
    version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// Before Go 1.23, or a go.mod before 1.23 on Go 1.23–1.26 (asynctimerchan=1
/// by default; Go 1.27 removed the setting), the runtime holds every timer.
fn runtime_holds_timers(version: &str, go123_mod: bool) -> bool {
    minor(version) < 23 || (!go123_mod && minor(version) < 27)
}

fn timer_line(marker: &str) -> u64 {
    u64::from(tagged_line(TIMERS, &format!("timer:{marker}")))
}

/// Runs `scenario` under every toolchain and go.mod, and checks its one
/// timer site; returns each report with its context, for more checks.
fn check(scenario: &str, timer: Timer) -> Vec<(String, Value)> {
    let mut reports = Vec::new();
    if !privileged(scenario) {
        return reports;
    }
    for version in go_versions() {
        let mods: &[bool] = if minor(&version) >= 23 {
            &[false, true]
        } else {
            &[false]
        };
        for &go123_mod in mods {
            let flags: &[&str] = if go123_mod {
                &["-modfile=go123.mod"]
            } else {
                &[]
            };
            let binary = build_in("go", &version, "./cmd/timers", flags);
            let (report, output) = run_traced_with(&[], &binary, &[scenario]);
            let held = runtime_holds_timers(&version, go123_mod);
            let ctx = format!(
                "go{version} {} {scenario}",
                if go123_mod {
                    "go.mod 1.23"
                } else {
                    "go.mod 1.19"
                }
            );
            assert_eq!(
                output.status.code(),
                Some(0),
                "{ctx}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                report["timer_semantics"]["kind"],
                if held { "async" } else { "sync" },
                "{ctx}"
            );
            let timers = report["timers"].as_array().unwrap();
            assert_eq!(timers.len(), 1, "{ctx}: {timers:#?}");
            let seen = &timers[0];
            assert!(
                seen["created_at"]["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with(TIMERS)),
                "{ctx}: {seen:#}"
            );
            let verdict = if held && timer.live > 0 {
                "leak"
            } else {
                timer.verdict
            };
            let facts = (
                &seen["created_at"]["line"],
                &seen["created_at"]["function"],
                &seen["made_by"],
                &seen["kind"],
                (&seen["created"], &seen["live"]),
                (&seen["stopped"], &seen["reset"]),
                (&seen["referenced"], &seen["receiving_goroutines"]),
                &seen["verdict"],
            );
            let expected = (
                &timer_line(timer.marker).into(),
                &timer.function.into(),
                &timer.made_by.into(),
                &timer.kind.into(),
                (&timer.created.into(), &timer.live.into()),
                (&timer.stopped.into(), &timer.reset.into()),
                (&timer.referenced.into(), &timer.receiving.into()),
                &verdict.into(),
            );
            assert_eq!(facts, expected, "{ctx}: {seen:#}");
            match seen["longest_remaining_ns"].as_u64() {
                None => assert_eq!(timer.live, 0, "{ctx}: {seen:#}"),
                Some(remaining) => {
                    // Set `hours` ahead, and the program ran for well under a minute.
                    let set = timer.hours * HOUR;
                    assert!(
                        remaining <= set && remaining > set - HOUR / 60,
                        "{ctx}: {seen:#}"
                    );
                }
            }
            assert_eq!(report["dropped"], 0, "{ctx}");
            reports.push((ctx, report));
        }
    }
    reports
}

#[test]
fn time_after_in_a_select_loop_leaks_where_the_runtime_holds_it() {
    check(
        "after-in-loop",
        Timer {
            marker: "after-in-loop",
            function: "main.correctChannelWithTimeout",
            made_by: "time.After",
            kind: "channel",
            created: 100,
            live: 100,
            stopped: 0,
            reset: 0,
            referenced: 0,
            receiving: 0,
            verdict: "unreferenced",
            hours: 1,
        },
    );
}

#[test]
fn a_timer_a_global_holds_leaks() {
    check(
        "timer-referenced",
        Timer {
            marker: "referenced",
            function: "main.keepTimer",
            made_by: "time.NewTimer",
            kind: "channel",
            created: 1,
            live: 1,
            stopped: 0,
            reset: 0,
            referenced: 1,
            receiving: 0,
            verdict: "leak",
            hours: 1,
        },
    );
}

#[test]
fn stopped_timers_are_not_a_leak() {
    check(
        "timer-stopped",
        Timer {
            marker: "stopped",
            function: "main.stoppedTimer",
            made_by: "time.NewTimer",
            kind: "channel",
            created: 3,
            live: 0,
            stopped: 3,
            reset: 0,
            referenced: 0,
            receiving: 0,
            verdict: "ok",
            hours: 1,
        },
    );
}

/// The runtime holds an AfterFunc and its function until it fires, on
/// every release.
#[test]
fn pending_afterfuncs_leak_on_every_release() {
    check(
        "afterfunc-pending",
        Timer {
            marker: "afterfunc-pending",
            function: "main.runAfterFuncs",
            made_by: "time.AfterFunc",
            kind: "func",
            created: 3,
            live: 3,
            stopped: 0,
            reset: 0,
            referenced: 0,
            receiving: 0,
            verdict: "leak",
            hours: 1,
        },
    );
}

#[test]
fn stopped_afterfuncs_are_not_a_leak() {
    check(
        "afterfunc-stopped",
        Timer {
            marker: "afterfunc-stopped",
            function: "main.runStoppedAfterFuncs",
            made_by: "time.AfterFunc",
            kind: "func",
            created: 3,
            live: 0,
            stopped: 3,
            reset: 0,
            referenced: 0,
            receiving: 0,
            verdict: "ok",
            hours: 1,
        },
    );
}

#[test]
fn a_stopped_and_reset_timer_is_pending_again() {
    check(
        "timer-reset",
        Timer {
            marker: "reset",
            function: "main.resetTimer",
            made_by: "time.NewTimer",
            kind: "channel",
            created: 1,
            live: 1,
            stopped: 1,
            reset: 1,
            referenced: 1,
            receiving: 0,
            verdict: "leak",
            hours: 2,
        },
    );
}

/// go vet's lostcancel, at run time: the deadline's AfterFunc stays pending.
#[test]
fn context_with_timeout_never_cancelled_leaks() {
    check(
        "context-no-cancel",
        Timer {
            marker: "context-no-cancel",
            function: "main.runContextsWithoutCancel",
            made_by: "context.WithTimeout",
            kind: "func",
            created: 2,
            live: 2,
            stopped: 0,
            reset: 0,
            referenced: 0,
            receiving: 0,
            verdict: "leak",
            hours: 1,
        },
    );
}

#[test]
fn context_with_timeout_cancelled_is_not_a_leak() {
    check(
        "context-cancel",
        Timer {
            marker: "context-cancel",
            function: "main.runContextsWithCancel",
            made_by: "context.WithTimeout",
            kind: "func",
            created: 2,
            live: 0,
            stopped: 2,
            reset: 0,
            referenced: 0,
            receiving: 0,
            verdict: "ok",
            hours: 1,
        },
    );
}

/// The goroutine leaks, and holds its timer: both are reported, linked.
#[test]
fn a_goroutine_blocked_on_time_after_holds_its_timer() {
    let reports = check(
        "timer-receiver",
        Timer {
            marker: "receiver",
            function: "main.waitOnTimer.func1",
            made_by: "time.After",
            kind: "channel",
            created: 1,
            live: 1,
            stopped: 0,
            reset: 0,
            referenced: 0,
            receiving: 1,
            verdict: "leak",
            hours: 1,
        },
    );
    let line = u64::from(marker_line(TIMERS, "receiver"));
    for (ctx, report) in reports {
        let program: Vec<&Value> = report["goroutines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["origin"] == "program")
            .collect();
        assert_eq!(program.len(), 1, "{ctx}: {program:#?}");
        let site = program[0];
        assert_eq!(
            (&site["created_at"]["line"], &site["live"], &site["verdict"]),
            (&line.into(), &1.into(), &"leak".into()),
            "{ctx}"
        );
        assert_eq!(
            site["timers"][0]["line"],
            timer_line("receiver"),
            "{ctx}: goroutine ↔ timer"
        );
        assert_eq!(report["timers"][0]["receivers"][0]["line"], line, "{ctx}");
    }
}

/// `--min-timer` filters short timers in the kernel, and says how many.
#[test]
fn min_timer_filters_in_the_kernel_and_counts() {
    if !privileged("min_timer_filters_in_the_kernel_and_counts") {
        return;
    }
    for version in go_versions() {
        let binary = build_in("go", &version, "./cmd/timers", &[]);
        let (report, output) =
            run_traced_with(&["--min-timer", "90m"], &binary, &["after-in-loop"]);
        assert_eq!(output.status.code(), Some(0), "go{version}");
        assert_eq!(report["timers"], Value::Array(vec![]), "go{version}");
        assert_eq!(report["events"]["timers_too_short"], 100, "go{version}");
        assert_eq!(report["dropped"], 0, "go{version}");
        // Tickers are tracked whatever the setting.
        let (report, _) = run_traced_with(
            &["--min-timer", "10h"],
            &build_in("go", &version, "./cmd/tickers", &[]),
            &["ticker-global-slice"],
        );
        assert_eq!(report["tickers"][0]["live"], 5, "go{version}");
    }
}

/// A run with `--fail-on-leak` fails on a timer leak, and the text report
/// has its section.
#[test]
fn a_timer_leak_fails_the_run_and_reads_like_the_tickers() {
    if !privileged("a_timer_leak_fails_the_run_and_reads_like_the_tickers") {
        return;
    }
    let version = go_versions().pop().unwrap();
    let binary = build_in("go", &version, "./cmd/timers", &[]);
    let output = leaktrace_e2e::leaktrace()
        .args(["run", "--fail-on-leak", "--"])
        .arg(&binary)
        .arg("afterfunc-pending")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "go{version}");
    let text = String::from_utf8_lossy(&output.stderr);
    let line = timer_line("afterfunc-pending");
    for expected in [
        "3 leaked timers".to_string(),
        "leak: 3 time.AfterFunc timers pending, the last firing in 59 minutes".to_string(),
        format!("created at main.runAfterFuncs\n\t{}", "/"),
        format!("main.go:{line}"),
        "3 created, 0 stopped, 0 reset".to_string(),
    ] {
        assert!(text.contains(&expected), "{expected:?} in:\n{text}");
    }
    let output = leaktrace_e2e::leaktrace()
        .args(["run", "--fail-on-leak", "--"])
        .arg(&binary)
        .arg("afterfunc-stopped")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "go{version}");
}
