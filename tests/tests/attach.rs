//! `leaktrace -p PID` on a running service built with every installed Go
//! toolchain, observed both ways (sampled, the default, and `--exact`):
//! leaks from before and during the window are counted exactly, healthy
//! long-lived goroutines are not leaks, and every way of stopping
//! (--duration, Ctrl-C, SIGTERM, the target exiting) leaves no probe behind.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use leaktrace_e2e::{
    build, go_versions, leaktrace, marker_line, privileged, report_path, text_is_pristine,
};
use serde_json::Value;

const SERVICE: &str = "cmd/service/main.go";
const PRELEAK: u64 = 5;

struct Service {
    child: Child,
}

impl Service {
    fn start(version: &str) -> Self {
        Self::start_built(version, &[])
    }

    fn start_built(version: &str, flags: &[&str]) -> Self {
        let mut cmd = Command::new(build(version, "./cmd/service", flags));
        cmd.arg(format!("-preleak={PRELEAK}"));
        Self::spawn(cmd)
    }

    /// The service, also leaking `count` goroutines, one every `period`.
    fn start_leaking_every(version: &str, period: &str, count: u64) -> Self {
        let mut cmd = Command::new(build(version, "./cmd/service", &[]));
        cmd.arg(format!("-preleak={PRELEAK}"))
            .arg(format!("-leak-every={period}"))
            .arg(format!("-leak-count={count}"));
        Self::spawn(cmd)
    }

    /// The service, with `count` goroutines each ranging over its own ticker.
    fn start_with_tickers(version: &str, count: u64) -> Self {
        let mut cmd = Command::new(build(version, "./cmd/service", &[]));
        cmd.arg(format!("-preleak={PRELEAK}"))
            .arg(format!("-tickers={count}"));
        Self::spawn(cmd)
    }

    /// Runs the service from a tmpfs mounted in a new mount namespace: its
    /// executable's path does not exist in leaktrace's namespace, only
    /// through /proc/PID/exe, as for a process in a container.
    fn start_hidden(version: &str) -> Self {
        let binary = build(version, "./cmd/service", &[]);
        let mount_point =
            std::env::temp_dir().join(format!("leaktrace-hidden-{version}-{}", std::process::id()));
        std::fs::create_dir_all(&mount_point).unwrap();
        let script = format!(
            "mount -t tmpfs leaktrace-test {dir} && cp {bin} {dir}/service && exec {dir}/service \"$@\"",
            dir = mount_point.display(),
            bin = binary.display()
        );
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ]);
        cmd.arg(format!("-preleak={PRELEAK}"));
        let service = Self::spawn(cmd);
        assert!(
            !mount_point.join("service").exists(),
            "the executable must not be visible in leaktrace's mount namespace"
        );
        service
    }

    /// Starts `cmd` and waits for it to print "ready".
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("start service");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        Self { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.pid() as i32, signal) };
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Tracer {
    child: Child,
    /// The rest of leaktrace's stderr, after the "tracing" line.
    stderr: std::thread::JoinHandle<String>,
}

/// Starts `leaktrace -p PID ARGS --json -o REPORT` and waits until it has attached.
fn attach(pid: u32, args: &[&str], report: &Path) -> Tracer {
    let mut child = leaktrace()
        .arg("-p")
        .arg(pid.to_string())
        .args(args)
        .args(["--json", "-o"])
        .arg(report)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leaktrace");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.starts_with(&format!("leaktrace: tracing pid {pid} ")),
        "unexpected first line: {line:?}"
    );
    // Keep draining stderr so leaktrace never blocks on it.
    let stderr = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    Tracer { child, stderr }
}

/// Waits for leaktrace; returns its report and the rest of its stderr.
fn finish(mut tracer: Tracer, report: &Path) -> (Value, String) {
    let status = tracer.child.wait().unwrap();
    let stderr = tracer.stderr.join().unwrap();
    assert_eq!(status.code(), Some(0), "leaktrace -p must exit 0: {stderr}");
    (
        serde_json::from_str(&std::fs::read_to_string(report).expect("report written"))
            .expect("JSON"),
        stderr,
    )
}

fn site<'a>(report: &'a Value, marker: &str) -> &'a Value {
    leaktrace_e2e::site_at(report, SERVICE, marker)
}

