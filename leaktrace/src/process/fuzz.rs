//! The entry point of the `memory` fuzz target (`fuzz/`): every decoder of
//! the target's memory, on memory the fuzzer writes, through the [`Memory`]
//! seam. Kept here so that the committed regressions replay on stable Rust
//! (the tests below).
//!
//! An input is a known Go release (first byte, modulo the table) and the
//! bytes of one region of memory at [`BASE`], which starts with the
//! `runtime.allgs` slice header and then `runtime.allp`'s. Pointers in it
//! are absolute, so the fuzzer finds the region's addresses by comparison.

use std::collections::HashSet;

use leaktrace_gobinary::runtime_table;

use super::{
    census::{Census, unwind_stopped},
    goroutines,
    memory::{Memory, Regions},
    timers,
};

/// Where the fuzzed region is mapped.
pub const BASE: u64 = 0x10_0000;
/// `runtime.allgs` (pointer, length, capacity) at [`BASE`], then
/// `runtime.allp` at `BASE + 24`.
const ALLP: u64 = BASE + 24;

/// Runs every decoder on the memory `data` describes; none may panic,
/// hang or allocate without bound.
pub fn memory(data: &[u8]) {
    let Some((&release, region)) = data.split_first() else {
        return;
    };
    let known: Vec<_> = runtime_table::known_versions().collect();
    let Some(runtime) = known
        .get(usize::from(release) % known.len().max(1))
        .and_then(|&v| runtime_table::lookup(v))
        .map(|(k, _)| k)
    else {
        return;
    };
    let mut mem = Regions::new();
    mem.map(BASE, region.to_vec());

    // Two censuses, so that the second compares slot by slot; the channels
    // asked about are a few words of the region.
    let channels: HashSet<u64> = (0..4)
        .filter_map(|i| mem.read_u64(BASE + 8 * i).ok())
        .collect();
    let mut census = Census::new(runtime.g, BASE);
    for _ in 0..2 {
        if let Ok(result) = census.take(&mem, &channels) {
            for site in result.sites.values() {
                let _ = unwind_stopped(&mem, &site.stopped_at);
            }
        }
    }
    if let Ok((all, _)) = goroutines::read_all(&mem, BASE, &runtime.g) {
        for g in all.iter().take(64) {
            let _ = goroutines::current_stack(&mem, g);
            let _ = goroutines::waiting_channels(&mem, g, &runtime.g);
        }
    }
    let _ = timers::read(&mem, ALLP, &runtime.timers, Some(BASE));
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Replays the committed inputs (`fuzz/regressions/memory/`), and the
    /// fuzzer's corpus seeds when there is one.
    #[test]
    fn memory_inputs_replay() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut replayed = 0;
        for dir in ["regressions", "corpus"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join("memory")) else {
                continue;
            };
            for entry in entries.flatten() {
                memory(&std::fs::read(entry.path()).unwrap());
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no regression inputs for memory");
    }

    #[test]
    fn hostile_headers_are_bounded() {
        // allgs claims 2^40 goroutines at an unmapped array; allp likewise.
        let mut input = vec![0u8];
        for word in [
            0xdead_0000u64,
            1 << 40,
            1 << 40,
            0xdead_0000,
            1 << 40,
            1 << 40,
        ] {
            input.extend(word.to_le_bytes());
        }
        memory(&input);
        memory(&[]);
        memory(&[7]);
    }
}
