//! Runtime layouts from the binary's own type descriptors, for binaries
//! without DWARF.
//!
//! Stripping (`-ldflags=-s -w`) removes DWARF and the symbol table, but not
//! the type descriptors the runtime itself needs: `new(T)` passes `T`'s
//! descriptor to `runtime.newobject`, and a struct's descriptor lists each
//! field's name, type and offset. So:
//!
//! 1. **Anchors.** A few runtime functions allocate a structure leaktrace
//!    reads: `runtime.malg` does `new(g)`, `runtime.procresize` `new(p)`,
//!    `runtime.modulesinit` `new([]*moduledata)`, and `time.newTimer`
//!    (Go 1.23+) `new(timeTimer)`; before 1.23, `time.NewTicker` allocates a
//!    `time.Ticker`. Decoding the function (found through the pclntab, which
//!    survives stripping) gives the `lea rax, [rip+X]` before the
//!    `call runtime.newobject`: X is the descriptor.
//! 2. **Field types.** Every other structure is reached from those through
//!    the types of their fields: `g.sched` is a `gobuf`, `g.waiting` a
//!    `*sudog`, `g.m` an `*m`, `p.timers` a `[]*timer` (before 1.23) or a
//!    `timers` whose `heap` is a `[]timerWhen` of `*timer`s.
//!
//! Nothing here depends on a table of releases: the descriptor formats
//! (`abi.Type`, `abi.StructType`, `abi.Name`) are the same from Go 1.17 to
//! 1.27, except that before 1.19 a field's offset word also carries the
//! "embedded" bit (`offsetAnon`). A field a release renamed or removed is an
//! error naming the type, the field and the release, never a guess.
//!
//! The heap profile's `bucket` has no descriptor (it is allocated with
//! `persistentalloc`, never with `new`), so its layout stays a fact of the
//! runtime's source (see `process/heap.rs`), checked against DWARF for every
//! installed release.

use std::collections::HashMap;

use crate::{GoVersion, runtime_layout::GLayout, runtime_layout::TimerHeapLayout};

/// Bytes of a binary by link-time address.
pub trait Image {
    /// `len` bytes at `address`, if the file holds them.
    fn bytes(&self, address: u64, len: usize) -> Option<&[u8]>;

    /// The pointer-sized word at `address`. A position-independent binary
    /// linked externally may leave a pointer's value to a relocation.
    fn word(&self, address: u64) -> Option<u64> {
        let raw = self.bytes(address, 8)?;
        Some(u64::from_le_bytes(raw.try_into().ok()?))
    }
}

/// Why a layout could not be read from the type descriptors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("cannot find the type descriptor of {ty}: {function} is not in the binary")]
    NoFunction {
        ty: &'static str,
        function: &'static str,
    },
    #[error("cannot find the type descriptor of {ty}: {function} allocates no such struct")]
    NoAnchor {
        ty: &'static str,
        function: &'static str,
    },
    #[error("the type descriptor of {ty} at {address:#x} is not in the file")]
    Unreadable { ty: &'static str, address: u64 },
    #[error("the type descriptor of {ty} at {address:#x} is corrupt: {what}")]
    Corrupt {
        ty: &'static str,
        address: u64,
        what: &'static str,
    },
    #[error("{ty} has no field {field} in {version}'s type descriptors")]
    MissingField {
        ty: &'static str,
        field: &'static str,
        version: String,
    },
}

/// The kinds of type leaktrace follows (`abi.Kind`, the same since Go 1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pointer,
    Slice,
    Struct,
    Other,
}

/// `abi.Type.Kind_`: the kind is its low 5 bits.
const KIND_OFFSET: u64 = 23;
const KIND_MASK: u8 = 0x1f;
const KIND_POINTER: u8 = 22;
const KIND_SLICE: u8 = 23;
const KIND_STRUCT: u8 = 25;
/// Size of `abi.Type`; a kind's own fields follow it.
const TYPE_SIZE: u64 = 48;
/// `abi.StructField`: `{Name, Typ, Offset}`.
const FIELD_SIZE: u64 = 24;
/// No runtime struct has nearly this many fields; a corrupt length must end.
const MAX_FIELDS: u64 = 1024;
/// Field names are short; a longer one is corrupt.
const MAX_NAME: u64 = 256;
/// The release whose descriptors hold a plain field offset (`offsetAnon`
/// before: the offset shifted left by one, with the embedded flag).
const PLAIN_FIELD_OFFSETS: GoVersion = GoVersion::new(1, 19, 0);

