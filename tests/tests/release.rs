//! The release archive (`cargo xtask dist`, whose path `cargo xtask test`
//! passes in `LEAKTRACE_DIST`) and the GitHub Action that installs it:
//! - the binary is static and traces the demo in an empty environment, with
//!   the Rust toolchains and LLVM hidden;
//! - the action's scripts install it with its file capability, and `go
//!   test` under it, run as an unprivileged user, fails a leaky package with
//!   its annotation and SARIF, and passes a clean one;
//! - action.yml and the workflow that uses it agree with those scripts.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use leaktrace_e2e::{
    Site, assert_sites, build, go_binary, go_versions, leaktrace_bin, marker_line, privileged,
    workspace_root,
};
use object::{
    Object as _,
    read::elf::{ElfFile64, ProgramHeader as _},
};
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

const NOBODY: u32 = 65534;
const ARCHIVE_DIR: &str = "leaktrace-x86_64-unknown-linux-musl";

/// The archive `cargo xtask dist` built; in CI it must be there.
fn archive() -> Option<PathBuf> {
    let archive = std::env::var_os("LEAKTRACE_DIST").map(PathBuf::from);
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    match archive {
        Some(path) if path.is_file() => Some(path),
        Some(path) => panic!("LEAKTRACE_DIST={} is no file", path.display()),
        None if in_ci => panic!("LEAKTRACE_DIST is not set: `cargo xtask test` builds the archive"),
        None => {
            eprintln!("SKIPPED: LEAKTRACE_DIST is not set (cargo xtask dist builds it)");
            None
        }
    }
}

/// A directory every user may enter, for what runs as nobody.
fn shared_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leaktrace-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn unpack(archive: &Path, into: &Path) -> PathBuf {
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success());
    into.join(ARCHIVE_DIR)
}

fn demo_sites() -> [Site; 3] {
    [
        Site {
            file: "cmd/demo/main.go",
            marker: "demo-fetch",
            created_by: "main.fetch",
            entry: "main.fetch.func1",
            live: 100,
            created: 100,
            exited: 0,
            states: &[("chan send", 100)],
            verdict: "leak",
        },
        Site {
            file: "cmd/demo/main.go",
            marker: "demo-subscribe",
            created_by: "main.subscribe",
            entry: "main.subscribe.func1",
            live: 3,
            created: 3,
            exited: 0,
            states: &[("chan receive", 3)],
            verdict: "leak",
        },
        Site {
            file: "cmd/demo/main.go",
            marker: "demo-workers",
            created_by: "main.main",
            entry: "main.main.func1",
            live: 0,
            created: 10,
            exited: 10,
            states: &[],
            verdict: "ok",
        },
    ]
}

#[test]
fn the_release_binary_is_static_and_traces_the_demo_with_an_empty_environment() {
    if !privileged("the_release_binary_is_static_and_traces_the_demo_with_an_empty_environment") {
        return;
    }
    let Some(archive) = archive() else { return };
    let unpacked = unpack(&archive, &shared_dir("dist"));
    let binary = unpacked.join("leaktrace");

    let data = std::fs::read(&binary).unwrap();
    let elf = ElfFile64::<object::Endianness>::parse(&*data).unwrap();
    assert!(
        !elf.elf_program_headers()
            .iter()
            .any(|h| h.p_type(elf.endian()) == object::elf::PT_INTERP),
        "the release binary must not need a dynamic loader"
    );
    assert_eq!(elf.imports().unwrap().len(), 0);
    assert!(
        elf.symbols().next().is_none(),
        "the release binary is stripped"
    );
    for file in [
        "README.md",
        "man/leaktrace.1",
        "man/leaktrace-run.1",
        "man/leaktrace-completions.1",
        "completions/leaktrace.bash",
        "completions/_leaktrace",
        "completions/leaktrace.fish",
    ] {
        assert!(
            unpacked.join(file).is_file(),
            "{file} is missing from the archive"
        );
    }
    let man = std::fs::read_to_string(unpacked.join("man/leaktrace-run.1")).unwrap();
    assert!(man.starts_with(".ie \\n(.g .ds Aq"), "{}", &man[..80]);
    assert!(man.contains(".TH leaktrace-run 1"), "{man}");
    assert!(man.contains("\\-\\-fail\\-on\\-leak"), "{man}");

    // The same version and commit as the binary under test.
    let version = |bin: &Path| {
        let out = Command::new(bin)
            .arg("--version")
            .env_clear()
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(version(&binary), version(&leaktrace_bin()));

    let version = go_versions().pop().unwrap();
    let demo = build(&version, "./cmd/demo", &[]);
    let report = unpacked.join("report.json");
    // In a mount namespace where the Rust toolchains and LLVM are hidden
    // under empty directories, with no environment at all.
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let hidden: Vec<String> = [format!("{home}/.cargo"), format!("{home}/.rustup")]
        .into_iter()
        .chain(
            std::fs::read_dir("/usr/lib")
                .unwrap()
                .flatten()
                .map(|e| e.path().display().to_string())
                .filter(|p| p.starts_with("/usr/lib/llvm")),
        )
        .filter(|p| Path::new(p).is_dir())
        .collect();
    let script = r#"
        for dir in $HIDE; do mount -t tmpfs none "$dir" || exit 98; done
        for tool in cargo rustc llvm-config bpf-linker; do
            if command -v "$tool"; then echo "$tool is still here" >&2; exit 99; fi
        done
        exec "$@"
    "#;
    let output: Output = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&binary)
        .args(["run", "--fail-on-leak", "--json", "-o"])
        .arg(&report)
        .arg("--")
        .arg(&demo)
        .env_clear()
        .env("HIDE", hidden.join(" "))
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_sites(
        &report,
        &demo_sites(),
        &format!("release binary, go{version}"),
    );
}

