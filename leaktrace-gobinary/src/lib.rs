//! Reading a Go executable: its Go version, runtime symbols, `runtime.g`
//! layout, wait-reason names, file:line for any PC, and where to probe.
//!
//! No eBPF here: this crate is shared by leaktrace, xtask (which generates the
//! per-version layout table) and the fuzz targets.

pub mod buildinfo;
pub mod disasm;
pub mod dwarf;
pub mod elf;
pub mod fuzz;
mod known_runtimes;
pub mod locate;
pub mod pclntab;
pub mod runtime_layout;
pub mod runtime_table;
pub mod typedesc;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use object::{Object, ObjectSection};

pub use buildinfo::GoVersion;
use buildinfo::{BuildInfo, BuildInfoError};
use dwarf::DwarfError;
use elf::{ElfImage, section_data};
use pclntab::Pclntab;
pub use runtime_layout::{GLayout, TimerHeapLayout};

/// The runtime's globals leaktrace reads, found with or without symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeGlobal {
    Allp,
    Mbuckets,
    MemProfileRate,
    DisableMemoryProfiling,
}

impl RuntimeGlobal {
    pub const ALL: [RuntimeGlobal; 4] = [
        Self::Allp,
        Self::Mbuckets,
        Self::MemProfileRate,
        Self::DisableMemoryProfiling,
    ];

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Allp => "runtime.allp",
            Self::Mbuckets => "runtime.mbuckets",
            Self::MemProfileRate => "runtime.MemProfileRate",
            Self::DisableMemoryProfiling => "runtime.disableMemoryProfiling",
        }
    }
}

/// More wait reasons than any release has: a corrupt bound must end.
const MAX_WAIT_REASONS: u64 = 256;

/// The first release whose `runtime.moduledata` has `gofunc`.
const GOFUNC_SINCE: GoVersion = GoVersion::new(1, 18, 0);

/// Layouts read from the binary's type descriptors, each with why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedLayouts {
    pub g: Result<GLayout, typedesc::TypeError>,
    pub timers: Result<TimerHeapLayout, typedesc::TypeError>,
    pub moduledata_gofunc: Result<u64, typedesc::TypeError>,
}

/// The binary's bytes by link-time address, for the descriptor reader.
struct FileImage<'a> {
    elf: &'a ElfImage,
    data: &'a [u8],
}

impl typedesc::Image for FileImage<'_> {
    fn bytes(&self, address: u64, len: usize) -> Option<&[u8]> {
        let at = usize::try_from(self.elf.file_offset(address)?).ok()?;
        self.data.get(at..at.checked_add(len)?)
    }

    fn word(&self, address: u64) -> Option<u64> {
        let raw = self.bytes(address, 8)?;
        match u64::from_le_bytes(raw.try_into().ok()?) {
            0 => Some(self.elf.relocated_word(address).unwrap_or(0)),
            value => Some(value),
        }
    }
}

const PCDATA_INL_TREE_INDEX: usize = 2;
const FUNCDATA_INL_TREE: usize = 3;

/// The oldest Go release leaktrace supports: the register ABI (1.17) and the
/// pclntab layout of 1.18, tested from 1.19 on.
pub const OLDEST_SUPPORTED: GoVersion = GoVersion::new(1, 17, 0);
/// The newest Go release leaktrace was tested with.
pub const NEWEST_TESTED: GoVersion = GoVersion::new(1, 27, u32::MAX);