/// One field of a struct type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub offset: u64,
    /// The descriptor of the field's type.
    pub type_address: u64,
}

/// A struct type's fields, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructType {
    pub ty: &'static str,
    pub fields: HashMap<String, Field>,
}

/// Reads type descriptors from an image of a binary of one Go release.
pub struct Descriptors<'a> {
    image: &'a dyn Image,
    version: GoVersion,
}

impl<'a> Descriptors<'a> {
    pub fn new(image: &'a dyn Image, version: GoVersion) -> Self {
        Self { image, version }
    }

    fn kind(&self, ty: &'static str, address: u64) -> Result<Kind, TypeError> {
        let raw = self
            .image
            .bytes(address.wrapping_add(KIND_OFFSET), 1)
            .ok_or(TypeError::Unreadable { ty, address })?;
        Ok(match raw[0] & KIND_MASK {
            KIND_POINTER => Kind::Pointer,
            KIND_SLICE => Kind::Slice,
            KIND_STRUCT => Kind::Struct,
            _ => Kind::Other,
        })
    }

    fn word(&self, ty: &'static str, address: u64) -> Result<u64, TypeError> {
        self.image
            .word(address)
            .ok_or(TypeError::Unreadable { ty, address })
    }

    /// The element type of a pointer or slice type.
    pub fn element(&self, ty: &'static str, address: u64) -> Result<u64, TypeError> {
        match self.kind(ty, address)? {
            Kind::Pointer | Kind::Slice => self.word(ty, address.wrapping_add(TYPE_SIZE)),
            _ => Err(TypeError::Corrupt {
                ty,
                address,
                what: "not a pointer or slice type",
            }),
        }
    }

    /// A struct type's fields.
    pub fn struct_type(&self, ty: &'static str, address: u64) -> Result<StructType, TypeError> {
        if self.kind(ty, address)? != Kind::Struct {
            return Err(TypeError::Corrupt {
                ty,
                address,
                what: "not a struct type",
            });
        }
        // abi.StructType: {Type; PkgPath Name; Fields []StructField}.
        let array = self.word(ty, address.wrapping_add(TYPE_SIZE + 8))?;
        let count = self.word(ty, address.wrapping_add(TYPE_SIZE + 16))?;
        if count > MAX_FIELDS {
            return Err(TypeError::Corrupt {
                ty,
                address,
                what: "too many fields",
            });
        }
        let mut fields = HashMap::new();
        for index in 0..count {
            let field = array.wrapping_add(index * FIELD_SIZE);
            let name = self.name(ty, self.word(ty, field)?)?;
            let type_address = self.word(ty, field.wrapping_add(8))?;
            let raw_offset = self.word(ty, field.wrapping_add(16))?;
            let offset = if self.version < PLAIN_FIELD_OFFSETS {
                raw_offset >> 1
            } else {
                raw_offset
            };
            fields.entry(name).or_insert(Field {
                offset,
                type_address,
            });
        }
        Ok(StructType { ty, fields })
    }

    /// An `abi.Name`: a flags byte, a varint length, the bytes.
    fn name(&self, ty: &'static str, address: u64) -> Result<String, TypeError> {
        let corrupt = |what| TypeError::Corrupt { ty, address, what };
        let header = self
            .image
            .bytes(address, 1 + 2)
            .ok_or(TypeError::Unreadable { ty, address })?;
        let (len, used) = match (header[1], header[2]) {
            (low, _) if low < 0x80 => (u64::from(low), 1),
            (low, high) if high < 0x80 => (u64::from(low & 0x7f) | (u64::from(high) << 7), 2),
            _ => return Err(corrupt("a field name too long")),
        };
        if len > MAX_NAME {
            return Err(corrupt("a field name too long"));
        }
        let bytes = self
            .image
            .bytes(address.wrapping_add(1 + used), len as usize)
            .ok_or(TypeError::Unreadable { ty, address })?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("a field name not UTF-8"))
    }

    /// The one struct among `candidates` (the types a function allocates)
    /// that has every field in `required`.
    fn anchored(
        &self,
        ty: &'static str,
        function: &'static str,
        candidates: Option<Vec<u64>>,
        required: &[&str],
    ) -> Result<StructType, TypeError> {
        let candidates = candidates.ok_or(TypeError::NoFunction { ty, function })?;
        candidates
            .into_iter()
            .filter_map(|address| self.struct_type(ty, address).ok())
            .find(|s| required.iter().all(|f| s.fields.contains_key(*f)))
            .ok_or(TypeError::NoAnchor { ty, function })
    }

    fn field(&self, of: &StructType, field: &'static str) -> Result<Field, TypeError> {
        of.fields
            .get(field)
            .cloned()
            .ok_or_else(|| TypeError::MissingField {
                ty: of.ty,
                field,
                version: self.version.to_string(),
            })
    }

    fn offset(&self, of: &StructType, field: &'static str) -> Result<u64, TypeError> {
        Ok(self.field(of, field)?.offset)
    }

    /// The struct a field's type is, or points to.
    fn struct_of_field(
        &self,
        of: &StructType,
        field: &'static str,
        ty: &'static str,
    ) -> Result<StructType, TypeError> {
        let mut address = self.field(of, field)?.type_address;
        if self.kind(ty, address)? == Kind::Pointer {
            address = self.element(ty, address)?;
        }
        self.struct_type(ty, address)
    }
}

