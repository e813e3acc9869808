//! Finding the pclntab and `runtime.text` in binaries as they are really
//! built: with or without a symbol table, PIE (the table then lives in
//! `.data.rel.ro.gopclntab`), and cgo, where the external linker puts C start-up
//! code at the beginning of `.text`, before `runtime.text`.

use std::collections::HashMap;

use object::{Object, ObjectSection};

use crate::{
    elf::ElfImage,
    elf::section_data,
    pclntab::{Pclntab, PclntabError},
};

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error(transparent)]
    Pclntab(#[from] PclntabError),
    #[error("no pclntab (no .gopclntab section, runtime.pclntab symbol, or table header)")]
    NotFound,
}

/// Every Go 1.17+ function with a stack check starts `cmp 16(r14), rsp`.
const STACK_CHECK: [u8; 4] = [0x49, 0x3b, 0x66, 0x10];
/// `runtime.exit` (assembly, identical in Go 1.19–1.27):
/// `movl 8(sp), di; movl $231, ax; syscall; ret`.
const RUNTIME_EXIT: [u8; 12] = [
    0x8b, 0x7c, 0x24, 0x08, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xc3,
];
const MAX_HEADER_TRIES: usize = 16;
const MAGICS: [[u8; 4]; 3] = [
    [0xfa, 0xff, 0xff, 0xff],
    [0xf0, 0xff, 0xff, 0xff],
    [0xf1, 0xff, 0xff, 0xff],
];

/// The pclntab: by section name, then by the linker's symbols, then by
/// scanning the file for a header that parses and names `runtime.main`.
pub fn pclntab(
    file: &object::File<'_>,
    elf: &ElfImage,
    data: &[u8],
) -> Result<Pclntab, LocateError> {
    for name in [".gopclntab", ".data.rel.ro.gopclntab"] {
        if let Some(bytes) = section_data(file, name) {
            return Ok(Pclntab::parse(bytes.into_owned(), 0)?);
        }
    }
    if let (Some(start), Some(end)) = (
        elf.symbol("runtime.pclntab"),
        elf.symbol("runtime.epclntab"),
    ) {
        let from = elf
            .file_offset(start.address)
            .and_then(|o| usize::try_from(o).ok());
        let to = end
            .address
            .checked_sub(start.address)
            .and_then(|n| usize::try_from(n).ok());
        if let Some(bytes) = from
            .zip(to)
            .and_then(|(from, len)| data.get(from..from.checked_add(len)?))
        {
            return Ok(Pclntab::parse(bytes.to_vec(), 0)?);
        }
    }
    // Bound the work a file full of fake headers can cause.
    let mut tries = 0;
    for section in file.sections() {
        let Ok(bytes) = section.data() else { continue };
        for at in (0..bytes.len().saturating_sub(8)).step_by(4) {
            let header = &bytes[at..at + 8];
            if !MAGICS.iter().any(|m| header[..4] == *m) || header[4..8] != [0, 0, 1, 8] {
                continue;
            }
            tries += 1;
            if tries > MAX_HEADER_TRIES {
                break;
            }
            if let Ok(table) = Pclntab::parse(bytes[at..].to_vec(), 0)
                && table.func_by_name("runtime.main").is_some()
            {
                return Ok(table);
            }
        }
    }
    Err(LocateError::NotFound)
}

/// The address of `runtime.text`: the first candidate under which Go
/// functions start where the table says they do.
pub fn text_start(table: &Pclntab, elf: &ElfImage, data: &[u8], text_section: u64) -> Option<u64> {
    let mut candidates: Vec<u64> = Vec::new();
    candidates.extend(elf.symbol("runtime.text").map(|s| s.address));
    candidates.push(text_section);
    candidates.extend(table.header_text_start());
    // Where runtime.exit's code really is, minus where the table puts it.
    if let Some(exit) = table.func_by_name("runtime.exit") {
        let offset = table.entry_offset(&exit);
        candidates.extend(
            find_all(data, &RUNTIME_EXIT)
                .filter_map(|at| elf.address_of_file_offset(at)?.checked_sub(offset)),
        );
    }
    let checks: Vec<u64> = ["runtime.gopark", "runtime.newproc1"]
        .iter()
        .filter_map(|name| table.func_by_name(name))
        .map(|f| table.entry_offset(&f))
        .collect();
    candidates.into_iter().find(|&start| {
        !checks.is_empty()
            && checks.iter().all(|&offset| {
                let at = start
                    .checked_add(offset)
                    .and_then(|address| elf.file_offset(address))
                    .and_then(|o| usize::try_from(o).ok());
                at.and_then(|at| data.get(at..at.checked_add(STACK_CHECK.len())?))
                    == Some(&STACK_CHECK[..])
            })
    })
}

/// `go:func.*` in a binary without a symbol table: the `gofunc` field of
/// `runtime.firstmoduledata`, the one structure in the data whose first word
/// points at the pclntab and whose `gofunc` is mapped.
pub fn gofunc(
    sections: &HashMap<String, (u64, u64)>,
    elf: &ElfImage,
    data: &[u8],
    gofunc_offset: u64,
) -> Option<u64> {
    let pclntab = [".gopclntab", ".data.rel.ro.gopclntab"]
        .iter()
        .find_map(|name| sections.get(*name))
        .map(|&(address, _)| address)
        .or_else(|| elf.symbol("runtime.pclntab").map(|s| s.address))?;
    let word = |at: u64| -> Option<u64> {
        let at = usize::try_from(elf.file_offset(at)?).ok()?;
        Some(u64::from_le_bytes(
            data.get(at..at.checked_add(8)?)?.try_into().ok()?,
        ))
    };
    // Go 1.26+ gives it a section of its own.
    let mut found = [".go.module", ".noptrdata", ".data", ".data.rel.ro"]
        .iter()
        .filter_map(|name| sections.get(*name))
        .flat_map(|&(start, size)| (start..start.saturating_add(size)).step_by(8))
        .filter(|&at| word(at) == Some(pclntab))
        .filter_map(|moduledata| word(moduledata.checked_add(gofunc_offset)?))
        .filter(|&gofunc| elf.file_offset(gofunc).is_some());
    let gofunc = found.next()?;
    // Two candidates that disagree: do not guess.
    found.all(|other| other == gofunc).then_some(gofunc)
}

fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = u64> + 'a {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| *w == needle)
        .map(|(i, _)| i as u64)
}
