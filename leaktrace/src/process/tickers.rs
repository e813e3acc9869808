//! What the target's memory says about the timers and tickers the probes
//! track: each one's channel, whether a global variable refers to it, and
//! what their func values run.

use std::collections::{HashMap, HashSet};

use super::memory::Memory;

/// Bytes of global-referenced slices leaktrace reads at most, in all.
const MAX_SLICE_BYTES: u64 = 64 << 20;
/// Bytes of global variables leaktrace scans at most, per section.
const MAX_GLOBALS_BYTES: u64 = 256 << 20;
/// Elements of one slice leaktrace considers at most.
const MAX_SLICE_LEN: u64 = 1 << 20;

/// What memory says about the tracked tickers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickerMemory {
    /// Ticker → its channel (`Ticker.C`, the first word of the ticker).
    pub channels: HashMap<u64, u64>,
    /// Running tickers that a global variable points to, directly or through a
    /// slice it holds.
    pub referenced: HashSet<u64>,
    /// Func value → the entry PC of the function it runs (`time.sendTime`,
    /// `time.goFunc`).
    pub func_pcs: HashMap<u64, u64>,
}

/// Reads each ticker's channel, and scans `globals` (run-time address and
/// size of the sections that hold pointer globals) for references to the
/// `running` ones.
pub fn read(
    mem: &dyn Memory,
    globals: impl IntoIterator<Item = (u64, u64)>,
    tickers: impl IntoIterator<Item = u64>,
    running: &HashSet<u64>,
    funcs: impl IntoIterator<Item = u64>,
) -> TickerMemory {
    let channels = tickers
        .into_iter()
        .filter_map(|t| Some((t, mem.read_u64(t).ok()?)))
        .collect();
    // A func value is a pointer to the code pointer.
    let func_pcs = funcs
        .into_iter()
        .filter(|&f| f != 0)
        .filter_map(|f| Some((f, mem.read_u64(f).ok()?)))
        .collect();
    let mut referenced = HashSet::new();
    if running.is_empty() {
        return TickerMemory {
            channels,
            referenced,
            func_pcs,
        };
    }
    let mut budget = MAX_SLICE_BYTES;
    for (address, size) in globals {
        let mut bytes = vec![0u8; size.min(MAX_GLOBALS_BYTES) as usize];
        if mem.read(address, &mut bytes).is_err() {
            continue; // .bss may be partly unmapped
        }
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
            .collect();
        for (i, &word) in words.iter().enumerate() {
            if running.contains(&word) {
                referenced.insert(word);
            }
            // A slice header: pointer, length, capacity.
            let (Some(&len), Some(&cap)) = (words.get(i + 1), words.get(i + 2)) else {
                continue;
            };
            if word == 0 || len == 0 || len > cap || cap > MAX_SLICE_LEN || len * 8 > budget {
                continue;
            }
            let mut elements = vec![0u8; (len * 8) as usize];
            if mem.read(word, &mut elements).is_ok() {
                budget -= len * 8;
                for element in elements.chunks_exact(8) {
                    let pointer = u64::from_le_bytes(element.try_into().unwrap_or_default());
                    if running.contains(&pointer) {
                        referenced.insert(pointer);
                    }
                }
            }
        }
    }
    TickerMemory {
        channels,
        referenced,
        func_pcs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::memory::Regions;

    #[test]
    fn finds_channels_and_globals_that_hold_tickers() {
        let mut mem = Regions::new();
        // Three tickers, each starting with its channel.
        mem.map_words(0x1000, &[0xc1]);
        mem.map_words(0x2000, &[0xc2]);
        mem.map_words(0x3000, &[0xc3]);
        // Globals: one points at 0x1000 directly; a slice {0x5000, 1, 1} holds 0x2000.
        mem.map_words(0x9000, &[0, 0x1000, 0x5000, 1, 1]);
        mem.map_words(0x5000, &[0x2000]);
        let running = HashSet::from([0x1000, 0x2000, 0x3000]);
        mem.map_words(0x7000, &[0x40_0000]);
        let memory = read(
            &mem,
            [(0x9000, 40)],
            [0x1000, 0x2000, 0x3000],
            &running,
            [0x7000, 0],
        );
        assert_eq!(memory.func_pcs, HashMap::from([(0x7000, 0x40_0000)]));
        assert_eq!(
            memory.channels,
            HashMap::from([(0x1000, 0xc1), (0x2000, 0xc2), (0x3000, 0xc3)])
        );
        assert_eq!(memory.referenced, HashSet::from([0x1000, 0x2000]));
    }
}