/// Where to find the anchors: the descriptors that a named function passes
/// to `runtime.newobject`; `None` when the function is not in the binary.
pub type Allocations<'f> = dyn Fn(&'static str) -> Option<Vec<u64>> + 'f;

/// [`TimerHeapLayout::timer_in_ticker`] of a program that has no Timer or
/// Ticker: it is never used.
pub const NO_TICKERS: u64 = 0;

/// Functions that allocate the anchor types.
pub const MALG: &str = "runtime.malg";
pub const PROCRESIZE: &str = "runtime.procresize";
pub const MODULESINIT: &str = "runtime.modulesinit";
/// Go 1.23+: `new(timeTimer)`, the runtime half of every Timer and Ticker.
pub const NEW_TIMER: &str = "time.newTimer";
/// Before Go 1.23: `&Ticker{C: c, r: runtimeTimer{...}}`.
pub const NEW_TICKER: &str = "time.NewTicker";
pub const NEW_TIMER_PRE_GO123: &str = "time.NewTimer";

/// Reads the layout of `runtime.g` and what it leads to.
pub fn g_layout(
    types: &Descriptors<'_>,
    allocations: &Allocations<'_>,
) -> Result<GLayout, TypeError> {
    let g = types.anchored(
        "runtime.g",
        MALG,
        allocations(MALG),
        &["goid", "sched", "atomicstatus"],
    )?;
    let gobuf = types.struct_of_field(&g, "sched", "runtime.gobuf")?;
    let sudog = types.struct_of_field(&g, "waiting", "runtime.sudog")?;
    let m = types.struct_of_field(&g, "m", "runtime.m")?;
    let sched = types.offset(&g, "sched")?;
    Ok(GLayout {
        goid: types.offset(&g, "goid")?,
        gopc: types.offset(&g, "gopc")?,
        startpc: types.offset(&g, "startpc")?,
        atomicstatus: types.offset(&g, "atomicstatus")?,
        waitreason: types.offset(&g, "waitreason")?,
        waitsince: types.offset(&g, "waitsince")?,
        tracking_seq: types.offset(&g, "trackingSeq")?,
        parent_goid: g.fields.get("parentGoid").map(|f| f.offset),
        sched_pc: sched + types.offset(&gobuf, "pc")?,
        sched_sp: sched + types.offset(&gobuf, "sp")?,
        sched_bp: sched + types.offset(&gobuf, "bp")?,
        waiting: types.offset(&g, "waiting")?,
        sudog_c: types.offset(&sudog, "c")?,
        sudog_waitlink: types.offset(&sudog, "waitlink")?,
        m: types.offset(&g, "m")?,
        m_curg: types.offset(&m, "curg")?,
    })
}

