//! Growing heaps, read from the runtime's own heap profile in the target's
//! memory: the global map and global slice of the seed documents, leaking
//! and fixed, at exit (`run`) and growing over an attach window (`-p`),
//! with every installed Go toolchain; the one line for a binary linked
//! without memory profiling; and the heap profile in `--pprof`, read by
//! `go tool pprof`.

use std::process::Command;

use leaktrace_e2e::{
    attach_to_scenario, build_in, go_binary, go_versions, leaktrace, privileged, report_path,
    run_traced, tagged_line,
};
use serde_json::Value;

const HEAPGROWTH: &str = "cmd/heapgrowth/main.go";
/// `LargeObject` (1 MiB + 8 bytes), as the runtime rounds a large object: to pages.
const LARGE_OBJECT: u64 = 1024 * 1024 + 8 * 1024;
const LINKED_WITHOUT: &str = "the binary was linked without memory profiling: nothing in it calls runtime.MemProfile (importing net/http/pprof or runtime/pprof links it)";

fn heap_line(marker: &str) -> u64 {
    u64::from(tagged_line(HEAPGROWTH, &format!("heap:{marker}")))
}

fn at_line(report: &Value, line: u64) -> Option<&Value> {
    report["heap"]["sites"].as_array()?.iter().find(|s| {
        s["allocated_at"]["line"] == line
            && s["allocated_at"]["file"]
                .as_str()
                .is_some_and(|f| f.ends_with(HEAPGROWTH))
    })
}

fn with_memprofile(version: &str) -> std::path::PathBuf {
    build_in("go", version, "./cmd/heapgrowth", &["-tags=memprofile"])
}

#[test]
fn a_global_map_that_only_grows_is_in_use_at_exit() {
    if !privileged("a_global_map_that_only_grows_is_in_use_at_exit") {
        return;
    }
    for version in go_versions() {
        let binary = with_memprofile(&version);
        let (report, output) = run_traced(&binary, &["global-map"]);
        assert_eq!(output.status.code(), Some(0), "go{version}");
        let heap = &report["heap"];
        assert_eq!(
            (&heap["unavailable"], &heap["sample_rate"], &heap["window"]),
            (&Value::Null, &1.into(), &false.into()),
            "go{version}: {heap:#}"
        );
        let site = at_line(&report, heap_line("global-map"))
            .unwrap_or_else(|| panic!("go{version}: {heap:#}"));
        assert_eq!(
            (
                &site["allocated_at"]["function"],
                &site["inuse_objects"],
                &site["inuse_bytes"],
                &site["growth_bytes"],
                &site["verdict"]
            ),
            (
                &"main.runGlobalMap".into(),
                &200.into(),
                &204_800.into(),
                &204_800.into(),
                &"in_use".into()
            ),
            "go{version}: {site:#}"
        );
        // The largest site first; its stack runs up through main.
        assert_eq!(heap["sites"][0], *site, "go{version}");
        let frames: Vec<&str> = site["stacks"][0]["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap())
            .collect();
        assert_eq!(frames, ["main.runGlobalMap", "main.main"], "go{version}");
        assert_eq!(heap["dropped"], 0, "go{version}");
    }
}

/// The seed's fix: entries expire and are deleted, so their buffers are freed.
#[test]
fn an_expiring_map_frees_what_it_held() {
    if !privileged("an_expiring_map_frees_what_it_held") {
        return;
    }
    for version in go_versions() {
        let (report, output) = run_traced(&with_memprofile(&version), &["global-map-fixed"]);
        assert_eq!(output.status.code(), Some(0), "go{version}");
        assert_eq!(report["heap"]["unavailable"], Value::Null, "go{version}");
        assert!(
            at_line(&report, heap_line("global-map-fixed")).is_none(),
            "go{version}: {:#}",
            report["heap"]
        );
    }
}

#[test]
fn a_global_slice_of_large_objects_is_in_use_at_exit() {
    if !privileged("a_global_slice_of_large_objects_is_in_use_at_exit") {
        return;
    }
    for version in go_versions() {
        let (report, output) = run_traced(&with_memprofile(&version), &["global-slice"]);
        assert_eq!(output.status.code(), Some(0), "go{version}");
        let site = at_line(&report, heap_line("global-slice"))
            .unwrap_or_else(|| panic!("go{version}: {:#}", report["heap"]));
        // Twenty large objects (Go 1.19 adds one small one at the same line).
        assert_eq!(
            site["inuse_bytes"].as_u64().unwrap() / LARGE_OBJECT,
            20,
            "go{version}: {site:#}"
        );
        assert_eq!(report["heap"]["sites"][0], *site, "go{version}");
    }
}

#[test]
fn a_binary_linked_without_memory_profiling_says_so_in_one_line() {
    if !privileged("a_binary_linked_without_memory_profiling_says_so_in_one_line") {
        return;
    }
    for version in go_versions() {
        let binary = build_in("go", &version, "./cmd/heapgrowth", &[]);
        let (report, _) = run_traced(&binary, &["global-map"]);
        assert_eq!(report["heap"]["unavailable"], LINKED_WITHOUT, "go{version}");
        assert_eq!(report["heap"]["sites"], Value::Array(vec![]), "go{version}");
        let output = leaktrace()
            .args(["run", "--"])
            .arg(&binary)
            .arg("global-map")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("heap")).collect();
        assert_eq!(
            lines,
            [format!("heap profile not read: {LINKED_WITHOUT}")],
            "go{version}: {text}"
        );
    }
}

