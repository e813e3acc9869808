//! Unclosed resources (seed 2, §七): files, HTTP response bodies and
//! os/exec pipes, leaking and fixed, with every installed Go toolchain:
//! the descriptors still open at exit by the line that opened them, what
//! each is, and, attached to a running service, the line whose open count
//! grows and the descriptors opened before the attach.

use leaktrace_e2e::{
    attach_to_scenario, build_in, go_versions, leaktrace, privileged, run_traced, run_traced_with,
    tagged_line,
};
use serde_json::Value;

const RESOURCES: &str = "cmd/resources/main.go";

fn open_line(marker: &str) -> u64 {
    u64::from(tagged_line(RESOURCES, &format!("open:{marker}")))
}

fn at_line<'a>(report: &'a Value, marker: &str) -> &'a Value {
    let line = open_line(marker);
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["created_at"]["line"] == line
                && s["created_at"]["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with(RESOURCES))
        })
        .unwrap_or_else(|| panic!("no site at line {line}: {:#}", report["resources"]))
}

fn leaks(report: &Value) -> Vec<&Value> {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == "leak")
        .collect()
}

fn run(version: &str, scenario: &str) -> Value {
    let binary = build_in("go", version, "./cmd/resources", &[]);
    let (report, output) = run_traced(&binary, &[scenario]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "go{version} {scenario}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A creation stack can be lost to a collision in the kernel's stack
    // table (counted in dropped_stack); descriptors themselves never are.
    assert_eq!(
        (
            &report["events"]["dropped_fd_table_full"],
            &report["events"]["dropped_read_fault"]
        ),
        (&0.into(), &0.into()),
        "go{version} {scenario}"
    );
    report
}

/// (open, opened, closed, kind, verdict)
fn facts(site: &Value) -> (&Value, &Value, &Value, &Value, &Value) {
    (
        &site["open"],
        &site["opened"],
        &site["closed"],
        &site["kind"],
        &site["verdict"],
    )
}

#[test]
fn files_opened_and_never_closed_are_left_open_at_exit() {
    if !privileged("files_opened_and_never_closed_are_left_open_at_exit") {
        return;
    }
    for version in go_versions() {
        let report = run(&version, "file-unclosed");
        let site = at_line(&report, "file-unclosed");
        assert_eq!(
            facts(site),
            (
                &3.into(),
                &3.into(),
                &0.into(),
                &"file".into(),
                &"leak".into()
            ),
            "go{version}: {site:#}"
        );
        assert_eq!(
            site["created_at"]["function"], "main.openFiles",
            "go{version}"
        );
        let examples: Vec<&str> = site["examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert_eq!(examples.len(), 3, "go{version}: {examples:?}");
        assert!(
            examples.iter().all(|e| e.contains("/leaktrace-resources-")),
            "go{version}: {examples:?}"
        );
        assert_eq!(
            leaks(&report),
            [site],
            "go{version}: the only unclosed site"
        );
        // The runtime's own descriptors (the network poller's) are not the program's.
        assert!(
            !report["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["kind"] == "eventpoll"),
            "go{version}: {:#}",
            report["resources"]
        );
        assert!(
            report["descriptors"]["at_end"]["file"].as_u64().unwrap() >= 3,
            "go{version}"
        );
    }
}

#[test]
fn files_closed_with_defer_are_not_a_leak() {
    if !privileged("files_closed_with_defer_are_not_a_leak") {
        return;
    }
    for version in go_versions() {
        let report = run(&version, "file-closed");
        let site = at_line(&report, "file-closed");
        assert_eq!(
            facts(site),
            (
                &0.into(),
                &3.into(),
                &3.into(),
                &"file".into(),
                &"ok".into()
            ),
            "go{version}: {site:#}"
        );
        assert!(
            leaks(&report).is_empty(),
            "go{version}: {:#}",
            report["resources"]
        );
    }
}

/// The request line shows both the connection goroutines and the socket.
#[test]
fn an_unclosed_response_body_leaves_its_socket_at_the_request_line() {
    if !privileged("an_unclosed_response_body_leaves_its_socket_at_the_request_line") {
        return;
    }
    let line = open_line("http");
    for version in go_versions() {
        let report = run(&version, "http-unclosed");
        let site = at_line(&report, "http");
        assert_eq!(
            facts(site),
            (
                &3.into(),
                &3.into(),
                &0.into(),
                &"tcp".into(),
                &"leak".into()
            ),
            "go{version}: {site:#}"
        );
        assert_eq!(site["attributed_by"], "created_for", "go{version}");
        assert_eq!(site["created_at"]["function"], "main.fetch", "go{version}");
        let peers = site["examples"].as_array().unwrap();
        assert_eq!(peers.len(), 3, "go{version}: {peers:?}");
        assert!(
            peers
                .iter()
                .all(|p| p.as_str().unwrap().starts_with("127.0.0.1:")
                    && p.as_str().unwrap().contains(" -> 127.0.0.1:")),
            "go{version}: {peers:?}"
        );
        assert_eq!(
            leaks(&report),
            [site],
            "go{version}: the server side is closed"
        );
        let connection_goroutines: u64 = report["goroutines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| {
                g["attributed_to"]["frame"]["line"] == line
                    && g["attributed_to"]["pattern"] == "response_body_not_closed"
            })
            .map(|g| g["live"].as_u64().unwrap())
            .sum();
        assert_eq!(
            connection_goroutines, 6,
            "go{version}: readLoop + writeLoop × 3"
        );
    }
}

#[test]
fn closed_response_bodies_leave_no_socket_open() {
    if !privileged("closed_response_bodies_leave_no_socket_open") {
        return;
    }
    for version in go_versions() {
        let report = run(&version, "http-closed");
        assert!(
            leaks(&report).is_empty(),
            "go{version}: {:#}",
            report["resources"]
        );
        assert_eq!(at_line(&report, "http")["open"], 0, "go{version}");
    }
}

#[test]
fn an_exec_pipe_never_read_nor_closed_is_left_open() {
    if !privileged("an_exec_pipe_never_read_nor_closed_is_left_open") {
        return;
    }
    for version in go_versions() {
        let report = run(&version, "exec-pipe-unclosed");
        let site = at_line(&report, "exec-pipe");
        // pipe2 makes two; Start closes the child's end.
        assert_eq!(
            facts(site),
            (
                &1.into(),
                &2.into(),
                &1.into(),
                &"pipe".into(),
                &"leak".into()
            ),
            "go{version}: {site:#}"
        );
    }
}

/// `--fail-on-unclosed` fails on an unclosed file; `--fail-on-leak` alone
/// does not.
#[test]
fn fail_on_unclosed_fails_on_an_unclosed_file() {
    if !privileged("fail_on_unclosed_fails_on_an_unclosed_file") {
        return;
    }
    let version = go_versions().pop().unwrap();
    let binary = build_in("go", &version, "./cmd/resources", &[]);
    let (_, output) = run_traced_with(&["--fail-on-unclosed"], &binary, &["file-unclosed"]);
    assert_eq!(output.status.code(), Some(3), "go{version}");
    let (_, output) = run_traced_with(&["--fail-on-leak"], &binary, &["file-unclosed"]);
    assert_eq!(output.status.code(), Some(0), "go{version}");
    let (_, output) = run_traced_with(&["--fail-on-unclosed"], &binary, &["file-closed"]);
    assert_eq!(output.status.code(), Some(0), "go{version}");
    let output = leaktrace()
        .args(["run", "--"])
        .arg(&binary)
        .arg("file-unclosed")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    let line = open_line("file-unclosed");
    for expected in [
        "3 unclosed descriptors".to_string(),
        "leak: 3 file descriptors, left open at exit".to_string(),
        "opened at main.openFiles\n\t".to_string(),
        format!("main.go:{line}\n3 opened, 0 closed"),
    ] {
        assert!(text.contains(&expected), "{expected:?} in:\n{text}");
    }
}

/// A service that opens a file every 10 ms and never closes it: `--exact`
/// finds the line, growing; sampled mode, which probes nothing per system
/// call, counts the descriptors by kind from /proc at the start and the end.
#[test]
fn attach_finds_the_line_whose_descriptors_pile_up() {
    if !privileged("attach_finds_the_line_whose_descriptors_pile_up") {
        return;
    }
    for version in go_versions() {
        for exact in [true, false] {
            let ctx = format!("go{version} exact={exact}");
            let mut args = vec!["--duration", "1s"];
            if exact {
                args.push("--exact");
            }
            let binary = build_in("go", &version, "./cmd/resources", &[]);
            let report = attach_to_scenario(&binary, "serve", "ready", &args);
            let summary = &report["descriptors"];
            let before = summary["before_attach"]["file"].as_u64().unwrap();
            let after = summary["at_end"]["file"].as_u64().unwrap();
            // Five opened before "ready", about a hundred in the second observed.
            assert!(before >= 5, "{ctx}: {summary:#}");
            assert!(after >= before + 20, "{ctx}: {summary:#}");
            if exact {
                let site = at_line(&report, "serve");
                assert_eq!(
                    (&site["kind"], &site["closed"], &site["verdict"]),
                    (&"file".into(), &0.into(), &"leak".into()),
                    "{ctx}: {site:#}"
                );
                let open = site["open"].as_u64().unwrap();
                // The target runs on while the table and the counts are read.
                let opened = site["opened"].as_u64().unwrap();
                assert!(opened >= open && opened <= open + 2, "{ctx}: {site:#}");
                assert!(open >= 20 && open <= after - 5, "{ctx}: {site:#}");
            } else {
                assert_eq!(report["resources"], Value::Array(vec![]), "{ctx}");
            }
        }
    }
}
