//! Ticker leaks: every ticker example of the seed documents, leaking and
//! fixed, plus tickers kept in a global slice, stopped through a context, and
//! time.Tick, built with every installed Go toolchain, with go.mod saying
//! go 1.19 and (for Go 1.23+ toolchains) go 1.23, which changes what an
//! unstopped ticker means.

use leaktrace_e2e::{build_in, go_versions, marker_line, privileged, run_traced, tagged_line};
use serde_json::Value;

const TICKERS: &str = "cmd/tickers/main.go";
const SECOND: i64 = 1_000_000_000;

/// One expected ticker site.
struct Ticker {
    marker: &'static str,
    function: &'static str,
    live: u64,
    stopped: u64,
    period_ns: i64,
    receiving: u64,
    referenced: u64,
    verdict: &'static str,
}

/// One expected goroutine site, and whether it receives from the scenario's ticker.
struct Goroutines {
    marker: &'static str,
    live: u64,
    verdict: &'static str,
    linked: bool,
}

fn minor(version: &str) -> u32 {
    version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// Before Go 1.23, or a go.mod before 1.23 on Go 1.23–1.26 (asynctimerchan=1
/// by default; Go 1.27 removed the setting), the runtime holds every ticker.
fn runtime_holds_tickers(version: &str, go123_mod: bool) -> bool {
    minor(version) < 23 || (!go123_mod && minor(version) < 27)
}

/// The line of the `// ticker:NAME` marker: where the ticker is created.
fn ticker_line(marker: &str) -> u64 {
    u64::from(tagged_line(TICKERS, &format!("ticker:{marker}")))
}

fn at_line(sites: &Value, line: u64) -> Option<&Value> {
    sites.as_array()?.iter().find(|s| {
        s["created_at"]["line"] == line
            && s["created_at"]["file"]
                .as_str()
                .is_some_and(|f| f.ends_with(TICKERS))
    })
}

fn check(
    scenario: &str,
    ticker: Ticker,
    goroutines: Option<Goroutines>,
    async_verdict: Option<&'static str>,
) {
    if !privileged(scenario) {
        return;
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
            let binary = build_in("go", &version, "./cmd/tickers", flags);
            let (report, output) = run_traced(&binary, &[scenario]);
            let held = runtime_holds_tickers(&version, go123_mod);
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

            let tickers = report["tickers"].as_array().unwrap();
            assert_eq!(tickers.len(), 1, "{ctx}: {tickers:#?}");
            let seen = at_line(&report["tickers"], ticker_line(ticker.marker))
                .unwrap_or_else(|| panic!("{ctx}: {tickers:#?}"));
            let verdict = if held {
                async_verdict.unwrap_or(ticker.verdict)
            } else {
                ticker.verdict
            };
            assert_eq!(seen["created_at"]["function"], ticker.function, "{ctx}");
            let facts = (
                &seen["live"],
                &seen["stopped"],
                &seen["period_ns"],
                &seen["receiving_goroutines"],
                &seen["referenced"],
                &seen["verdict"],
            );
            let expected = (
                &ticker.live.into(),
                &ticker.stopped.into(),
                &ticker.period_ns.into(),
                &ticker.receiving.into(),
                &ticker.referenced.into(),
                &verdict.into(),
            );
            assert_eq!(facts, expected, "{ctx}: {seen:#}");

            let program: Vec<&Value> = report["goroutines"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["origin"] == "program")
                .collect();
            match &goroutines {
                None => assert!(program.is_empty(), "{ctx}: {program:#?}"),
                Some(expected) => {
                    assert_eq!(program.len(), 1, "{ctx}: {program:#?}");
                    let line = u64::from(marker_line(TICKERS, expected.marker));
                    let site = at_line(&report["goroutines"], line)
                        .unwrap_or_else(|| panic!("{ctx}: {program:#?}"));
                    assert_eq!(
                        (&site["live"], &site["verdict"]),
                        (&expected.live.into(), &expected.verdict.into()),
                        "{ctx}"
                    );
                    let links: Vec<u64> = site["tickers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t["line"].as_u64().unwrap())
                        .collect();
                    let want: Vec<u64> = if expected.linked {
                        vec![ticker_line(ticker.marker)]
                    } else {
                        vec![]
                    };
                    assert_eq!(links, want, "{ctx}: goroutines ↔ ticker");
                }
            }
        }
    }
}

#[test]
fn ticker_ranged_over_forever_leaks() {
    check(
        "ticker-range-forever",
        Ticker {
            marker: "range-forever",
            function: "main.tickerLeakExample",
            live: 1,
            stopped: 0,
            period_ns: SECOND,
            receiving: 1,
            referenced: 0,
            verdict: "leak",
        },
        Some(Goroutines {
            marker: "range-forever",
            live: 1,
            verdict: "leak",
            linked: true,
        }),
        None,
    );
}

#[test]
fn many_tickers_each_with_a_goroutine_leak() {
    check(
        "ticker-many",
        Ticker {
            marker: "many",
            function: "main.multipleTickerLeak",
            live: 100,
            stopped: 0,
            period_ns: SECOND,
            receiving: 100,
            referenced: 0,
            verdict: "leak",
        },
        Some(Goroutines {
            marker: "many",
            live: 100,
            verdict: "leak",
            linked: true,
        }),
        None,
    );
}

/// The seed's "correct" version stops the ticker, but Stop does not close
/// the channel: its goroutine still leaks, and leaktrace links the two.
#[test]
fn deferred_stop_stops_the_ticker_but_its_goroutine_leaks() {
    check(
        "ticker-defer-stop",
        Ticker {
            marker: "defer-stop",
            function: "main.correctTickerExample",
            live: 0,
            stopped: 1,
            period_ns: SECOND,
            receiving: 1,
            referenced: 0,
            verdict: "ok",
        },
        Some(Goroutines {
            marker: "defer-stop",
            live: 1,
            verdict: "leak",
            linked: true,
        }),
        None,
    );
}

#[test]
fn ticker_with_context_is_not_a_leak() {
    check(
        "ticker-context",
        Ticker {
            marker: "context",
            function: "main.correctTickerWithContext",
            live: 0,
            stopped: 1,
            period_ns: SECOND,
            receiving: 0,
            referenced: 0,
            verdict: "ok",
        },
        Some(Goroutines {
            marker: "context",
            live: 0,
            verdict: "ok",
            linked: false,
        }),
        None,
    );
}

/// Read once, never stopped, referenced by nothing: the runtime holds it
/// before Go 1.23 semantics; after, the GC collects it.
#[test]
fn ticker_read_once_leaks_only_where_the_runtime_holds_it() {
    check(
        "ticker-read-once",
        Ticker {
            marker: "read-once",
            function: "main.leakTicker",
            live: 10,
            stopped: 0,
            period_ns: SECOND / 10,
            receiving: 0,
            referenced: 0,
            verdict: "unreferenced",
        },
        None,
        Some("leak"),
    );
}

#[test]
fn fixed_ticker_with_context_is_not_a_leak() {
    check(
        "ticker-fixed-context",
        Ticker {
            marker: "fixed-context",
            function: "main.fixedTicker",
            live: 0,
            stopped: 10,
            period_ns: SECOND / 10,
            receiving: 0,
            referenced: 0,
            verdict: "ok",
        },
        Some(Goroutines {
            marker: "fixed-context",
            live: 0,
            verdict: "ok",
            linked: false,
        }),
        None,
    );
}

#[test]
fn tickers_kept_in_a_global_slice_leak() {
    check(
        "ticker-global-slice",
        Ticker {
            marker: "global-slice",
            function: "main.keepTickers",
            live: 5,
            stopped: 0,
            period_ns: 3600 * SECOND,
            receiving: 0,
            referenced: 5,
            verdict: "leak",
        },
        None,
        None,
    );
}

#[test]
fn ticker_stopped_through_a_context_is_not_a_leak() {
    check(
        "ticker-stop-on-cancel",
        Ticker {
            marker: "stop-on-cancel",
            function: "main.stopOnCancel.func1",
            live: 0,
            stopped: 1,
            period_ns: SECOND / 100,
            receiving: 0,
            referenced: 0,
            verdict: "ok",
        },
        Some(Goroutines {
            marker: "stop-on-cancel",
            live: 0,
            verdict: "ok",
            linked: false,
        }),
        None,
    );
}

/// time.Tick is inlined into its caller; the ticker is still found, at the
/// caller's line.
#[test]
fn time_tick_in_an_endless_loop_leaks() {
    check(
        "ticker-tick",
        Ticker {
            marker: "tick",
            function: "main.tickForever.func1",
            live: 1,
            stopped: 0,
            period_ns: 60 * SECOND,
            receiving: 1,
            referenced: 0,
            verdict: "leak",
        },
        Some(Goroutines {
            marker: "tick",
            live: 1,
            verdict: "leak",
            linked: true,
        }),
        None,
    );
}

/// GODEBUG=asynctimerchan=1 in the environment brings back the old semantics
/// on Go 1.23–1.26, even when go.mod says 1.23.
#[test]
fn godebug_asynctimerchan_brings_back_the_old_semantics() {
    if !privileged("godebug_asynctimerchan_brings_back_the_old_semantics") {
        return;
    }
    for version in go_versions()
        .into_iter()
        .filter(|v| (23..27).contains(&minor(v)))
    {
        let binary = build_in("go", &version, "./cmd/tickers", &["-modfile=go123.mod"]);
        let report = leaktrace_e2e::report_path("godebug");
        let output = leaktrace_e2e::leaktrace()
            .args(["run", "--json", "-o"])
            .arg(&report)
            .arg("--")
            .arg(&binary)
            .arg("ticker-read-once")
            .env("GODEBUG", "asynctimerchan=1")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "go{version}");
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
        assert_eq!(report["timer_semantics"]["kind"], "async", "go{version}");
        assert_eq!(
            report["timer_semantics"]["reason"], "asynctimerchan=1 from GODEBUG",
            "go{version}"
        );
        assert_eq!(report["tickers"][0]["verdict"], "leak", "go{version}");
    }
}
