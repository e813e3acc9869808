//! `leaktrace run` on every goroutine and channel example of the seed
//! documents, leaking and fixed, and on controls, built with every installed
//! Go toolchain. Each report must list exactly the expected sites.

use leaktrace_e2e::{Site, assert_sites, build, go_versions, privileged, run_traced};

const SEEDS: &str = "cmd/seeds/main.go";

fn leak(
    marker: &'static str,
    created_by: &'static str,
    entry: &'static str,
    live: u64,
    state: &'static str,
) -> Site {
    let states: &'static [(&'static str, u64)] = Box::leak(vec![(state, live)].into_boxed_slice());
    Site {
        file: SEEDS,
        marker,
        created_by,
        entry,
        live,
        created: live,
        exited: 0,
        states,
        verdict: "leak",
    }
}

fn finished(
    marker: &'static str,
    created_by: &'static str,
    entry: &'static str,
    count: u64,
) -> Site {
    Site {
        file: SEEDS,
        marker,
        created_by,
        entry,
        live: 0,
        created: count,
        exited: count,
        states: &[],
        verdict: "ok",
    }
}

/// Runs `seeds SCENARIO` under leaktrace with every Go version and checks the report.
fn check(scenario: &str, expected: &[Site]) {
    if !privileged(scenario) {
        return;
    }
    for version in go_versions() {
        let seeds = build(&version, "./cmd/seeds", &[]);
        let (report, output) = run_traced(&seeds, &[scenario]);
        let context = format!("go{version} {scenario}");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{context}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(report["schema_version"], 1, "{context}");
        assert_eq!(report["mode"], "run", "{context}");
        assert_eq!(report["exit_code"], 0, "{context}");
        assert_eq!(
            report["snapshot"], true,
            "{context}: the state at exit must be read, not guessed"
        );
        assert_eq!(report["dropped"], 0, "{context}");
        assert_sites(&report, expected, &context);
    }
}

#[test]
fn goroutine_infinite_loop_leaks() {
    check(
        "goroutine-infinite-loop",
        &[leak(
            "infinite-loop",
            "main.goroutineLeakExample",
            "main.goroutineLeakExample.func1",
            1,
            "sleep",
        )],
    );
}

#[test]
fn goroutine_waiting_for_a_signal_that_never_comes_leaks() {
    check(
        "goroutine-never-signaled",
        &[leak(
            "never-signaled",
            "main.waitingGoroutineLeak",
            "main.waitingGoroutineLeak.func1",
            1,
            "chan receive",
        )],
    );
}

#[test]
fn goroutine_stopped_by_done_channel_is_not_a_leak() {
    check(
        "goroutine-done-channel",
        &[finished(
            "done-channel",
            "main.correctGoroutineExample",
            "main.correctGoroutineExample.func1",
            1,
        )],
    );
}

#[test]
fn goroutine_stopped_by_context_is_not_a_leak() {
    check(
        "goroutine-context",
        &[finished(
            "context",
            "main.correctWithContext",
            "main.correctWithContext.func1",
            1,
        )],
    );
}

#[test]
fn blocked_sender_leaks() {
    check(
        "channel-blocked-sender",
        &[leak(
            "blocked-sender",
            "main.senderChannelLeak",
            "main.senderChannelLeak.func1",
            1,
            "chan send",
        )],
    );
}

#[test]
fn receiver_of_unclosed_channel_leaks_and_its_sender_does_not() {
    check(
        "channel-unclosed",
        &[
            finished(
                "unclosed-sender",
                "main.unclosedChannelLeak",
                "main.unclosedChannelLeak.func1",
                1,
            ),
            leak(
                "unclosed-receiver",
                "main.unclosedChannelLeak",
                "main.unclosedChannelLeak.func2",
                1,
                "chan receive",
            ),
        ],
    );
}

#[test]
fn channel_with_done_and_close_is_not_a_leak() {
    check(
        "channel-done",
        &[
            finished(
                "channel-done-sender",
                "main.correctChannelExample",
                "main.correctChannelExample.func1",
                1,
            ),
            finished(
                "channel-done-receiver",
                "main.correctChannelExample",
                "main.correctChannelExample.func2",
                1,
            ),
        ],
    );
}

#[test]
fn channel_send_with_timeout_is_not_a_leak() {
    check(
        "channel-timeout",
        &[finished(
            "channel-timeout",
            "main.correctChannelWithTimeout",
            "main.correctChannelWithTimeout.func1",
            1,
        )],
    );
}

#[test]
fn ten_thousand_blocked_receivers_leak() {
    check(
        "goroutine-10000",
        &[leak(
            "leak-10000",
            "main.leakGoroutine",
            "main.leakGoroutine.func1",
            10_000,
            "chan receive",
        )],
    );
}

