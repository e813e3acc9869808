//! Reading (never writing) a process's memory. Everything that decodes the
//! target's data goes through [`Memory`], so it can be tested on synthetic
//! memory ([`Regions`]) as well as on a live process ([`ProcMem`]).

use std::{collections::BTreeMap, io};

/// A read of the target's memory failed: unmapped, or the process is gone.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {len} bytes at {address:#x}")]
pub struct MemoryError {
    pub address: u64,
    pub len: usize,
    #[source]
    pub source: io::Error,
}

/// Read-only access to an address space.
pub trait Memory {
    /// Fills `buf` from `address`, whole or not at all.
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    fn read_u64(&self, address: u64) -> Result<u64, MemoryError> {
        let mut buf = [0u8; 8];
        self.read(address, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// Reads one block per address into consecutive blocks of `buf` (each
    /// `buf.len() / addresses.len()` bytes), and says in `readable` which
    /// were read. One unreadable block leaves the others unaffected.
    fn read_blocks(&self, addresses: &[u64], buf: &mut [u8], readable: &mut [bool]) {
        let Some(len) = buf.len().checked_div(addresses.len()).filter(|&l| l > 0) else {
            return;
        };
        for ((&address, block), ok) in addresses
            .iter()
            .zip(buf.chunks_exact_mut(len))
            .zip(readable.iter_mut())
        {
            *ok = self.read(address, block).is_ok();
        }
    }
}

/// A live process's memory, read with `process_vm_readv`: it needs only
/// ptrace access to the process (CAP_SYS_PTRACE for another user's), where
/// `/proc/PID/mem` of another user's process is also closed by its file
/// mode. It never stops or slows the target.
pub struct ProcMem {
    pid: u32,
}

/// Remote ranges per `process_vm_readv` call: the kernel's IOV_MAX.
const IOV_MAX: usize = 1024;
/// Bytes between two blocks that are still read as one range.
const MAX_GAP: u64 = 4096;
/// Bytes one range covers at most.
const MAX_RANGE: u64 = 1 << 20;

impl ProcMem {
    /// The memory of process `pid`, as it is when read: after `exec`, the
    /// new image's.
    pub fn new(pid: u32) -> Self {
        Self { pid }
    }

    /// One `process_vm_readv` of up to [`IOV_MAX`] ranges into `buf`, one
    /// after another: how many ranges from the first were read whole.
    fn read_ranges(&self, ranges: &[Range], buf: &mut [u8]) -> io::Result<usize> {
        let remote: Vec<libc::iovec> = ranges
            .iter()
            .map(|range| libc::iovec {
                iov_base: range.start as *mut libc::c_void,
                iov_len: range.len,
            })
            .collect();
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: `local` covers exactly `buf`, which outlives the call; the
        // remote addresses are only read, in the other process, by the kernel.
        let read = unsafe {
            libc::process_vm_readv(
                self.pid as libc::pid_t,
                &local,
                1,
                remote.as_ptr(),
                remote.len() as libc::c_ulong,
                0,
            )
        };
        if read < 0 {
            return Err(io::Error::last_os_error());
        }
        // The kernel stops at the first range it cannot read whole.
        let mut left = read as usize;
        Ok(ranges
            .iter()
            .take_while(|range| {
                let whole = left >= range.len;
                left = left.saturating_sub(range.len);
                whole
            })
            .count())
    }
}

impl Memory for ProcMem {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let whole = [Range {
            start: address,
            len: buf.len(),
            blocks: Vec::new(),
        }];
        match self.read_ranges(&whole, buf) {
            Ok(1) => Ok(()),
            Ok(_) => Err(io::Error::from_raw_os_error(libc::EFAULT)),
            Err(e) => Err(e),
        }
        .map_err(|source| MemoryError {
            address,
            len: buf.len(),
            source,
        })
    }

    /// Neighbouring blocks (the runtime allocates `runtime.g`s side by side)
    /// are read as one range: the kernel's cost grows with the ranges and
    /// pages it pins, not with bytes, so a million goroutines are read
    /// faster this way than as one range each.
    fn read_blocks(&self, addresses: &[u64], buf: &mut [u8], readable: &mut [bool]) {
        let Some(len) = buf.len().checked_div(addresses.len()).filter(|&l| l > 0) else {
            return;
        };
        let count = addresses.len().min(readable.len());
        readable[..count].fill(false);
        let ranges = coalesce(&addresses[..count], len);
        let mut scratch = Vec::new();
        let mut next = 0;
        while next < ranges.len() {
            let group = &ranges[next..ranges.len().min(next + IOV_MAX)];
            scratch.resize(group.iter().map(|r| r.len).sum(), 0);
            let read = self.read_ranges(group, &mut scratch).unwrap_or(0);
            let mut offset = 0;
            for range in &group[..read] {
                for &block in &range.blocks {
                    let from = offset + (addresses[block] - range.start) as usize;
                    buf[block * len..(block + 1) * len].copy_from_slice(&scratch[from..from + len]);
                    readable[block] = true;
                }
                offset += range.len;
            }
            next += read;
            if let Some(failed) = group.get(read) {
                // One unreadable page must not lose its neighbours.
                for &block in &failed.blocks {
                    let at = &mut buf[block * len..(block + 1) * len];
                    readable[block] = self.read(addresses[block], at).is_ok();
                }
                next += 1;
            }
        }
    }
}

/// Blocks of one range of memory.
#[derive(Debug, PartialEq, Eq)]
struct Range {
    start: u64,
    len: usize,
    /// Indices of the blocks in it.
    blocks: Vec<usize>,
}

/// Groups blocks of `len` bytes at `addresses` (0: none) into ranges of
/// neighbours, in address order.
fn coalesce(addresses: &[u64], len: usize) -> Vec<Range> {
    let mut order: Vec<usize> = (0..addresses.len())
        .filter(|&i| addresses[i] != 0 && addresses[i].checked_add(len as u64).is_some())
        .collect();
    order.sort_unstable_by_key(|&i| addresses[i]);
    let mut ranges: Vec<Range> = Vec::new();
    for block in order {
        let (start, end) = (addresses[block], addresses[block] + len as u64);
        if let Some(range) = ranges.last_mut() {
            let range_end = range.start + range.len as u64;
            if start <= range_end.saturating_add(MAX_GAP) && end - range.start <= MAX_RANGE {
                range.len = (end.max(range_end) - range.start) as usize;
                range.blocks.push(block);
                continue;
            }
        }
        ranges.push(Range {
            start,
            len,
            blocks: vec![block],
        });
    }
    ranges
}

/// Synthetic memory: byte regions at fixed addresses. Reads that leave a
/// region fail, as unmapped memory does.
#[derive(Debug, Default, Clone)]
pub struct Regions {
    regions: BTreeMap<u64, Vec<u8>>,
}

impl Regions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `bytes` at `address`.
    pub fn map(&mut self, address: u64, bytes: Vec<u8>) -> &mut Self {
        self.regions.insert(address, bytes);
        self
    }

