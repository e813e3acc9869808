//! `leaktrace completions SHELL`, loaded into the real shells: each one
//! completes `leaktrace run --fail-on-l` to `--fail-on-leak`; and `--version` names
//! the commit the binary was built from.

use std::process::Command;

use leaktrace_e2e::{leaktrace_bin, tool_available, workspace_root};

/// Whether `shell` is installed; in CI it must be.
fn installed(shell: &str) -> bool {
    let found = Command::new(shell)
        .args(["-c", "exit 0"])
        .status()
        .is_ok_and(|s| s.success());
    tool_available(shell, found)
}

fn script(shell: &str) -> String {
    let output = Command::new(leaktrace_bin())
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn run(shell: &str, program: &str) -> String {
    let output = Command::new(shell).arg("-c").arg(program).output().unwrap();
    assert!(
        output.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn bash_completes_the_flags_of_run() {
    if !installed("bash") {
        return;
    }
    let program = format!(
        "source <({bin} completions bash)
         complete -p leaktrace
         COMP_WORDS=(leaktrace run --fail-on-l); COMP_CWORD=2; _leaktrace leaktrace --fail-on-l run
         printf 'reply %s\\n' \"${{COMPREPLY[@]}}\"
         COMP_WORDS=(leaktrace completions ''); COMP_CWORD=2; _leaktrace leaktrace '' completions
         printf 'shell %s\\n' \"${{COMPREPLY[@]}}\"",
        bin = leaktrace_bin().display()
    );
    let out = run("bash", &program);
    assert!(out.contains(" -F _leaktrace leaktrace\n"), "{out}");
    let replies: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("reply "))
        .collect();
    assert_eq!(replies, ["--fail-on-leak"], "{out}");
    let shells: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("shell "))
        .collect();
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.contains(&shell), "{out}");
    }
}

#[test]
fn fish_completes_the_flags_of_run() {
    if !installed("fish") {
        return;
    }
    let program = format!(
        "{} completions fish | source; complete -C 'leaktrace run --fail-on-l'",
        leaktrace_bin().display()
    );
    let out = run("fish", &program);
    let first: Vec<&str> = out
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect();
    assert_eq!(first, ["--fail-on-leak"], "{out}");
}

#[test]
fn zsh_loads_the_completion_function() {
    if !installed("zsh") {
        return;
    }
    let dir = workspace_root()
        .join("target/e2e-reports")
        .join(format!("zsh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("_leaktrace"), script("zsh")).unwrap();
    // As a user installs it: a directory of $fpath, then compinit.
    let program = format!(
        "fpath=({} $fpath); autoload -U compinit; compinit -u -D; autoload -U +X _leaktrace; whence -w _leaktrace; functions _leaktrace | grep -c -- --fail-on-leak",
        dir.display()
    );
    let out = run("zsh", &program);
    assert!(out.starts_with("_leaktrace: function\n"), "{out}");
    let mentions: u32 = out.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(mentions >= 1, "{out}");
}

#[test]
fn unknown_shells_are_a_usage_error() {
    let output = Command::new(leaktrace_bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("leaktrace: error: invalid value 'tcsh' for '<SHELL>'"),
        "{stderr}"
    );
}

#[test]
fn version_names_the_source_commit() {
    let output = Command::new(leaktrace_bin())
        .arg("--version")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let head = Command::new("git")
        .args(["show", "-s", "--abbrev=12", "--format=%h %cs", "HEAD"])
        .current_dir(workspace_root())
        .output()
        .expect("git");
    assert!(head.status.success() || !workspace_root().join(".git").exists());
    let head = String::from_utf8(head.stdout).unwrap();
    // A source tree that is no git checkout says so.
    let commit = if head.trim().is_empty() {
        "unknown commit"
    } else {
        head.trim()
    };
    assert_eq!(
        stdout.lines().next().unwrap(),
        format!("leaktrace {} ({commit})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_closed_output_is_no_error() {
    let mut child = Command::new(leaktrace_bin())
        .args(["completions", "zsh"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Whoever reads it is gone before the first byte.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}
