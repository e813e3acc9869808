//! The Go toolchains leaktrace is tested with, and where Debian ships them.

use std::path::PathBuf;

/// Go release → the Debian suite whose `golang-1.xx-go` package has it.
pub const TOOLCHAINS: &[(&str, &str)] = &[
    ("1.19", "bookworm"),
    ("1.21", "bookworm-backports"),
    ("1.22", "bookworm-backports"),
    ("1.23", "bookworm-backports"),
    ("1.24", "trixie"),
    ("1.25", "trixie-backports"),
    ("1.26", "trixie-backports"),
    ("1.27", "trixie-backports"),
];

/// The newest one, which the demo uses.
pub const NEWEST: &str = "1.27";

pub fn go_binary(version: &str) -> PathBuf {
    PathBuf::from(format!("/usr/lib/go-{version}/bin/go"))
}

pub fn is_installed(version: &str) -> bool {
    go_binary(version).exists()
}

/// Builds a package of the `tests/go` module with Go `version`.
pub fn build(version: &str, package: &str, output: &std::path::Path) -> anyhow::Result<()> {
    let root = crate::cmd::workspace_root();
    crate::cmd::run(
        std::process::Command::new(go_binary(version))
            .args(["build", "-o"])
            .arg(output)
            .arg(package)
            .current_dir(root.join("tests/go"))
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod"),
    )
}

/// The Go releases a `--go` option names: one of [`TOOLCHAINS`], or `all`.
pub fn versions(choice: &str) -> anyhow::Result<Vec<&'static str>> {
    let every = TOOLCHAINS.iter().map(|(version, _)| *version);
    if choice == "all" {
        return Ok(every.collect());
    }
    match every.clone().find(|version| *version == choice) {
        Some(version) => Ok(vec![version]),
        None => anyhow::bail!(
            "--go {choice}: not one of {} or all",
            every.collect::<Vec<_>>().join(", ")
        ),
    }
}
