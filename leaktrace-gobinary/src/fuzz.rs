//! The entry points of the fuzz targets (`fuzz/`), kept here so that the
//! corpus-replay test runs exactly the same code on stable Rust.

use std::{borrow::Cow, path::Path};

use crate::{GoBinary, buildinfo, dwarf, pclntab::Pclntab};

/// A whole executable, then the lookups leaktrace makes on it.
pub fn go_binary(data: &[u8]) {
    let Ok(binary) = GoBinary::parse(Path::new("fuzz-input"), data.to_vec()) else {
        return;
    };
    for name in [
        "runtime.newproc1",
        "runtime.gopark",
        "runtime.gdestroy",
        "runtime.exit",
        "main.main",
    ] {
        if let Some(function) = binary.function(name) {
            let _ = binary.code(function);
            let _ = binary.location(function.address);
            let _ = binary.goroutine_entry(function.address);
            let _ = binary.call_site(function.address.wrapping_add(5));
        }
    }
    let _ = binary.allgs_address();
}

/// A `.gopclntab` section.
pub fn pclntab(data: &[u8]) {
    let Ok(table) = Pclntab::parse(data.to_vec(), 0x40_1000) else {
        return;
    };
    for func in table.funcs().take(256) {
        let _ = table.position(&func, func.entry);
        let _ = table.func_for_pc(func.entry.wrapping_add(1));
    }
    let _ = table.func_by_name("runtime.main");
}

/// A `.go.buildinfo` section.
pub fn buildinfo(data: &[u8]) {
    let _ = buildinfo::parse(data);
}

/// `.debug_info`, `.debug_abbrev` and `.debug_str`, as three chunks: two
/// little-endian u32 lengths, then the sections back to back.
pub fn dwarf(data: &[u8]) {
    let (Some(info_len), Some(abbrev_len)) = (read_len(data, 0), read_len(data, 4)) else {
        return;
    };
    let rest = &data[8..];
    let Some(info) = rest.get(..info_len) else {
        return;
    };
    let Some(abbrev) = rest.get(info_len..info_len.saturating_add(abbrev_len)) else {
        return;
    };
    let strings = &rest[info_len + abbrev_len..];
    let _ = dwarf::read_g_layout_from(|name| match name {
        ".debug_info" => Some(Cow::Borrowed(info)),
        ".debug_abbrev" => Some(Cow::Borrowed(abbrev)),
        ".debug_str" => Some(Cow::Borrowed(strings)),
        _ => None,
    });
}

/// Builds a [`dwarf`] input from real sections (for seeding the corpus).
pub fn dwarf_input(info: &[u8], abbrev: &[u8], strings: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(8 + info.len() + abbrev.len() + strings.len());
    input.extend((info.len() as u32).to_le_bytes());
    input.extend((abbrev.len() as u32).to_le_bytes());
    input.extend([info, abbrev, strings].concat());
    input
}

fn read_len(data: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize)
}
