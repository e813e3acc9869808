//! Installing what leaktrace's build and tests need. Every step checks first,
//! so a second run takes seconds.

use std::{path::Path, process::Command};

use anyhow::{Context as _, bail};

use crate::{cmd, go};

/// The bpf-linker release known to build against rustup's libLLVM here.
const BPF_LINKER_VERSION: &str = "0.13.0";
/// The toolchain aya-build compiles the eBPF crate with.
const EBPF_TOOLCHAIN: &str = "nightly";

const APT_SOURCES: &str = "/etc/apt/sources.list.d/leaktrace-go.list";
const APT_SOURCES_TEXT: &str = "\
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
";
const APT_PIN: &str = "/etc/apt/preferences.d/leaktrace-go";
// Only the Go packages come from trixie; nothing else is upgraded from it.
const APT_PIN_TEXT: &str = "\
Package: *
Pin: release n=trixie
Pin-Priority: 50

Package: *
Pin: release n=trixie-backports
Pin-Priority: 50
";

/// What the tests run besides Go: the shells the completion scripts are
/// loaded into, setcap/getcap for the GitHub Action's install step, and
/// graphviz for the graph of `go tool pprof -http`.
pub const TEST_TOOLS: &[&str] = &[
    "bash",
    "zsh",
    "fish",
    "libcap2-bin",
    "graphviz",
    "prometheus",
];

/// Everything: the eBPF toolchain and every Go toolchain the tests use.
pub fn all() -> anyhow::Result<()> {
    ebpf_toolchain()?;
    let versions: Vec<&str> = go::TOOLCHAINS.iter().map(|(v, _)| *v).collect();
    go_toolchains(&versions)
}

/// rust-src for the nightly toolchain, and a bpf-linker built against its libLLVM.
pub fn ebpf_toolchain() -> anyhow::Result<()> {
    let installed = cmd::output(Command::new("rustup").args(["toolchain", "list"]))?;
    if !installed.lines().any(|l| l.starts_with(EBPF_TOOLCHAIN)) {
        cmd::run(Command::new("rustup").args([
            "toolchain",
            "install",
            EBPF_TOOLCHAIN,
            "--profile",
            "minimal",
        ]))?;
    }
    let components = cmd::output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        EBPF_TOOLCHAIN,
    ]))?;
    if !components.lines().any(|l| l.starts_with("rust-src")) {
        cmd::run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            EBPF_TOOLCHAIN,
        ]))?;
    }
    // bpf-linker loads libLLVM by soname, so it only runs under the toolchain it was built against.
    let version = cmd::output(Command::new("rustup").args([
        "run",
        EBPF_TOOLCHAIN,
        "bpf-linker",
        "--version",
    ]))
    .unwrap_or_default();
    if version.contains(BPF_LINKER_VERSION) {
        return Ok(());
    }
    build_bpf_linker()
}

fn build_bpf_linker() -> anyhow::Result<()> {
    let sysroot = cmd::output(
        Command::new("rustc")
            .arg(format!("+{EBPF_TOOLCHAIN}"))
            .args(["--print", "sysroot"]),
    )?;
    let lib_dir = Path::new(sysroot.trim()).join("lib");
    let libllvm = std::fs::read_dir(&lib_dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so."))
        })
        .with_context(|| format!("no libLLVM.so.* in {}", lib_dir.display()))?;
    let verbose = cmd::output(
        Command::new("rustc")
            .arg(format!("+{EBPF_TOOLCHAIN}"))
            .arg("-vV"),
    )?;
    let llvm_major = verbose
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .context("rustc -vV does not name its LLVM version")?
        .to_string();

    // bpf-linker's build looks for $LLVM_PREFIX/lib/libLLVM.so.
    let prefix = cmd::workspace_root().join("target/xtask/llvm");
    let prefix_lib = prefix.join("lib");
    std::fs::create_dir_all(&prefix_lib)?;
    let link = prefix_lib.join("libLLVM.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&libllvm, &link)?;
    cmd::run(
        Command::new("rustup")
            .args([
                "run",
                EBPF_TOOLCHAIN,
                "cargo",
                "install",
                &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            ])
            .args([
                "--locked",
                "--force",
                "--no-default-features",
                "--features",
                &format!("llvm-{llvm_major}"),
            ])
            .env("LLVM_PREFIX", &prefix),
    )
}

/// The standard library for a target of the stable toolchain (`cargo xtask dist`).
pub fn rust_target(target: &str) -> anyhow::Result<()> {
    let installed = cmd::output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if !installed.lines().any(|l| l.trim() == target) {
        cmd::run(Command::new("rustup").args(["target", "add", target]))?;
    }
    Ok(())
}

/// Installs the Go toolchains that are missing from Debian's packages.
pub fn go_toolchains(versions: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&(&str, &str)> = go::TOOLCHAINS
        .iter()
        .filter(|(v, _)| versions.contains(v) && !go::is_installed(v))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let names: Vec<&str> = missing.iter().map(|(v, _)| *v).collect();
        bail!(
            "Go {} missing; run `cargo xtask setup` as root to install them from Debian's packages",
            names.join(", ")
        );
    }
    write_if_changed(APT_SOURCES, APT_SOURCES_TEXT)?;
    write_if_changed(APT_PIN, APT_PIN_TEXT)?;
    cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
    for (version, suite) in missing {
        cmd::run(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-q",
                    "--no-install-recommends",
                    "-t",
                    suite,
                    &format!("golang-{version}-go"),
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    Ok(())
}

/// Installs the Debian packages among `names` that are missing. The package
/// lists are refreshed only if the first attempt fails (they may be stale).
pub fn apt_packages(names: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !dpkg_installed(name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "{} missing; install with `apt-get install {}` as root",
            missing.join(", "),
            missing.join(" ")
        );
    }
    let install = || {
        cmd::run(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
        install()?;
    }
    Ok(())
}

fn dpkg_installed(name: &str) -> bool {
    cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", name]))
        .is_ok_and(|status| status == "install ok installed")
}

fn write_if_changed(path: &str, text: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}
