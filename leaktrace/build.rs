//! Builds the eBPF programs in `leaktrace-ebpf/` as part of the ordinary
//! `cargo build`, the way aya's template does.
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let ebpf = Package {
        name: "leaktrace-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../leaktrace-ebpf"),
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], Toolchain::Nightly)
}
