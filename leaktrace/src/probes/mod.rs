//! The eBPF side of a session: where the probes go ([`plan`], a pure
//! function of the binary), loading and attaching them to one process, and
//! reading what they aggregated ([`maps`]).
//!
//! Every probe is a perf-event link owned by the loaded [`Ebpf`]; dropping
//! [`Probes`] (or leaktrace dying, which closes the descriptors) removes them
//! all from the target.

pub mod cost;
pub mod maps;
pub mod plan;

use std::{num::NonZeroU32, path::Path};

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    programs::{
        ProgramError, RawTracePoint, UProbe,
        uprobe::{UProbeAttachLocation, UProbeLinkId, UProbeScope},
    },
};
use aya_log::EbpfLogger;
use leaktrace_ebpf::{
    FIELD_ABSENT, GoLayout, LOG_LEVEL_DEBUG, LOG_LEVEL_OFF, TimerLayout, global, map, program,
};
use leaktrace_gobinary::{GoBinary, disasm};

pub use maps::{
    ExitNotices, FdCounts, Park, ProcessExit, Seed, SiteCounts, StackId, TimerCounts, TrackedFd,
    TrackedGoroutine, TrackedTimer,
};
pub use plan::{Placement, PlacementError, ProbePoint};

/// The raw tracepoint every system call leaves through.
const SYS_EXIT: &str = "sys_exit";

