//! `cargo xtask test`: every test, unit and end to end.

use crate::{cmd, go, setup};

pub fn run(cargo_test_args: &[String]) -> anyhow::Result<()> {
    setup::all()?;
    cmd::run(cmd::cargo().args(["build", "--package", "leaktrace"]))?;
    let root = cmd::workspace_root();
    let versions: Vec<&str> = go::TOOLCHAINS.iter().map(|(v, _)| *v).collect();
    cmd::run(
        cmd::cargo()
            .args(["test", "--workspace", "--all-targets"])
            .env("LEAKTRACE_BIN", root.join("target/debug/leaktrace"))
            .env("LEAKTRACE_GO_VERSIONS", versions.join(","))
            .arg("--")
            .args(cargo_test_args),
    )
}
