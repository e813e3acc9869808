//! `leaktrace agent` on a small fleet, scraped by a real Prometheus server:
//! a leaking service and a healthy one built with every installed Go
//! toolchain, all observed by one agent at once.
//! - Through Prometheus's query API, `leaktrace_goroutines{verdict="leak"}`
//!   names exactly the leaking `go` statement of each leaking service, and
//!   nothing of the healthy ones; `leaktrace_tickers` their leaking ticker;
//! - the processes are followed: when they exit, their series go, and the
//!   agent holds no probe (no perf event, no BPF program) any more;
//! - SIGTERM stops it with status 0.
//!
//! Also: the alert rule and its unit test pass `promtool`, and the
//! DaemonSet asks for capabilities, not privileges.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use leaktrace_e2e::{
    build, go_versions, leaktrace_bin, marker_line, privileged, scratch_dir, tool_available,
    workspace_root,
};
use serde_json::Value;
use yaml_rust2::YamlLoader;

/// Killed (and reaped) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Prometheus and promtool (Debian's package).
fn prometheus_installed() -> bool {
    tool_available(
        "prometheus",
        Path::new("/usr/bin/prometheus").exists() && Path::new("/usr/bin/promtool").exists(),
    )
}

/// A Prometheus server scraping `target` every second.
fn prometheus(dir: &Path, target: &str) -> (Running, String) {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: leaktrace\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let server = Command::new("/usr/bin/prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("start prometheus");
    (Running(server), format!("http://127.0.0.1:{port}"))
}

/// An instant query: each series's labels and value.
fn query(prometheus: &str, promql: &str) -> Option<Vec<(BTreeMap<String, String>, f64)>> {
    let mut response = ureq::get(&format!("{prometheus}/api/v1/query"))
        .query("query", promql)
        .call()
        .ok()?;
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()?;
    let result = body["data"]["result"].as_array()?;
    Some(
        result
            .iter()
            .map(|series| {
                let labels = series["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                let value = series["value"][1].as_str().unwrap().parse().unwrap();
                (labels, value)
            })
            .collect(),
    )
}

/// Waits until `done` holds for the query's answer, and returns it.
fn wait_for(
    prometheus: &str,
    promql: &str,
    what: &str,
    done: impl Fn(&[(BTreeMap<String, String>, f64)]) -> bool,
) -> Vec<(BTreeMap<String, String>, f64)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = Vec::new();
    while Instant::now() < deadline {
        if let Some(result) = query(prometheus, promql) {
            if done(&result) {
                return result;
            }
            last = result;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{what}: {promql} is still {last:#?}");
}

/// The agent's scrape, read directly.
fn scrape(agent: &str) -> String {
    ureq::get(&format!("{agent}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// The agent's open perf events and BPF programs: its probes.
fn probe_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|target| {
            let target = target.to_string_lossy();
            target == "anon_inode:[perf_event]" || target == "anon_inode:bpf-prog"
        })
        .count()
}

fn names(series: &[(BTreeMap<String, String>, f64)], label: &str) -> BTreeSet<String> {
    series.iter().map(|(l, _)| l[label].clone()).collect()
}

#[test]
fn prometheus_sees_the_leaking_services_and_not_the_healthy_ones() {
    if !privileged("prometheus_sees_the_leaking_services_and_not_the_healthy_ones")
        || !prometheus_installed()
    {
        return;
    }
    let dir = scratch_dir("agent");
    let versions = go_versions();
    // One leaking and one healthy service per Go release, each under a
    // name of its own, so that `exe` tells them apart.
    let mut services = Vec::new();
    for version in &versions {
        for (kind, package) in [("leaky", "./cmd/service"), ("healthy", "./cmd/healthy")] {
            let binary = dir.join(format!("fleet-{kind}-{version}"));
            std::fs::copy(build(version, package, &[]), &binary).unwrap();
            let mut command = Command::new(&binary);
            if kind == "leaky" {
                // And a goroutine ranging over a ticker it never stops.
                command.args([
                    "-leak-every",
                    "100ms",
                    "-leak-count",
                    "100000",
                    "-tickers",
                    "1",
                ]);
            }
            let child = command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            services.push((kind, version.clone(), Running(child)));
        }
    }
    // A shell that execs a Go service a while after the agent looked at it:
    // same pid and start time, another program.
    let exec_target = dir.join("fleet-exec");
    std::fs::copy(build(&versions[0], "./cmd/service", &[]), &exec_target).unwrap();
    let shell = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("sleep 4; exec {}", exec_target.display()))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    services.push(("exec", versions[0].clone(), Running(shell)));
    let agent_port = free_port();
    let agent_address = format!("127.0.0.1:{agent_port}");
    let agent = Command::new(leaktrace_bin())
        .args(["agent", "--listen", &agent_address])
        .args(["--match", "exe=fleet-*"])
        .args([
            "--window",
            "20s",
            "--sample-interval",
            "1s",
            "--scan-interval",
            "1s",
        ])
        .args(["--stuck-after", "2s"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("agent.log")).unwrap())
        .spawn()
        .expect("start the agent");
    let agent_pid = agent.id();
    let mut agent = Running(agent);
    let (_prometheus, prometheus) = prometheus(&dir, &agent_address);

    let leaky: BTreeSet<String> = versions
        .iter()
        .map(|v| format!("fleet-leaky-{v}"))
        .collect();
    let healthy: BTreeSet<String> = versions
        .iter()
        .map(|v| format!("fleet-healthy-{v}"))
        .collect();
    wait_for(
        &prometheus,
        "leaktrace_processes_observed",
        "every service observed, and the one a shell exec'd",
        |r| {
            r.first()
                .is_some_and(|(_, v)| *v == (2 * versions.len() + 1) as f64)
        },
    );
    let exec_seen = query(
        &prometheus,
        r#"leaktrace_goroutine_leaking_sites{exe="fleet-exec"}"#,
    )
    .unwrap();
    assert_eq!(exec_seen.len(), 1, "{exec_seen:#?}");
    // Each leaking service starts leaking now, while observed.
    for (kind, _, service) in &services {
        if *kind == "leaky" {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(service.0.id() as i32, libc::SIGUSR2) };
        }
    }
    let leaks = wait_for(
        &prometheus,
        r#"leaktrace_goroutines{verdict="leak"}"#,
        "every leaking service's leak",
        |r| names(r, "exe") == leaky,
    );
    let line = marker_line("cmd/service/main.go", "service-leak");
    for (labels, value) in &leaks {
        let exe = &labels["exe"];
        assert!(
            labels["site"].ends_with(&format!("/tests/go/cmd/service/main.go:{line}")),
            "{labels:?}"
        );
        assert_eq!(labels["function"], "main.handle.func1", "{labels:?}");
        assert_eq!(labels["wait_reason"], "chan receive", "{labels:?}");
        let version = exe.trim_start_matches("fleet-leaky-");
        assert!(
            labels["go_version"].starts_with(&format!("go{version}")),
            "{labels:?}"
        );
        assert!(*value >= 1.0, "{labels:?} {value}");
    }
    assert_eq!(
        leaks.len(),
        versions.len(),
        "one leaking site each: {leaks:#?}"
    );

    // The healthy services: observed, never a leak.
    let sites = query(
        &prometheus,
        r#"leaktrace_goroutine_leaking_sites{exe!="fleet-exec"}"#,
    )
    .unwrap();
    assert_eq!(sites.len(), 2 * versions.len(), "{sites:#?}");
    for (labels, value) in &sites {
        let expected = if leaky.contains(&labels["exe"]) {
            1.0
        } else {
            0.0
        };
        assert_eq!(*value, expected, "{labels:?}");
    }
    let healthy_series = query(
        &prometheus,
        r#"leaktrace_goroutines{exe=~"fleet-healthy-.*"}"#,
    )
    .unwrap();
    assert_eq!(names(&healthy_series, "exe"), healthy);
    assert!(
        healthy_series.iter().all(|(l, _)| l["verdict"] != "leak"),
        "{healthy_series:#?}"
    );
    // The tickers: one each, never stopped, held by the goroutine that
    // receives from it. Read from the timer heaps, their line is unknown.
    let tickers = query(&prometheus, r#"leaktrace_tickers{verdict="leak"}"#).unwrap();
    assert_eq!(names(&tickers, "exe"), leaky, "{tickers:#?}");
    for (labels, value) in &tickers {
        assert_eq!(
            (labels["site"].as_str(), *value),
            ("unknown", 1.0),
            "{labels:?}"
        );
    }
    // The probes the agent pays for: the exit probes, and the leaking
    // sites' go statements, no more.
    let hits = query(&prometheus, "leaktrace_probe_hits_total").unwrap();
    assert!(!hits.is_empty());
    assert_eq!(
        query(&prometheus, "leaktrace_dropped_events_total").unwrap()[0].1,
        0.0
    );
    assert!(probe_fds(agent_pid) > 0);

    // The services exit: the agent lets them go, and keeps no probe.
    drop(services);
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = scrape(&format!("http://{agent_address}"));
        if text.contains("leaktrace_processes_observed 0") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        text.lines().any(|l| l == "leaktrace_processes_observed 0"),
        "{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("leaktrace_goroutines{")),
        "{text}"
    );
    assert_eq!(
        probe_fds(agent_pid),
        0,
        "the agent kept a probe of an exited process"
    );

    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(agent_pid as i32, libc::SIGTERM) };
    let status = agent.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap();
    assert!(
        log.lines().last() == Some("leaktrace: agent: stopped; every probe detached"),
        "{log}"
    );
}

#[test]
fn an_address_in_use_is_one_line() {
    if !privileged("an_address_in_use_is_one_line") {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = Command::new(leaktrace_bin())
        .args(["agent", "--listen", &address])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr,
        format!(
            "leaktrace: error: cannot serve metrics on {address}; is another agent running? (--listen): Address already in use (os error 98)\n"
        )
    );
}

#[test]
fn the_alert_rule_passes_promtool_and_its_unit_test() {
    if !prometheus_installed() {
        return;
    }
    let deploy = workspace_root().join("deploy/prometheus");
    for args in [
        vec!["check", "rules", "alerts.yaml"],
        vec!["test", "rules", "alerts_test.yaml"],
    ] {
        let output = Command::new("/usr/bin/promtool")
            .args(&args)
            .current_dir(&deploy)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_daemonset_asks_for_capabilities_not_privileges() {
    let text =
        std::fs::read_to_string(workspace_root().join("deploy/kubernetes/daemonset.yaml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let daemonset = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("DaemonSet"))
        .expect("a DaemonSet");
    let pod = &daemonset["spec"]["template"];
    assert_eq!(pod["spec"]["hostPID"].as_bool(), Some(true));
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(annotations["prometheus.io/port"].as_str(), Some("9464"));
    let containers = pod["spec"]["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    assert!(pod["spec"]["initContainers"].is_badvalue());
    let container = &containers[0];
    let args: Vec<&str> = container["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args, ["agent", "--listen", "0.0.0.0:9464"]);
    let security = &container["securityContext"];
    assert_eq!(security["privileged"].as_bool(), Some(false));
    let added: BTreeSet<&str> = security["capabilities"]["add"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(added, BTreeSet::from(["SYS_ADMIN", "SYS_PTRACE"]));
    let dropped: Vec<&str> = security["capabilities"]["drop"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(dropped, ["ALL"]);
}