static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/leaktrace-ebpf"));

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("loading the eBPF programs")]
    Load(#[source] Box<EbpfError>),
    #[error("the eBPF object has no program {0}")]
    MissingProgram(&'static str),
    #[error("the eBPF object has no map {0}")]
    MissingMap(&'static str),
    #[error("loading eBPF program {program}")]
    LoadProgram {
        program: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error(transparent)]
    Placement(#[from] PlacementError),
    #[error("{function}+{offset:#x} is not backed by the file")]
    NotInFile { function: String, offset: u64 },
    #[error("attaching a uprobe to {function}+{offset:#x} in {}", .target.display())]
    Attach {
        function: String,
        offset: u64,
        target: std::path::PathBuf,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("attaching to the {tracepoint} raw tracepoint")]
    AttachTracepoint {
        tracepoint: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("invalid pid 0")]
    NoPid,
    #[error("reading an eBPF map")]
    ReadMap(#[source] Box<aya::maps::MapError>),
    #[error("reading the probes' logs (--debug)")]
    Logs(#[source] Box<aya_log::Error>),
}

/// Whether to freeze the target when it calls `runtime.exit`, so that its
/// goroutines can be read before they are gone. Only `leaktrace run` does this:
/// it is the target's parent, so nobody else sees the stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtExit {
    Stop,
    Continue,
}

/// What the loaded programs do, fixed before load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub at_exit: AtExit,
    /// Record goroutine creation stacks (about 1 µs per goroutine).
    pub creation_stacks: bool,
    /// Log the first occurrence of each rare path (`--debug`).
    pub debug: bool,
    /// Only the exit probe and a few per-site probes will be attached
    /// (sampled mode): the preallocated tables are sized for those, about
    /// 2 MiB of kernel memory instead of about 27 MiB, which matters to
    /// `leaktrace agent` with one set per process.
    pub few_sites: bool,
    /// One-shot timers set less than this far ahead are not tracked
    /// (`--min-timer`).
    pub min_timer_ns: u64,
    /// The process whose descriptors [`Probes::attach_descriptors`] tracks.
    pub fd_tgid: u32,
}

/// Table sizes with [`Settings::few_sites`]: the stacks of at most 64
/// probed `go` statements and their counters; no timer probe is attached.
const FEW_SITES_STACKS: u32 = 1024;
const FEW_SITES_SITES: u32 = 1024;
const FEW_SITES_TIMER_SITES: u32 = 1;

/// Set to `read` to make every read of a new goroutine fail in the probes,
/// as the end-to-end test of `--debug` needs: a fault cannot be caused from
/// outside otherwise. Never set in normal use.
pub const FAULT_INJECTION_ENV: &str = "LEAKTRACE_FAULT_INJECTION";
/// Where injected reads go: far above any user-space mapping.
const UNMAPPED_OFFSET: u64 = 1 << 46;

/// Writes the probes' log records (`--debug`) as leaktrace notes.
struct DebugNotes;

impl log::Log for DebugNotes {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        crate::render::note(format!("debug: probe: {}", record.args()));
    }

    fn flush(&self) {}
}

pub struct Probes {
    ebpf: Ebpf,
    /// The probes' log records, with `--debug`.
    logs: Option<EbpfLogger<DebugNotes>>,
    links: Vec<(&'static str, UProbeLinkId)>,
    /// Every point attached, and whether the kernel emulates its instruction.
    attached: Vec<(&'static str, bool)>,
    loaded: Vec<&'static str>,
}

impl Probes {
    /// Loads the programs, specialised for `binary`'s runtime layout.
    pub fn load(binary: &GoBinary, settings: Settings) -> Result<Self, ProbeError> {
        let g = &binary.g_layout;
        let inject_read_fault = std::env::var(FAULT_INJECTION_ENV).is_ok_and(|v| v == "read");
        let layout = GoLayout {
            g_goid: if inject_read_fault {
                UNMAPPED_OFFSET
            } else {
                g.goid
            },
            g_gopc: g.gopc,
            g_startpc: g.startpc,
            g_parent_goid: g.parent_goid.unwrap_or(FIELD_ABSENT),
            g_m: g.m,
            m_curg: g.m_curg,
        };
        // Without a timer layout no timer probe is planned, so zeros are never read.
        let timers = binary.timer_layout.map_or(TimerLayout::default(), |l| {
            // A Timer or Ticker is known by its own address: before Go 1.23 the
            // runtime's functions get `&t.r`, from 1.23 the `timeTimer` itself.
            let go123 = l.timers_heap.is_some();
            TimerLayout {
                handle_from_argument: if go123 { 0 } else { l.timer_in_ticker },
                handle_from_receiver: l.timer_in_ticker,
                runtime_timer_when: l.timer_when,
                runtime_timer_period: l.timer_period,
                runtime_timer_f: l.timer_f,
            }
        });
        let stop_at_exit = u8::from(settings.at_exit == AtExit::Stop);
        let log_level = if settings.debug {
            LOG_LEVEL_DEBUG
        } else {
            LOG_LEVEL_OFF
        };
        let mut loader = EbpfLoader::new();
        if settings.few_sites {
            loader
                .map_max_entries(map::STACKS, FEW_SITES_STACKS)
                .map_max_entries(map::SITES, FEW_SITES_SITES)
                .map_max_entries(map::TIMER_SITES, FEW_SITES_TIMER_SITES);
        }
        let mut ebpf = loader
            .override_global(global::LOG_LEVEL, &log_level, true)
            .override_global(global::LAYOUT, &layout, true)
            .override_global(global::STOP_AT_EXIT, &stop_at_exit, true)
            .override_global(global::MIN_TIMER_NS, &settings.min_timer_ns, true)
            .override_global(global::FD_TGID, &settings.fd_tgid, true)
            .override_global(global::TIMER_LAYOUT, &timers, true)
            .override_global(
                global::GOROUTINE_STACKS,
                &u8::from(settings.creation_stacks),
                true,
            )
            .load(EBPF_OBJECT)
            .map_err(|e| ProbeError::Load(Box::new(e)))?;
        let logs = if settings.debug {
            Some(
                EbpfLogger::init_with_logger(&mut ebpf, DebugNotes)
                    .map_err(|e| ProbeError::Logs(Box::new(e)))?,
            )
        } else {
            None
        };
        Ok(Self {
            ebpf,
            logs,
            links: Vec::new(),
            attached: Vec::new(),
            loaded: Vec::new(),
        })
    }

    /// Attaches every probe of `points` to process `pid`, whose executable is
    /// reachable at `target` (for a running process, `/proc/PID/exe`).
    pub fn attach(
        &mut self,
        binary: &GoBinary,
        points: &[ProbePoint],
        target: &Path,
        pid: u32,
    ) -> Result<(), ProbeError> {
        for point in points {
            self.attach_point(binary, point, target, pid)?;
        }
        Ok(())
    }

    /// Attaches one probe to process `pid`.
    pub fn attach_point(
        &mut self,
        binary: &GoBinary,
        point: &ProbePoint,
        target: &Path,
        pid: u32,
    ) -> Result<(), ProbeError> {
        let pid = NonZeroU32::new(pid).ok_or(ProbeError::NoPid)?;
        let program = point.program;
        let first = !self.loaded.contains(&program);
        let uprobe: &mut UProbe = typed_program(&mut self.ebpf, program)?;
        if first {
            uprobe.load().map_err(|source| ProbeError::LoadProgram {
                program,
                source: Box::new(source),
            })?;
            self.loaded.push(program);
        }
        let not_in_file = || ProbeError::NotInFile {
            function: point.function.clone(),
            offset: point.offset,
        };
        let address = binary
            .function(&point.function)
            .and_then(|f| f.address.checked_add(point.offset))
            .ok_or_else(not_in_file)?;
        let file_offset = binary.file_offset(address).ok_or_else(not_in_file)?;
        let link = uprobe
            .attach(
                UProbeAttachLocation::AbsoluteOffset(file_offset),
                target,
                UProbeScope::OneProcess(pid),
            )
            .map_err(|source| ProbeError::Attach {
                function: point.function.clone(),
                offset: point.offset,
                target: target.to_path_buf(),
                source: Box::new(source),
            })?;
        self.links.push((program, link));
        let emulated = binary
            .code(leaktrace_gobinary::Function { address, size: 16 })
            .is_some_and(|code| disasm::is_emulated(code, address));
        self.attached.push((program, emulated));
        Ok(())
    }

    /// Tracks the descriptors of the process set in [`Settings::fd_tgid`]:
    /// the `sys_exit` raw tracepoint, which needs no tracefs. It runs at
    /// every system call's exit on the machine, and returns at once for
    /// other processes; the kernel removes it with leaktrace's descriptors.
    pub fn attach_descriptors(&mut self) -> Result<(), ProbeError> {
        let program = program::FD_SYSCALL;
        let tracepoint: &mut RawTracePoint = typed_program(&mut self.ebpf, program)?;
        tracepoint
            .load()
            .map_err(|source| ProbeError::LoadProgram {
                program,
                source: Box::new(source),
            })?;
        tracepoint
            .attach(SYS_EXIT)
            .map_err(|source| ProbeError::AttachTracepoint {
                tracepoint: SYS_EXIT,
                source: Box::new(source),
            })?;
        self.loaded.push(program);
        self.attached.push((program, true));
        Ok(())
    }

    /// Writes what the probes logged since the last call (`--debug`).
    pub fn flush_logs(&mut self) {
        if let Some(logs) = self.logs.as_mut() {
            logs.flush();
        }
    }

    /// Removes every probe from the target. Each uprobe removal waits for an
    /// RCU grace period in the kernel (~0.1 s here), so they are removed
    /// concurrently rather than one after another as a plain drop would.
    pub fn detach(mut self) {
        self.flush_logs();
        let mut links = Vec::new();
        for (program, id) in std::mem::take(&mut self.links) {
            let uprobe: Option<&mut UProbe> = self
                .ebpf
                .program_mut(program)
                .and_then(|p| p.try_into().ok());
            if let Some(link) = uprobe.and_then(|u| u.take_link(id).ok()) {
                links.push(link);
            }
        }
        std::thread::scope(|scope| {
            for link in links {
                scope.spawn(move || drop(link));
            }
        });
    }
}

/// One program of the object, as its type (`UProbe`, `RawTracePoint`).
fn typed_program<'e, P>(ebpf: &'e mut Ebpf, program: &'static str) -> Result<&'e mut P, ProbeError>
where
    &'e mut P: TryFrom<&'e mut aya::programs::Program, Error = ProgramError>,
{
    ebpf.program_mut(program)
        .ok_or(ProbeError::MissingProgram(program))?
        .try_into()
        .map_err(|source| ProbeError::LoadProgram {
            program,
            source: Box::new(source),
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use leaktrace_ebpf::{global, map, program};
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

    use super::EBPF_OBJECT;

    /// The names userspace uses are exactly those the kernel side defines.
    #[test]
    fn the_object_defines_every_shared_name_and_no_other() {
        let object = object::File::parse(EBPF_OBJECT).expect("the eBPF object parses");
        let in_section = |wanted: &dyn Fn(&str) -> bool| -> BTreeSet<String> {
            object
                .symbols()
                .filter(|s| {
                    s.section_index()
                        .and_then(|i| object.section_by_index(i).ok())
                        .and_then(|section| section.name().ok().map(wanted))
                        .unwrap_or(false)
                })
                .filter_map(|s| s.name().ok().map(str::to_string))
                .filter(|name| !name.is_empty() && !name.starts_with('.'))
                .collect()
        };
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            in_section(&|section| section.starts_with("uprobe") || section.starts_with("raw_tp")),
            names(program::ALL)
        );
        assert_eq!(in_section(&|section| section == "maps"), names(map::ALL));
        let globals = in_section(&|section| section.starts_with(".rodata"));
        for name in global::ALL {
            assert!(
                globals.contains(*name),
                "{name} is not in .rodata: {globals:?}"
            );
        }
    }
}
