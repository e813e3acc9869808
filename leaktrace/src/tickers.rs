//! Tickers: which Go timer semantics apply, and what the target's memory says
//! about each tracked ticker (its channel, and whether a global refers to it).

use std::collections::{HashMap, HashSet};

use leaktrace_ebpf::TickerRecord;
use leaktrace_gobinary::{GoBinary, GoVersion};
use serde::Serialize;

use crate::procmem::ProcessMemory;

/// Bytes of global-referenced slices leaktrace reads at most, in all.
const MAX_SLICE_BYTES: u64 = 64 << 20;
/// Bytes of global variables leaktrace scans at most, per section.
const MAX_GLOBALS_BYTES: u64 = 256 << 20;
/// Elements of one slice leaktrace considers at most.
const MAX_SLICE_LEN: u64 = 1 << 20;

/// How the runtime treats an unstopped ticker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TimerSemantics {
    /// Before Go 1.23, or `asynctimerchan=1`: the runtime holds every running
    /// ticker, so every unstopped one leaks.
    Async { reason: String },
    /// Go 1.23+: an unstopped ticker that nothing references is collected.
    Sync,
}

impl TimerSemantics {
    /// `godebug` is the process's GODEBUG environment variable, if set.
    pub fn of(binary: &GoBinary, godebug: Option<&str>) -> Self {
        let version = binary.build.version;
        if version < GoVersion::new(1, 23, 0) {
            return Self::Async {
                reason: format!("{} holds every running ticker", binary.build.version_text),
            };
        }
        // Go 1.27 removed the setting.
        if version >= GoVersion::new(1, 27, 0) {
            return Self::Sync;
        }
        let from_env = godebug.and_then(|g| {
            g.split(',')
                .find_map(|kv| kv.strip_prefix("asynctimerchan="))
        });
        let (value, source) = match from_env {
            Some(v) => (Some(v), "GODEBUG"),
            None => (
                binary.default_godebug("asynctimerchan"),
                "the binary's default GODEBUG (go.mod says go < 1.23)",
            ),
        };
        match value {
            Some(v @ ("1" | "2")) => Self::Async {
                reason: format!("asynctimerchan={v} from {source}"),
            },
            _ => Self::Sync,
        }
    }
}

/// What memory says about the tracked tickers.
#[derive(Debug, Default, Clone)]
pub struct TickerMemory {
    /// Ticker → its channel (`Ticker.C`, the first word of the ticker).
    pub channels: HashMap<u64, u64>,
    /// Running tickers that a global variable points to, directly or through a
    /// slice it holds.
    pub referenced: HashSet<u64>,
}

/// Reads each ticker's channel, and scans the globals that can hold pointers
/// for references to running tickers. `bias` is the load bias (PIE).
pub fn read_ticker_memory(
    mem: &ProcessMemory,
    binary: &GoBinary,
    bias: u64,
    tickers: &HashMap<u64, TickerRecord>,
) -> TickerMemory {
    let channels = tickers
        .keys()
        .filter_map(|&t| Some((t, mem.read_u64(t).ok()?)))
        .collect();
    let running: HashSet<u64> = tickers
        .iter()
        .filter(|(_, r)| r.stopped == 0)
        .map(|(&t, _)| t)
        .collect();
    let mut referenced = HashSet::new();
    if running.is_empty() {
        return TickerMemory {
            channels,
            referenced,
        };
    }
    let mut budget = MAX_SLICE_BYTES;
    for &(address, size) in binary.pointer_globals() {
        let mut bytes = vec![0u8; size.min(MAX_GLOBALS_BYTES) as usize];
        if mem.read_exact(address + bias, &mut bytes).is_err() {
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
            if mem.read_exact(word, &mut elements).is_ok() {
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
    }
}
