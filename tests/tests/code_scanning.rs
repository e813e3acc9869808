//! What code-review tools read, from `go test -exec 'leaktrace run
//! --fail-on-leak --sarif DIR --pprof DIR --' ./gotest/leaky ./gotest/clean`
//! with every installed Go toolchain, built plain and with `-trimpath`:
//! - GitHub annotations (GITHUB_ACTIONS=true): exactly one `::error`, at the
//!   `go` statement's line, with the path relative to the repository;
//! - SARIF: one file per test binary, valid against the SARIF 2.1.0 schema,
//!   with exactly the leak as a result, at the same place;
//! - one pprof profile per test binary.

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use leaktrace_e2e::{
    go, go_versions, leaktrace_bin, marker_line, privileged, scratch_dir, workspace_root,
};
use serde_json::Value;

const LEAKY_FILE: &str = "tests/go/gotest/leaky/leaky_test.go";
const LEAKY: &str = "leaktrace.test/targets/gotest/leaky";

/// `go test` of the leaky and the clean package under leaktrace, as in a
/// GitHub Actions job. The repository is found from `GITHUB_WORKSPACE` when
/// given, else from the `.git` around the package directory.
fn go_test_in_actions(
    version: &str,
    flags: &[&str],
    workspace: Option<&Path>,
    sarif: &Path,
    pprof: &Path,
) -> Output {
    let exec = format!(
        "{} run --fail-on-leak --sarif {} --pprof {} --",
        leaktrace_bin().display(),
        sarif.display(),
        pprof.display()
    );
    let mut command = go(version);
    command
        .args(["test", "-count=1", "-exec", &exec])
        .args(flags)
        .args(["./gotest/leaky", "./gotest/clean"])
        .env("GITHUB_ACTIONS", "true")
        .env_remove("GITHUB_WORKSPACE");
    if let Some(workspace) = workspace {
        command.env("GITHUB_WORKSPACE", workspace);
    }
    command.output().expect("go test")
}

/// `1 goroutine leaked, blocked on chan receive for 53ms: ...` with the
/// measured time replaced by `<T>`.
fn without_time(line: &str) -> String {
    let Some(start) = line.find(" for ") else {
        return line.to_string();
    };
    let rest = &line[start + 5..];
    let end = rest.find(':').unwrap_or(rest.len());
    let time = &rest[..end];
    assert!(
        time.ends_with("ms") || time.ends_with('s'),
        "not a duration: {time:?} in {line}"
    );
    format!("{} for <T>{}", &line[..start], &rest[end..])
}

fn sarif_schema() -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(workspace_root().join("tests/schemas/sarif-schema-2.1.0.json"))
            .expect("the SARIF schema");
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("a valid schema")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The one file in `dir` of this test binary.
fn file_of(dir: &Path, binary: &str, extension: &str) -> PathBuf {
    let prefix = format!("leaktrace-{binary}-");
    let found: Vec<String> = files_in(dir)
        .into_iter()
        .filter(|n| n.starts_with(&prefix) && n.ends_with(extension))
        .collect();
    assert_eq!(found.len(), 1, "{binary} in {}: {found:?}", dir.display());
    dir.join(&found[0])
}

