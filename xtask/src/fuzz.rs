//! `cargo xtask fuzz`: a bounded run of every fuzz target in `fuzz/`, seeded
//! with sections of real Go binaries. `cargo xtask test` runs it too.

use std::{path::Path, process::Command};

use anyhow::Context as _;
use object::{Object as _, ObjectSection as _};

use crate::{cmd, go, setup};

pub const TARGETS: &[&str] = &["elf", "pclntab", "buildinfo", "dwarf", "memory"];
/// Inputs of the memory decoders are small regions, not binaries.
const MEMORY_MAX_LEN: usize = 65_536;
/// Whole binaries and their sections.
const BINARY_MAX_LEN: usize = 4_194_304;
/// Releases whose binaries seed the corpus: both pclntab magics, and Go 1.26's header.
const SEED_RELEASES: &[&str] = &["1.19", "1.23", "1.27"];
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Fuzzes each target for `seconds`; fails on the first crash, leak or timeout.
pub fn run(seconds: u32) -> anyhow::Result<()> {
    prepare()?;
    TARGETS
        .iter()
        .try_for_each(|target| run_target(target, seconds))
}

/// Installs cargo-fuzz and seeds the corpus.
pub fn prepare() -> anyhow::Result<()> {
    setup::go_toolchains(SEED_RELEASES)?;
    install_cargo_fuzz()?;
    seed_corpus(&cmd::workspace_root())
}

/// Fuzzes one target for `seconds`.
pub fn run_target(target: &str, seconds: u32) -> anyhow::Result<()> {
    let root = cmd::workspace_root();
    let corpus = root.join("fuzz/corpus").join(target);
    {
        cmd::run(
            Command::new("rustup")
                .args(["run", "nightly", "cargo", "fuzz", "run", target])
                .arg(&corpus)
                .arg("--")
                .arg(format!("-max_total_time={seconds}"))
                .args(["-timeout=10", "-rss_limit_mb=4096", "-print_final_stats=1"])
                .arg(format!(
                    "-max_len={}",
                    if target == "memory" {
                        MEMORY_MAX_LEN
                    } else {
                        BINARY_MAX_LEN
                    }
                ))
                // The fuzz targets never load probes: no eBPF object to build.
                .env("AYA_BUILD_SKIP", "1")
                .current_dir(&root),
        )
        .with_context(|| {
            format!(
                "fuzz target {target} failed; the crashing input is in fuzz/artifacts/{target}/"
            )
        })
    }
}

fn install_cargo_fuzz() -> anyhow::Result<()> {
    let installed =
        cmd::output(Command::new("cargo").args(["fuzz", "--version"])).unwrap_or_default();
    if installed.contains(CARGO_FUZZ_VERSION) {
        return Ok(());
    }
    cmd::run(Command::new("cargo").args([
        "install",
        "--locked",
        &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
    ]))
}

/// Writes one input per target per seed release, from a real binary, and
/// every committed regression input.
fn seed_corpus(root: &Path) -> anyhow::Result<()> {
    for target in TARGETS {
        let dir = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir)?;
        let Ok(regressions) = std::fs::read_dir(root.join("fuzz/regressions").join(target)) else {
            continue;
        };
        for input in regressions.flatten() {
            let name = format!("regression-{}", input.file_name().to_string_lossy());
            std::fs::copy(input.path(), dir.join(name))?;
        }
    }
    for release in SEED_RELEASES {
        let binary_path = root.join("target/go").join(release).join("seeds");
        go::build(release, "./cmd/seeds", &binary_path)?;
        let data = std::fs::read(&binary_path)?;
        let file = object::File::parse(&*data)?;
        let section = |name: &str| -> anyhow::Result<Vec<u8>> {
            let section = file
                .section_by_name(name)
                .with_context(|| format!("{name} missing"))?;
            Ok(section.uncompressed_data()?.into_owned())
        };
        let dwarf = leaktrace_gobinary::fuzz::dwarf_input(
            &section(".debug_info")?,
            &section(".debug_abbrev")?,
            &section(".debug_str").unwrap_or_default(),
        );
        let inputs: [(&str, Vec<u8>); 4] = [
            ("elf", data.clone()),
            ("pclntab", section(".gopclntab")?),
            ("buildinfo", section(".go.buildinfo")?),
            ("dwarf", dwarf),
        ];
        for (target, input) in inputs {
            let dir = root.join("fuzz/corpus").join(target);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(format!("seed-go{release}")), input)?;
        }
    }
    Ok(())
}
