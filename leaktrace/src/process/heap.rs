//! The in-use heap by allocation stack, read from the Go runtime's own
//! heap-profile records: the buckets `runtime.MemProfile` reads.
//!
//! `runtime.mbuckets` heads a list (through `allnext`) of every memory
//! profile bucket. A bucket is `{next, allnext, typ, hash, size, nstk}`
//! (six words in every release from Go 1.19 to 1.27), then `nstk` return
//! PCs, then its `memRecord`, whose first two words are the published
//! cycle's `allocs` and `frees`: the profile as of the last completed GC,
//! what `MemProfile` reports. One bucket is one stack and one object size,
//! so the bytes are the counts times `size`.
//!
//! Reading costs the target nothing; the runtime samples one allocation
//! per `runtime.MemProfileRate` bytes (512 KiB by default), and the counts
//! are scaled back as pprof does.

use super::memory::{Memory, MemoryError};

/// Buckets read at most (a corrupt list must end).
const MAX_BUCKETS: usize = 1 << 20;
/// `maxProfStackDepth` is 1024 at most (GODEBUG=profstackdepth).
const MAX_STACK: u64 = 1024;
/// `{next, allnext, typ, hash, size, nstk}`.
const HEADER_WORDS: usize = 6;
/// `bucketType` of a memory-profile bucket.
const MEM_PROFILE: u64 = 1;

/// Why the heap profile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeapProfileError {
    #[error(
        "the binary was linked without memory profiling: nothing in it calls runtime.MemProfile \
         (importing net/http/pprof or runtime/pprof links it)"
    )]
    LinkedWithout,
    #[error("the program set runtime.MemProfileRate to 0")]
    RateZero,
    #[error(
        "cannot find runtime.mbuckets or runtime.MemProfileRate: no symbol table, and \
         runtime.mProf_FlushLocked and runtime.schedinit do not show them"
    )]
    NotFound,
    #[error("cannot read the heap profile")]
    Unreadable(#[from] MemoryError),
}

/// One allocation stack and object size, as the last GC published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapBucket {
    /// Run-time return PCs, innermost first.
    pub stack: Vec<u64>,
    /// Bytes per object.
    pub size: u64,
    /// Sampled allocations and frees (not scaled).
    pub allocs: u64,
    pub frees: u64,
}

/// The heap profile at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeapProfile {
    /// By bucket address, which stays the same for the process's life.
    pub buckets: std::collections::HashMap<u64, HeapBucket>,
    /// `runtime.MemProfileRate`: one allocation sampled per this many bytes.
    pub rate: u64,
    /// Buckets that could not be read, or past [`MAX_BUCKETS`].
    pub dropped: u64,
}

/// Where the runtime keeps what [`read`] needs (run-time addresses).
#[derive(Debug, Clone, Copy)]
pub struct HeapSymbols {
    pub mbuckets: u64,
    pub mem_profile_rate: u64,
    pub disable_memory_profiling: Option<u64>,
}

