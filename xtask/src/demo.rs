//! `cargo xtask demo`: trace a small leaky Go program end to end.

use std::process::Command;

use crate::{cmd, go, setup};

pub fn run() -> anyhow::Result<()> {
    setup::ebpf_toolchain()?;
    setup::go_toolchains(&[go::NEWEST])?;
    cmd::run(cmd::cargo().args(["build", "--package", "leaktrace"]))?;
    let root = cmd::workspace_root();
    let demo = root.join("target/go").join(go::NEWEST).join("demo");
    go::build(go::NEWEST, "./cmd/demo", &demo)?;
    let leaktrace = root.join("target/debug/leaktrace");
    // The report is the point of the demo; leaks make leaktrace exit 0 here (no --fail-on-leak).
    cmd::run(Command::new(leaktrace).arg("run").arg("--").arg(&demo))
}
