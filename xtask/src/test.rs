//! `cargo xtask test`: every test, unit and end to end.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use anyhow::{Context as _, bail};

use crate::{cmd, dist, fuzz, go, setup};

/// Seconds per fuzz target in the test run: a smoke test, not a campaign.
const FUZZ_SECONDS: u32 = 20;

pub fn run(cargo_test_args: &[String]) -> anyhow::Result<()> {
    setup::all()?;
    setup::apt_packages(setup::TEST_TOOLS)?;
    cmd::run(cmd::cargo().args(["build", "--package", "leaktrace"]))?;
    // The release archive, for the tests of the binary users download.
    let archive = dist::run()?;
    let root = cmd::workspace_root();
    let versions: Vec<&str> = go::TOOLCHAINS.iter().map(|(v, _)| *v).collect();
    let mut test = cmd::cargo();
    test.args(["test", "--workspace", "--all-targets", "--no-fail-fast"])
        .env("LEAKTRACE_BIN", root.join("target/debug/leaktrace"))
        .env("LEAKTRACE_GO_VERSIONS", versions.join(","))
        .env("LEAKTRACE_DIST", archive)
        .arg("--")
        .args(cargo_test_args)
        .stdout(Stdio::piped());
    eprintln!("xtask: $ cargo test --workspace --all-targets");
    let mut child = test.spawn().context("running cargo test")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(child.stdout.take().context("cargo test stdout")?).lines() {
        let line = line?;
        println!("{line}");
        if let Some((p, f)) = parse_result(&line) {
            passed += p;
            failed += f;
        }
    }
    let status = child.wait()?;
    if !status.success() {
        failed = failed.max(1);
    }
    // Each parser's fuzz target counts as one test.
    fuzz::prepare()?;
    for target in fuzz::TARGETS {
        match fuzz::run_target(target, FUZZ_SECONDS) {
            Ok(()) => passed += 1,
            Err(e) => {
                eprintln!("xtask: {e:#}");
                failed += 1;
            }
        }
    }
    // One total for everything: cargo prints one line per test binary.
    println!("leaktrace: {passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} failed");
    }
    Ok(())
}

/// `test result: ok. 12 passed; 0 failed; ...` → (12, 0).
fn parse_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| -> Option<u64> {
        rest.split(';').find_map(|part| {
            part.trim()
                .strip_suffix(word)?
                .split_whitespace()
                .last()?
                .parse()
                .ok()
        })
    };
    Some((count(" passed")?, count(" failed")?))
}

#[cfg(test)]
mod tests {
    use super::parse_result;

    #[test]
    fn reads_cargo_test_summaries() {
        let line = "test result: ok. 12 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s";
        assert_eq!(parse_result(line), Some((12, 1)));
        assert_eq!(parse_result("running 3 tests"), None);
    }
}