pub fn read(mem: &dyn Memory, symbols: HeapSymbols) -> Result<HeapProfile, HeapProfileError> {
    let disabled = match symbols.disable_memory_profiling {
        Some(at) => {
            let mut flag = [0u8; 1];
            mem.read(at, &mut flag)?;
            flag[0] != 0
        }
        None => false,
    };
    if disabled {
        return Err(HeapProfileError::LinkedWithout);
    }
    let rate = mem.read_u64(symbols.mem_profile_rate)?;
    if rate == 0 || rate as i64 <= 0 {
        return Err(HeapProfileError::RateZero);
    }
    let mut profile = HeapProfile {
        rate,
        ..Default::default()
    };
    let mut next = mem.read_u64(symbols.mbuckets)?;
    while next != 0 {
        if profile.buckets.len() >= MAX_BUCKETS || profile.buckets.contains_key(&next) {
            profile.dropped += 1;
            break;
        }
        let at = next;
        let mut header = [0u8; HEADER_WORDS * 8];
        if mem.read(at, &mut header).is_err() {
            profile.dropped += 1;
            break;
        }
        let word =
            |i: usize| u64::from_le_bytes(header[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        let (allnext, typ, size, nstk) = (word(1), word(2), word(4), word(5));
        next = allnext;
        if typ != MEM_PROFILE || nstk > MAX_STACK {
            profile.dropped += 1;
            continue;
        }
        // The stack, then `active.allocs` and `active.frees`.
        let mut rest = vec![0u8; (nstk as usize + 2) * 8];
        if mem.read(at + header.len() as u64, &mut rest).is_err() {
            profile.dropped += 1;
            continue;
        }
        let words: Vec<u64> = rest
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
            .collect();
        let (stack, record) = words.split_at(nstk as usize);
        profile.buckets.insert(
            at,
            HeapBucket {
                stack: stack.to_vec(),
                size,
                allocs: record[0],
                frees: record[1],
            },
        );
    }
    Ok(profile)
}

/// Objects and bytes a bucket stands for, scaled from the samples as pprof
/// scales them (`scaleHeapSample`): each sampled object of `size` bytes
/// stands for `1 / (1 - exp(-size / rate))` objects.
pub fn scaled(count: u64, size: u64, rate: u64) -> (u64, u64) {
    if count == 0 || size == 0 {
        return (0, 0);
    }
    if rate <= 1 {
        return (count, count * size);
    }
    let scale = 1.0 / (1.0 - (-(size as f64) / rate as f64).exp());
    let objects = (count as f64 * scale).round() as u64;
    (objects, objects * size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::memory::Regions;

    const MBUCKETS: u64 = 0x1000;
    const RATE: u64 = 0x1008;
    const DISABLE: u64 = 0x1010;

    fn symbols() -> HeapSymbols {
        HeapSymbols {
            mbuckets: MBUCKETS,
            mem_profile_rate: RATE,
            disable_memory_profiling: Some(DISABLE),
        }
    }

    fn bucket(allnext: u64, size: u64, stack: &[u64], allocs: u64, frees: u64) -> Vec<u64> {
        let mut words = vec![0, allnext, MEM_PROFILE, 0xabc, size, stack.len() as u64];
        words.extend(stack);
        words.extend([allocs, frees, 99, 99]);
        words
    }

    #[test]
    fn walks_every_bucket_with_its_stack_and_published_counts() {
        let mut mem = Regions::new();
        mem.map_words(MBUCKETS, &[0x2000, 1, 0]);
        mem.map_words(
            0x2000,
            &bucket(0x3000, 1024, &[0x40_1000, 0x40_2000], 10, 4),
        );
        mem.map_words(0x3000, &bucket(0, 64, &[0x40_3000], 3, 3));
        let profile = read(&mem, symbols()).unwrap();
        assert_eq!(profile.rate, 1);
        assert_eq!(profile.dropped, 0);
        assert_eq!(
            profile.buckets[&0x2000],
            HeapBucket {
                stack: vec![0x40_1000, 0x40_2000],
                size: 1024,
                allocs: 10,
                frees: 4
            }
        );
        assert_eq!(profile.buckets[&0x3000].stack, vec![0x40_3000]);
    }

    #[test]
    fn says_why_there_is_no_profile() {
        let mut mem = Regions::new();
        mem.map_words(MBUCKETS, &[0, 0, 1]);
        assert!(matches!(
            read(&mem, symbols()),
            Err(HeapProfileError::LinkedWithout)
        ));
        mem.map_words(MBUCKETS, &[0, 0, 0]);
        assert!(matches!(
            read(&mem, symbols()),
            Err(HeapProfileError::RateZero)
        ));
    }

    #[test]
    fn a_corrupt_list_ends() {
        let mut mem = Regions::new();
        mem.map_words(MBUCKETS, &[0x2000, 512 * 1024, 0]);
        // A loop, and a bucket whose stack is absurd.
        mem.map_words(0x2000, &bucket(0x3000, 8, &[1], 1, 0));
        let mut bad = bucket(0x2000, 8, &[1], 1, 0);
        bad[5] = 1 << 40;
        mem.map_words(0x3000, &bad);
        let profile = read(&mem, symbols()).unwrap();
        assert_eq!(profile.buckets.len(), 1);
        assert_eq!(profile.dropped, 2);
    }

    #[test]
    fn scales_like_pprof() {
        assert_eq!(scaled(10, 1024, 1), (10, 10_240));
        // 1 sampled 512 KiB object at the default rate stands for 1/(1-e^-1) ≈ 1.58.
        assert_eq!(scaled(100, 512 * 1024, 512 * 1024).0, 158);
        assert_eq!(scaled(0, 8, 1), (0, 0));
    }
}