#[test]
fn leaks_are_annotated_and_written_as_sarif_at_the_repositorys_line() {
    if !privileged("leaks_are_annotated_and_written_as_sarif_at_the_repositorys_line") {
        return;
    }
    let line = marker_line("gotest/leaky/leaky_test.go", "gotest-leak");
    let expected_annotation = format!(
        "::error file={LEAKY_FILE},line={line},title=leaktrace%3A goroutine leak in TestWatcherForgetsToClose::\
         1 goroutine leaked, blocked on chan receive for <T>: {LEAKY}.startWatcher.func1 blocked at leaky_test.go:{}, created by {LEAKY}.startWatcher",
        line + 1
    );
    let schema = sarif_schema();
    let root = workspace_root();
    for version in go_versions() {
        // Without GITHUB_WORKSPACE the .git of the checkout marks the root
        // (a source tree without one is given the variable both times).
        let has_git = root.join(".git").exists();
        for (flags, workspace) in [
            (&[][..], Some(root.as_path())),
            (&["-trimpath"][..], (!has_git).then_some(root.as_path())),
        ] {
            let context = format!("go{version} {flags:?}");
            let sarif = scratch_dir(&format!("sarif-{version}"));
            let pprof = scratch_dir(&format!("pprof-{version}"));
            let output = go_test_in_actions(&version, flags, workspace, &sarif, &pprof);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                !output.status.success(),
                "{context}: go test must fail:\n{stdout}"
            );
            let annotations: Vec<String> = stdout
                .lines()
                .filter(|l| l.starts_with("::"))
                .map(without_time)
                .collect();
            assert_eq!(
                annotations,
                std::slice::from_ref(&expected_annotation),
                "{context}:\n{stdout}"
            );

            assert_eq!(files_in(&sarif).len(), 2, "{context}");
            let leaky: Value = serde_json::from_slice(
                &std::fs::read(file_of(&sarif, "leaky.test", ".sarif")).unwrap(),
            )
            .unwrap();
            let clean: Value = serde_json::from_slice(
                &std::fs::read(file_of(&sarif, "clean.test", ".sarif")).unwrap(),
            )
            .unwrap();
            for log in [&leaky, &clean] {
                let errors: Vec<String> = schema
                    .iter_errors(log)
                    .map(|e| format!("{e} at {}", e.instance_path()))
                    .collect();
                assert!(errors.is_empty(), "{context}: not SARIF 2.1.0: {errors:#?}");
                assert_eq!(log["version"], "2.1.0");
            }
            // The schema does reject what is not SARIF.
            let mut broken = leaky.clone();
            broken["runs"][0]["results"][0]["level"] = "fatal".into();
            assert!(!schema.is_valid(&broken));
            assert_eq!(
                clean["runs"][0]["results"],
                serde_json::json!([]),
                "{context}"
            );
            assert_eq!(
                clean["runs"][0]["automationDetails"]["id"], "leaktrace/clean.test/",
                "{context}"
            );
            let run = &leaky["runs"][0];
            assert_eq!(
                run["automationDetails"]["id"], "leaktrace/leaky.test/",
                "{context}"
            );
            assert_eq!(run["tool"]["driver"]["name"], "leaktrace");
            let rules: Vec<&str> = run["tool"]["driver"]["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap())
                .collect();
            assert_eq!(
                rules,
                [
                    "goroutine-leak",
                    "stuck-goroutines",
                    "ticker-leak",
                    "timer-leak",
                    "resource-leak"
                ]
            );
            let results = run["results"].as_array().unwrap();
            assert_eq!(results.len(), 1, "{context}: {results:#?}");
            let result = &results[0];
            assert_eq!(result["ruleId"], "goroutine-leak", "{context}");
            assert_eq!(result["ruleIndex"], 0, "{context}");
            assert_eq!(result["level"], "error", "{context}");
            assert_eq!(result["properties"]["count"], 1, "{context}");
            assert_eq!(
                result["properties"]["test"], "TestWatcherForgetsToClose",
                "{context}"
            );
            let physical = &result["locations"][0]["physicalLocation"];
            assert_eq!(physical["artifactLocation"]["uri"], LEAKY_FILE, "{context}");
            assert_eq!(
                physical["artifactLocation"]["uriBaseId"], "%SRCROOT%",
                "{context}"
            );
            assert_eq!(physical["region"]["startLine"], line, "{context}");
            assert_eq!(
                run["originalUriBaseIds"]["%SRCROOT%"]["uri"],
                format!("file://{}/", root.display()),
                "{context}"
            );
            // The creation stack: the go statement, then the test that called it.
            let frames = result["stacks"][0]["frames"].as_array().unwrap();
            let frame = |i: usize| {
                let location = &frames[i]["location"];
                (
                    location["logicalLocations"][0]["fullyQualifiedName"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    location["physicalLocation"]["artifactLocation"]["uri"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            };
            assert_eq!(
                frame(0),
                (format!("{LEAKY}.startWatcher"), LEAKY_FILE.to_string()),
                "{context}"
            );
            assert_eq!(
                frame(1),
                (
                    format!("{LEAKY}.TestWatcherForgetsToClose"),
                    LEAKY_FILE.to_string()
                ),
                "{context}"
            );
            assert_eq!(
                without_time(result["message"]["text"].as_str().unwrap()),
                expected_annotation.rsplit("::").next().unwrap(),
                "{context}"
            );
            // --pprof with a directory: a profile per test binary too.
            assert_eq!(files_in(&pprof).len(), 2, "{context}");
            file_of(&pprof, "leaky.test", ".pb.gz");
        }
    }
}

#[test]
fn no_annotations_outside_github_actions_or_without_fail_on_leak() {
    if !privileged("no_annotations_outside_github_actions_or_without_fail_on_leak") {
        return;
    }
    let version = go_versions().pop().unwrap();
    let exec = |fail_on_leak: bool| {
        format!(
            "{} run{} --",
            leaktrace_bin().display(),
            if fail_on_leak { " --fail-on-leak" } else { "" }
        )
    };
    for (actions, fail_on_leak) in [("false", true), ("true", false)] {
        let output = go(&version)
            .args([
                "test",
                "-v",
                "-count=1",
                "-exec",
                &exec(fail_on_leak),
                "./gotest/leaky",
            ])
            .env("GITHUB_ACTIONS", actions)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.success(), !fail_on_leak, "{stdout}");
        assert!(stdout.contains("leak: 1 goroutine"), "{stdout}");
        assert!(
            !stdout.lines().any(|l| l.starts_with("::")),
            "GITHUB_ACTIONS={actions} --fail-on-leak={fail_on_leak}:\n{stdout}"
        );
    }
}
