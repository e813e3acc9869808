//! leaktrace's verdicts against the Go runtime's own goroutine leak profile,
//! on the profile's test programs (`src/runtime/testdata/
//! testgoroutineleakprofile`, shipped with Go 1.26+): for each case whose
//! expectation Go's test holds strictly, leaktrace must report as leaking
//! exactly the goroutines the profile's test expects (by the function they
//! start in), no more, no fewer.
//!
//! One difference is by design: `run` mode calls leaking every goroutine of
//! the program still blocked at exit, so it also reports `NoLeakGlobal`'s
//! goroutine, blocked on a channel in a global that nobody uses any more,
//! which the profile, judging reachability, does not.

use std::{collections::BTreeSet, path::PathBuf, process::Command};

use leaktrace_e2e::{
    go_binary, go_minor, go_versions, leaktrace, privileged, report_path, workspace_root,
};

/// Case → the functions its leaked goroutines start in, as
/// `runtime/goroutineleakprofile_test.go` expects them (strict cases of
/// simple.go and commonpatterns.go).
const CASES: &[(&str, &[&str])] = &[
    ("NilRecv", &["main.NilRecv.func1"]),
    ("NilSend", &["main.NilSend.func1"]),
    ("SelectNoCases", &["main.SelectNoCases.func1"]),
    // The other goroutine calls os.Exit: it ends the program, it does not leak.
    ("SelectNoCasesMain", &["main.SelectNoCasesMain.func1"]),
    ("ChanRecv", &["main.ChanRecv.func1"]),
    ("ChanSend", &["main.ChanSend.func1"]),
    ("Select", &["main.Select.func1"]),
    ("WaitGroup", &["main.WaitGroup.func1"]),
    ("MutexStack", &["main.MutexStack.func1"]),
    ("MutexHeap", &["main.MutexHeap.func1.1"]),
    ("RWMutexRLock", &["main.RWMutexRLock.func1"]),
    ("RWMutexLock", &["main.RWMutexLock.func1"]),
    ("Cond", &["main.Cond.func1"]),
    ("Mixed", &["main.Mixed.func1", "main.Mixed.func1.1"]),
    // The profile: none (reachable from a global). leaktrace: blocked at exit.
    ("NoLeakGlobal", &["main.NoLeakGlobal.func1"]),
    (
        "NoCloseRange",
        &["main.noCloseRange", "main.noCloseRange.func1"],
    ),
    ("MethodContractViolation", &["main.worker.Start.func1"]),
    ("DoubleSend", &["main.DoubleSend.func3"]),
    ("EarlyReturn", &["main.earlyReturn.func1"]),
    (
        "NCastLeak",
        &["main.NCastLeak.func2", "main.nCastLeak.func1"],
    ),
    ("Timeout", &["main.timeout.func1"]),
];

/// The cases Go `version`'s corpus registers (`register("Name", ...)`):
/// later releases add some.
fn registered_cases(version: &str) -> BTreeSet<String> {
    let dir = testdata(version);
    ["simple.go", "commonpatterns.go"]
        .iter()
        .map(|file| std::fs::read_to_string(dir.join(file)).unwrap_or_default())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("register(\""))
                .filter_map(|l| l.split('"').next())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn testdata(version: &str) -> PathBuf {
    go_binary(version)
        .parent()
        .and_then(|bin| bin.parent())
        .expect("GOROOT")
        .join("src/runtime/testdata/testgoroutineleakprofile")
}

/// Builds the profile's test programs as shipped with Go `version`.
fn build_corpus(version: &str) -> PathBuf {
    let goroot_testdata = testdata(version);
    let dir = workspace_root()
        .join("target/go-e2e")
        .join(version)
        .join("testgoroutineleakprofile");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&goroot_testdata).expect("the profile's test programs") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "go") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        dir.join("go.mod"),
        "module testgoroutineleakprofile\n\ngo 1.26\n",
    )
    .unwrap();
    let out = dir.join("corpus");
    let mut go = Command::new(go_binary(version));
    go.current_dir(&dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".");
    // Go 1.26 has the profile only as an experiment; the programs need it.
    if go_minor(version) == 26 {
        go.env("GOEXPERIMENT", "goroutineleakprofile");
    }
    assert!(
        go.status().unwrap().success(),
        "go{version}: build the corpus"
    );
    out
}

#[test]
fn verdicts_agree_with_the_go_runtimes_leak_profile_tests() {
    if !privileged("verdicts_agree_with_the_go_runtimes_leak_profile_tests") {
        return;
    }
    let versions: Vec<String> = go_versions()
        .into_iter()
        .filter(|v| go_minor(v) >= 26)
        .collect();
    assert!(
        !versions.is_empty(),
        "the corpus needs Go 1.26 or newer among LEAKTRACE_GO_VERSIONS"
    );
    for version in versions {
        let corpus = build_corpus(&version);
        let cases = registered_cases(&version);
        for (case, expected) in CASES.iter().filter(|(case, _)| cases.contains(*case)) {
            let ctx = format!("go{version} {case}");
            // As the profile's own test runs them: one P, no async preemption.
            let report_file = report_path(&format!("corpus-{version}-{case}"));
            let output = leaktrace()
                .args(["run", "--json", "-o"])
                .arg(&report_file)
                .arg("--")
                .arg(&corpus)
                .arg(case)
                .env("GODEBUG", "asyncpreemptoff=1")
                .env("GOMAXPROCS", "1")
                .output()
                .expect("run leaktrace");
            assert_eq!(
                output.status.code(),
                Some(0),
                "{ctx}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
            let mut leaking: Vec<&str> = report["goroutines"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["verdict"] == "leak")
                .map(|s| s["entry"]["function"].as_str().unwrap())
                .collect();
            leaking.sort_unstable();
            assert_eq!(leaking, *expected, "{ctx}: {report:#}");
        }
    }
}
