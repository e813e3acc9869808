//! What leaktrace needs from the ELF container: symbols, sections, and the
//! mapping from virtual addresses to file offsets (uprobes are placed by
//! file offset).

use std::collections::HashMap;

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};

/// An ELF symbol's address and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol {
    pub address: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    address: u64,
    file_offset: u64,
    file_size: u64,
}

/// The owned, parsed parts of an ELF file.
#[derive(Debug, Default)]
pub struct ElfImage {
    symbols: HashMap<String, Symbol>,
    segments: Vec<Segment>,
    /// `R_X86_64_RELATIVE` relocations of a position-independent binary, as
    /// (address, value) sorted by address: an external linker may leave a
    /// pointer's link-time value there rather than in the file.
    relative: Vec<(u64, u64)>,
}

impl ElfImage {
    pub fn read(file: &object::File<'_>) -> Self {
        let symbols = file
            .symbols()
            .filter(|s| {
                matches!(
                    s.kind(),
                    SymbolKind::Text | SymbolKind::Data | SymbolKind::Unknown
                )
            })
            .filter_map(|s| {
                Some((
                    s.name().ok()?.to_string(),
                    Symbol {
                        address: s.address(),
                        size: s.size(),
                    },
                ))
            })
            .collect();
        let segments = file
            .segments()
            .map(|s| {
                let (file_offset, file_size) = s.file_range();
                Segment {
                    address: s.address(),
                    file_offset,
                    file_size,
                }
            })
            .collect();
        let mut relative: Vec<(u64, u64)> = file
            .dynamic_relocations()
            .into_iter()
            .flatten()
            .filter(|(_, r)| {
                matches!(
                    r.flags(),
                    object::RelocationFlags::Elf { r_type } if r_type == object::elf::R_X86_64_RELATIVE
                )
            })
            .map(|(address, r)| (address, r.addend() as u64))
            .collect();
        relative.sort_unstable();
        Self {
            symbols,
            segments,
            relative,
        }
    }

    /// The value a relative relocation gives the word at `address`, if any.
    pub fn relocated_word(&self, address: u64) -> Option<u64> {
        let at = self
            .relative
            .binary_search_by_key(&address, |(a, _)| *a)
            .ok()?;
        Some(self.relative[at].1)
    }

    pub fn symbol(&self, name: &str) -> Option<Symbol> {
        self.symbols.get(name).copied()
    }

    /// The file offset that holds virtual address `address`.
    pub fn file_offset(&self, address: u64) -> Option<u64> {
        self.segments.iter().find_map(|s| {
            let delta = address.checked_sub(s.address)?;
            if delta < s.file_size {
                s.file_offset.checked_add(delta)
            } else {
                None
            }
        })
    }

    /// The virtual address that file offset `offset` is loaded at.
    pub fn address_of_file_offset(&self, offset: u64) -> Option<u64> {
        self.segments.iter().find_map(|s| {
            let delta = offset.checked_sub(s.file_offset)?;
            if delta < s.file_size {
                s.address.checked_add(delta)
            } else {
                None
            }
        })
    }
}

/// A section's bytes, decompressed if needed; `None` when it is absent.
pub fn section_data<'a>(file: &object::File<'a>, name: &str) -> Option<std::borrow::Cow<'a, [u8]>> {
    file.section_by_name(name)?.uncompressed_data().ok()
}
