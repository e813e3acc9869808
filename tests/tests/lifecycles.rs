//! Goroutines that end in unusual ways are still tracked exactly:
//! runtime.Goexit, recovered panics, and coroutine goroutines (iter.Pull,
//! Go 1.23+), whose leaked ones are the program's leak.

use leaktrace_e2e::{Site, assert_sites, build, build_in, go_versions, privileged, run_traced};

#[test]
fn goexit_and_recovered_panics_are_exits() {
    if !privileged("goexit_and_recovered_panics_are_exits") {
        return;
    }
    const SEEDS: &str = "cmd/seeds/main.go";
    let fn_name = "main.goexitAndRecoveredPanics";
    for version in go_versions() {
        let (report, _) = run_traced(&build(&version, "./cmd/seeds", &[]), &["lifecycle-goexit"]);
        let done = |marker, entry| Site {
            file: SEEDS,
            marker,
            created_by: fn_name,
            entry,
            live: 0,
            created: 5,
            exited: 5,
            states: &[],
            verdict: "ok",
        };
        assert_sites(
            &report,
            &[
                done("goexit", "main.goexitAndRecoveredPanics.func1"),
                done("recovered-panic", "main.goexitAndRecoveredPanics.func2"),
                Site {
                    file: SEEDS,
                    marker: "lifecycle-leak",
                    created_by: fn_name,
                    entry: "main.goexitAndRecoveredPanics.func3",
                    live: 2,
                    created: 2,
                    exited: 0,
                    states: &[("chan receive", 2)],
                    verdict: "leak",
                },
            ],
            &format!("go{version}"),
        );
    }
}

#[test]
fn iter_pull_coroutines_are_created_exited_and_leaked_exactly() {
    if !privileged("iter_pull_coroutines_are_created_exited_and_leaked_exactly") {
        return;
    }
    let versions: Vec<String> = go_versions()
        .into_iter()
        .filter(|v| v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()) >= Some(23))
        .collect();
    assert!(
        !versions.is_empty(),
        "no Go 1.23+ toolchain to test iter.Pull with"
    );
    for version in versions {
        let (report, output) = run_traced(&build_in("go123", &version, "./cmd/pull", &[]), &[]);
        let ctx = format!("go{version}");
        assert_eq!(output.status.code(), Some(0), "{ctx}");
        let sites: Vec<&serde_json::Value> = report["goroutines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["entry"]["function"] == "runtime.corostart")
            .collect();
        assert_eq!(sites.len(), 1, "{ctx}: {report:#}");
        let site = sites[0];
        assert_eq!(
            site["created_at"]["function"], "iter.Pull[go.shape.int]",
            "{ctx}"
        );
        assert_eq!(
            (&site["live"], &site["created"], &site["exited"]),
            (&3.into(), &9.into(), &6.into()),
            "{ctx}"
        );
        assert_eq!(site["states"], serde_json::json!({"coroutine": 3}), "{ctx}");
        assert_eq!(
            (&site["origin"], &site["verdict"]),
            (&"program".into(), &"leak".into()),
            "{ctx}"
        );
        // The leaked ones were all created through firstOf, which never calls stop.
        let stacks = site["stacks"].as_array().unwrap();
        assert_eq!(stacks.len(), 1, "{ctx}: {stacks:#?}");
        assert_eq!(stacks[0]["count"], 3, "{ctx}");
        let frames = leaktrace_e2e::stack_functions(&stacks[0]);
        assert_eq!(
            frames,
            ["iter.Pull[go.shape.int]", "main.firstOf", "main.main"],
            "{ctx}"
        );
        let line = leaktrace_e2e::marker_line("cmd/pull/main.go", "pull-leak");
        assert_eq!(stacks[0]["frames"][1]["line"], line, "{ctx}");
    }
}
