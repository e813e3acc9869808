//! Goroutines the standard library started are blamed on the program's code:
//! the test goroutine on its test function, an unclosed response body on the
//! request's line, AfterFunc callbacks on the callback, a command's output
//! copiers on its Start; and each leak names the test that caused it, also
//! under t.Parallel. Every Go toolchain, real probes, exact facts.

use leaktrace_e2e::{
    Blamed, Site, assert_report, blame_line, build, go_minor, go_test_traced, go_versions,
    leaktrace, privileged, report_path, tagged_line,
};
use serde_json::Value;

/// The wait reason of a goroutine blocked in package sync: its own name
/// from the release that added it, `semacquire` before.
fn sync_wait(version: &str, since_minor: u32, name: &'static str) -> &'static str {
    if go_minor(version) >= since_minor {
        name
    } else {
        "semacquire"
    }
}

/// `leaktrace run --fail-on-leak --json -o REPORT -- onbehalf SCENARIO`.
fn on_behalf(version: &str, scenario: &str) -> (std::process::Output, Value) {
    let binary = build(version, "./cmd/onbehalf", &[]);
    let report = report_path(&format!("onbehalf-{version}-{scenario}"));
    let output = leaktrace()
        .args(["run", "--fail-on-leak", "--json", "-o"])
        .arg(&report)
        .arg("--")
        .arg(&binary)
        .arg(scenario)
        .output()
        .expect("run leaktrace");
    let json = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "go{version} {scenario}: no report ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, serde_json::from_str(&json).expect("JSON report"))
}

/// The test goroutines blocked on a deadlock in `gotest/deadlock`.
fn test_goroutine(
    marker: &'static str,
    test: &'static str,
    state: &'static str,
    verdict: &'static str,
) -> Blamed {
    Blamed {
        file: "gotest/deadlock/deadlock_test.go",
        marker,
        entry: "testing.tRunner",
        function: match test {
            "TestMutex" => "leaktrace.test/targets/gotest/deadlock.TestMutex",
            "TestRWMutex" => "leaktrace.test/targets/gotest/deadlock.TestRWMutex",
            "TestChan" => "leaktrace.test/targets/gotest/deadlock.TestChan",
            _ => "leaktrace.test/targets/gotest/deadlock.TestWaitGroup",
        },
        by: "running",
        pattern: "test_goroutine",
        live: 1,
        states: vec![(state, 1)],
        verdict,
        test: Some(test),
    }
}

fn blocked_line(site: &Value) -> (String, u64) {
    let at = &site["blocked_at"];
    let file = at["file"].as_str().unwrap_or_default();
    let short = file.rsplit('/').next().unwrap_or_default().to_string();
    (short, at["line"].as_u64().unwrap_or_default())
}

#[test]
fn a_test_goroutine_that_deadlocks_is_blamed_on_its_test_and_line() {
    if !privileged("a_test_goroutine_that_deadlocks_is_blamed_on_its_test_and_line") {
        return;
    }
    const CODE: &str = "gotest/deadlock/deadlock.go";
    for version in go_versions() {
        let ctx = format!("go{version} gotest/deadlock");
        // Four parallel tests deadlock at once; -timeout ends the binary.
        let (output, report) = go_test_traced(
            &version,
            "./gotest/deadlock",
            &["-timeout=3s", "-parallel=8"],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!output.status.success(), "{ctx}: {stdout}");
        assert!(stdout.contains("panic: test timed out"), "{ctx}: {stdout}");
        assert_eq!(report["exit_code"], 2, "{ctx}");
        let mutex = sync_wait(&version, 21, "sync.Mutex.Lock");
        let rlock = sync_wait(&version, 21, "sync.RWMutex.RLock");
        let lock = sync_wait(&version, 21, "sync.RWMutex.Lock");
        let wait = sync_wait(&version, 24, "sync.WaitGroup.Wait");
        let tests = [
            test_goroutine("mutex", "TestMutex", mutex, "leak"),
            test_goroutine("rwmutex", "TestRWMutex", rlock, "leak"),
            test_goroutine("chan", "TestChan", "chan send", "leak"),
            test_goroutine("waitgroup", "TestWaitGroup", wait, "leak"),
        ];
        assert_report(
            &report,
            &[
                Site {
                    file: "gotest/deadlock/deadlock_test.go",
                    marker: "rwmutex-writer",
                    created_by: "leaktrace.test/targets/gotest/deadlock.TestRWMutex.func1",
                    entry: "leaktrace.test/targets/gotest/deadlock.(*Cache).Set",
                    live: 1,
                    created: 1,
                    exited: 0,
                    states: Vec::leak(vec![(lock, 1)]),
                    verdict: "leak",
                },
                Site {
                    file: "gotest/deadlock/deadlock_test.go",
                    marker: "passes",
                    created_by: "leaktrace.test/targets/gotest/deadlock.TestPasses",
                    entry: "leaktrace.test/targets/gotest/deadlock.TestPasses.func1",
                    live: 0,
                    created: 1,
                    exited: 1,
                    states: &[],
                    verdict: "ok",
                },
            ],
            &tests,
            &ctx,
        );
        // `blocked in` names the line of the code under test that called
        // Lock, RLock, Wait or sent: not sync's, not the runtime's.
        for (blamed, marker) in tests.iter().zip(["mutex", "rwmutex", "chan", "waitgroup"]) {
            let site = leaktrace_e2e::blamed_at(&report, blamed);
            let line = tagged_line(CODE, &format!("blocked:{marker}"));
            assert_eq!(
                blocked_line(site),
                ("deadlock.go".to_string(), u64::from(line)),
                "{ctx}: {marker}: {site:#}"
            );
        }
        let writer = leaktrace_e2e::site_at(
            &report,
            "gotest/deadlock/deadlock_test.go",
            "rwmutex-writer",
        );
        assert_eq!(writer["test"], "TestRWMutex", "{ctx}: {writer:#}");
        let line = tagged_line(CODE, "blocked:rwmutex-writer");
        assert_eq!(
            blocked_line(writer),
            ("deadlock.go".to_string(), u64::from(line)),
            "{ctx}"
        );
        assert_eq!(
            report["tests"],
            serde_json::json!([
                {"name": "TestRWMutex", "leaked_goroutines": 2, "leaking_sites": 2},
                {"name": "TestChan", "leaked_goroutines": 1, "leaking_sites": 1},
                {"name": "TestMutex", "leaked_goroutines": 1, "leaking_sites": 1},
                {"name": "TestWaitGroup", "leaked_goroutines": 1, "leaking_sites": 1},
            ]),
            "{ctx}"
        );
    }
}

#[test]
fn of_parallel_tests_the_one_that_leaked_is_named() {
    if !privileged("of_parallel_tests_the_one_that_leaked_is_named") {
        return;
    }
    for version in go_versions() {
        let ctx = format!("go{version} gotest/parallel");
        let (output, report) = go_test_traced(&version, "./gotest/parallel", &["-parallel=8"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!output.status.success(), "{ctx}: must fail: {stdout}");
        assert_report(
            &report,
            &[Site {
                file: "gotest/parallel/parallel_test.go",
                marker: "watcher",
                created_by: "leaktrace.test/targets/gotest/parallel.watch",
                entry: "leaktrace.test/targets/gotest/parallel.watch.func1",
                live: 1,
                created: 3,
                exited: 2,
                states: &[("chan receive", 1)],
                verdict: "leak",
            }],
            &[],
            &ctx,
        );
        let watcher =
            leaktrace_e2e::site_at(&report, "gotest/parallel/parallel_test.go", "watcher");
        assert_eq!(watcher["test"], "TestB", "{ctx}: {watcher:#}");
        assert_eq!(
            watcher["tests"],
            serde_json::json!([{"name": "TestB", "live": 1}]),
            "{ctx}"
        );
        assert_eq!(
            report["tests"],
            serde_json::json!([{"name": "TestB", "leaked_goroutines": 1, "leaking_sites": 1}]),
            "{ctx}"
        );
    }
}

#[test]
fn a_goroutine_whose_creation_chain_misses_the_test_inherits_it_from_live_ancestors() {
    if !privileged(
        "a_goroutine_whose_creation_chain_misses_the_test_inherits_it_from_live_ancestors",
    ) {
        return;
    }
    const TEST: &str = "gotest/lineage/lineage_test.go";
    let generation = |marker: &'static str, created_by: &'static str, entry: &'static str| Site {
        file: TEST,
        marker,
        created_by,
        entry,
        live: 1,
        created: 1,
        exited: 0,
        states: &[("chan receive", 1)],
        verdict: "leak",
    };
    for version in go_versions() {
        let ctx = format!("go{version} gotest/lineage");
        let (output, report) = go_test_traced(&version, "./gotest/lineage", &[]);
        assert!(!output.status.success(), "{ctx}: must fail");
        assert_report(
            &report,
            &[
                generation(
                    "manager",
                    "leaktrace.test/targets/gotest/lineage.TestLineage",
                    "leaktrace.test/targets/gotest/lineage.manage",
                ),
                generation(
                    "dispatcher",
                    "leaktrace.test/targets/gotest/lineage.manage",
                    "leaktrace.test/targets/gotest/lineage.dispatch",
                ),
                generation(
                    "worker",
                    "leaktrace.test/targets/gotest/lineage.dispatch",
                    "leaktrace.test/targets/gotest/lineage.work",
                ),
            ],
            &[],
            &ctx,
        );
        for marker in ["manager", "dispatcher", "worker"] {
            let site = leaktrace_e2e::site_at(&report, TEST, marker);
            assert_eq!(site["test"], "TestLineage", "{ctx}: {site:#}");
        }
        assert_eq!(
            report["tests"],
            serde_json::json!([{"name": "TestLineage", "leaked_goroutines": 3, "leaking_sites": 3}]),
            "{ctx}"
        );
    }
}

/// net/http's two goroutines per connection, attributed to the request line.
fn connection(
    entry: &'static str,
    pattern: &'static str,
    live: u64,
    state: &'static str,
) -> Blamed {
    Blamed {
        file: "cmd/onbehalf/main.go",
        marker: "request",
        entry,
        function: "main.fetch",
        by: "created_for",
        pattern,
        live,
        states: vec![(state, live)],
        verdict: if pattern == "idle_connection" {
            "library"
        } else {
            "leak"
        },
        test: None,
    }
}

const READ_LOOP: &str = "net/http.(*persistConn).readLoop";
const WRITE_LOOP: &str = "net/http.(*persistConn).writeLoop";
const LEAK_EXIT: i32 = 3;

#[test]
fn an_unclosed_response_body_is_a_leak_at_the_request_line() {
    if !privileged("an_unclosed_response_body_is_a_leak_at_the_request_line") {
        return;
    }
    for version in go_versions() {
        let ctx = format!("go{version} http-unclosed");
        let (output, report) = on_behalf(&version, "http-unclosed");
        assert_eq!(output.status.code(), Some(LEAK_EXIT), "{ctx}");
        // Three requests, three connections: each a readLoop waiting for its
        // body and a writeLoop.
        assert_report(
            &report,
            &[],
            &[
                connection(READ_LOOP, "response_body_not_closed", 3, "select"),
                connection(WRITE_LOOP, "response_body_not_closed", 3, "select"),
            ],
            &ctx,
        );
    }
}

#[test]
fn a_closed_response_body_leaves_an_idle_connection_that_is_no_leak() {
    if !privileged("a_closed_response_body_leaves_an_idle_connection_that_is_no_leak") {
        return;
    }
    for version in go_versions() {
        let ctx = format!("go{version} http-closed");
        let (output, report) = on_behalf(&version, "http-closed");
        assert_eq!(output.status.code(), Some(0), "{ctx}: {report:#}");
        // The one connection, reused, is idle in the pool: still alive at
        // exit, waiting in a read rather than for a body.
        assert_report(
            &report,
            &[],
            &[
                connection(READ_LOOP, "idle_connection", 1, "IO wait"),
                connection(WRITE_LOOP, "idle_connection", 1, "select"),
            ],
            &ctx,
        );
    }
}

#[test]
fn after_func_callbacks_blocked_in_program_code_are_the_programs_leak() {
    if !privileged("after_func_callbacks_blocked_in_program_code_are_the_programs_leak") {
        return;
    }
    for version in go_versions() {
        let ctx = format!("go{version} callbacks");
        let (output, report) = on_behalf(&version, "callbacks");
        assert_eq!(output.status.code(), Some(LEAK_EXIT), "{ctx}");
        let mut blamed = vec![Blamed {
            file: "cmd/onbehalf/main.go",
            marker: "timer-callback",
            entry: "main.flush",
            function: "main.flush",
            by: "running",
            pattern: "timer_callback",
            live: 3,
            states: vec![("chan receive", 3)],
            verdict: "leak",
            test: None,
        }];
        // context.AfterFunc is Go 1.21+.
        if go_minor(&version) >= 21 {
            blamed.push(Blamed {
                file: "cmd/onbehalf/main.go",
                marker: "context-callback",
                entry: "main.release",
                function: "main.release",
                by: "running",
                pattern: "context_callback",
                live: 2,
                states: vec![("sync.Mutex.Lock", 2)],
                verdict: "leak",
                test: None,
            });
        }
        assert_report(&report, &[], &blamed, &ctx);
        for entry in &blamed {
            let site = leaktrace_e2e::blamed_at(&report, entry);
            assert_eq!(
                blocked_line(site),
                (
                    "main.go".to_string(),
                    u64::from(blame_line(entry.file, entry.marker))
                ),
                "{ctx}: {site:#}"
            );
        }
    }
}

#[test]
fn a_command_never_waited_for_is_a_leak_at_its_start() {
    if !privileged("a_command_never_waited_for_is_a_leak_at_its_start") {
        return;
    }
    for version in go_versions() {
        let ctx = format!("go{version} exec");
        let (output, report) = on_behalf(&version, "exec");
        assert_eq!(output.status.code(), Some(LEAK_EXIT), "{ctx}");
        // The goroutine copying the command's stdout into the buffer.
        let entry = if go_minor(&version) >= 20 {
            "os/exec.(*Cmd).Start.func2"
        } else {
            "os/exec.(*Cmd).Start.func1"
        };
        assert_report(
            &report,
            &[],
            &[Blamed {
                file: "cmd/onbehalf/main.go",
                marker: "exec",
                entry,
                function: "main.startCommand",
                by: "created_for",
                pattern: "command_not_waited",
                live: 1,
                states: vec![("IO wait", 1)],
                verdict: "leak",
                test: None,
            }],
            &ctx,
        );
    }
}
