//! Least privilege on this kernel (Linux 6.18: perf uprobes need
//! CAP_SYS_ADMIN since the fix for CVE-2025-38466): an unprivileged user
//! holding exactly CAP_SYS_ADMIN and CAP_SYS_PTRACE can `leaktrace -p` a
//! root-owned Go service, both ways of observing; CAP_SYS_ADMIN alone
//! suffices for `leaktrace run` of the user's own program; each missing
//! capability is named in a one-line error, and so is CAP_SYS_ADMIN when
//! CAP_BPF and CAP_PERFMON, enough on older kernels, are not.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Output, Stdio},
};

use leaktrace_e2e::{build, go_versions, leaktrace_bin, marker_line, privileged};
use serde_json::Value;

const SERVICE: &str = "cmd/service/main.go";
const PRELEAK: u64 = 3;
const NOBODY: &str = "65534";
/// What `leaktrace -p` needs for another user's process.
const ATTACH_CAPS: &[&str] = &["sys_admin", "sys_ptrace"];
/// What `leaktrace run` needs.
const RUN_CAPS: &[&str] = &["sys_admin"];
/// Enough before the fix for CVE-2025-38466, not on this kernel.
const OLD_KERNEL_CAPS: &[&str] = &["bpf", "perfmon", "sys_ptrace"];

/// leaktrace as user nobody, holding exactly `caps` (ambient, so they
/// survive the exec into leaktrace).
fn as_nobody(caps: &[&str], args: &[&str]) -> Output {
    let set: String = std::iter::once("-all".to_string())
        .chain(caps.iter().map(|c| format!("+{c}")))
        .collect::<Vec<_>>()
        .join(",");
    Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            &format!("--inh-caps={set}"),
            &format!("--ambient-caps={set}"),
        ])
        .arg(leaktrace_bin())
        .args(args)
        .stdin(Stdio::null())
        .current_dir("/")
        .output()
        .expect("setpriv")
}

/// A root-owned service with `PRELEAK` leaked goroutines.
struct Service(Child);

impl Service {
    fn start(version: &str) -> Self {
        let mut child = Command::new(build(version, "./cmd/service", &[]))
            .arg(format!("-preleak={PRELEAK}"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start service");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        Self(child)
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn leak_site(report: &Value) -> &Value {
    let line = u64::from(marker_line(SERVICE, "service-leak"));
    report["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["created_at"]["line"] == line)
        .unwrap_or_else(|| panic!("no leak site in {report:#}"))
}

#[test]
fn attach_works_with_exactly_sys_admin_and_sys_ptrace() {
    if !privileged("attach_works_with_exactly_sys_admin_and_sys_ptrace") {
        return;
    }
    for version in go_versions() {
        let service = Service::start(&version);
        let pid = service.pid();
        for mode in [&[][..], &["--exact"]] {
            let mut args = vec!["-p", &pid, "--duration", "500ms", "--json"];
            args.extend(mode);
            let output = as_nobody(ATTACH_CAPS, &args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let ctx = format!("go{version} {mode:?}: {stderr}");
            assert_eq!(output.status.code(), Some(0), "{ctx}");
            let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
            assert_eq!(report["snapshot"], true, "{ctx}");
            assert_eq!(report["dropped"], 0, "{ctx}");
            assert_eq!(leak_site(&report)["live"], PRELEAK, "{ctx}");
        }
    }
}

#[test]
fn run_works_with_exactly_sys_admin() {
    if !privileged("run_works_with_exactly_sys_admin") {
        return;
    }
    let version = go_versions().last().cloned().unwrap();
    let seeds = build(&version, "./cmd/seeds", &[]);
    let output = as_nobody(
        RUN_CAPS,
        &[
            "run",
            "--json",
            "--",
            seeds.to_str().unwrap(),
            "control-finished",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["snapshot"], true, "{stderr}");
}

#[test]
fn each_missing_capability_is_named() {
    if !privileged("each_missing_capability_is_named") {
        return;
    }
    let version = go_versions().last().cloned().unwrap();
    let service = Service::start(&version);
    for missing in ATTACH_CAPS {
        let held: Vec<&str> = ATTACH_CAPS
            .iter()
            .copied()
            .filter(|c| c != missing)
            .collect();
        let output = as_nobody(&held, &["-p", &service.pid(), "--duration", "200ms"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "without {missing}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "without {missing}: {stderr}");
        let name = format!("CAP_{}", missing.to_uppercase());
        assert!(
            stderr.starts_with("leaktrace: error: ") && stderr.contains(&name),
            "without {missing}: {stderr}"
        );
    }
    // This kernel refuses perf uprobes without CAP_SYS_ADMIN, and says so.
    let output = as_nobody(
        OLD_KERNEL_CAPS,
        &["-p", &service.pid(), "--duration", "200ms"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("leaktrace: error: missing privileges: this kernel lets only CAP_SYS_ADMIN attach uprobes"),
        "{stderr}"
    );
}
