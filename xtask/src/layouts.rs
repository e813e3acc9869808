//! `cargo xtask gen-layouts`: the per-release runtime table used for binaries
//! without DWARF (leaktrace-gobinary/src/runtime_table.rs explains it).

use leaktrace_gobinary::{GoBinary, LayoutSource, runtime_table};

use anyhow::Context as _;

use crate::{cmd, go, setup};

pub fn generate() -> anyhow::Result<()> {
    let versions: Vec<&str> = go::TOOLCHAINS.iter().map(|(v, _)| *v).collect();
    setup::go_toolchains(&versions)?;
    let root = cmd::workspace_root();
    let mut entries = Vec::new();
    for version in versions {
        let binary_path = root.join("target/go").join(version).join("seeds");
        go::build(version, "./cmd/seeds", &binary_path)?;
        let binary = GoBinary::open(&binary_path)?;
        anyhow::ensure!(
            binary.layout_source == LayoutSource::Dwarf,
            "{} has no DWARF",
            binary_path.display()
        );
        anyhow::ensure!(
            !binary.wait_reasons.is_empty(),
            "{} has no runtime.waitReasonStrings",
            binary_path.display()
        );
        let timers = binary
            .timer_layout
            .with_context(|| format!("{} describes no timer heap", binary_path.display()))?;
        let moduledata_gofunc = binary.moduledata_gofunc.with_context(|| {
            format!("{} describes no runtime.moduledata", binary_path.display())
        })?;
        entries.push((
            binary.build.version,
            binary.g_layout,
            timers,
            moduledata_gofunc,
            binary.wait_reasons.clone(),
        ));
    }
    let path = root.join("leaktrace-gobinary/src/known_runtimes.rs");
    std::fs::write(&path, runtime_table::render(&entries))?;
    eprintln!(
        "xtask: wrote {} ({} Go releases)",
        path.display(),
        entries.len()
    );
    Ok(())
}