/// Why a binary cannot be traced. Each message names the problem and what
/// to do; the cause, where there is one, is the error's source.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error("cannot read {}", .0.display())]
    Unreadable(PathBuf, #[source] std::io::Error),
    #[error("{} is not an ELF executable; leaktrace traces Go programs on Linux", .0.display())]
    NotElf(PathBuf),
    #[error("{path} is built for {arch}; leaktrace supports x86-64 (amd64) binaries only", path = .0.display(), arch = .1)]
    WrongArchitecture(PathBuf, String),
    #[error("{} is not a Go program (it has no Go build info); leaktrace traces Go binaries only", .0.display())]
    NotGo(PathBuf),
    #[error(
        "{path} was built with {version}, which is too old; rebuild it with Go {}.{} or newer",
        OLDEST_SUPPORTED.major, OLDEST_SUPPORTED.minor, path = .0.display(), version = .1
    )]
    TooOld(PathBuf, String),
    /// No DWARF, the type descriptors do not give the layout, and the Go
    /// release is not in the generated table either.
    #[error(
        "{path} ({version}) has no DWARF debug info, and its type descriptors do not give the runtime's layout",
        path = .0.display(), version = .1
    )]
    NoLayout(PathBuf, String, #[source] typedesc::TypeError),
    #[error("{} looks like a Go binary but cannot be parsed", .0.display())]
    Corrupt(PathBuf, #[source] Malformed),
    #[error("cannot find {symbol} in {path}; rebuild it without -ldflags=\"-s\"", path = .0.display(), symbol = .1)]
    MissingRuntimeSymbol(PathBuf, &'static str),
}

/// What is wrong inside a binary that looks like Go's.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    #[error(transparent)]
    BuildInfo(BuildInfoError),
    #[error(transparent)]
    Pclntab(#[from] locate::LocateError),
    #[error("no .text section")]
    NoTextSection,
    #[error("cannot find runtime.text")]
    NoRuntimeText,
    #[error(transparent)]
    Dwarf(#[from] DwarfError),
}

/// Whether a function belongs to the Go runtime: package `runtime` or the
/// runtime's internal packages (`internal/runtime/...`, Go 1.23+). One
/// definition for placement, symbolization and verdicts alike.
pub fn is_runtime_function(name: &str) -> bool {
    name.starts_with("runtime.") || name.starts_with("internal/runtime/")
}

/// A function's code location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    pub address: u64,
    pub size: u64,
}

/// A PC resolved to source, as Go prints it in a traceback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct SourceLocation {
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// Where the `runtime.g` layout came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutSource {
    Dwarf,
    /// The runtime's type descriptors in the binary (see [`typedesc`]).
    TypeDescriptors,
    /// leaktrace's generated table, for this Go release.
    Table(GoVersion),
}

/// Everything leaktrace needs to know about a Go executable, read once.
pub struct GoBinary {
    pub path: PathBuf,
    pub build: BuildInfo,
    pub g_layout: GLayout,
    pub layout_source: LayoutSource,
    /// Where the runtime keeps its running timers: from DWARF, or the table.
    pub timer_layout: Option<TimerHeapLayout>,
    /// Things the user should know, e.g. a layout taken from another patch release.
    pub warnings: Vec<String>,
    /// `runtime.waitReasonStrings`, indexed by the `waitReason` enum.
    pub wait_reasons: Vec<String>,
    /// Offset of `gofunc` in `runtime.moduledata`: from DWARF, or the table.
    pub moduledata_gofunc: Option<u64>,
    elf: ElfImage,
    pclntab: Pclntab,
    pointer_globals: Vec<(u64, u64)>,
    /// Every section's (address, size), by name.
    sections: HashMap<String, (u64, u64)>,
    /// `go:func.*`, the base of funcdata such as inline trees: from the
    /// symbol table, or from `runtime.firstmoduledata` found in the data.
    gofunc: Option<u64>,
    /// `$GOROOT/src/` as recorded in file names; empty with `-trimpath`.
    goroot_src: String,
    data: Vec<u8>,
}

impl GoBinary {
    pub fn open(path: &Path) -> Result<Self, BinaryError> {
        Self::open_as(path, path)
    }

    /// Reads the binary at `path` (e.g. `/proc/PID/exe`, which works across
    /// mount namespaces) but names it `shown` (where it really lives) in
    /// errors and in [`GoBinary::path`].
    pub fn open_as(path: &Path, shown: &Path) -> Result<Self, BinaryError> {
        let data =
            std::fs::read(path).map_err(|e| BinaryError::Unreadable(shown.to_path_buf(), e))?;
        Self::parse(shown, data)
    }

    pub fn parse(path: &Path, data: Vec<u8>) -> Result<Self, BinaryError> {
        let p = || path.to_path_buf();
        let file = object::File::parse(&*data).map_err(|_| BinaryError::NotElf(p()))?;
        if file.format() != object::BinaryFormat::Elf {
            return Err(BinaryError::NotElf(p()));
        }
        let buildinfo =
            section_data(&file, ".go.buildinfo").ok_or_else(|| BinaryError::NotGo(p()))?;
        let elf = ElfImage::read(&file);
        let read = |address: u64, len: usize| -> Option<Vec<u8>> {
            let at = usize::try_from(elf.file_offset(address)?).ok()?;
            Some(data.get(at..at.checked_add(len)?)?.to_vec())
        };
        let build = match buildinfo::parse(&buildinfo).or_else(|e| match e {
            BuildInfoError::OlderThanGo118 => buildinfo::parse_pointed(&buildinfo, read),
            other => Err(other),
        }) {
            Ok(build) => build,
            Err(BuildInfoError::NotGo) => return Err(BinaryError::NotGo(p())),
            Err(BuildInfoError::OlderThanGo118) => unreachable!("parsed as pointers"),
            Err(corrupt @ BuildInfoError::Corrupt(_)) => {
                return Err(BinaryError::Corrupt(p(), Malformed::BuildInfo(corrupt)));
            }
        };
        if build.version < OLDEST_SUPPORTED {
            return Err(BinaryError::TooOld(p(), build.version_text.clone()));
        }
        if file.architecture() != object::Architecture::X86_64 {
            return Err(BinaryError::WrongArchitecture(
                p(),
                format!("{:?}", file.architecture()).to_lowercase(),
            ));
        }
        let text_section = file
            .section_by_name(".text")
            .map(|s| s.address())
            .ok_or_else(|| BinaryError::Corrupt(p(), Malformed::NoTextSection))?;
        let mut pclntab =
            locate::pclntab(&file, &elf, &data).map_err(|e| BinaryError::Corrupt(p(), e.into()))?;
        if !pclntab.has_absolute_entries() {
            let text_start = locate::text_start(&pclntab, &elf, &data, text_section)
                .ok_or_else(|| BinaryError::Corrupt(p(), Malformed::NoRuntimeText))?;
            pclntab.set_text_start(text_start);
        }
        let dwarf_g = match dwarf::read_g_layout(&file) {
            Ok(layout) => Some(layout),
            Err(DwarfError::Missing) => None,
            Err(other) => return Err(BinaryError::Corrupt(p(), other.into())),
        };
        let dwarf_timers = dwarf::read_timer_layout(&file).ok();
        let dwarf_gofunc = dwarf::read_moduledata_gofunc(&file).ok();
        let pointer_globals = [".data", ".bss"]
            .iter()
            .filter_map(|name| file.section_by_name(name))
            .map(|s| (s.address(), s.size()))
            .collect();
        let sections = file
            .sections()
            .filter_map(|s| Some((s.name().ok()?.to_string(), (s.address(), s.size()))))
            .collect();
        drop(file);
        let goroot_src = pclntab
            .func_by_name("runtime.main")
            .and_then(|f| pclntab.position(&f, f.entry))
            .and_then(|pos| pos.file.strip_suffix("runtime/proc.go").map(str::to_string))
            .unwrap_or_default();
        let mut binary = Self {
            path: p(),
            build,
            g_layout: GLayout::default(),
            layout_source: LayoutSource::Dwarf,
            timer_layout: None,
            warnings: Vec::new(),
            wait_reasons: Vec::new(),
            moduledata_gofunc: None,
            elf,
            pclntab,
            pointer_globals,
            sections,
            gofunc: None,
            goroot_src,
            data,
        };
        binary.resolve_layouts(dwarf_g, dwarf_timers, dwarf_gofunc)?;
        Ok(binary)
    }

    /// Each layout from DWARF, else from the binary's own type descriptors,
    /// else from the generated table (which then says which release it is of).
    fn resolve_layouts(
        &mut self,
        dwarf_g: Option<GLayout>,
        dwarf_timers: Option<TimerHeapLayout>,
        dwarf_gofunc: Option<u64>,
    ) -> Result<(), BinaryError> {
        let version = self.build.version;
        let text = self.build.version_text.clone();
        let known = runtime_table::lookup(version);
        let described = self.described_layouts();
        let mut from_table = false;
        (self.g_layout, self.layout_source) = match (dwarf_g, described.g) {
            (Some(layout), _) => (layout, LayoutSource::Dwarf),
            (None, Ok(layout)) => (layout, LayoutSource::TypeDescriptors),
            (None, Err(why)) => match known {
                Some((entry, _)) => {
                    from_table = true;
                    (entry.g, LayoutSource::Table(entry.version))
                }
                None => return Err(BinaryError::NoLayout(self.path.clone(), text, why)),
            },
        };
        self.timer_layout = dwarf_timers.or(described.timers.ok()).or_else(|| {
            from_table = from_table || known.is_some();
            known.map(|(k, _)| k.timers)
        });
        self.moduledata_gofunc = dwarf_gofunc
            .or(described.moduledata_gofunc.ok())
            .or_else(|| {
                // Go 1.17 has no gofunc: its funcdata are absolute addresses.
                (version >= GOFUNC_SINCE)
                    .then(|| {
                        from_table = from_table || known.is_some();
                        known.map(|(k, _)| k.moduledata_gofunc)
                    })
                    .flatten()
            });
        if from_table && let Some((entry, runtime_table::Match::NearestPatch)) = known {
            self.warnings.push(format!(
                "{text} has no DWARF, and its type descriptors do not describe every runtime structure; using the layout of {}, the nearest release leaktrace knows",
                entry.version
            ));
        }
        if version > NEWEST_TESTED {
            self.warnings.push(format!(
                "{text} is newer than the newest Go release leaktrace was tested with (go{}.{}); its layout comes from {}",
                NEWEST_TESTED.major,
                NEWEST_TESTED.minor,
                match self.layout_source {
                    LayoutSource::Dwarf => "its DWARF",
                    LayoutSource::TypeDescriptors => "its own type descriptors",
                    LayoutSource::Table(_) => "leaktrace's table",
                }
            ));
        }
        self.gofunc = ["go:func.*", "go.func.*"]
            .iter()
            .find_map(|name| self.elf.symbol(name))
            .map(|s| s.address)
            .or_else(|| self.find_gofunc(self.moduledata_gofunc?));
        self.wait_reasons = match self.read_wait_reasons() {
            Some(reasons) => reasons,
            None => known
                .map(|(k, _)| k.wait_reasons.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        };
        Ok(())
    }

    /// What the binary's own type descriptors say, each layout on its own
    /// (the layout test compares them with DWARF field by field).
    pub fn described_layouts(&self) -> DescribedLayouts {
        let image = FileImage {
            elf: &self.elf,
            data: &self.data,
        };
        let types = typedesc::Descriptors::new(&image, self.build.version);
        let allocations = |function: &'static str| self.allocated_types(function);
        DescribedLayouts {
            g: typedesc::g_layout(&types, &allocations),
            timers: typedesc::timer_layout(&types, &allocations),
            moduledata_gofunc: typedesc::moduledata_gofunc(&types, &allocations),
        }
    }

    /// The type descriptors `function` passes to `runtime.newobject`.
    fn allocated_types(&self, function: &str) -> Option<Vec<u64>> {
        let newobject = self.function("runtime.newobject")?;
        let function = self.function(function)?;
        Some(disasm::types_passed_to(
            self.code(function)?,
            function.address,
            newobject.address,
        ))
    }

    fn find_gofunc(&self, offset: u64) -> Option<u64> {
        locate::gofunc(&self.sections, &self.elf, &self.data, offset)
    }

    /// The base of funcdata such as inline trees (`go:func.*`), if found:
    /// without it, inlined calls are not told apart from their callers.
    pub fn gofunc(&self) -> Option<u64> {
        self.gofunc
    }

    /// A function's address and size, from the symbol table or the pclntab.
    pub fn function(&self, name: &str) -> Option<Function> {
        if let Some(sym) = self.elf.symbol(name).filter(|s| s.size > 0) {
            return Some(Function {
                address: sym.address,
                size: sym.size,
            });
        }
        let func = self.pclntab.func_by_name(name)?;
        Some(Function {
            address: func.entry,
            size: func.end.saturating_sub(func.entry),
        })
    }

    /// The address of `runtime.allgs`, as linked (add the load bias for PIE).
    /// Without a symbol table, it is the one global that `runtime.allgadd`
    /// touches at +0, +8 and +16: the slice's pointer, length and capacity.
    pub fn allgs_address(&self) -> Result<u64, BinaryError> {
        if let Some(symbol) = self.elf.symbol("runtime.allgs") {
            return Ok(symbol.address);
        }
        let missing = || BinaryError::MissingRuntimeSymbol(self.path.clone(), "runtime.allgs");
        let allgadd = self.function("runtime.allgadd").ok_or_else(missing)?;
        let globals =
            disasm::global_references(self.code(allgadd).ok_or_else(missing)?, allgadd.address);
        let mut slices = globals
            .iter()
            .copied()
            .filter(|&a| globals.contains(&(a + 8)) && globals.contains(&(a + 16)));
        let allgs = slices.next().ok_or_else(missing)?;
        // More than one slice-shaped global: do not guess.
        slices
            .all(|other| other == allgs)
            .then_some(allgs)
            .ok_or_else(missing)
    }

    /// The address of `runtime.allp` (the slice of Ps, each with its timer
    /// heap), as linked.
    pub fn allp_address(&self) -> Option<u64> {
        self.runtime_global(RuntimeGlobal::Allp)
    }

    /// The address of one of the runtime's globals, as linked: from the
    /// symbol table, or else from the code of a runtime function that uses
    /// it, which the pclntab still names in a stripped binary:
    /// - `allp`: the one slice whose pointer and length `runtime.preemptall`
    ///   loads (`for _, pp := range allp`);
    /// - `mbuckets`: the one global that `runtime.mProf_FlushLocked` walks
    ///   and `runtime.stkbucket` inserts into;
    /// - `disableMemoryProfiling` and `MemProfileRate`: the byte flag and the
    ///   word stored under it, in `runtime.schedinit` (Go 1.21+) or the
    ///   runtime's `init` (before).
    ///
    /// Two candidates that disagree give none: never a guess.
    pub fn runtime_global(&self, global: RuntimeGlobal) -> Option<u64> {
        if let Some(symbol) = self.elf.symbol(global.symbol()) {
            return Some(symbol.address);
        }
        let references = |function: &str| {
            let function = self.function(function)?;
            Some(disasm::global_references(
                self.code(function)?,
                function.address,
            ))
        };
        let flag_stores = || -> Vec<(u64, u64)> {
            ["runtime.schedinit", "runtime.init"]
                .iter()
                .filter_map(|name| {
                    let function = self.function(name)?;
                    Some(disasm::flag_guarded_stores(
                        self.code(function)?,
                        function.address,
                    ))
                })
                .flatten()
                .collect()
        };
        let candidates: Vec<u64> = match global {
            RuntimeGlobal::Allp => {
                let globals = references("runtime.preemptall")?;
                globals
                    .iter()
                    .copied()
                    .filter(|&a| globals.contains(&(a + 8)))
                    .collect()
            }
            RuntimeGlobal::Mbuckets => {
                let inserted = references("runtime.stkbucket")?;
                let mut walked = references("runtime.mProf_FlushLocked")?;
                walked.retain(|a| inserted.contains(a));
                walked
            }
            RuntimeGlobal::DisableMemoryProfiling => {
                flag_stores().into_iter().map(|(flag, _)| flag).collect()
            }
            RuntimeGlobal::MemProfileRate => {
                flag_stores().into_iter().map(|(_, word)| word).collect()
            }
        };
        let (&first, rest) = candidates.split_first()?;
        rest.iter().all(|&other| other == first).then_some(first)
    }

    /// The functions whose names start with `prefix` that call `target`
    /// directly, by decoding them.
    pub fn callers(&self, target: u64, prefix: &str) -> Vec<(String, Function)> {
        self.pclntab
            .funcs()
            .filter(|f| f.name.starts_with(prefix))
            .filter_map(|f| {
                let function = Function {
                    address: f.entry,
                    size: f.end.saturating_sub(f.entry),
                };
                let calls = disasm::calls_to(self.code(function)?, f.entry, target);
                (!calls.is_empty()).then_some((f.name, function))
            })
            .collect()
    }

    /// The sections that hold global variables with pointers (`.data`,
    /// `.bss`), as (address, size), as linked.
    pub fn pointer_globals(&self) -> &[(u64, u64)] {
        &self.pointer_globals
    }

    /// A setting of the binary's default GODEBUG (from go.mod's go line and
    /// //go:debug directives), e.g. `asynctimerchan`.
    pub fn default_godebug(&self, key: &str) -> Option<&str> {
        let settings = self
            .build
            .modinfo
            .lines()
            .find_map(|l| l.strip_prefix("build\tDefaultGODEBUG="))?;
        settings
            .split(',')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    /// The machine code of `function`.
    pub fn code(&self, function: Function) -> Option<&[u8]> {
        let start = usize::try_from(self.elf.file_offset(function.address)?).ok()?;
        self.data
            .get(start..start.checked_add(usize::try_from(function.size).ok()?)?)
    }

    /// The file offset of a code address: uprobes are placed by file offset.
    pub fn file_offset(&self, address: u64) -> Option<u64> {
        self.elf.file_offset(address)
    }

    pub fn address_of_file_offset(&self, offset: u64) -> Option<u64> {
        self.elf.address_of_file_offset(offset)
    }

    /// The function containing `pc` and the source line of the instruction at `pc`.
    pub fn location(&self, pc: u64) -> Option<SourceLocation> {
        let func = self.pclntab.func_for_pc(pc)?;
        let pos = self.pclntab.position(&func, pc)?;
        Some(SourceLocation {
            function: func.name,
            file: pos.file,
            line: pos.line,
        })
    }

    /// Where a `go` statement is, given the goroutine's `gopc` (a return
    /// address): Go's traceback looks up `gopc - 1` for the same reason.
    /// Inlined code is named by the inlined function.
    pub fn call_site(&self, return_pc: u64) -> Option<SourceLocation> {
        self.call_frames(return_pc).into_iter().next()
    }

    /// The frames of the call that returns to `return_pc`, innermost first:
    /// one per inlined call, then the physical function, as Go's tracebacks
    /// print them. Without `go:func.*` (stripped), only the physical one.
    pub fn call_frames(&self, return_pc: u64) -> Vec<SourceLocation> {
        let Some(pc) = return_pc.checked_sub(1) else {
            return Vec::new();
        };
        let Some(func) = self.pclntab.func_for_pc(pc) else {
            return Vec::new();
        };
        let mut frames = Vec::new();
        let mut pc = pc;
        // Inlining depth is small; the bound guards against a corrupt table.
        for _ in 0..32 {
            let Some(position) = self.pclntab.position(&func, pc) else {
                break;
            };
            let inlined = self
                .pclntab
                .pcdata_value(&func, PCDATA_INL_TREE_INDEX, pc)
                .and_then(|index| usize::try_from(index).ok())
                .and_then(|index| self.inlined_call(&func, index));
            match inlined {
                Some((name, parent_pc)) => {
                    frames.push(SourceLocation {
                        function: name,
                        file: position.file,
                        line: position.line,
                    });
                    pc = func.entry + parent_pc;
                }
                None => {
                    frames.push(SourceLocation {
                        function: func.name.clone(),
                        file: position.file,
                        line: position.line,
                    });
                    return frames;
                }
            }
        }
        frames
    }

    fn inlined_call(&self, func: &pclntab::Func, index: usize) -> Option<(String, u64)> {
        let tree = self
            .pclntab
            .funcdata_address(func, FUNCDATA_INL_TREE, self.gofunc)?;
        let size = self.pclntab.inlined_call_size();
        let at = usize::try_from(self.elf.file_offset(tree + (index * size) as u64)?).ok()?;
        self.pclntab
            .inlined_call(self.data.get(at..at.checked_add(size)?)?)
    }

    /// Whether `pc` is in a compiler-generated wrapper, which Go's own
    /// tracebacks leave out: special `funcID`s outside the runtime are wrappers.
    pub fn is_wrapper(&self, pc: u64) -> bool {
        self.pclntab
            .func_for_pc(pc)
            .is_some_and(|f| f.func_id != 0 && !is_runtime_function(&f.name))
    }

    /// The function a goroutine runs, given its `startpc`. `go f(x)` starts a
    /// compiler-generated wrapper (`gowrap1` from Go 1.22, `funcN` before)
    /// that calls `f`; like Go's tracebacks, leaktrace sees through it.
    pub fn goroutine_entry(&self, startpc: u64) -> Option<SourceLocation> {
        let func = self.pclntab.func_for_pc(startpc)?;
        if func.func_id != 0
            && !is_runtime_function(&func.name)
            && let Some(wrapped) = self.wrapped_function(&func)
        {
            return Some(wrapped);
        }
        self.function_start(startpc)
    }

    /// Where the function a `go` wrapper runs begins. The wrapper calls it
    /// directly (`go f(x)`), or has it inlined (then the outermost inlined
    /// frame of a call in the wrapper names it), or calls the closure
    /// literal it wraps through its context (`go func(x int) {...}(x)`):
    /// the ordinary function of the same parent that starts on the same
    /// line of the same file.
    fn wrapped_function(&self, wrapper: &pclntab::Func) -> Option<SourceLocation> {
        let function = Function {
            address: wrapper.entry,
            size: wrapper.end.saturating_sub(wrapper.entry),
        };
        for (target, return_pc) in disasm::direct_calls(self.code(function)?, wrapper.entry) {
            let frames = self.call_frames(return_pc);
            if let [.., inlined, _wrapper] = frames.as_slice() {
                // The call is inside code inlined into the wrapper.
                return Some(
                    self.pclntab
                        .func_by_name(&inlined.function)
                        .and_then(|f| self.function_start(f.entry))
                        .unwrap_or_else(|| inlined.clone()),
                );
            }
            if let Some(f) = self
                .pclntab
                .func_for_pc(target)
                .filter(|f| !is_runtime_function(&f.name) && f.entry != wrapper.entry)
            {
                return self.function_start(f.entry);
            }
        }
        let parent = &wrapper.name[..=wrapper.name.rfind('.')?];
        let here = self.pclntab.position(wrapper, wrapper.entry)?;
        let mut literals = self.pclntab.funcs().filter(|f| {
            f.func_id == 0
                && f.name.starts_with(parent)
                && f.start_line == wrapper.start_line
                && self
                    .pclntab
                    .position(f, f.entry)
                    .is_some_and(|p| p.file == here.file)
        });
        let literal = literals.next()?;
        // Two literals on one line: do not guess.
        literals
            .next()
            .is_none()
            .then(|| self.function_start(literal.entry))
            .flatten()
    }

    /// Where a function begins, given its entry PC.
    pub fn function_start(&self, entry: u64) -> Option<SourceLocation> {
        let func = self.pclntab.func_for_pc(entry)?;
        let pos = self.pclntab.position(&func, entry)?;
        let line = if func.start_line > 0 {
            func.start_line
        } else {
            pos.line
        };
        Some(SourceLocation {
            function: func.name,
            file: pos.file,
            line,
        })
    }

    /// Whether a source file belongs to the Go distribution (standard library
    /// or runtime) rather than to the program or its dependencies.
    pub fn is_standard_library(&self, location: &SourceLocation) -> bool {
        if !self.goroot_src.is_empty() {
            return location.file.starts_with(&self.goroot_src);
        }
        // -trimpath: std files are "pkg/file.go", module files "module/path/file.go".
        let main_module = self
            .build
            .modinfo
            .lines()
            .find_map(|l| l.strip_prefix("mod\t"))
            .and_then(|l| l.split('\t').next());
        if main_module.is_some_and(|m| location.file.starts_with(&format!("{m}/"))) {
            return false;
        }
        let first = location.file.split('/').next().unwrap_or_default();
        !first.contains('.') && location.file.contains('/')
    }

    /// `runtime.waitReasonStrings`: from the symbol table, or else where
    /// `runtime.waitReason.String` finds it, which checks the index against
    /// the table's length and loads the one writable global it refers to.
    fn wait_reasons_table(&self) -> Option<elf::Symbol> {
        if let Some(table) = self.elf.symbol("runtime.waitReasonStrings") {
            return Some(table);
        }
        let string = self.function("runtime.waitReason.String")?;
        let code = self.code(string)?;
        let count = disasm::first_compare_bound(code, string.address)?;
        let &(data, size) = self.sections.get(".data")?;
        let mut tables = disasm::global_references(code, string.address)
            .into_iter()
            .filter(|a| (data..data.saturating_add(size)).contains(a));
        let address = tables.next()?;
        // Two writable globals: do not guess.
        tables.all(|other| other == address).then_some(elf::Symbol {
            address,
            size: count.min(MAX_WAIT_REASONS) * 16,
        })
    }

    /// `runtime.waitReasonStrings`, if it can be found.
    fn read_wait_reasons(&self) -> Option<Vec<String>> {
        let table = self.wait_reasons_table()?;
        let read = |address: u64, len: u64| -> Option<&[u8]> {
            let at = usize::try_from(self.elf.file_offset(address)?).ok()?;
            self.data
                .get(at..at.checked_add(usize::try_from(len).ok()?)?)
        };
        let raw = read(table.address, table.size)?;
        Some(
            raw.chunks_exact(16)
                .map(|header| {
                    let ptr = u64::from_le_bytes(header[..8].try_into().unwrap_or_default());
                    let len = u64::from_le_bytes(header[8..].try_into().unwrap_or_default());
                    read(ptr, len.min(256))
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default()
                })
                .collect(),
        )
    }
}
