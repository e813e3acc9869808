//! Go's own PC table (`.gopclntab`): function names, entry points and
//! file:line for any PC, with or without a symbol table or DWARF.
//!
//! Handles the layouts of Go 1.16/1.17 (magic `0xfffffffa`: absolute entry
//! PCs and funcdata pointers), Go 1.18/1.19 (`0xfffffff0`: entries as offsets
//! from `runtime.text`, funcdata as offsets from `go:func.*`) and 1.20+
//! (`0xfffffff1`, which adds `startLine` to `_func`). Go 1.26 stopped filling
//! the header's text-start word, so the caller passes the start of `.text`,
//! as Go's own `debug/gosym` does. Every read is bounds-checked: malformed
//! input yields `None` or an error, never a panic.

const MAGIC_GO116: u32 = 0xffff_fffa;
const MAGIC_GO118: u32 = 0xffff_fff0;
const MAGIC_GO120: u32 = 0xffff_fff1;

/// The table layouts, by the release that introduced them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Go116,
    Go118,
    Go120,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PclntabError {
    #[error(".gopclntab is truncated")]
    TooShort,
    #[error(".gopclntab has magic {0:#x}, a layout from before Go 1.16")]
    UnknownMagic(u32),
    #[error(".gopclntab: {0}")]
    Unsupported(&'static str),
    #[error(".gopclntab is corrupt: {0}")]
    Corrupt(&'static str),
}

/// A function as the pclntab describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Func {
    pub name: String,
    pub entry: u64,
    /// Entry of the next function: the end of this one's code.
    pub end: u64,
    /// Line of the `func` keyword (Go 1.20+), else the line at the entry PC.
    pub start_line: u32,
    /// The runtime's `funcID`: 0 for ordinary functions; special runtime
    /// functions and compiler-generated wrappers have others.
    pub func_id: u8,
    /// Offset of the `_func` record, to read its tables.
    record: usize,
}

/// A source position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub line: u32,
}

#[derive(Debug, Clone)]
pub struct Pclntab {
    data: Vec<u8>,
    text_start: u64,
    /// The header's own text-start word (Go 1.18–1.25); 0 from Go 1.26 on.
    header_text_start: u64,
    quantum: u32,
    nfunc: usize,
    format: Format,
    has_start_line: bool,
    funcnametab: usize,
    cutab: usize,
    filetab: usize,
    pctab: usize,
    functab: usize,
}

impl Pclntab {
    /// Parses a 64-bit little-endian pclntab. `text_start` is the address of
    /// `runtime.text` (the start of `.text` in a Go-linked binary).
    pub fn parse(data: Vec<u8>, text_start: u64) -> Result<Self, PclntabError> {
        let magic = read_u32(&data, 0).ok_or(PclntabError::TooShort)?;
        let format = match magic {
            MAGIC_GO116 => Format::Go116,
            MAGIC_GO118 => Format::Go118,
            MAGIC_GO120 => Format::Go120,
            other => return Err(PclntabError::UnknownMagic(other)),
        };
        let has_start_line = format == Format::Go120;
        // Go 1.16's header has no text-start word.
        let tables = if format == Format::Go116 { 2 } else { 3 };
        let quantum = u32::from(*data.get(6).ok_or(PclntabError::TooShort)?);
        let ptr_size = *data.get(7).ok_or(PclntabError::TooShort)?;
        if ptr_size != 8 {
            return Err(PclntabError::Unsupported(
                "only 64-bit binaries are supported",
            ));
        }
        if quantum == 0 {
            return Err(PclntabError::Corrupt("instruction quantum is 0"));
        }
        let word = |i: usize| read_u64(&data, 8 + i * 8).ok_or(PclntabError::TooShort);
        let offset = |i: usize| -> Result<usize, PclntabError> {
            let value = usize::try_from(word(i)?).map_err(|_| PclntabError::Corrupt("offset"))?;
            if value > data.len() {
                return Err(PclntabError::Corrupt("table offset past the end"));
            }
            Ok(value)
        };
        let nfunc = usize::try_from(word(0)?).map_err(|_| PclntabError::Corrupt("nfunc"))?;
        let table = Self {
            text_start,
            header_text_start: if format == Format::Go116 { 0 } else { word(2)? },
            quantum,
            nfunc,
            format,
            has_start_line,
            funcnametab: offset(tables)?,
            cutab: offset(tables + 1)?,
            filetab: offset(tables + 2)?,
            pctab: offset(tables + 3)?,
            functab: offset(tables + 4)?,
            data: Vec::new(),
        };
        // functab holds nfunc+1 (entry, funcoff) pairs.
        let functab_len = nfunc
            .checked_add(1)
            .and_then(|n| n.checked_mul(table.functab_entry_size()))
            .ok_or(PclntabError::Corrupt("nfunc"))?;
        if table
            .functab
            .checked_add(functab_len)
            .is_none_or(|end| end > data.len())
        {
            return Err(PclntabError::Corrupt("function table past the end"));
        }
        Ok(Self { data, ..table })
    }

