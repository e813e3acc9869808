//! Field offsets of `runtime.g`, read from the binary's own DWARF with gimli.
//! They move between Go versions, so no table is hard-coded here.

use std::{borrow::Cow, collections::HashMap};

use gimli::{AttributeValue, EndianSlice, LittleEndian};

use crate::{
    elf::section_data,
    runtime_layout::{GLayout, TimerHeapLayout},
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DwarfError {
    /// No `.debug_info` (built with `-ldflags=-w` or stripped).
    #[error("the binary has no DWARF debug info")]
    Missing,
    #[error("the binary's DWARF is malformed")]
    Malformed(#[source] gimli::Error),
    /// `runtime.g`, or one of its required fields, is not described.
    #[error("the binary's DWARF does not describe {0}")]
    NoRuntimeG(&'static str),
}

/// Reads the layout of `runtime.g` from `file`'s DWARF sections.
pub fn read_g_layout(file: &object::File<'_>) -> Result<GLayout, DwarfError> {
    if section_data(file, ".debug_info").is_none() {
        return Err(DwarfError::Missing);
    }
    read_g_layout_from(|name| section_data(file, name))
}

/// Reads the layout of `runtime.g` from DWARF sections given by name
/// (`.debug_info`, ...); a missing section reads as empty.
pub fn read_g_layout_from<'a>(
    section: impl Fn(&str) -> Option<Cow<'a, [u8]>>,
) -> Result<GLayout, DwarfError> {
    let load = |id: gimli::SectionId| -> Result<Cow<'a, [u8]>, gimli::Error> {
        Ok(section(id.name()).unwrap_or(Cow::Borrowed(&[])))
    };
    let sections = gimli::DwarfSections::load(load).map_err(DwarfError::Malformed)?;
    let dwarf = sections.borrow(|s| EndianSlice::new(s, LittleEndian));
    let fields = struct_members(&dwarf, "runtime.g")?.ok_or(DwarfError::NoRuntimeG("runtime.g"))?;
    let sudog =
        struct_members(&dwarf, "runtime.sudog")?.ok_or(DwarfError::NoRuntimeG("runtime.sudog"))?;
    let sudog_field =
        |name: &'static str| sudog.get(name).copied().ok_or(DwarfError::NoRuntimeG(name));
    let gobuf =
        struct_members(&dwarf, "runtime.gobuf")?.ok_or(DwarfError::NoRuntimeG("runtime.gobuf"))?;
    let in_sched = |name: &'static str| -> Result<u64, DwarfError> {
        let sched = fields
            .get("sched")
            .copied()
            .ok_or(DwarfError::NoRuntimeG("sched"))?;
        Ok(sched
            + gobuf
                .get(name)
                .copied()
                .ok_or(DwarfError::NoRuntimeG(name))?)
    };
    let m = struct_members(&dwarf, "runtime.m")?.ok_or(DwarfError::NoRuntimeG("runtime.m"))?;
    let field = |name: &'static str| {
        fields
            .get(name)
            .copied()
            .ok_or(DwarfError::NoRuntimeG(name))
    };
    Ok(GLayout {
        goid: field("goid")?,
        gopc: field("gopc")?,
        startpc: field("startpc")?,
        atomicstatus: field("atomicstatus")?,
        waitreason: field("waitreason")?,
        waitsince: field("waitsince")?,
        tracking_seq: field("trackingSeq")?,
        parent_goid: fields.get("parentGoid").copied(),
        sched_pc: in_sched("pc")?,
        sched_sp: in_sched("sp")?,
        sched_bp: in_sched("bp")?,
        waiting: field("waiting")?,
        sudog_c: sudog_field("c")?,
        sudog_waitlink: sudog_field("waitlink")?,
        m: field("m")?,
        m_curg: m
            .get("curg")
            .copied()
            .ok_or(DwarfError::NoRuntimeG("curg"))?,
    })
}

/// Reads where the runtime keeps its timers from `file`'s DWARF sections.
pub fn read_timer_layout(file: &object::File<'_>) -> Result<TimerHeapLayout, DwarfError> {
    if section_data(file, ".debug_info").is_none() {
        return Err(DwarfError::Missing);
    }
    read_timer_layout_from(|name| section_data(file, name))
}