/// Reads where the runtime keeps its timers: each P's heap and the timer.
pub fn timer_layout(
    types: &Descriptors<'_>,
    allocations: &Allocations<'_>,
) -> Result<TimerHeapLayout, TypeError> {
    let p = types.anchored(
        "runtime.p",
        PROCRESIZE,
        allocations(PROCRESIZE),
        &["runq", "timers"],
    )?;
    let timers = types.field(&p, "timers")?;
    // Go 1.23+: `timers{..., heap []timerWhen}`, `timerWhen{timer *timer; when}`.
    // Before: `[]*timer`.
    let (timers_heap, timer_address) = match types.kind("runtime.timers", timers.type_address)? {
        Kind::Struct => {
            let heap_of = types.struct_type("runtime.timers", timers.type_address)?;
            let heap = types.field(&heap_of, "heap")?;
            let entry = types.element("runtime.timerWhen", heap.type_address)?;
            let entry = types.struct_type("runtime.timerWhen", entry)?;
            let timer = types.field(&entry, "timer")?;
            (
                Some(heap.offset),
                types.element("runtime.timer", timer.type_address)?,
            )
        }
        _ => {
            let pointer = types.element("runtime.timer", timers.type_address)?;
            (None, types.element("runtime.timer", pointer)?)
        }
    };
    let timer = types.struct_type("runtime.timer", timer_address)?;
    let ticker = if timers_heap.is_some() {
        types.anchored(
            "runtime.timeTimer",
            NEW_TIMER,
            allocations(NEW_TIMER),
            &["timer"],
        )
    } else {
        types
            .anchored("time.Ticker", NEW_TICKER, allocations(NEW_TICKER), &["r"])
            .or_else(|_| {
                types.anchored(
                    "time.Timer",
                    NEW_TIMER_PRE_GO123,
                    allocations(NEW_TIMER_PRE_GO123),
                    &["r"],
                )
            })
    };
    let timer_in_ticker = match ticker {
        Ok(ticker) => types.offset(&ticker, if timers_heap.is_some() { "timer" } else { "r" })?,
        // A program that links no Timer or Ticker constructor has none.
        Err(TypeError::NoFunction { .. }) => NO_TICKERS,
        Err(other) => return Err(other),
    };
    let state = types
        .offset(&timer, "state")
        .or_else(|_| types.offset(&timer, "status"))?;
    Ok(TimerHeapLayout {
        p_timers: timers.offset,
        timers_heap,
        timer_when: types.offset(&timer, "when")?,
        timer_period: types.offset(&timer, "period")?,
        timer_f: types.offset(&timer, "f")?,
        timer_arg: types.offset(&timer, "arg")?,
        timer_state: state,
        timer_in_ticker,
    })
}

