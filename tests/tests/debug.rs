//! `--debug`: the probes log the first occurrence of each rare path (here a
//! read of the target's memory that fails, forced by the fault-injection
//! hook), and nothing else: not without `--debug`, and not on the hot paths.

use std::process::Stdio;

use leaktrace_e2e::{build, go_versions, leaktrace, privileged};
use serde_json::Value;

const READ_FAULT: &str = "leaktrace: debug: probe: cannot read the target's memory at ";

/// `leaktrace run --json [--debug] -- seeds control-finished`: its report
/// and the debug lines on stderr.
fn run(version: &str, debug: bool, inject: bool) -> (Value, Vec<String>) {
    let seeds = build(version, "./cmd/seeds", &[]);
    let mut command = leaktrace();
    command.args(["run", "--json"]);
    if debug {
        command.arg("--debug");
    }
    if inject {
        command.env("LEAKTRACE_FAULT_INJECTION", "read");
    }
    let output = command
        .arg("--")
        .arg(&seeds)
        .arg("control-finished")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "go{version}: {stderr}");
    let debug_lines = stderr
        .lines()
        .filter(|l| l.starts_with("leaktrace: debug:"))
        .map(str::to_string)
        .collect();
    (
        serde_json::from_slice(&output.stdout).expect("JSON report"),
        debug_lines,
    )
}

#[test]
fn debug_shows_the_first_read_fault_and_nothing_else() {
    if !privileged("debug_shows_the_first_read_fault_and_nothing_else") {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for version in go_versions() {
        let ctx = format!("go{version}");
        let (report, lines) = run(&version, true, true);
        assert!(
            report["events"]["dropped_read_fault"].as_u64() > Some(1),
            "{ctx}: every new goroutine's read fails: {:#}",
            report["events"]
        );
        // Once per CPU at most, however many reads failed.
        assert!(
            !lines.is_empty() && lines.len() <= cpus,
            "{ctx}: {lines:#?}"
        );
        for line in &lines {
            assert!(line.starts_with(READ_FAULT), "{ctx}: {line}");
            assert!(line.ends_with("(error -14)"), "{ctx}: EFAULT: {line}");
        }
        let (_, quiet) = run(&version, false, true);
        assert!(
            quiet.is_empty(),
            "{ctx}: logged without --debug: {quiet:#?}"
        );
        let (report, silent) = run(&version, true, false);
        assert_eq!(report["dropped"], 0, "{ctx}");
        assert!(
            silent.is_empty(),
            "{ctx}: the hot paths log nothing: {silent:#?}"
        );
    }
}