#[test]
fn ten_thousand_receivers_with_context_do_not_leak() {
    check(
        "goroutine-10000-fixed",
        &[finished(
            "fixed-10000",
            "main.fixedGoroutine",
            "main.fixedGoroutine.func1",
            10_000,
        )],
    );
}

#[test]
fn finished_goroutines_are_not_leaks() {
    check(
        "control-finished",
        &[finished(
            "finished",
            "main.finishedGoroutines",
            "main.finishedGoroutines.func1",
            50,
        )],
    );
}

#[test]
fn worker_pool_shut_down_through_context_is_not_a_leak() {
    check(
        "control-worker-pool",
        &[finished(
            "worker",
            "main.workerPoolStoppedByContext",
            "main.workerPoolStoppedByContext.func1",
            4,
        )],
    );
}

/// SIGTERM to `leaktrace run` goes to the command. A Go program killed by
/// SIGTERM never reaches runtime.exit, but it passes runtime.dieFromSignal,
/// where leaktrace stops it to read its goroutines as they were; then it
/// dies, and its status (128+15) passes through.
#[test]
fn sigterm_is_forwarded_and_the_goroutines_are_read_as_it_dies() {
    use std::io::BufRead as _;
    if !privileged("sigterm_is_forwarded_and_the_goroutines_are_read_as_it_dies") {
        return;
    }
    for version in go_versions() {
        let service = build(&version, "./cmd/service", &[]);
        let report = leaktrace_e2e::report_path(&format!("sigterm-{version}"));
        let mut tracer = leaktrace_e2e::leaktrace()
            .args(["run", "--json", "-o"])
            .arg(&report)
            .arg("--")
            .arg(&service)
            .arg("-preleak=2")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufReader::new(tracer.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "go{version}");
        // Let the leaked goroutines reach their receive, so that their state
        // at the end is known.
        std::thread::sleep(std::time::Duration::from_millis(200));
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(tracer.id() as i32, libc::SIGTERM) };
        let output = tracer.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(128 + libc::SIGTERM),
            "go{version}: {stderr}"
        );
        assert!(stderr.is_empty(), "go{version}: {stderr}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(
            (&report["snapshot"], &report["exit_code"]),
            (&true.into(), &143.into()),
            "go{version}"
        );
        let leaks: Vec<_> = report["goroutines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["verdict"] == "leak")
            .collect();
        let handler = leaks
            .iter()
            .find(|s| s["created_at"]["function"] == "main.handle")
            .unwrap_or_else(|| panic!("go{version}: {report:#}"));
        assert_eq!(
            (&handler["live"], &handler["created"]),
            (&2.into(), &2.into()),
            "go{version}"
        );
        assert_eq!(
            handler["states"],
            serde_json::json!({"chan receive": 2}),
            "go{version}: read from memory as it died"
        );
    }
}

/// Goroutines that park deep in recursion make the runtime grow stacks and
/// re-enter functions from their first instruction. Creation and exit are
/// still counted exactly once each (see the README's probe placement notes).
#[test]
fn stack_growth_does_not_double_count() {
    check(
        "stack-growth",
        &[
            finished(
                "stack-growth",
                "main.stackGrowth",
                "main.stackGrowth.func1",
                1500,
            ),
            leak(
                "stack-growth-leak",
                "main.stackGrowth",
                "main.stackGrowth.func2",
                100,
                "chan receive",
            ),
        ],
    );
}

