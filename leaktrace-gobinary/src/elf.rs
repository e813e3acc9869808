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
        Self { symbols, segments }
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
