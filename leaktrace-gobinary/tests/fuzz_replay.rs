//! Replays fuzz inputs through the same entry points as the fuzz targets, on
//! stable Rust: the committed regressions (`fuzz/regressions/TARGET/`), and
//! the real-binary seeds of the corpus (`fuzz/corpus/TARGET/seed-*`) when
//! `cargo xtask fuzz` has made them. Any panic fails the test.

use std::path::Path;

use leaktrace_gobinary::fuzz;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for dir in ["regressions", "corpus"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            if dir == "corpus" && !entry.file_name().to_string_lossy().starts_with("seed-") {
                continue;
            }
            let input = std::fs::read(entry.path()).unwrap();
            run(&input);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no regression inputs for {target}");
}

#[test]
fn elf_inputs() {
    replay("elf", fuzz::go_binary);
}

#[test]
fn pclntab_inputs() {
    replay("pclntab", fuzz::pclntab);
}

#[test]
fn buildinfo_inputs() {
    replay("buildinfo", fuzz::buildinfo);
}

#[test]
fn dwarf_inputs() {
    replay("dwarf", fuzz::dwarf);
}