/// How `leaktrace -p` observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Observing {
    /// The default: censuses of memory, probes only on suspect sites.
    Sampled,
    /// `--exact`: every creation, exit and park probed.
    Exact,
}

impl Observing {
    const BOTH: [Self; 2] = [Self::Sampled, Self::Exact];

    fn flags(self) -> &'static [&'static str] {
        match self {
            Self::Sampled => &[],
            Self::Exact => &["--exact"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sampled => "sampled",
            Self::Exact => "exact",
        }
    }
}

/// Observes `service` for two seconds while it leaks three more goroutines,
/// and checks the report exactly, then that no probe is left.
fn check_attach(service: &Service, ctx: &str, observing: Observing) {
    let ctx = format!("{ctx} {}", observing.name());
    let report_file = report_path(&format!("attach-{ctx}"));
    let mut args = vec!["--duration", "2s", "--stuck-after", "100ms"];
    args.extend(observing.flags());
    let tracer = attach(service.pid(), &args, &report_file);
    assert!(
        !text_is_pristine(service.pid()),
        "{ctx}: probes must be in place while attached"
    );
    for _ in 0..3 {
        service.signal(libc::SIGUSR1);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (report, stderr) = finish(tracer, &report_file);
    let ctx = format!("{ctx} (leaktrace said: {stderr:?})");
    assert_eq!(report["mode"], "attach", "{ctx}");
    assert_eq!(report["dropped"], 0, "{ctx}");
    assert_eq!(report["snapshot"], true, "{ctx}");

    let leak = site(&report, "service-leak");
    assert_eq!(leak["created_at"]["function"], "main.handle", "{ctx}");
    assert_eq!(leak["entry"]["function"], "main.handle.func1", "{ctx}");
    assert_eq!(leak["live"], PRELEAK + 3, "{ctx}: {leak:#}");
    assert_eq!(leak["created"], 3, "{ctx}: {leak:#}");
    assert_eq!(leak["exited"], 0, "{ctx}: {leak:#}");
    assert_eq!(
        leak["states"],
        serde_json::json!({"chan receive": PRELEAK + 3}),
        "{ctx}"
    );
    assert_eq!(
        leak["blocked_for"]["source"],
        observing.name(),
        "{ctx}: the new ones blocked while observed"
    );
    assert_eq!(leak["verdict"], "leak", "{ctx}: {leak:#}");
    assert_eq!(report["costs"]["observing"], observing.name(), "{ctx}");
    let programs: Vec<&str> = report["costs"]["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["program"].as_str().unwrap())
        .collect();
    match observing {
        // The exit probes, and the leaking site's go statement, whose
        // creation stacks are wanted; nothing per goroutine or per park.
        Observing::Sampled => {
            assert_eq!(
                programs,
                ["process_exiting", "site_creating", "process_dying"],
                "{ctx}"
            );
            let site_probe = &report["costs"]["probes"][1];
            assert_eq!(site_probe["hits"], 3, "{ctx}: one per leak: {site_probe:#}");
            assert_eq!(leak["stacks"][0]["count"], 3, "{ctx}: {leak:#}");
            assert_eq!(
                leaktrace_e2e::stack_functions(&leak["stacks"][0]),
                ["main.handle", "main.main"],
                "{ctx}"
            );
        }
        Observing::Exact => assert!(
            programs.contains(&"goroutine_parked") && programs.contains(&"goroutine_destroyed"),
            "{ctx}: {programs:?}"
        ),
    }

    // Long-lived and busy: a pool of four workers and their producer.
    let workers = site(&report, "service-worker");
    assert_eq!(
        (&workers["live"], &workers["created"], &workers["exited"]),
        (&4.into(), &0.into(), &0.into()),
        "{ctx}"
    );
    assert_eq!(workers["verdict"], "ok", "{ctx}: {workers:#}");
    let producer = site(&report, "service-producer");
    assert_eq!(
        (&producer["live"], &producer["verdict"]),
        (&1.into(), &"ok".into()),
        "{ctx}: {producer:#}"
    );
    let leaks: Vec<&Value> = report["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == "leak")
        .collect();
    assert_eq!(leaks.len(), 1, "{ctx}: only the handler leaks: {leaks:#?}");

    assert!(
        text_is_pristine(service.pid()),
        "{ctx}: a probe was left behind"
    );
}

#[test]
fn attach_counts_leaks_from_before_and_during_the_window() {
    if !privileged("attach_counts_leaks_from_before_and_during_the_window") {
        return;
    }
    for version in go_versions() {
        for observing in Observing::BOTH {
            check_attach(
                &Service::start(&version),
                &format!("go{version}"),
                observing,
            );
        }
    }
}

#[test]
fn attach_to_stripped_and_position_independent_services() {
    if !privileged("attach_to_stripped_and_position_independent_services") {
        return;
    }
    for version in go_versions() {
        for flags in [
            &["-ldflags=-s -w"][..],
            &["-buildmode=pie", "-ldflags=-s -w"],
        ] {
            check_attach(
                &Service::start_built(&version, flags),
                &format!("go{version} {flags:?}"),
                Observing::Sampled,
            );
        }
    }
}

#[test]
fn attach_to_a_process_in_another_mount_namespace() {
    if !privileged("attach_to_a_process_in_another_mount_namespace") {
        return;
    }
    for version in go_versions() {
        check_attach(
            &Service::start_hidden(&version),
            &format!("go{version} hidden executable"),
            Observing::Sampled,
        );
    }
}

/// Sampled mode reads running tickers from the runtime's timer heaps,
/// including those made before the attach, without a probe on any timer.
#[test]
fn sampled_mode_reads_tickers_from_the_timer_heaps() {
    if !privileged("sampled_mode_reads_tickers_from_the_timer_heaps") {
        return;
    }
    const TICKERS: u64 = 3;
    for version in go_versions() {
        let service = Service::start_with_tickers(&version, TICKERS);
        let report_file = report_path(&format!("heap-tickers-{version}"));
        let tracer = attach(service.pid(), &["--duration", "1s"], &report_file);
        let (report, stderr) = finish(tracer, &report_file);
        let ctx = format!("go{version} (leaktrace said: {stderr:?})");
        let tickers = report["tickers"].as_array().unwrap();
        assert_eq!(tickers.len(), 1, "{ctx}: {tickers:#?}");
        let ticker = &tickers[0];
        assert_eq!(ticker["verdict"], "leak", "{ctx}: {ticker:#}");
        assert_eq!(ticker["live"], TICKERS, "{ctx}: {ticker:#}");
        assert_eq!(ticker["receiving_goroutines"], TICKERS, "{ctx}");
        assert_eq!(ticker["period_ns"], 3_600_000_000_000u64, "{ctx}");
        assert_eq!(ticker["created_at"], Value::Null, "{ctx}: not in the heap");
        let receivers = ticker["receivers"].as_array().unwrap();
        assert_eq!(receivers.len(), 1, "{ctx}");
        assert_eq!(
            receivers[0]["line"],
            u64::from(marker_line(SERVICE, "service-ticker")),
            "{ctx}"
        );
        let receiving = site(&report, "service-ticker");
        assert_eq!(receiving["live"], TICKERS, "{ctx}");
        // Nothing traps on a timer in sampled mode.
        let programs: Vec<&str> = report["costs"]["probes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["program"].as_str().unwrap())
            .collect();
        assert!(
            programs.iter().all(|p| !p.starts_with("ticker_")),
            "{ctx}: {programs:?}"
        );
    }
}

#[test]
fn two_processes_of_one_binary_do_not_mix() {
    if !privileged("two_processes_of_one_binary_do_not_mix") {
        return;
    }
    for version in go_versions() {
        let (first, second, untraced) = (
            Service::start(&version),
            Service::start(&version),
            Service::start(&version),
        );
        let (first_report, second_report) = (report_path("first"), report_path("second"));
        let first_tracer = attach(first.pid(), &["--duration", "2s"], &first_report);
        let second_tracer = attach(second.pid(), &["--duration", "2s"], &second_report);
        for (service, leaks) in [(&first, 1), (&second, 4), (&untraced, 2)] {
            for _ in 0..leaks {
                service.signal(libc::SIGUSR1);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        assert!(
            text_is_pristine(untraced.pid()),
            "go{version}: the untraced process must carry no probe"
        );
        for (tracer, report, leaks) in [
            (first_tracer, &first_report, 1),
            (second_tracer, &second_report, 4),
        ] {
            let (report, _) = finish(tracer, report);
            let leak = site(&report, "service-leak");
            let seen = (&leak["live"], &leak["created"], &leak["exited"]);
            assert_eq!(
                seen,
                (&(PRELEAK + leaks).into(), &leaks.into(), &0.into()),
                "go{version}: {leak:#}"
            );
        }
        for service in [&first, &second, &untraced] {
            assert!(
                text_is_pristine(service.pid()),
                "go{version}: a probe was left behind"
            );
        }
    }
}

#[test]
fn ctrl_c_and_sigterm_end_the_window_and_detach() {
    if !privileged("ctrl_c_and_sigterm_end_the_window_and_detach") {
        return;
    }
    for version in go_versions() {
        for signal in [libc::SIGINT, libc::SIGTERM] {
            let service = Service::start(&version);
            let report_file = report_path(&format!("signal-{version}-{signal}"));
            let tracer = attach(service.pid(), &[], &report_file);
            service.signal(libc::SIGUSR1);
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(tracer.child.id() as i32, signal) };
            let (report, _) = finish(tracer, &report_file);
            let leak = site(&report, "service-leak");
            assert_eq!(
                (&leak["live"], &leak["created"]),
                (&(PRELEAK + 1).into(), &1.into()),
                "go{version} signal {signal}"
            );
            assert!(
                text_is_pristine(service.pid()),
                "go{version} signal {signal}: a probe was left behind"
            );
        }
    }
}

#[test]
fn target_exiting_while_observed_still_gives_a_report() {
    if !privileged("target_exiting_while_observed_still_gives_a_report") {
        return;
    }
    for version in go_versions() {
        let mut service = Service::start(&version);
        let report_file = report_path(&format!("exit-{version}"));
        let tracer = attach(service.pid(), &["--duration", "30s"], &report_file);
        service.signal(libc::SIGUSR1);
        // Censuses are 100 ms apart; the report is as of the last one.
        std::thread::sleep(Duration::from_millis(500));
        service.child.kill().unwrap();
        service.child.wait().unwrap();
        let (report, stderr) = finish(tracer, &report_file);
        let pid = report["target"]["pid"].as_u64().unwrap();
        assert_eq!(
            stderr.trim(),
            format!(
                "leaktrace: process {pid} was killed while observed; reporting what was seen until then"
            ),
            "go{version}"
        );
        assert_eq!(
            report["snapshot"], false,
            "go{version}: the target was gone"
        );
        let leak = site(&report, "service-leak");
        assert_eq!(
            (&leak["live"], &leak["created"], &leak["exited"]),
            (&(PRELEAK + 1).into(), &1.into(), &0.into()),
            "go{version}: {leak:#}"
        );
    }
}

#[test]
fn a_steady_leak_gets_the_growth_verdict() {
    if !privileged("a_steady_leak_gets_the_growth_verdict") {
        return;
    }
    // 30 leaks, one per 50 ms, started once leaktrace is attached: all of
    // them while observed, all over by the end.
    const STEADY: u64 = 30;
    for version in go_versions() {
        for observing in Observing::BOTH {
            let service = Service::start_leaking_every(&version, "50ms", STEADY);
            let report_file = report_path(&format!("steady-{version}-{}", observing.name()));
            let mut args = vec!["--duration", "2.5s", "--stuck-after", "200ms"];
            args.extend(observing.flags());
            let tracer = attach(service.pid(), &args, &report_file);
            service.signal(libc::SIGUSR2);
            let (report, _) = finish(tracer, &report_file);
            let ctx = format!("go{version} {}", observing.name());
            let leak = site(&report, "service-leak");
            let created = leak["created"].as_u64().unwrap();
            assert_eq!(created, STEADY, "{ctx}: {leak:#}");
            assert_eq!(leak["exited"], 0, "{ctx}");
            // Old and new, each counted once: the preleak, and every steady leak.
            assert_eq!(leak["live"], PRELEAK + STEADY, "{ctx}: {leak:#}");
            let trend: Vec<i64> = serde_json::from_value(leak["trend"]["live"].clone()).unwrap();
            assert_eq!(
                trend.last().copied(),
                Some((PRELEAK + STEADY) as i64),
                "{ctx}: the counters agree with memory"
            );
            assert_eq!(leak["trend"]["rising"], true, "{ctx}: {trend:?}");
            assert_eq!(leak["verdict"], "leak", "{ctx}: {leak:#}");
            // Every one created while observed came through leakSteadily; Go's
            // wrapper for `go leakSteadily(...)` is left out, as in Go's tracebacks.
            let stacks = leak["stacks"].as_array().unwrap();
            assert_eq!(stacks.len(), 1, "{ctx}: {stacks:#?}");
            assert_eq!(stacks[0]["count"].as_u64(), Some(created), "{ctx}");
            let frames = leaktrace_e2e::stack_functions(&stacks[0]);
            assert_eq!(frames, ["main.handle", "main.leakSteadily"], "{ctx}");
            assert_eq!(leak["blocked_at"]["function"], "main.handle.func1", "{ctx}");
            assert_eq!(site(&report, "service-worker")["verdict"], "ok", "{ctx}");
        }
    }
}

#[test]
fn a_handler_blocked_forever_is_blamed_on_the_handler() {
    if !privileged("a_handler_blocked_forever_is_blamed_on_the_handler") {
        return;
    }
    for version in go_versions() {
        for observing in Observing::BOTH {
            // 20 requests, each left in the handler.
            let (report, ctx) = observe_on_behalf(&version, "serve", observing);
            // net/http's goroutine per connection runs the program's handler:
            // the program's leak, at the handler's line, and the only one.
            leaktrace_e2e::assert_blamed(&report, &blamed_handler(), &ctx);
            let leaks: Vec<&Value> = report["goroutines"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["verdict"] == "leak")
                .collect();
            assert_eq!(leaks.len(), 1, "{ctx}: {leaks:#?}");
            let leak = leaktrace_e2e::blamed_at(&report, &blamed_handler());
            assert_eq!(leak["created"], 20, "{ctx}: {leak:#}");
            assert_eq!(leak["blocked_at"]["function"], "main.report", "{ctx}");
        }
    }
}

#[test]
fn unclosed_response_bodies_in_a_running_service_are_a_leak() {
    if !privileged("unclosed_response_bodies_in_a_running_service_are_a_leak") {
        return;
    }
    const REQUESTS: u64 = 10;
    let line = leaktrace_e2e::blame_line("cmd/onbehalf/main.go", "leaky-client");
    for version in go_versions() {
        let minor = leaktrace_e2e::go_minor(&version);
        for observing in Observing::BOTH {
            // Ten GETs, none of whose bodies is closed.
            let (report, ctx) = observe_on_behalf(&version, "client", observing);
            let sites = report["goroutines"].as_array().unwrap();
            let connection = |entry: &str| {
                sites
                    .iter()
                    .find(|s| {
                        s["entry"]["function"] == entry
                            && s["attributed_to"]["pattern"] == "response_body_not_closed"
                    })
                    .unwrap_or_else(|| panic!("{ctx}: no unclosed {entry}: {report:#}"))
            };
            // --exact records the creation stacks that lead to the request's
            // line; sampled mode tells the state from the stacks alone, and
            // pairs a writeLoop with its readLoop by parent (Go 1.21+).
            let mut expected = vec!["net/http.(*persistConn).readLoop"];
            if observing == Observing::Exact || minor >= 21 {
                expected.push("net/http.(*persistConn).writeLoop");
            }
            for entry in &expected {
                let site = connection(entry);
                assert_eq!(
                    (&site["live"], &site["created"], &site["verdict"]),
                    (&REQUESTS.into(), &REQUESTS.into(), &"leak".into()),
                    "{ctx}: {site:#}"
                );
                let frame = &site["attributed_to"]["frame"];
                match observing {
                    Observing::Exact => {
                        assert_eq!(frame["function"], "main.leakyClient", "{ctx}: {site:#}");
                        assert_eq!(frame["line"], line, "{ctx}: {site:#}");
                    }
                    Observing::Sampled => assert!(frame.is_null(), "{ctx}: {site:#}"),
                }
            }
            let leaks = sites.iter().filter(|s| s["verdict"] == "leak").count();
            assert_eq!(leaks, expected.len(), "{ctx}: {report:#}");
        }
    }
}

/// Runs `onbehalf SCENARIO`, attaches for 2.5 s, and sends SIGUSR2 to
/// start its leaks once attached; the report and a context for messages.
fn observe_on_behalf(version: &str, scenario: &str, observing: Observing) -> (Value, String) {
    let mut command = Command::new(build(version, "./cmd/onbehalf", &[]));
    command.arg(scenario);
    let service = Service::spawn(command);
    let ctx = format!("go{version} {scenario} {}", observing.name());
    let report_file = report_path(&ctx);
    let mut args = vec!["--duration", "2.5s", "--stuck-after", "200ms"];
    args.extend(observing.flags());
    let tracer = attach(service.pid(), &args, &report_file);
    service.signal(libc::SIGUSR2);
    let (report, _) = finish(tracer, &report_file);
    (report, ctx)
}

fn blamed_handler() -> leaktrace_e2e::Blamed {
    leaktrace_e2e::Blamed {
        file: "cmd/onbehalf/main.go",
        marker: "handler",
        entry: "net/http.(*conn).serve",
        function: "main.report",
        by: "running",
        pattern: "http_handler",
        live: 20,
        states: vec![("chan receive", 20)],
        verdict: "leak",
        test: None,
    }
}

#[test]
fn a_healthy_server_is_not_reported_as_leaking() {
    if !privileged("a_healthy_server_is_not_reported_as_leaking") {
        return;
    }
    const HEALTHY: &str = "cmd/healthy/main.go";
    for version in go_versions() {
        for observing in Observing::BOTH {
            let service = Service::spawn(Command::new(build(&version, "./cmd/healthy", &[])));
            let report_file = report_path(&format!("healthy-{version}-{}", observing.name()));
            let mut args = vec!["--duration", "2s", "--stuck-after", "500ms"];
            args.extend(observing.flags());
            let tracer = attach(service.pid(), &args, &report_file);
            let (report, _) = finish(tracer, &report_file);
            let ctx = format!("go{version} {}", observing.name());
            let sites = report["goroutines"].as_array().unwrap();
            let leaks: Vec<&Value> = sites.iter().filter(|s| s["verdict"] == "leak").collect();
            assert!(
                leaks.is_empty(),
                "{ctx}: a healthy server was reported as leaking: {leaks:#?}"
            );
            let at = |marker: &str| {
                let line = u64::from(marker_line(HEALTHY, marker));
                sites.iter().find(|s| {
                    s["created_at"]["line"] == line
                        && s["created_at"]["file"].as_str().unwrap().ends_with(HEALTHY)
                })
            };
            let workers = at("healthy-worker").unwrap_or_else(|| panic!("{ctx}: {report:#}"));
            assert_eq!(
                (&workers["live"], &workers["created"]),
                (&4.into(), &0.into()),
                "{ctx}"
            );
            let listener = at("healthy-listener").unwrap_or_else(|| panic!("{ctx}: {report:#}"));
            assert_eq!(listener["live"], 1, "{ctx}");
            for long_lived in [workers, listener] {
                let verdict = long_lived["verdict"].as_str().unwrap();
                assert!(
                    verdict == "ok" || verdict == "suspect",
                    "{ctx}: {long_lived:#}"
                );
            }
            let requests = at("healthy-request");
            match observing {
                // Per-request goroutines live for microseconds: a census
                // rarely sees one, and never a growing number.
                Observing::Sampled => {
                    if let Some(requests) = requests {
                        assert!(
                            requests["live"].as_u64().unwrap() <= 1,
                            "{ctx}: {requests:#}"
                        );
                        assert_ne!(requests["verdict"], "leak", "{ctx}");
                    }
                    // The long-lived pools may get creation-stack probes on
                    // their go statements, but never start another goroutine
                    // there: a healthy server pays no probe hit.
                    let hits: u64 = report["costs"]["probes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p["hits"].as_u64().unwrap())
                        .sum();
                    assert_eq!(hits, 0, "{ctx}: {:#}", report["costs"]);
                }
                // Per-request goroutines come and go: counted, never leaking.
                Observing::Exact => {
                    let requests = requests.unwrap_or_else(|| panic!("{ctx}: {report:#}"));
                    assert!(
                        requests["created"].as_u64().unwrap() >= 10,
                        "{ctx}: {requests:#}"
                    );
                    // The counters are read just before the memory: a request that
                    // starts or ends in between may be counted on one side only.
                    let created = requests["created"].as_i64().unwrap();
                    let exited = requests["exited"].as_i64().unwrap();
                    let live = requests["live"].as_i64().unwrap();
                    assert!((0..=1).contains(&live), "{ctx}: {requests:#}");
                    assert!((created - exited - live).abs() <= 1, "{ctx}: {requests:#}");
                }
            }
        }
    }
}

#[test]
fn interval_prints_ndjson_then_the_report() {
    if !privileged("interval_prints_ndjson_then_the_report") {
        return;
    }
    for version in go_versions() {
        let service = Service::start(&version);
        let mut tracer = leaktrace()
            .args([
                "-p",
                &service.pid().to_string(),
                "--duration",
                "1.5s",
                "--interval",
                "250ms",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Leak one goroutine once leaktrace says it is attached.
        let mut attached = String::new();
        BufReader::new(tracer.stderr.take().unwrap())
            .read_line(&mut attached)
            .unwrap();
        assert!(attached.starts_with("leaktrace: tracing pid"), "{attached}");
        std::thread::sleep(Duration::from_millis(300));
        service.signal(libc::SIGUSR1);
        let output = tracer.wait_with_output().unwrap();
        let ctx = format!("go{version}");
        assert_eq!(output.status.code(), Some(0), "{ctx}");
        let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{ctx}: not JSON ({e}): {l}"))
            })
            .collect();
        let (report, intervals) = lines.split_last().expect("lines");
        assert_eq!(report["type"], "report", "{ctx}");
        assert!(
            intervals.len() >= 4,
            "{ctx}: {} interval lines",
            intervals.len()
        );
        let mut last_elapsed = 0;
        for line in intervals {
            assert_eq!(
                (&line["type"], &line["schema_version"]),
                (&"interval".into(), &1.into()),
                "{ctx}"
            );
            let elapsed = line["elapsed_ns"].as_u64().unwrap();
            assert!(elapsed > last_elapsed, "{ctx}: time goes forward");
            last_elapsed = elapsed;
        }
        // The one leak shows up in the interval it happened in, as a change of +1.
        let changes: Vec<i64> = intervals
            .iter()
            .flat_map(|l| l["sites"].as_array().unwrap().iter())
            .filter(|s| s["created_at"]["function"] == "main.handle")
            .map(|s| s["change"].as_i64().unwrap())
            .collect();
        assert_eq!(changes.iter().sum::<i64>(), 1, "{ctx}: {changes:?}");
        assert_eq!(site(report, "service-leak")["live"], PRELEAK + 1, "{ctx}");
    }
}

/// `leaktrace -p PID --interval D | head -n 1`: once the reader is gone,
/// leaktrace stops at once, quietly, with status 0, and leaves no probe.
#[test]
fn a_closed_output_ends_leaktrace_quietly() {
    if !privileged("a_closed_output_ends_leaktrace_quietly") {
        return;
    }
    let version = go_versions().last().cloned().unwrap();
    let service = Service::start(&version);
    let mut tracer = leaktrace()
        .args(["-p", &service.pid().to_string(), "--interval", "100ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(tracer.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("\"type\":\"interval\""), "{first}");
    drop(stdout);
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = tracer.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "leaktrace kept running with its output closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(tracer.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "only the tracing line: {stderr}");
    assert!(text_is_pristine(service.pid()), "a probe was left behind");
}

#[test]
fn a_terminal_gets_a_live_view() {
    if !privileged("a_terminal_gets_a_live_view") {
        return;
    }
    let version = go_versions().last().cloned().unwrap();
    let service = Service::start(&version);
    // `script` gives leaktrace a pseudo-terminal, as an engineer's shell would.
    let command = format!(
        "{} -p {} --duration 1.5s",
        leaktrace_e2e::leaktrace_bin().display(),
        service.pid()
    );
    let output = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    let live_line = format!("pid {}  ", service.pid());
    assert!(
        screen.contains(&live_line) && screen.contains("live ") && screen.contains("/s"),
        "{screen}"
    );
    assert!(
        screen.contains("\x1b[2K"),
        "the view redraws in place: {screen:?}"
    );
    assert!(
        screen.contains("observed for 1.5s"),
        "then the report: {screen}"
    );
}
