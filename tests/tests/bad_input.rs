//! Bad input gets one line on stderr naming the problem and what to do, a
//! non-zero exit status, no backtrace, and no probe left behind. Also the
//! documented exit statuses of `leaktrace run`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use leaktrace_e2e::{
    build, go_versions, leaktrace, leaktrace_bin, privileged, text_is_pristine, workspace_root,
};

/// Asserts a failed run with exactly one line on stderr, and returns it.
fn one_line_error(output: &Output, status: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(status), "stderr: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "exactly one line expected, got:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    stderr
}

fn run_leaktrace(args: &[&str]) -> Output {
    leaktrace()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run leaktrace")
}

fn newest_go() -> String {
    go_versions().last().expect("a Go toolchain").clone()
}

/// A copy of `binary` whose build info (and runtime.Version) claims another
/// Go version of the same length.
fn with_go_version(binary: &Path, from: &str, to: &str, name: &str) -> PathBuf {
    patched(binary, &[(from.as_bytes(), to.as_bytes())], name)
}

/// A copy of `binary` with every occurrence of each byte string replaced by
/// another of the same length.
fn patched(binary: &Path, replacements: &[(&[u8], &[u8])], name: &str) -> PathBuf {
    let mut data = std::fs::read(binary).unwrap();
    for (from, to) in replacements {
        assert_eq!(from.len(), to.len());
        let places: Vec<usize> = data
            .windows(from.len())
            .enumerate()
            .filter(|(_, w)| w == from)
            .map(|(i, _)| i)
            .collect();
        assert!(
            !places.is_empty(),
            "{} is not in {}",
            String::from_utf8_lossy(from),
            binary.display()
        );
        for at in places {
            data[at..at + to.len()].copy_from_slice(to);
        }
    }
    let out = workspace_root().join("target/go-e2e").join(name);
    std::fs::write(&out, data).unwrap();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    out
}

fn version_text(binary: &Path) -> String {
    let out = Command::new(leaktrace_e2e::go_binary(&newest_go()))
        .args(["version"])
        .arg(binary)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .unwrap()
        .to_string()
}

#[test]
fn a_pid_that_does_not_exist() {
    let err = one_line_error(&run_leaktrace(&["-p", "999999999"]), 1);
    assert_eq!(
        err.trim(),
        "leaktrace: error: no process with PID 999999999; check the PID (is the process still running?)"
    );
}

#[test]
fn a_command_that_cannot_be_started() {
    let err = one_line_error(&run_leaktrace(&["run", "--", "/nonexistent/server"]), 1);
    assert_eq!(
        err.trim(),
        "leaktrace: error: cannot start /nonexistent/server: no such file or command in PATH"
    );
    let err = one_line_error(&run_leaktrace(&["run", "--", "no-such-command-xyz"]), 1);
    assert_eq!(
        err.trim(),
        "leaktrace: error: cannot start no-such-command-xyz: no such file or command in PATH"
    );
    let not_executable = workspace_root().join("tests/go/go.mod");
    let err = one_line_error(
        &run_leaktrace(&["run", "--", not_executable.to_str().unwrap()]),
        1,
    );
    assert!(err.contains("it is not an executable file"), "{err}");
}

