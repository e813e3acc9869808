//! Reading (never writing) another process's memory through `/proc/PID/mem`.

use std::{fs::File, io, os::unix::fs::FileExt, path::Path};

pub struct ProcessMemory {
    mem: File,
}

impl ProcessMemory {
    pub fn open(pid: u32) -> io::Result<Self> {
        // Read-only: leaktrace never writes to the target.
        Ok(Self {
            mem: File::open(format!("/proc/{pid}/mem"))?,
        })
    }

    pub fn read_exact(&self, address: u64, buf: &mut [u8]) -> io::Result<()> {
        self.mem.read_exact_at(buf, address)
    }

    pub fn read_u64(&self, address: u64) -> io::Result<u64> {
        let mut buf = [0u8; 8];
        self.read_exact(address, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }
}

/// How far the executable was moved from its link-time addresses: 0 unless it
/// is position-independent. `address_of_offset` maps a file offset to the
/// address it was linked at.
pub fn load_bias(pid: u32, address_of_offset: impl Fn(u64) -> Option<u64>) -> io::Result<u64> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    bias_from_maps(&maps, &exe, address_of_offset).ok_or_else(|| {
        io::Error::other(format!("{} is not mapped in process {pid}", exe.display()))
    })
}

fn bias_from_maps(
    maps: &str,
    exe: &Path,
    address_of_offset: impl Fn(u64) -> Option<u64>,
) -> Option<u64> {
    let exe = exe.to_str()?;
    maps.lines().find_map(|line| {
        // start-end perms offset dev inode path
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let offset = u64::from_str_radix(fields.nth(1)?, 16).ok()?;
        let path = fields.nth(2)?;
        if path != exe {
            return None;
        }
        let start = u64::from_str_radix(range.split('-').next()?, 16).ok()?;
        start.checked_sub(address_of_offset(offset)? & !0xfff)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_is_zero_for_fixed_address_executables() {
        let maps = "00400000-00401000 r--p 00000000 fd:00 123 /srv/app\n";
        assert_eq!(
            bias_from_maps(maps, Path::new("/srv/app"), |o| Some(0x400000 + o)),
            Some(0)
        );
    }

    #[test]
    fn bias_of_a_pie_is_its_load_address() {
        let maps = "7f0000000000-7f0000001000 r--p 00000000 fd:00 1 /lib/x.so\n\
                    55d0c0000000-55d0c0001000 r--p 00000000 fd:00 2 /srv/app\n";
        assert_eq!(
            bias_from_maps(maps, Path::new("/srv/app"), Some),
            Some(0x55d0c0000000)
        );
        assert_eq!(bias_from_maps(maps, Path::new("/srv/other"), Some), None);
    }
}
