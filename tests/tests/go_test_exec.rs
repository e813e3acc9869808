//! `go test -exec 'leaktrace run --fail-on-leak --' ./pkg`, with real `go test`
//! packages (tests/go/gotest) and every installed Go toolchain. Test binaries
//! are linked without DWARF or symbols, so this also covers stripped binaries.

use leaktrace_e2e::{Site, assert_sites, go_test_traced, go_versions, privileged};

#[test]
fn go_test_exec_fails_a_package_that_leaks() {
    if !privileged("go_test_exec_fails_a_package_that_leaks") {
        return;
    }
    for version in go_versions() {
        let (output, report) = go_test_traced(&version, "./gotest/leaky", &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !output.status.success(),
            "go{version}: go test must fail on the leak:\n{stdout}"
        );
        assert!(
            stdout.contains("FAIL\tleaktrace.test/targets/gotest/leaky"),
            "go{version}:\n{stdout}"
        );
        assert_sites(
            &report,
            &[Site {
                file: "gotest/leaky/leaky_test.go",
                marker: "gotest-leak",
                created_by: "leaktrace.test/targets/gotest/leaky.startWatcher",
                entry: "leaktrace.test/targets/gotest/leaky.startWatcher.func1",
                live: 1,
                created: 1,
                exited: 0,
                states: &[("chan receive", 1)],
                verdict: "leak",
            }],
            &format!("go{version} gotest/leaky"),
        );
        // testing's own goroutine for the test function ran and finished: not the program's leak.
        let unexplained: Vec<_> = report["goroutines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["verdict"] == "leak"
                    && s["created_at"]["function"]
                        != "leaktrace.test/targets/gotest/leaky.startWatcher"
            })
            .collect();
        assert!(unexplained.is_empty(), "go{version}: {unexplained:#?}");
    }
}

#[test]
fn go_test_exec_passes_a_package_that_does_not_leak() {
    if !privileged("go_test_exec_passes_a_package_that_does_not_leak") {
        return;
    }
    for version in go_versions() {
        let (output, report) = go_test_traced(&version, "./gotest/clean", &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "go{version}: go test must pass:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("ok  \tleaktrace.test/targets/gotest/clean"),
            "go{version}:\n{stdout}"
        );
        assert_sites(
            &report,
            &[Site {
                file: "gotest/clean/clean_test.go",
                marker: "gotest-clean",
                created_by: "leaktrace.test/targets/gotest/clean.TestWorkersFinish",
                entry: "leaktrace.test/targets/gotest/clean.TestWorkersFinish.func1",
                live: 0,
                created: 1,
                exited: 1,
                states: &[],
                verdict: "ok",
            }],
            &format!("go{version} gotest/clean"),
        );
    }
}
