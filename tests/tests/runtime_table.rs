//! The checked-in runtime table (leaktrace-gobinary/src/known_runtimes.rs),
//! used for binaries without DWARF, must match what each installed Go
//! toolchain really produces. `cargo xtask gen-layouts` regenerates it.

use leaktrace_e2e::{build, go_versions};
use leaktrace_gobinary::{GoBinary, LayoutSource, runtime_table};

#[test]
fn runtime_table_matches_every_installed_go() {
    for version in go_versions() {
        let binary = GoBinary::open(&build(&version, "./cmd/seeds", &[])).expect("open Go binary");
        assert_eq!(binary.layout_source, LayoutSource::Dwarf, "go{version}");
        let (known, matched) = runtime_table::lookup(binary.build.version).unwrap_or_else(|| {
            panic!(
                "{} is not in the table; run cargo xtask gen-layouts",
                binary.build.version_text
            )
        });
        assert_eq!(
            matched,
            runtime_table::Match::Exact,
            "go{version}: regenerate with cargo xtask gen-layouts"
        );
        assert_eq!(
            known.g, binary.g_layout,
            "go{version}: runtime.g layout differs from the table"
        );
        assert_eq!(
            Some(known.moduledata_gofunc),
            binary.moduledata_gofunc,
            "go{version}: runtime.moduledata differs from the table"
        );
        assert_eq!(
            Some(known.timers),
            binary.timer_layout,
            "go{version}: the timer heap layout differs from the table"
        );
        assert_eq!(
            known.wait_reasons, binary.wait_reasons,
            "go{version}: wait reasons differ from the table"
        );
    }
}

#[test]
fn stripped_binaries_get_the_same_layout_from_the_table() {
    for version in go_versions() {
        let full = GoBinary::open(&build(&version, "./cmd/seeds", &[])).unwrap();
        let stripped =
            GoBinary::open(&build(&version, "./cmd/seeds", &["-ldflags=-s -w"])).unwrap();
        assert_eq!(
            stripped.layout_source,
            LayoutSource::Table(full.build.version),
            "go{version}"
        );
        assert_eq!(stripped.g_layout, full.g_layout, "go{version}");
        assert_eq!(stripped.timer_layout, full.timer_layout, "go{version}");
        assert_eq!(stripped.wait_reasons, full.wait_reasons, "go{version}");
        // Found through runtime.firstmoduledata (the builds differ, so the
        // addresses may too; go_test_exec's inlined frames check its value).
        assert!(full.gofunc().is_some(), "go{version}");
        assert!(
            stripped.gofunc().is_some(),
            "go{version}: no go:func.* from runtime.firstmoduledata"
        );
        assert!(
            stripped.warnings.is_empty(),
            "go{version}: {:?}",
            stripped.warnings
        );
    }
}