#[test]
fn a_program_that_is_not_go() {
    let err = one_line_error(&run_leaktrace(&["run", "--", "/bin/true"]), 1);
    assert_eq!(
        err.trim(),
        "leaktrace: error: /bin/true is not a Go program (it has no Go build info); leaktrace traces Go binaries only"
    );
    if !privileged("a_program_that_is_not_go (attach)") {
        return;
    }
    let mut sleeper = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let err = one_line_error(&run_leaktrace(&["-p", &sleeper.id().to_string()]), 1);
    assert!(err.contains("/usr/bin/sleep is not a Go program"), "{err}");
    assert!(text_is_pristine(sleeper.id()));
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn a_go_release_that_is_too_old() {
    let version = go_versions().first().expect("a Go toolchain").clone();
    let seeds = build(&version, "./cmd/seeds", &[]);
    let real = version_text(&seeds);
    let old = format!("go1.16{}", &real["go1.19".len()..]);
    let patched = with_go_version(&seeds, &real, &old, "seeds-claims-go1.16");
    let err = one_line_error(
        &run_leaktrace(&["run", "--", patched.to_str().unwrap(), "control-finished"]),
        1,
    );
    assert!(
        err.contains(&format!(
            "was built with {old}, which is too old; rebuild it with Go 1.17 or newer"
        )),
        "{err}"
    );
}

#[test]
fn a_stripped_binary_of_a_go_release_newer_than_any_known_is_traced() {
    let version = newest_go();
    let stripped = build(&version, "./cmd/seeds", &["-ldflags=-s -w"]);
    let real = version_text(&stripped);
    let future = real.replacen("go1.", "go2.", 1);
    let patched = with_go_version(&stripped, &real, &future, "seeds-stripped-future");
    let output = run_leaktrace(&["run", "--", patched.to_str().unwrap(), "control-finished"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let note = format!(
        "leaktrace: warning: {future} is newer than the newest Go release leaktrace was tested with (go1.27); its layout comes from its own type descriptors"
    );
    assert_eq!(stderr.lines().filter(|l| *l == note).count(), 1, "{stderr}");
    assert!(!stderr.contains("nearest release"), "{stderr}");
}

#[test]
fn a_stripped_binary_whose_descriptors_lack_a_field_is_refused() {
    let version = newest_go();
    let stripped = build(&version, "./cmd/seeds", &["-ldflags=-s -w"]);
    let real = version_text(&stripped);
    let future = real.replacen("go1.", "go2.", 1);
    // The field's name in runtime.g's descriptor: its length, then its bytes.
    let patched = patched(
        &stripped,
        &[
            (real.as_bytes(), future.as_bytes()),
            (b"\x0awaitreason", b"\x0awaitReaso_"),
        ],
        "seeds-stripped-future-renamed",
    );
    let err = one_line_error(
        &run_leaktrace(&["run", "--", patched.to_str().unwrap(), "control-finished"]),
        1,
    );
    assert_eq!(
        err.trim(),
        format!(
            "leaktrace: error: {} ({future}) has no DWARF debug info, and its type descriptors do not give the runtime's layout: runtime.g has no field waitreason in {future}'s type descriptors",
            patched.display()
        )
    );
}

#[test]
fn missing_privileges_name_the_capability() {
    // Needs root to drop to an unprivileged user; fails in CI without it.
    if !privileged("missing_privileges_name_the_capability") {
        return;
    }
    let seeds = build(&newest_go(), "./cmd/seeds", &[]);
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(leaktrace_bin())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("setpriv")
    };
    let err = one_line_error(
        &as_nobody(&["run", "--", seeds.to_str().unwrap(), "control-finished"]),
        1,
    );
    assert!(
        err.starts_with("leaktrace: error: missing privileges: leaktrace needs CAP_SYS_ADMIN to load and attach eBPF uprobes (CAP_BPF and CAP_PERFMON are enough on kernels without the fix for CVE-2025-38466)"),
        "{err}"
    );
    let err = one_line_error(&as_nobody(&["-p", "1"]), 1);
    assert!(err.contains("CAP_SYS_PTRACE"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    for (args, names) in [
        (&[][..], "--pid <PID>"),
        (&["run"], "<CMD>"),
        (&["-p", "1", "--duration", "soon"], "--duration"),
        (&["-p", "1", "--interval", "0s"], "--interval"),
        (
            &["agent", "--sample-interval", "18000000000000000000"],
            "--sample-interval",
        ),
        (&["agent", "--match", "pid=1"], "--match"),
        (&["agent", "--listen", "localhost"], "--listen"),
        (&["completions", "tcsh"], "<SHELL>"),
        (&["-p", "1", "--min-growth", "lots"], "--min-growth"),
        (
            &["-p", "1", "--probe-placement", "anywhere"],
            "--probe-placement",
        ),
        (&["-p", "not-a-pid"], "--pid"),
    ] {
        let err = one_line_error(&run_leaktrace(args), 2);
        assert!(
            err.starts_with("leaktrace: error: ") && err.contains(names),
            "{args:?}: {err}"
        );
        assert!(err.trim_end().ends_with("(see leaktrace --help)"), "{err}");
    }
    let help = run_leaktrace(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for documented in [
        "-p, --pid <PID>",
        "--duration <D>",
        "--json",
        "run",
        "Exit status:",
        "--fail-on-leak",
    ] {
        assert!(
            help.contains(documented),
            "--help lacks {documented}:\n{help}"
        );
    }
}

#[test]
fn run_exit_statuses() {
    if !privileged("run_exit_statuses") {
        return;
    }
    for version in go_versions() {
        let seeds = build(&version, "./cmd/seeds", &[]);
        let seeds = seeds.to_str().unwrap();
        let status = |args: &[&str]| run_leaktrace(args).status.code();
        assert_eq!(
            status(&[
                "run",
                "--fail-on-leak",
                "--",
                seeds,
                "channel-blocked-sender"
            ]),
            Some(3),
            "go{version}"
        );
        assert_eq!(
            status(&["run", "--fail-on-leak", "--", seeds, "channel-done"]),
            Some(0),
            "go{version}"
        );
        assert_eq!(
            status(&["run", "--", seeds, "channel-blocked-sender"]),
            Some(0),
            "go{version}: no --fail-on-leak"
        );
        // The command's own failure passes through (seeds without a scenario exits 2).
        assert_eq!(
            status(&["run", "--fail-on-leak", "--", seeds]),
            Some(2),
            "go{version}"
        );
    }
}