    /// Maps little-endian words at `address`.
    pub fn map_words(&mut self, address: u64, words: &[u64]) -> &mut Self {
        self.map(
            address,
            words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        )
    }
}

impl Memory for Regions {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let unmapped = || MemoryError {
            address,
            len: buf.len(),
            source: io::Error::from(io::ErrorKind::UnexpectedEof),
        };
        let (&start, bytes) = self
            .regions
            .range(..=address)
            .next_back()
            .ok_or_else(unmapped)?;
        let from = usize::try_from(address - start).map_err(|_| unmapped())?;
        let to = from.checked_add(buf.len()).ok_or_else(unmapped)?;
        let source = bytes.get(from..to).ok_or_else(unmapped)?;
        buf.copy_from_slice(source);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_blocks_are_read_as_one_range() {
        // Blocks of 16 bytes: two side by side, one overlapping, one far.
        let ranges = coalesce(&[0x1010, 0x1000, 0, 0x9000, 0x1018], 16);
        assert_eq!(
            ranges,
            vec![
                Range {
                    start: 0x1000,
                    len: 0x28,
                    blocks: vec![1, 0, 4]
                },
                Range {
                    start: 0x9000,
                    len: 16,
                    blocks: vec![3]
                },
            ]
        );
        assert!(coalesce(&[u64::MAX - 4], 16).is_empty());
    }

    #[test]
    fn a_live_process_is_read_in_blocks() {
        // This process's own memory, through the same path as a target's;
        // address 8 is never mapped.
        let data: Vec<u64> = (0..4096).collect();
        let base = data.as_ptr() as u64;
        let memory = ProcMem::new(std::process::id());
        let addresses = [base + 8 * 100, 0, base + 8 * 3000, 8, base];
        let mut buf = vec![0u8; addresses.len() * 8];
        let mut readable = vec![false; addresses.len()];
        memory.read_blocks(&addresses, &mut buf, &mut readable);
        assert_eq!(readable, [true, false, true, false, true]);
        let words: Vec<u64> = buf
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
            .collect();
        assert_eq!((words[0], words[2], words[4]), (100, 3000, 0));
        assert_eq!(memory.read_u64(base + 8 * 7).unwrap(), 7);
        assert!(memory.read_u64(8).is_err());
    }

    #[test]
    fn regions_read_inside_and_fail_outside() {
        let mut mem = Regions::new();
        mem.map_words(0x1000, &[7, 8]);
        assert_eq!(mem.read_u64(0x1008).unwrap(), 8);
        assert!(mem.read_u64(0x1009).is_err(), "crosses the end");
        assert!(mem.read_u64(0xff8).is_err(), "before the region");
        assert!(mem.read_u64(u64::MAX).is_err());
    }
}