/// Reads the timer heap layout from DWARF sections given by name.
pub fn read_timer_layout_from<'a>(
    section: impl Fn(&str) -> Option<Cow<'a, [u8]>>,
) -> Result<TimerHeapLayout, DwarfError> {
    let load = |id: gimli::SectionId| -> Result<Cow<'a, [u8]>, gimli::Error> {
        Ok(section(id.name()).unwrap_or(Cow::Borrowed(&[])))
    };
    let sections = gimli::DwarfSections::load(load).map_err(DwarfError::Malformed)?;
    let dwarf = sections.borrow(|s| EndianSlice::new(s, LittleEndian));
    let p = struct_members(&dwarf, "runtime.p")?.ok_or(DwarfError::NoRuntimeG("runtime.p"))?;
    let timer =
        struct_members(&dwarf, "runtime.timer")?.ok_or(DwarfError::NoRuntimeG("runtime.timer"))?;
    // Go 1.23+ only: the heap inside p.timers.
    let timers_heap =
        struct_members(&dwarf, "runtime.timers")?.and_then(|t| t.get("heap").copied());
    let timer_in_ticker = match struct_members(&dwarf, "runtime.timeTimer")? {
        Some(time_timer) => time_timer.get("timer").copied(),
        None => struct_members(&dwarf, "time.Ticker")?
            .or(struct_members(&dwarf, "time.Timer")?)
            .and_then(|t| t.get("r").copied()),
    }
    // A program without a Timer or Ticker: the offset is never used.
    .unwrap_or(crate::typedesc::NO_TICKERS);
    let in_p = |name: &'static str| p.get(name).copied().ok_or(DwarfError::NoRuntimeG(name));
    let in_timer =
        |name: &'static str| timer.get(name).copied().ok_or(DwarfError::NoRuntimeG(name));
    Ok(TimerHeapLayout {
        p_timers: in_p("timers")?,
        timers_heap,
        timer_when: in_timer("when")?,
        timer_period: in_timer("period")?,
        timer_f: in_timer("f")?,
        timer_arg: in_timer("arg")?,
        timer_state: in_timer("state").or_else(|_| in_timer("status"))?,
        timer_in_ticker,
    })
}

/// The offset of `gofunc` (`go:func.*`) in `runtime.moduledata`.
pub fn read_moduledata_gofunc(file: &object::File<'_>) -> Result<u64, DwarfError> {
    if section_data(file, ".debug_info").is_none() {
        return Err(DwarfError::Missing);
    }
    let load = |id: gimli::SectionId| -> Result<Cow<'_, [u8]>, gimli::Error> {
        Ok(section_data(file, id.name()).unwrap_or(Cow::Borrowed(&[])))
    };
    let sections = gimli::DwarfSections::load(load).map_err(DwarfError::Malformed)?;
    let dwarf = sections.borrow(|s| EndianSlice::new(s, LittleEndian));
    struct_members(&dwarf, "runtime.moduledata")?
        .and_then(|m| m.get("gofunc").copied())
        .ok_or(DwarfError::NoRuntimeG("runtime.moduledata.gofunc"))
}

type Dwarf<'a> = gimli::Dwarf<EndianSlice<'a, LittleEndian>>;

/// Member name → byte offset of the first structure type called `name`.
fn struct_members(
    dwarf: &Dwarf<'_>,
    name: &str,
) -> Result<Option<HashMap<String, u64>>, DwarfError> {
    let malformed = DwarfError::Malformed;
    let mut units = dwarf.units();
    while let Some(header) = units.next().map_err(malformed)? {
        let unit = dwarf.unit(header).map_err(malformed)?;
        let mut tree = unit.entries_tree(None).map_err(malformed)?;
        let root = tree.root().map_err(malformed)?;
        let mut children = root.children();
        while let Some(child) = children.next().map_err(malformed)? {
            let entry = child.entry();
            if entry.tag() != gimli::DW_TAG_structure_type || !has_name(dwarf, &unit, entry, name) {
                continue;
            }
            let mut members = HashMap::new();
            let mut fields = child.children();
            while let Some(field) = fields.next().map_err(malformed)? {
                let entry = field.entry();
                if entry.tag() != gimli::DW_TAG_member {
                    continue;
                }
                let Some(field_name) = entry_name(dwarf, &unit, entry) else {
                    continue;
                };
                if let Some(AttributeValue::Udata(offset)) = entry
                    .attr_value(gimli::DW_AT_data_member_location)
                    .map_err(malformed)?
                {
                    members.insert(field_name, offset);
                }
            }
            return Ok(Some(members));
        }
    }
    Ok(None)
}

type Entry<'a, 'u> = gimli::DebuggingInformationEntry<'a, 'u, EndianSlice<'a, LittleEndian>>;

fn entry_name(
    dwarf: &Dwarf<'_>,
    unit: &gimli::Unit<EndianSlice<'_, LittleEndian>>,
    entry: &Entry<'_, '_>,
) -> Option<String> {
    let value = entry.attr_value(gimli::DW_AT_name).ok()??;
    let name = dwarf.attr_string(unit, value).ok()?;
    name.to_string().ok().map(|s| s.to_string())
}

fn has_name(
    dwarf: &Dwarf<'_>,
    unit: &gimli::Unit<EndianSlice<'_, LittleEndian>>,
    entry: &Entry<'_, '_>,
    name: &str,
) -> bool {
    entry_name(dwarf, unit, entry).as_deref() == Some(name)
}
