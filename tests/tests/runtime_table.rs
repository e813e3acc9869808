//! Where leaktrace gets the runtime's layout, checked against every installed
//! Go toolchain:
//! - the binary's own type descriptors give, field by field, what its DWARF
//!   says (with DWARF, and once stripped);
//! - every global leaktrace reads is found without a symbol table at the
//!   address the symbol table gives;
//! - the checked-in table (leaktrace-gobinary/src/known_runtimes.rs), the last
//!   resort, matches what each toolchain really produces (`cargo xtask
//!   gen-layouts` regenerates it).

use std::{path::PathBuf, process::Command};

use leaktrace_e2e::{build, go_versions, scratch_dir};
use leaktrace_gobinary::{GoBinary, LayoutSource, RuntimeGlobal, runtime_table};

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

/// `full` with its symbol table and DWARF removed by `strip`, which moves
/// nothing else: every address stays comparable.
fn stripped_copy(full: &std::path::Path, version: &str) -> PathBuf {
    let stripped = scratch_dir(&format!("stripped-{version}")).join("seeds");
    let status = Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&stripped)
        .arg(full)
        .status()
        .expect("run strip");
    assert!(status.success(), "strip {}", full.display());
    stripped
}

#[test]
fn type_descriptors_give_what_dwarf_says_field_by_field() {
    for version in go_versions() {
        let full = GoBinary::open(&build(&version, "./cmd/seeds", &[])).unwrap();
        let described = full.described_layouts();
        assert_eq!(
            described.g,
            Ok(full.g_layout),
            "go{version}: runtime.g, gobuf, sudog, m"
        );
        assert_eq!(
            described.timers.map(Some),
            Ok(full.timer_layout),
            "go{version}: p, timers, timer, timeTimer or Ticker"
        );
        assert_eq!(
            described.moduledata_gofunc.map(Some),
            Ok(full.moduledata_gofunc),
            "go{version}: runtime.moduledata"
        );
    }
}

#[test]
fn stripped_binaries_get_every_layout_and_global_from_themselves() {
    for version in go_versions() {
        let full_path = build(&version, "./cmd/seeds", &[]);
        let full = GoBinary::open(&full_path).unwrap();
        let stripped = GoBinary::open(&stripped_copy(&full_path, &version)).unwrap();
        assert_eq!(
            stripped.layout_source,
            LayoutSource::TypeDescriptors,
            "go{version}"
        );
        assert_eq!(stripped.g_layout, full.g_layout, "go{version}");
        assert_eq!(stripped.timer_layout, full.timer_layout, "go{version}");
        assert_eq!(
            stripped.moduledata_gofunc, full.moduledata_gofunc,
            "go{version}"
        );
        assert_eq!(stripped.wait_reasons, full.wait_reasons, "go{version}");
        assert_eq!(stripped.gofunc(), full.gofunc(), "go{version}: go:func.*");
        assert!(full.gofunc().is_some(), "go{version}");
        assert_eq!(
            stripped.allgs_address().ok(),
            full.allgs_address().ok(),
            "go{version}: runtime.allgs"
        );
        for global in RuntimeGlobal::ALL {
            assert!(
                full.runtime_global(global).is_some(),
                "go{version}: {} in the symbol table",
                global.symbol()
            );
            assert_eq!(
                stripped.runtime_global(global),
                full.runtime_global(global),
                "go{version}: {} found from the code",
                global.symbol()
            );
        }
        assert!(
            stripped.warnings.is_empty(),
            "go{version}: {:?}",
            stripped.warnings
        );
    }
}

#[test]
fn binaries_built_stripped_get_the_same_layout() {
    for version in go_versions() {
        let full = GoBinary::open(&build(&version, "./cmd/seeds", &[])).unwrap();
        let stripped =
            GoBinary::open(&build(&version, "./cmd/seeds", &["-ldflags=-s -w"])).unwrap();
        assert_eq!(
            stripped.layout_source,
            LayoutSource::TypeDescriptors,
            "go{version}"
        );
        assert_eq!(stripped.g_layout, full.g_layout, "go{version}");
        assert_eq!(stripped.timer_layout, full.timer_layout, "go{version}");
        assert_eq!(stripped.wait_reasons, full.wait_reasons, "go{version}");
        // Found through runtime.firstmoduledata (the builds differ, so the
        // addresses may too; go_test_exec's inlined frames check its value).
        assert!(
            stripped.gofunc().is_some(),
            "go{version}: no go:func.* from runtime.firstmoduledata"
        );
        for global in RuntimeGlobal::ALL {
            assert!(
                stripped.runtime_global(global).is_some(),
                "go{version}: {}",
                global.symbol()
            );
        }
        assert!(
            stripped.warnings.is_empty(),
            "go{version}: {:?}",
            stripped.warnings
        );
    }
}