/// Reads the offset of `gofunc` in `runtime.moduledata` (Go 1.18+; before,
/// funcdata holds absolute addresses and there is no such field).
pub fn moduledata_gofunc(
    types: &Descriptors<'_>,
    allocations: &Allocations<'_>,
) -> Result<u64, TypeError> {
    const TY: &str = "runtime.moduledata";
    let candidates = allocations(MODULESINIT).map(|found| {
        found
            .into_iter()
            .filter_map(|slice| types.element(TY, slice).ok())
            .filter_map(|pointer| types.element(TY, pointer).ok())
            .collect()
    });
    let moduledata = types.anchored(TY, MODULESINIT, candidates, &["pclntable", "ftab"])?;
    types.offset(&moduledata, "gofunc")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic image: descriptors written at chosen addresses.
    #[derive(Default)]
    struct Synthetic {
        base: u64,
        bytes: Vec<u8>,
    }

    impl Image for Synthetic {
        fn bytes(&self, address: u64, len: usize) -> Option<&[u8]> {
            let at = usize::try_from(address.checked_sub(self.base)?).ok()?;
            self.bytes.get(at..at.checked_add(len)?)
        }
    }

    impl Synthetic {
        fn at(&mut self, address: u64) -> usize {
            let at = (address - self.base) as usize;
            if self.bytes.len() < at + 4096 {
                self.bytes.resize(at + 4096, 0);
            }
            at
        }
        fn put_word(&mut self, address: u64, value: u64) {
            let at = self.at(address);
            self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        fn put_kind(&mut self, address: u64, kind: u8) {
            let at = self.at(address);
            self.bytes[at + KIND_OFFSET as usize] = kind;
        }
        fn put_name(&mut self, address: u64, name: &str) {
            let at = self.at(address);
            self.bytes[at] = 0;
            self.bytes[at + 1] = name.len() as u8;
            self.bytes[at + 2..at + 2 + name.len()].copy_from_slice(name.as_bytes());
        }
        /// A struct type at `address` whose fields are (name, offset, type).
        fn put_struct(&mut self, address: u64, fields: &[(&str, u64, u64)], shifted: bool) {
            self.put_kind(address, KIND_STRUCT);
            let array = address + 0x100;
            self.put_word(address + TYPE_SIZE + 8, array);
            self.put_word(address + TYPE_SIZE + 16, fields.len() as u64);
            for (i, (name, offset, ty)) in fields.iter().enumerate() {
                let field = array + i as u64 * FIELD_SIZE;
                let name_at = address + 0x800 + i as u64 * 0x20;
                self.put_name(name_at, name);
                self.put_word(field, name_at);
                self.put_word(field + 8, *ty);
                self.put_word(field + 16, if shifted { offset << 1 } else { *offset });
            }
        }
        fn put_pointer(&mut self, address: u64, kind: u8, elem: u64) {
            self.put_kind(address, kind);
            self.put_word(address + TYPE_SIZE, elem);
        }
    }

    const G: u64 = 0x10_0000;
    const GOBUF: u64 = 0x11_0000;
    const SUDOG_PTR: u64 = 0x12_0000;
    const SUDOG: u64 = 0x12_1000;
    const M_PTR: u64 = 0x13_0000;
    const M: u64 = 0x13_1000;
    const OTHER: u64 = 0x14_0000;

    fn runtime_g(shifted: bool) -> Synthetic {
        let mut image = Synthetic {
            base: G,
            ..Default::default()
        };
        image.put_struct(
            G,
            &[
                ("m", 48, M_PTR),
                ("sched", 56, GOBUF),
                ("atomicstatus", 144, OTHER),
                ("goid", 152, OTHER),
                ("waitsince", 168, OTHER),
                ("waitreason", 176, OTHER),
                ("trackingSeq", 189, OTHER),
                ("gopc", 296, OTHER),
                ("startpc", 312, OTHER),
                ("waiting", 328, SUDOG_PTR),
            ],
            shifted,
        );
        image.put_struct(
            GOBUF,
            &[("sp", 0, OTHER), ("pc", 8, OTHER), ("bp", 48, OTHER)],
            shifted,
        );
        image.put_pointer(SUDOG_PTR, KIND_POINTER, SUDOG);
        image.put_struct(SUDOG, &[("waitlink", 64, OTHER), ("c", 80, OTHER)], shifted);
        image.put_pointer(M_PTR, KIND_POINTER, M);
        image.put_struct(M, &[("curg", 192, OTHER)], shifted);
        image
    }

    fn expected() -> GLayout {
        GLayout {
            goid: 152,
            gopc: 296,
            startpc: 312,
            atomicstatus: 144,
            waitreason: 176,
            waitsince: 168,
            tracking_seq: 189,
            parent_goid: None,
            sched_pc: 64,
            sched_sp: 56,
            sched_bp: 104,
            waiting: 328,
            sudog_c: 80,
            sudog_waitlink: 64,
            m: 48,
            m_curg: 192,
        }
    }

    fn allocations(function: &'static str) -> Option<Vec<u64>> {
        (function == MALG).then(|| vec![OTHER, G])
    }

    #[test]
    fn reads_g_through_its_fields_types() {
        let image = runtime_g(false);
        let types = Descriptors::new(&image, GoVersion::new(1, 19, 0));
        assert_eq!(g_layout(&types, &allocations), Ok(expected()));
    }

    #[test]
    fn before_go119_offsets_carry_the_embedded_bit() {
        let image = runtime_g(true);
        let types = Descriptors::new(&image, GoVersion::new(1, 17, 2));
        assert_eq!(g_layout(&types, &allocations), Ok(expected()));
    }

    #[test]
    fn a_missing_field_names_type_field_and_release() {
        let mut image = runtime_g(false);
        image.put_struct(M, &[("g0", 0, OTHER)], false);
        let types = Descriptors::new(&image, GoVersion::new(1, 28, 0));
        let error = g_layout(&types, &allocations).unwrap_err();
        assert_eq!(
            error.to_string(),
            "runtime.m has no field curg in go1.28.0's type descriptors"
        );
    }

    #[test]
    fn no_anchor_is_one_error() {
        let image = runtime_g(false);
        let types = Descriptors::new(&image, GoVersion::new(1, 19, 0));
        assert_eq!(
            g_layout(&types, &|_| None),
            Err(TypeError::NoFunction {
                ty: "runtime.g",
                function: MALG
            })
        );
        assert_eq!(
            g_layout(&types, &|_| Some(vec![OTHER, 0xdead_beef])),
            Err(TypeError::NoAnchor {
                ty: "runtime.g",
                function: MALG
            })
        );
    }

    #[test]
    fn hostile_descriptors_stay_bounded() {
        let mut image = runtime_g(false);
        image.put_word(G + TYPE_SIZE + 16, u64::MAX);
        let types = Descriptors::new(&image, GoVersion::new(1, 19, 0));
        assert!(g_layout(&types, &allocations).is_err());
        let mut image = runtime_g(false);
        image.put_word(G + TYPE_SIZE + 8, u64::MAX - 4);
        let types = Descriptors::new(&image, GoVersion::new(1, 19, 0));
        assert!(g_layout(&types, &allocations).is_err());
    }
}
