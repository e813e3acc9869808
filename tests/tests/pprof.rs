//! `--pprof FILE`: the report as a pprof profile, read by the real `go tool
//! pprof` of every installed Go toolchain: `-top`, `-traces`, `-tagfocus`,
//! and the web UI of `-http` (graph, top table, flame graph).

use std::{
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use leaktrace_e2e::{build, go, go_versions, privileged, report_path, run_traced_with};

/// `go tool pprof -http` serving `profile`, stopped when dropped.
struct WebUi {
    server: Child,
    base: String,
}

impl WebUi {
    fn start(version: &str, profile: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = go(version)
            .args(["tool", "pprof", "-no_browser"])
            .arg(format!("-http=127.0.0.1:{port}"))
            .arg(profile)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("go tool pprof -http");
        Self {
            server,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A page of the UI, once the server answers.
    fn page(&self, path: &str) -> String {
        self.try_page(path)
            .unwrap_or_else(|code| panic!("{path}: HTTP {code}"))
    }

    /// A page, or the HTTP status that refused it.
    fn try_page(&self, path: &str) -> Result<String, u16> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match ureq::get(&format!("{}{path}", self.base)).call() {
                Ok(mut response) => return Ok(response.body_mut().read_to_string().unwrap()),
                Err(ureq::Error::StatusCode(code)) => return Err(code),
                Err(e) if Instant::now() > deadline => panic!("{path}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The call graph: `/ui/graph` since the flame graph became the
    /// default view (Go 1.26), `/ui/` before.
    fn graph(&self) -> String {
        match self.try_page("/ui/graph") {
            Ok(page) => page,
            Err(404) => self.page("/ui/"),
            Err(code) => panic!("/ui/graph: HTTP {code}"),
        }
    }
}

impl Drop for WebUi {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

#[test]
fn go_tool_pprof_shows_the_leaking_site_on_top() {
    if !privileged("go_tool_pprof_shows_the_leaking_site_on_top") {
        return;
    }
    for version in go_versions() {
        let ctx = format!("go{version}");
        let profile = report_path(&format!("pprof-{version}")).with_extension("pb.gz");
        let seeds = build(&version, "./cmd/seeds", &[]);
        let (report, output) = run_traced_with(
            &["--pprof", profile.to_str().unwrap()],
            &seeds,
            &["goroutine-10000"],
        );
        assert_eq!(output.status.code(), Some(0), "{ctx}");
        assert_eq!(report["goroutines"][0]["live"], 10000, "{ctx}");
        let pprof = |args: &[&str]| {
            let out = go(&version)
                .args(["tool", "pprof"])
                .args(args)
                .arg(&profile)
                .output()
                .expect("run go tool pprof");
            assert!(
                out.status.success(),
                "{ctx}: go tool pprof {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        // The first row under the header: the go statement's function, all
        // 10,000 live goroutines flat.
        let top = pprof(&["-top"]);
        let first_row: Vec<&str> = top
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("flat"))
            .nth(1)
            .unwrap_or_else(|| panic!("{ctx}: {top}"))
            .split_whitespace()
            .collect();
        assert_eq!(
            (first_row[0], first_row[5]),
            ("10000", "main.leakGoroutine"),
            "{ctx}: {top}"
        );
        assert!(top.contains("Type: goroutines"), "{ctx}: {top}");
        // Labels: the verdict and the wait reason, per sample.
        let traces = pprof(&["-traces"]);
        assert!(traces.contains("verdict:  leak"), "{ctx}: {traces}");
        assert!(traces.contains("chan receive"), "{ctx}: {traces}");
        let leaks_only = pprof(&["-top", "-tagfocus", "verdict=leak"]);
        assert!(
            leaks_only.contains("main.leakGoroutine"),
            "{ctx}: {leaks_only}"
        );
        // The web UI: the graph (drawn by graphviz), the top table, the flame graph.
        let ui = WebUi::start(&version, &profile);
        let graph = ui.graph();
        assert!(graph.contains("<svg"), "{ctx}: no graph");
        assert!(graph.contains("main.leakGoroutine"), "{ctx}: {graph}");
        let table = ui.page("/ui/top");
        assert!(
            table.contains(r#"{"Name":"main.leakGoroutine","InlineLabel":"","Flat":10000,"#),
            "{ctx}: {table}"
        );
        assert!(
            ui.page("/ui/flamegraph").contains("main.leakGoroutine"),
            "{ctx}"
        );
    }
}

#[test]
fn a_profile_that_cannot_be_written_costs_neither_the_report_nor_a_panic() {
    if !privileged("a_profile_that_cannot_be_written_costs_neither_the_report_nor_a_panic") {
        return;
    }
    let version = go_versions().last().expect("a Go toolchain").clone();
    let seeds = build(&version, "./cmd/seeds", &[]);
    let report = report_path("pprof-unwritable");
    let output = leaktrace_e2e::leaktrace()
        .args(["run", "--pprof", "/nonexistent/leaks.pb.gz", "--json", "-o"])
        .arg(&report)
        .arg("--")
        .arg(&seeds)
        .arg("channel-unclosed")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some(
            "leaktrace: error: writing the report to /nonexistent/leaks.pb.gz: No such file or directory (os error 2)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The report itself was written.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["goroutines"][0]["verdict"], "leak");
}