    /// Go 1.16: (entry PC, offset) as words; later, as u32 offsets.
    fn functab_entry_size(&self) -> usize {
        if self.format == Format::Go116 { 16 } else { 8 }
    }

    /// Go 1.16's `_func` starts with an 8-byte entry PC, 4 bytes more than
    /// the later `entryOff`: every field after it moves by this much.
    fn shift(&self) -> usize {
        if self.format == Format::Go116 { 4 } else { 0 }
    }

    /// Whether entry PCs are absolute (Go 1.16/1.17) rather than offsets
    /// from `runtime.text`.
    pub fn has_absolute_entries(&self) -> bool {
        self.format == Format::Go116
    }

    fn functab_entry(&self, i: usize) -> Option<(u64, usize)> {
        if self.format == Format::Go116 {
            let at = self.functab.checked_add(i.checked_mul(16)?)?;
            let entry = read_u64(&self.data, at)?;
            let func_off = usize::try_from(read_u64(&self.data, at.checked_add(8)?)?).ok()?;
            return Some((entry, self.functab.checked_add(func_off)?));
        }
        let at = self.functab.checked_add(i.checked_mul(8)?)?;
        let entry_off = read_u32(&self.data, at)?;
        let func_off = read_u32(&self.data, at.checked_add(4)?)? as usize;
        Some((
            self.text_start.checked_add(u64::from(entry_off))?,
            self.functab.checked_add(func_off)?,
        ))
    }

    /// Entry PCs are offsets from `runtime.text`; this sets where that is.
    pub fn set_text_start(&mut self, text_start: u64) {
        self.text_start = text_start;
    }

    /// The text start the linker wrote in the header (Go 1.18–1.25), if any.
    /// It may be unrelocated in position-independent binaries.
    pub fn header_text_start(&self) -> Option<u64> {
        (self.header_text_start != 0).then_some(self.header_text_start)
    }

    /// Offset of a function's entry from `runtime.text`.
    pub fn entry_offset(&self, func: &Func) -> u64 {
        func.entry.wrapping_sub(self.text_start)
    }

    /// The i-th function, in address order.
    pub fn func_at_index(&self, i: usize) -> Option<Func> {
        if i >= self.nfunc {
            return None;
        }
        let (entry, record) = self.functab_entry(i)?;
        let (end, _) = self.functab_entry(i + 1)?;
        let name_off = read_i32(&self.data, record + self.shift() + 4)?;
        let name = self.c_string(
            self.funcnametab
                .checked_add(usize::try_from(name_off).ok()?)?,
        )?;
        // funcID follows cuOffset, and startLine from Go 1.20 on.
        let func_id = *self
            .data
            .get(record + self.shift() + if self.has_start_line { 40 } else { 36 })?;
        let mut func = Func {
            name,
            entry,
            end,
            start_line: 0,
            func_id,
            record,
        };
        func.start_line = if self.has_start_line {
            u32::try_from(read_i32(&self.data, record + 36)?).unwrap_or(0)
        } else {
            self.position(&func, entry).map_or(0, |p| p.line)
        };
        Some(func)
    }

    /// The function whose code contains `pc`.
    pub fn func_for_pc(&self, pc: u64) -> Option<Func> {
        if self.nfunc == 0 {
            return None;
        }
        // Binary search for the last entry <= pc.
        let (mut lo, mut hi) = (0usize, self.nfunc);
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            let (entry, _) = self.functab_entry(mid)?;
            if entry <= pc {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let func = self.func_at_index(lo)?;
        (func.entry <= pc && pc < func.end).then_some(func)
    }

    /// Every function, in address order.
    pub fn funcs(&self) -> impl Iterator<Item = Func> + '_ {
        (0..self.nfunc).filter_map(|i| self.func_at_index(i))
    }

    /// The function with exactly this name.
    pub fn func_by_name(&self, name: &str) -> Option<Func> {
        self.funcs().find(|f| f.name == name)
    }

    /// File and line of the instruction at `pc` in `func`.
    pub fn position(&self, func: &Func, pc: u64) -> Option<Position> {
        let at = func.record + self.shift();
        let pcfile = read_u32(&self.data, at + 20)?;
        let pcln = read_u32(&self.data, at + 24)?;
        let cu_offset = read_u32(&self.data, at + 32)?;
        let fileno = self.pcvalue(func, pcfile, pc)?;
        let line = self.pcvalue(func, pcln, pc)?;
        let cu_index = u32::try_from(fileno).ok()?.checked_add(cu_offset)? as usize;
        let file_off = read_u32(
            &self.data,
            self.cutab.checked_add(cu_index.checked_mul(4)?)?,
        )?;
        if file_off == u32::MAX {
            return None;
        }
        let file = self.c_string(self.filetab.checked_add(file_off as usize)?)?;
        Some(Position {
            file,
            line: u32::try_from(line).ok()?,
        })
    }