/// `bash SCRIPT` with exactly `env`, as root or as user nobody.
fn action_step(script: &str, env: &[(&str, String)], cwd: &Path, as_nobody: bool) -> Output {
    let script = workspace_root().join("action").join(script);
    let mut command = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ]);
        c.arg("bash");
        c
    } else {
        Command::new("bash")
    };
    command
        .arg(script)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// A Go module as a user's repository would hold it: `go.mod` at the root,
/// a clean and a leaky package.
fn user_repository(root: &Path) {
    let go = workspace_root().join("tests/go");
    for (from, to) in [
        ("gotest/leaky/leaky_test.go", "leaky/leaky_test.go"),
        ("gotest/clean/clean_test.go", "clean/clean_test.go"),
    ] {
        let to = root.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(go.join(from), to).unwrap();
    }
    std::fs::write(root.join("go.mod"), "module example.com/shop\n\ngo 1.19\n").unwrap();
}

fn chown_all(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_action_installs_leaktrace_with_a_capability_and_go_test_fails_only_on_leaks() {
    if !privileged(
        "the_action_installs_leaktrace_with_a_capability_and_go_test_fails_only_on_leaks",
    ) {
        return;
    }
    let Some(archive) = archive() else { return };
    let runner = shared_dir("runner");
    let runner_temp = runner.join("temp");
    std::fs::create_dir_all(&runner_temp).unwrap();
    let github_path = runner.join("github_path");

    // Step one, as the runner runs it (as root here: no sudo needed).
    let install = action_step(
        "install.sh",
        &[
            ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            ("LEAKTRACE_ARCHIVE", archive.display().to_string()),
            ("RUNNER_TEMP", runner_temp.display().to_string()),
            ("GITHUB_PATH", github_path.display().to_string()),
        ],
        &runner,
        false,
    );
    assert!(install.status.success(), "{install:?}");
    let bin_dir = std::fs::read_to_string(&github_path).unwrap();
    let bin_dir = bin_dir.trim();
    assert_eq!(bin_dir, runner_temp.join("leaktrace").display().to_string());
    let caps = Command::new("getcap")
        .arg(Path::new(bin_dir).join("leaktrace"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&caps.stdout)
            .trim_end()
            .ends_with(" cap_sys_admin=ep"),
        "{caps:?}"
    );

    // Step two, as the job's user: nobody, with no capability of its own.
    let repository = runner.join("work/shop");
    user_repository(&repository);
    let home = runner.join("home");
    std::fs::create_dir_all(&home).unwrap();
    chown_all(&runner.join("work"));
    chown_all(&home);
    let version = go_versions().pop().unwrap();
    let go_bin = go_binary(&version).parent().unwrap().display().to_string();
    let go_test = |package: &str| {
        let output_file = home.join(format!("github_output_{package}"));
        let output = action_step(
            "go-test.sh",
            &[
                ("PATH", format!("{bin_dir}:{go_bin}:/usr/bin:/bin")),
                ("HOME", home.display().to_string()),
                ("GOCACHE", home.join("gocache").display().to_string()),
                ("GOPATH", home.join("gopath").display().to_string()),
                ("GOTOOLCHAIN", "local".into()),
                ("GOPROXY", "off".into()),
                ("GITHUB_ACTIONS", "true".into()),
                ("GITHUB_WORKSPACE", repository.display().to_string()),
                ("GITHUB_OUTPUT", output_file.display().to_string()),
                // Quoted, as a workflow would write it.
                (
                    "GO_TEST_COMMAND",
                    format!("go test -count=1 -run 'Test.*' ./{package}"),
                ),
                ("SARIF_DIR", format!("sarif-{package}")),
            ],
            &repository,
            true,
        );
        let outputs = std::fs::read_to_string(&output_file).unwrap_or_default();
        (output, outputs)
    };

    let (output, outputs) = go_test("clean");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("ok  \texample.com/shop/clean"), "{stdout}");
    assert!(!stdout.lines().any(|l| l.starts_with("::")), "{stdout}");
    let sarif_dir = repository.join("sarif-clean");
    assert_eq!(outputs, format!("sarif={}\n", sarif_dir.display()));

    let (output, outputs) = go_test("leaky");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL\texample.com/shop/leaky"), "{stdout}");
    let line = marker_line("gotest/leaky/leaky_test.go", "gotest-leak");
    let annotations: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(annotations.len(), 1, "{stdout}");
    assert!(
        annotations[0].starts_with(&format!(
            "::error file=leaky/leaky_test.go,line={line},title=leaktrace%3A goroutine leak in TestWatcherForgetsToClose::1 goroutine leaked, blocked on chan receive"
        )),
        "{stdout}"
    );
    let sarif_dir = repository.join("sarif-leaky");
    assert_eq!(outputs, format!("sarif={}\n", sarif_dir.display()));
    let files: Vec<PathBuf> = std::fs::read_dir(&sarif_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let sarif: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let location = &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "leaky/leaky_test.go");
    assert_eq!(location["region"]["startLine"], line);
}

