//! Builds the eBPF programs in `leaktrace-ebpf/` as part of the ordinary
//! `cargo build`, the way aya's template does.
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    // AYA_BUILD_SKIP=1 (the fuzz targets, which never load probes): aya-build
    // skips the eBPF build, and an empty object stands in for it.
    if std::env::var_os("AYA_BUILD_SKIP").is_some_and(|v| v == "1") {
        let out_dir = std::env::var_os("OUT_DIR").ok_or_else(|| anyhow::anyhow!("no OUT_DIR"))?;
        std::fs::write(std::path::Path::new(&out_dir).join("leaktrace-ebpf"), [])?;
        println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
        return Ok(());
    }
    let ebpf = Package {
        name: "leaktrace-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../leaktrace-ebpf"),
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], Toolchain::Nightly)
}
