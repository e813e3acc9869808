//! `cargo xtask dist`: the release archive. One static x86-64 binary (musl,
//! the eBPF object inside), its man pages and shell completions:
//!
//! ```text
//! target/dist/leaktrace-x86_64-unknown-linux-musl.tar.gz
//!   leaktrace-x86_64-unknown-linux-musl/
//!     leaktrace                 static-pie, no interpreter, no shared library
//!     man/leaktrace.1 ...       `cargo xtask man`
//!     completions/leaktrace.bash, _leaktrace, leaktrace.fish
//!     README.md
//! ```
//!
//! The archive's name has no version, so that
//! `releases/latest/download/<name>` always finds the newest; the version
//! and commit are in `leaktrace --version`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, ensure};
use clap::CommandFactory as _;
use clap_complete::Shell;
use object::{
    Object as _,
    read::elf::{ElfFile64, ProgramHeader as _},
};

use crate::{cmd, setup};

pub const TARGET: &str = "x86_64-unknown-linux-musl";
/// The Cargo profile: release, stripped.
const PROFILE: &str = "release-dist";
/// The directory in the archive, and the archive's name.
pub const NAME: &str = "leaktrace-x86_64-unknown-linux-musl";

/// Builds the archive and returns its path.
pub fn run() -> anyhow::Result<PathBuf> {
    setup::ebpf_toolchain()?;
    setup::rust_target(TARGET)?;
    cmd::run(cmd::cargo().args([
        "build",
        "--package",
        "leaktrace",
        "--profile",
        PROFILE,
        "--target",
        TARGET,
    ]))?;
    let root = cmd::workspace_root();
    let binary = root
        .join("target")
        .join(TARGET)
        .join(PROFILE)
        .join("leaktrace");
    ensure_static(&binary)?;

    let dist = root.join("target/dist");
    let staging = dist.join(NAME);
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(staging.join("completions"))?;
    std::fs::copy(&binary, staging.join("leaktrace"))?;
    std::fs::copy(root.join("README.md"), staging.join("README.md"))?;
    man_pages(&staging.join("man"))?;
    for (shell, file) in [
        (Shell::Bash, "leaktrace.bash"),
        (Shell::Zsh, "_leaktrace"),
        (Shell::Fish, "leaktrace.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(
            shell,
            &mut leaktrace_cli::Cli::command(),
            "leaktrace",
            &mut script,
        );
        std::fs::write(staging.join("completions").join(file), script)?;
    }
    let archive = dist.join(format!("{NAME}.tar.gz"));
    cmd::run(
        Command::new("tar")
            .arg("-czf")
            .arg(&archive)
            .arg("-C")
            .arg(&dist)
            .args(["--owner=0", "--group=0", NAME]),
    )?;
    let digest = cmd::output(
        Command::new("sha256sum")
            .arg(format!("{NAME}.tar.gz"))
            .current_dir(&dist),
    )?;
    std::fs::write(dist.join(format!("{NAME}.tar.gz.sha256")), digest)?;
    eprintln!("xtask: {}", archive.display());
    Ok(archive)
}

/// `cargo xtask man`: a page for leaktrace and one per subcommand
/// (`leaktrace-run.1`), as git and cargo ship theirs.
pub fn man_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let command = leaktrace_cli::Cli::command();
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("writing man pages to {}", dir.display()))?;
    let page = dir.join("leaktrace.1");
    ensure!(page.is_file(), "clap_mangen wrote no {}", page.display());
    eprintln!("xtask: man pages in {}", dir.display());
    Ok(())
}

/// No interpreter and no shared libraries: it runs on any x86-64 Linux.
fn ensure_static(binary: &Path) -> anyhow::Result<()> {
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let elf = ElfFile64::<object::Endianness>::parse(&*data)?;
    let endian = elf.endian();
    ensure!(
        !elf.elf_program_headers()
            .iter()
            .any(|header| header.p_type(endian) == object::elf::PT_INTERP),
        "{} asks for a dynamic loader",
        binary.display()
    );
    let imported = elf.imports()?.len();
    ensure!(
        imported == 0,
        "{} imports {imported} symbols from shared libraries",
        binary.display()
    );
    Ok(())
}
