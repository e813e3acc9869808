//! Every way a Go program ends, on every installed Go toolchain: `leaktrace
//! run` reads the goroutines as they were at that moment (the report's
//! `snapshot` is true, the states come from memory) and passes the
//! program's status through.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Output, Stdio},
};

use leaktrace_e2e::{build, go, go_versions, leaktrace, leaktrace_bin, privileged, report_path};
use serde_json::Value;

const ENDINGS: &str = "cmd/endings/main.go";

/// Checks that the report was read from memory at the end, with `live`
/// goroutines blocked at the leaking site, and the program's status.
fn check(report: &Value, file: &str, marker: &str, live: u64, status: i32, ctx: &str) {
    assert_eq!(report["snapshot"], true, "{ctx}: {report:#}");
    assert_eq!(report["exit_code"], status, "{ctx}");
    let leak = leaktrace_e2e::site_at(report, file, marker);
    assert_eq!(leak["live"], live, "{ctx}: {leak:#}");
    assert_eq!(
        leak["states"],
        serde_json::json!({"chan receive": live}),
        "{ctx}: {leak:#}"
    );
    assert_eq!(leak["verdict"], "leak", "{ctx}: {leak:#}");
}

fn run_ending(version: &str, ending: &str, env: &[(&str, &str)]) -> (Output, Value) {
    let endings = build(version, "./cmd/endings", &[]);
    let report = report_path(&format!("ending-{version}-{ending}"));
    let output = leaktrace()
        .args(["run", "--json", "-o"])
        .arg(&report)
        .arg("--")
        .arg(&endings)
        .arg(ending)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let json = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "go{version} {ending}: no report ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, serde_json::from_str(&json).expect("JSON report"))
}

#[test]
fn return_exit_panic_and_crash_are_read_at_the_end() {
    if !privileged("return_exit_panic_and_crash_are_read_at_the_end") {
        return;
    }
    for version in go_versions() {
        for (ending, env, status) in [
            ("return", &[][..], 0),
            ("exit", &[], 3),
            ("panic", &[], 2),
            // A crash dump ends in SIGABRT, through runtime.dieFromSignal.
            ("crash", &[("GOTRACEBACK", "crash")], 128 + libc::SIGABRT),
            ("handler", &[], 4),
        ] {
            let (output, report) = run_ending(&version, ending, env);
            let ctx = format!("go{version} {ending}");
            assert_eq!(
                output.status.code(),
                Some(status),
                "{ctx}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            check(&report, ENDINGS, "endings-leak", 2, status, &ctx);
            if ending == "handler" {
                // The goroutine that called os.Exit counts as exited.
                let exiter = leaktrace_e2e::site_at(&report, ENDINGS, "endings-exiter");
                assert_eq!(
                    (&exiter["live"], &exiter["created"], &exiter["exited"]),
                    (&0.into(), &1.into(), &1.into()),
                    "{ctx}: {exiter:#}"
                );
                assert_eq!(exiter["verdict"], "ok", "{ctx}");
            }
        }
    }
}

#[test]
fn death_by_signal_is_read_as_it_happens() {
    if !privileged("death_by_signal_is_read_as_it_happens") {
        return;
    }
    for version in go_versions() {
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
            let endings = build(&version, "./cmd/endings", &[]);
            let report = report_path(&format!("signal-{version}-{signal}"));
            let mut tracer = leaktrace()
                .args(["run", "--json", "-o"])
                .arg(&report)
                .arg("--")
                .arg(&endings)
                .arg("signal")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut ready = String::new();
            BufReader::new(tracer.stdout.take().unwrap())
                .read_line(&mut ready)
                .unwrap();
            assert_eq!(ready.trim(), "ready");
            // The program itself is killed, as a process manager would
            // (-x: its whole command line, not leaktrace's).
            let target = Command::new("pgrep")
                .args(["-x", "-f", &format!("{} signal", endings.display())])
                .output()
                .unwrap();
            let pid: i32 = String::from_utf8_lossy(&target.stdout)
                .lines()
                .next()
                .and_then(|l| l.trim().parse().ok())
                .expect("the program's pid");
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, signal) };
            let output = tracer.wait_with_output().unwrap();
            let ctx = format!(
                "go{version} signal {signal}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            // SIGQUIT makes the runtime dump its goroutines and exit(2).
            let status = if signal == libc::SIGQUIT {
                2
            } else {
                128 + signal
            };
            assert_eq!(output.status.code(), Some(status), "{ctx}");
            let report: Value =
                serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
            check(&report, ENDINGS, "endings-leak", 2, status, &ctx);
        }
    }
}

#[test]
fn a_go_test_timeout_is_read_at_the_end() {
    if !privileged("a_go_test_timeout_is_read_at_the_end") {
        return;
    }
    const TEST: &str = "gotest/timeout/timeout_test.go";
    for version in go_versions() {
        let report = report_path(&format!("gotest-timeout-{version}"));
        let exec = format!(
            "{} run --json -o {} --",
            leaktrace_bin().display(),
            report.display()
        );
        let output = go(&version)
            .args([
                "test",
                "-count=1",
                "-timeout=1s",
                "-exec",
                &exec,
                "./gotest/timeout",
            ])
            .output()
            .expect("run go test");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let ctx = format!("go{version}");
        assert!(stdout.contains("panic: test timed out"), "{ctx}: {stdout}");
        let report: Value = serde_json::from_str(
            &std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{ctx}: {e}: {stdout}")),
        )
        .unwrap();
        check(&report, TEST, "timeout-leak", 1, 2, &ctx);
        // The test's own goroutine, blocked in it, is a leak of that test.
        leaktrace_e2e::assert_blamed(
            &report,
            &leaktrace_e2e::Blamed {
                file: TEST,
                marker: "timeout-test",
                entry: "testing.tRunner",
                function: "leaktrace.test/targets/gotest/timeout.TestNeverEnds",
                by: "running",
                pattern: "test_goroutine",
                live: 1,
                states: vec![("chan receive", 1)],
                verdict: "leak",
                test: Some("TestNeverEnds"),
            },
            &ctx,
        );
        assert_eq!(
            report["tests"],
            serde_json::json!([{"name": "TestNeverEnds", "leaked_goroutines": 2, "leaking_sites": 2}]),
            "{ctx}"
        );
    }
}