fn yaml(path: &str) -> Yaml {
    let text = std::fs::read_to_string(workspace_root().join(path)).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .remove(0)
}

/// `${{ inputs.NAME }}` references in a text.
fn input_references(text: &str) -> Vec<String> {
    text.match_indices("inputs.")
        .map(|(at, _)| {
            text[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn the_action_and_its_workflow_agree() {
    let action = yaml("action.yml");
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    let inputs = action["inputs"].as_hash().expect("inputs");
    let declared: Vec<&str> = inputs.keys().map(|k| k.as_str().unwrap()).collect();
    for (name, input) in inputs {
        assert!(
            input["description"].as_str().is_some(),
            "input {name:?} has no description"
        );
    }
    let text = std::fs::read_to_string(workspace_root().join("action.yml")).unwrap();
    for reference in input_references(&text) {
        assert!(
            declared.contains(&reference.as_str()),
            "inputs.{reference} is not declared"
        );
    }
    for step in action["runs"]["steps"].as_vec().unwrap() {
        let run = step["run"].as_str().expect("a run step");
        assert_eq!(step["shell"].as_str(), Some("bash"), "{run}");
        // Each step runs one of the scripts that the test above runs.
        let script = run
            .strip_prefix("\"$ACTION_PATH/")
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{run} does not run a script of action/"));
        let path = workspace_root().join(script);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "{script} is not executable");
        assert_eq!(
            step["env"]["ACTION_PATH"].as_str(),
            Some("${{ github.action_path }}")
        );
    }

    let workflow = yaml(".github/workflows/leaktrace-action.yml");
    let steps = workflow["jobs"]["go-test"]["steps"].as_vec().unwrap();
    let uses_action: Vec<&Yaml> = steps
        .iter()
        .filter(|s| s["uses"].as_str() == Some("./"))
        .collect();
    assert_eq!(
        uses_action.len(),
        2,
        "a passing and a failing use of the action"
    );
    for step in &uses_action {
        for (key, _) in step["with"].as_hash().unwrap() {
            assert!(
                declared.contains(&key.as_str().unwrap()),
                "the workflow passes {key:?}, which action.yml does not declare"
            );
        }
    }
    assert_eq!(uses_action[1]["continue-on-error"].as_bool(), Some(true));
}
