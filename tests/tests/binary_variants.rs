//! Binaries as people deploy them, with every installed Go toolchain:
//! stripped, PIE, -trimpath, -N -l, cgo, and larger than 50 MB. Each must give
//! exactly the report of the plain build.

use leaktrace_e2e::{
    Site, assert_sites, build, go_versions, privileged, run_traced, run_traced_with,
};
use serde_json::Value;

const STRIPPED: &str = "-ldflags=-s -w";

fn unclosed_channel(file: &'static str) -> [Site; 2] {
    [
        Site {
            file,
            marker: "unclosed-sender",
            created_by: "main.unclosedChannelLeak",
            entry: "main.unclosedChannelLeak.func1",
            live: 0,
            created: 1,
            exited: 1,
            states: &[],
            verdict: "ok",
        },
        Site {
            file,
            marker: "unclosed-receiver",
            created_by: "main.unclosedChannelLeak",
            entry: "main.unclosedChannelLeak.func2",
            live: 1,
            created: 1,
            exited: 0,
            states: &[("chan receive", 1)],
            verdict: "leak",
        },
    ]
}

fn check_variant(variant: &str, flags: &[&str]) {
    if !privileged(variant) {
        return;
    }
    for version in go_versions() {
        let binary = build(&version, "./cmd/seeds", flags);
        let (report, output) = run_traced(&binary, &["channel-unclosed"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "go{version} {variant}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(report["dropped"], 0);
        assert_sites(
            &report,
            &unclosed_channel("cmd/seeds/main.go"),
            &format!("go{version} {variant}"),
        );
    }
}

/// The sites that are not the runtime's, without timing-dependent fields.
fn comparable(report: &Value) -> Vec<Value> {
    let mut sites: Vec<Value> = report["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["origin"] != "runtime")
        .map(|s| {
            let mut s = s.clone();
            s.as_object_mut()
                .unwrap()
                .retain(|k, _| !matches!(k.as_str(), "blocked_for" | "goids" | "parent_goids"));
            s
        })
        .collect();
    sites.sort_by_key(|s| s.to_string());
    sites
}

#[test]
fn stripped_binaries() {
    check_variant("stripped", &[STRIPPED]);
}

#[test]
fn position_independent_executables() {
    check_variant("pie", &["-buildmode=pie"]);
    check_variant("pie-stripped", &["-buildmode=pie", STRIPPED]);
}

#[test]
fn trimpath_binaries() {
    check_variant("trimpath", &["-trimpath"]);
}

#[test]
fn unoptimized_binaries() {
    check_variant("no-opt", &["-gcflags=all=-N -l"]);
}

#[test]
fn the_report_is_the_same_with_and_without_symbols_and_dwarf() {
    if !privileged("the_report_is_the_same_with_and_without_symbols_and_dwarf") {
        return;
    }
    for version in go_versions() {
        for scenario in [
            "channel-unclosed",
            "goroutine-10000-fixed",
            "control-worker-pool",
        ] {
            let full = run_traced_with(
                &["--all"],
                &build(&version, "./cmd/seeds", &[]),
                &[scenario],
            )
            .0;
            for flags in [&[STRIPPED][..], &["-buildmode=pie", STRIPPED]] {
                let stripped = run_traced_with(
                    &["--all"],
                    &build(&version, "./cmd/seeds", flags),
                    &[scenario],
                )
                .0;
                assert_eq!(
                    comparable(&stripped),
                    comparable(&full),
                    "go{version} {scenario} {flags:?}"
                );
            }
        }
    }
}

#[test]
fn cgo_binaries() {
    if !privileged("cgo_binaries") {
        return;
    }
    for version in go_versions() {
        for flags in [&[][..], &[STRIPPED], &["-buildmode=pie"]] {
            let binary = build(&version, "./cmd/cgoseeds", flags);
            let (report, output) = run_traced(&binary, &[]);
            let ctx = format!("go{version} cgo {flags:?}");
            assert_eq!(
                output.status.code(),
                Some(0),
                "{ctx}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_sites(
                &report,
                &[
                    Site {
                        file: "cmd/cgoseeds/main.go",
                        marker: "cgo-leak",
                        created_by: "main.leak",
                        entry: "main.leak.func1",
                        live: 3,
                        created: 3,
                        exited: 0,
                        states: &[("chan receive", 3)],
                        verdict: "leak",
                    },
                    Site {
                        file: "cmd/cgoseeds/main.go",
                        marker: "cgo-finished",
                        created_by: "main.main",
                        entry: "main.main.func1",
                        live: 0,
                        created: 4,
                        exited: 4,
                        states: &[],
                        verdict: "ok",
                    },
                ],
                &ctx,
            );
        }
    }
}

#[test]
fn binaries_larger_than_50_mb() {
    if !privileged("binaries_larger_than_50_mb") {
        return;
    }
    for version in go_versions() {
        let binary = build(&version, "./cmd/large", &[]);
        assert!(
            std::fs::metadata(&binary).unwrap().len() >= 50 << 20,
            "go{version}: not large"
        );
        let (report, _) = run_traced(&binary, &[]);
        assert_sites(
            &report,
            &[Site {
                file: "cmd/large/main.go",
                marker: "large-leak",
                created_by: "main.leak",
                entry: "main.leak.func1",
                live: 2,
                created: 2,
                exited: 0,
                states: &[("chan send", 2)],
                verdict: "leak",
            }],
            &format!("go{version} large"),
        );
    }
}