/// Ignore rules, like goleak's options, from flags and from a config file:
/// the ignored site is listed as "ignored" and no longer fails the run.
#[test]
fn ignore_rules_from_flags_and_config_file() {
    if !privileged("ignore_rules_from_flags_and_config_file") {
        return;
    }
    let version = go_versions().last().cloned().expect("a Go toolchain");
    let seeds = build(&version, "./cmd/seeds", &[]);
    let config = leaktrace_e2e::report_path("ignore-config").with_extension("toml");
    std::fs::write(
        &config,
        "[ignore]\ncreators = [\"main.waitingGoroutine*\"]\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    for rule in [
        vec!["--ignore-function", "main.waitingGoroutineLeak.func1"],
        vec!["--ignore-top", "main.waitingGoroutineLeak.func1"],
        vec!["--ignore-creator", "main.waitingGoroutineLeak"],
        vec!["--config", &config],
    ] {
        let mut options = vec!["--all", "--fail-on-leak"];
        options.extend(&rule);
        let (report, output) =
            leaktrace_e2e::run_traced_with(&options, &seeds, &["goroutine-never-signaled"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{rule:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let site = report["goroutines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["created_at"]["function"] == "main.waitingGoroutineLeak")
            .unwrap_or_else(|| panic!("{rule:?}: {report:#}"));
        assert_eq!(
            (&site["verdict"], &site["live"]),
            (&"ignored".into(), &1.into()),
            "{rule:?}"
        );
    }
    let (_, output) =
        leaktrace_e2e::run_traced_with(&["--fail-on-leak"], &seeds, &["goroutine-never-signaled"]);
    assert_eq!(output.status.code(), Some(3), "without a rule it is a leak");
}

/// `--no-stacks` trades creation stacks for speed; everything else is the same.
#[test]
fn no_stacks_keeps_the_counts_and_drops_the_stacks() {
    if !privileged("no_stacks_keeps_the_counts_and_drops_the_stacks") {
        return;
    }
    let version = go_versions().last().cloned().expect("a Go toolchain");
    let seeds = build(&version, "./cmd/seeds", &[]);
    let leak = |options: &[&str]| {
        let (report, _) =
            leaktrace_e2e::run_traced_with(options, &seeds, &["goroutine-never-signaled"]);
        let sites = report["goroutines"].as_array().unwrap().clone();
        sites
            .into_iter()
            .find(|s| s["verdict"] == "leak")
            .expect("the leak")
    };
    let (with, without) = (leak(&[]), leak(&["--no-stacks"]));
    assert_eq!(
        with["stacks"][0]["frames"][0]["function"],
        "main.waitingGoroutineLeak"
    );
    assert_eq!(without["stacks"], serde_json::json!([]));
    for field in [
        "created_at",
        "entry",
        "live",
        "created",
        "exited",
        "states",
        "verdict",
    ] {
        assert_eq!(with[field], without[field], "{field}");
    }
}

/// The default report reads like Go's goroutine dump, goes to stderr, and
/// leaves the command's stdout to the command.
#[test]
fn the_text_report_reads_like_a_goroutine_dump() {
    if !privileged("the_text_report_reads_like_a_goroutine_dump") {
        return;
    }
    for version in go_versions() {
        let seeds = build(&version, "./cmd/seeds", &[]);
        let output = leaktrace_e2e::leaktrace()
            .arg("run")
            .arg("--")
            .arg(&seeds)
            .arg("channel-unclosed")
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        let ctx = format!("go{version}:\n{stderr}");
        assert_eq!(output.status.code(), Some(0), "{ctx}");
        assert_eq!(
            stdout
                .lines()
                .filter(|l| l.starts_with("Received:"))
                .count(),
            10,
            "{ctx}"
        );
        assert!(
            !stdout.contains("leaktrace"),
            "the report stays off the command's stdout: {stdout}"
        );
        let file = std::fs::canonicalize(leaktrace_e2e::go_module_dir().join(SEEDS)).unwrap();
        let line = leaktrace_e2e::marker_line(SEEDS, "unclosed-receiver");
        let lines: Vec<&str> = stderr.lines().collect();
        let header = lines
            .iter()
            .position(|l| l.starts_with("leak: "))
            .unwrap_or_else(|| panic!("{ctx}"));
        assert!(lines[0].starts_with("leaktrace: pid "), "{ctx}");
        assert!(
            lines[0].contains(&format!("(go{version}."))
                && lines[0].contains("exited with status 0"),
            "{ctx}"
        );
        assert_eq!(lines[1], "1 leaked goroutine from 1 site", "{ctx}");
        assert!(
            lines[header].starts_with("leak: 1 goroutine [chan receive, ")
                && lines[header].ends_with("ms]"),
            "{ctx}"
        );
        let block = &lines[header + 1..header + 7];
        assert_eq!(
            block,
            [
                "main.unclosedChannelLeak.func2()".to_string(),
                format!("\t{}:{line}", file.display()),
                // As Go 1.21+ tracebacks print it; on Go 1.19, whose runtime
                // does not record it, the creation probe does.
                "created by main.unclosedChannelLeak in goroutine 1".to_string(),
                format!("\t{}:{line}", file.display()),
                format!(
                    "blocked in main.unclosedChannelLeak.func2 ({}:{})",
                    file.display(),
                    line + 1
                ),
                "1 alive, 1 created and 0 exited while observed".to_string(),
            ],
            "{ctx}"
        );
        assert_eq!(
            lines.last().copied(),
            Some("1 other goroutine from 1 site exited normally"),
            "{ctx}"
        );
    }
}

/// The naive placement (for benchmarks) costs more but reports the same.
#[test]
fn naive_probe_placement_reports_the_same() {
    if !privileged("naive_probe_placement_reports_the_same") {
        return;
    }
    for version in go_versions() {
        let seeds = build(&version, "./cmd/seeds", &[]);
        let (report, _) = leaktrace_e2e::run_traced_with(
            &["--probe-placement", "naive"],
            &seeds,
            &["channel-unclosed"],
        );
        assert_sites(
            &report,
            &[
                finished(
                    "unclosed-sender",
                    "main.unclosedChannelLeak",
                    "main.unclosedChannelLeak.func1",
                    1,
                ),
                leak(
                    "unclosed-receiver",
                    "main.unclosedChannelLeak",
                    "main.unclosedChannelLeak.func2",
                    1,
                    "chan receive",
                ),
            ],
            &format!("go{version} naive"),
        );
    }
}