    /// Size of the fixed part of a `_func` record.
    fn func_header_size(&self) -> usize {
        self.shift() + if self.has_start_line { 44 } else { 40 }
    }

    /// The value of pc-data table `index` at `pc` (`PCDATA_InlTreeIndex` is 2).
    pub fn pcdata_value(&self, func: &Func, index: usize, pc: u64) -> Option<i32> {
        let npcdata = read_u32(&self.data, func.record + self.shift() + 28)? as usize;
        if index >= npcdata {
            return None;
        }
        let table = read_u32(
            &self.data,
            func.record + self.func_header_size() + index * 4,
        )?;
        self.pcvalue(func, table, pc)
    }

    /// The address of funcdata `index` (`FUNCDATA_InlTree` is 3): an offset
    /// from `go:func.*` (`gofunc`) from Go 1.18, an address before.
    pub fn funcdata_address(&self, func: &Func, index: usize, gofunc: Option<u64>) -> Option<u64> {
        let header = self.func_header_size();
        let npcdata = read_u32(&self.data, func.record + self.shift() + 28)? as usize;
        let nfuncdata = usize::from(*self.data.get(func.record + header - 1)?);
        if index >= nfuncdata {
            return None;
        }
        let pcdata_end = func.record + header + npcdata * 4;
        if self.format == Format::Go116 {
            // Pointers, 8-byte aligned (the table itself is).
            let array = pcdata_end.checked_add(7)? & !7;
            let address = read_u64(&self.data, array.checked_add(index * 8)?)?;
            return (address != 0).then_some(address);
        }
        let offset = read_u32(&self.data, pcdata_end + index * 4)?;
        (offset != u32::MAX).then(|| gofunc?.checked_add(u64::from(offset)))?
    }

    /// Bytes of one inline-tree record (`runtime.inlinedCall`).
    pub fn inlined_call_size(&self) -> usize {
        if self.has_start_line { 16 } else { 20 }
    }

    /// Decodes an inline-tree record: the inlined function's name and the
    /// offset from the function's entry of an instruction at the call site.
    pub fn inlined_call(&self, record: &[u8]) -> Option<(String, u64)> {
        let (name_off, parent_pc) = if self.has_start_line {
            (read_i32(record, 4)?, read_i32(record, 8)?)
        } else {
            (read_i32(record, 12)?, read_i32(record, 16)?)
        };
        let name = self.c_string(
            self.funcnametab
                .checked_add(usize::try_from(name_off).ok()?)?,
        )?;
        Some((name, u64::try_from(parent_pc).ok()?))
    }

    /// Decodes a pc-value table as `runtime.pcvalue` does.
    fn pcvalue(&self, func: &Func, table_off: u32, target: u64) -> Option<i32> {
        if table_off == 0 {
            return None;
        }
        let mut p = self.pctab.checked_add(table_off as usize)?;
        let mut pc = func.entry;
        let mut value: i32 = -1;
        let mut first = true;
        // A table never has more steps than the function has bytes.
        for _ in 0..=func.end.saturating_sub(func.entry).min(1 << 24) {
            let (uvdelta, n) = read_varint(&self.data, p)?;
            if uvdelta == 0 && !first {
                return None;
            }
            p += n;
            let delta = (-((uvdelta & 1) as i32)) ^ ((uvdelta >> 1) as i32);
            value = value.wrapping_add(delta);
            let (pcdelta, n) = read_varint(&self.data, p)?;
            p += n;
            pc = pc.checked_add(u64::from(pcdelta).checked_mul(u64::from(self.quantum))?)?;
            first = false;
            if target < pc {
                return Some(value);
            }
        }
        None
    }

    fn c_string(&self, at: usize) -> Option<String> {
        let bytes = self.data.get(at..)?;
        let len = bytes.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&bytes[..len]).into_owned())
    }
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn read_i32(data: &[u8], at: usize) -> Option<i32> {
    read_u32(data, at).map(|v| v as i32)
}

fn read_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        data.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Unsigned LEB128 limited to 32 bits; returns (value, bytes read).
fn read_varint(data: &[u8], at: usize) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    for (i, &byte) in data.get(at..)?.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * i as u32);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(
            Pclntab::parse(vec![], 0).unwrap_err(),
            PclntabError::TooShort
        );
        assert_eq!(
            Pclntab::parse(vec![0xfb, 0xff, 0xff, 0xff, 0, 0, 1, 8], 0).unwrap_err(),
            PclntabError::UnknownMagic(0xffff_fffb)
        );
        let mut header = vec![0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8];
        header.extend_from_slice(&u64::MAX.to_le_bytes());
        header.resize(8 + 8 * 8, 0);
        assert!(Pclntab::parse(header, 0).is_err());
    }

    #[test]
    fn varint_decoding() {
        assert_eq!(read_varint(&[0x05], 0), Some((5, 1)));
        assert_eq!(read_varint(&[0x80, 0x01], 0), Some((128, 2)));
        assert_eq!(read_varint(&[0x80, 0x80], 0), None);
    }
}