/// The heap profile in `--pprof`, as `go tool pprof` reads it.
#[test]
fn the_heap_goes_into_the_pprof_profile() {
    if !privileged("the_heap_goes_into_the_pprof_profile") {
        return;
    }
    for version in go_versions() {
        let profile = report_path(&format!("heap-{version}")).with_extension("pb.gz");
        let output = leaktrace()
            .args(["run", "--pprof"])
            .arg(&profile)
            .arg("--")
            .arg(with_memprofile(&version))
            .arg("global-map")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "go{version}");
        let top = Command::new(go_binary(&version))
            .args([
                "tool",
                "pprof",
                "-sample_index=inuse_objects",
                "-top",
                "-lines",
            ])
            .arg(&profile)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&top.stdout);
        let line = format!("main.runGlobalMap {}:{}", "", heap_line("global-map"));
        let row = text
            .lines()
            .find(|l| {
                l.contains("main.runGlobalMap")
                    && l.contains(&format!("main.go:{}", heap_line("global-map")))
            })
            .unwrap_or_else(|| panic!("go{version}: no {line:?} in:\n{text}"));
        assert_eq!(
            row.split_whitespace().next(),
            Some("200"),
            "go{version}: flat objects: {row}"
        );
    }
}

/// A running service whose global map grows, next to buffers that are
/// garbage once each request ends: over the window, the map's line grows
/// and the buffers' does not.
#[test]
fn attach_finds_the_heap_that_grows_over_the_window() {
    if !privileged("attach_finds_the_heap_that_grows_over_the_window") {
        return;
    }
    for version in go_versions() {
        for observing in [&[][..], &["--exact"][..]] {
            let ctx = format!("go{version} {observing:?}");
            let mut args = vec!["--duration", "2s"];
            args.extend(observing);
            let report = attach_to_scenario(&with_memprofile(&version), "serve", "serving", &args);
            let heap = &report["heap"];
            assert_eq!(heap["window"], true, "{ctx}: {heap:#}");
            let leak = at_line(&report, heap_line("serve-leak"))
                .unwrap_or_else(|| panic!("{ctx}: {heap:#}"));
            assert_eq!(leak["verdict"], "growing", "{ctx}: {leak:#}");
            // About a thousand requests of 1 KiB each in 2 s; at least a few hundred.
            assert!(
                leak["growth_bytes"].as_i64().unwrap() >= 100 * 1024,
                "{ctx}: {leak:#}"
            );
            assert_eq!(heap["sites"][0], *leak, "{ctx}: fastest-growing first");
            // One buffer is held by `sink` at every GC: in use, not growing.
            if let Some(garbage) = at_line(&report, heap_line("serve-garbage")) {
                assert_eq!(
                    (&garbage["verdict"], &garbage["growth_bytes"]),
                    (&"steady".into(), &0.into()),
                    "{ctx}: {garbage:#}"
                );
            }
        }
    }
}
