//! Reading (never writing) a process's memory. Everything that decodes the
//! target's data goes through [`Memory`], so it can be tested on synthetic
//! memory ([`Regions`]) as well as on a live process ([`ProcMem`]).

use std::{collections::BTreeMap, fs::File, io, os::unix::fs::FileExt};

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

/// A live process's memory, through `/proc/PID/mem`, opened read-only, and
/// `process_vm_readv` for many blocks at once.
pub struct ProcMem {
    pid: u32,
    mem: File,
}

/// Remote blocks per `process_vm_readv` call: the kernel's IOV_MAX.
const IOV_MAX: usize = 1024;

impl ProcMem {
    /// Opens it once; the descriptor stays tied to the address space it was
    /// opened on, so open it after the target has `exec`ed.
    pub fn open(pid: u32) -> io::Result<Self> {
        Ok(Self {
            pid,
            mem: File::open(format!("/proc/{pid}/mem"))?,
        })
    }

    /// One `process_vm_readv` for up to [`IOV_MAX`] blocks of `len` bytes:
    /// how many blocks from the first were read, or the error if none was.
    fn read_vectored(&self, addresses: &[u64], len: usize, buf: &mut [u8]) -> io::Result<usize> {
        let remote: Vec<libc::iovec> = addresses
            .iter()
            .map(|&address| libc::iovec {
                iov_base: address as *mut libc::c_void,
                iov_len: len,
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
        // The kernel stops at the first block it cannot read, and never
        // splits one.
        Ok(read as usize / len)
    }
}

impl Memory for ProcMem {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.mem
            .read_exact_at(buf, address)
            .map_err(|source| MemoryError {
                address,
                len: buf.len(),
                source,
            })
    }

    fn read_blocks(&self, addresses: &[u64], buf: &mut [u8], readable: &mut [bool]) {
        let Some(len) = buf.len().checked_div(addresses.len()).filter(|&l| l > 0) else {
            return;
        };
        let count = addresses.len().min(readable.len());
        let mut first = 0;
        while first < count {
            let end = count.min(first + IOV_MAX);
            let blocks = &mut buf[first * len..end * len];
            match self.read_vectored(&addresses[first..end], len, blocks) {
                Ok(read) if first + read >= end => {
                    readable[first..end].fill(true);
                    first = end;
                }
                Ok(read) => {
                    // The block after those read failed; go on after it.
                    readable[first..first + read].fill(true);
                    readable[first + read] = false;
                    first += read + 1;
                }
                Err(e) if e.raw_os_error() == Some(libc::EFAULT) => {
                    readable[first] = false;
                    first += 1;
                }
                Err(_) => {
                    // Gone, or not allowed: nothing more can be read.
                    readable[first..count].fill(false);
                    return;
                }
            }
        }
    }
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
    fn regions_read_inside_and_fail_outside() {
        let mut mem = Regions::new();
        mem.map_words(0x1000, &[7, 8]);
        assert_eq!(mem.read_u64(0x1008).unwrap(), 8);
        assert!(mem.read_u64(0x1009).is_err(), "crosses the end");
        assert!(mem.read_u64(0xff8).is_err(), "before the region");
        assert!(mem.read_u64(u64::MAX).is_err());
    }
}
