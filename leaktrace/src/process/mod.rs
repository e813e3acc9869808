//! The traced process, read-only: where its executable is, how far it was
//! loaded from its link-time addresses, and what its memory says about its
//! goroutines and tickers. What leaktrace knows about the *binary* stays in
//! [`GoBinary`]; this module only adds the running image, reached through
//! [`Memory`].

pub mod census;
pub mod fds;
pub mod fuzz;
pub mod goroutines;
pub mod heap;
pub mod memory;
pub mod tickers;
pub mod timers;

use std::{
    collections::{HashMap, HashSet},
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use leaktrace_gobinary::{BinaryError, GLayout, GoBinary, RuntimeGlobal};

use goroutines::{AllgsError, Goroutine};
pub use memory::{Memory, MemoryError, ProcMem};
use tickers::TickerMemory;

/// How long to wait for a SIGSTOP to take hold of every thread.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("no process with PID {0}; check the PID (is the process still running?)")]
    NoSuchProcess(u32),
    #[error(
        "cannot read /proc/{0}/exe: permission denied; leaktrace needs CAP_SYS_PTRACE to trace another user's process (run it with sudo)"
    )]
    ExecutableHidden(u32),
    #[error(
        "process {0} has no executable (a kernel thread or a zombie); give the PID of a running Go program"
    )]
    NoExecutable(u32),
    #[error("reading the memory map of process {pid}")]
    Maps {
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("{} is not mapped in process {pid}", .executable.display())]
    NotMapped { pid: u32, executable: PathBuf },
    #[error(
        "cannot read the memory of process {pid}: leaktrace needs CAP_SYS_PTRACE to read another user's process (run it with sudo, or grant the capability)"
    )]
    MemoryDenied {
        pid: u32,
        #[source]
        source: MemoryError,
    },
    #[error("cannot read the memory of process {pid} (did it exit?)")]
    MemoryUnreadable {
        pid: u32,
        #[source]
        source: MemoryError,
    },
    #[error("finding runtime.allgs")]
    NoAllgs(#[source] BinaryError),
    #[error("reading the goroutines of process {pid}")]
    Goroutines {
        pid: u32,
        #[source]
        source: AllgsError,
    },
}

/// A running process's executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executable {
    /// Where it lives, as the user knows it (the target of `/proc/PID/exe`).
    pub shown: PathBuf,
    /// A path to it that works across mount namespaces: `/proc/PID/exe`.
    pub path: PathBuf,
}

/// The executable of a running process.
pub fn executable_of(pid: u32) -> Result<Executable, ProcessError> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !proc_dir.exists() {
        return Err(ProcessError::NoSuchProcess(pid));
    }
    let path = proc_dir.join("exe");
    match std::fs::read_link(&path) {
        Ok(shown) => Ok(Executable { shown, path }),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            Err(ProcessError::ExecutableHidden(pid))
        }
        Err(_) => Err(ProcessError::NoExecutable(pid)),
    }
}

/// A process running a Go binary: its pid, its load bias and its memory,
/// opened once.
pub struct Process {
    pid: u32,
    load_bias: u64,
    memory: ProcMem,
}

impl Process {
    /// The process `pid`, which must be running `binary` already (after `exec`).
    pub fn open(pid: u32, binary: &GoBinary) -> Result<Self, ProcessError> {
        let load_bias = load_bias(pid, |offset| binary.address_of_file_offset(offset))?;
        let memory = ProcMem::new(pid);
        // Fail now, in words the user can act on, rather than at the first census.
        if let Some(main) = binary.function("runtime.main") {
            let mut byte = [0u8];
            memory
                .read(main.address.wrapping_add(load_bias), &mut byte)
                .map_err(|source| match source.source.raw_os_error() {
                    Some(libc::EPERM | libc::EACCES) => ProcessError::MemoryDenied { pid, source },
                    _ => ProcessError::MemoryUnreadable { pid, source },
                })?;
        }
        Ok(Self {
            pid,
            load_bias,
            memory,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Added to link-time addresses to get run-time ones (non-zero for PIE).
    pub fn load_bias(&self) -> u64 {
        self.load_bias
    }

    pub fn memory(&self) -> &dyn Memory {
        &self.memory
    }

    /// A census of the goroutines, to take again and again (see [`census`]).
    pub fn census(&self, binary: &GoBinary) -> Result<census::Census, ProcessError> {
        let allgs = binary
            .allgs_address()
            .map_err(ProcessError::NoAllgs)?
            .wrapping_add(self.load_bias);
        Ok(census::Census::new(binary.g_layout, allgs))
    }

    /// Takes a census, counting where each goroutine came from, and which
    /// wait on `channels`.
    pub fn take_census(
        &self,
        census: &mut census::Census,
        channels: &HashSet<u64>,
    ) -> Result<census::CensusResult, ProcessError> {
        census
            .take(&self.memory, channels)
            .map_err(|source| ProcessError::Goroutines {
                pid: self.pid,
                source,
            })
    }

    /// Every goroutine right now, from `runtime.allgs`.
    pub fn all_goroutines(&self, binary: &GoBinary) -> Result<Snapshot, ProcessError> {
        let allgs = binary
            .allgs_address()
            .map_err(ProcessError::NoAllgs)?
            .wrapping_add(self.load_bias);
        let (goroutines, dropped) = goroutines::read_all(&self.memory, allgs, &binary.g_layout)
            .map_err(|source| ProcessError::Goroutines {
                pid: self.pid,
                source,
            })?;
        let mut snapshot = Snapshot::read(&self.memory, goroutines, &binary.g_layout);
        snapshot.dropped = dropped;
        Ok(snapshot)
    }

    /// The goroutines at these `runtime.g` addresses (those the probes track).
    pub fn goroutines_at(
        &self,
        binary: &GoBinary,
        addresses: impl IntoIterator<Item = u64>,
    ) -> Snapshot {
        let (goroutines, unreadable) =
            goroutines::read_each(&self.memory, addresses, &binary.g_layout);
        let mut snapshot = Snapshot::read(&self.memory, goroutines, &binary.g_layout);
        snapshot.dropped = unreadable;
        snapshot
    }

    /// What memory says about these timers and tickers (`running`: those
    /// pending), and the functions their func values run.
    pub fn tickers(
        &self,
        binary: &GoBinary,
        tickers: impl IntoIterator<Item = u64>,
        running: &HashSet<u64>,
        funcs: impl IntoIterator<Item = u64>,
    ) -> TickerMemory {
        let globals = binary
            .pointer_globals()
            .iter()
            .map(|&(address, size)| (address.wrapping_add(self.load_bias), size));
        tickers::read(&self.memory, globals, tickers, running, funcs)
    }

    /// The running tickers in the runtime's timer heaps; why not, if they
    /// cannot be read.
    pub fn heap_tickers(
        &self,
        binary: &GoBinary,
    ) -> Result<timers::HeapTickers, timers::TimerHeapError> {
        let layout = binary
            .timer_layout
            .ok_or(timers::TimerHeapError::NoLayout)?;
        let allp = binary
            .allp_address()
            .ok_or(timers::TimerHeapError::NoAllp)?
            .wrapping_add(self.load_bias);
        let send_time = binary
            .function("time.sendTime")
            .map(|f| f.address.wrapping_add(self.load_bias));
        Ok(timers::read(&self.memory, allp, &layout, send_time)?)
    }

    /// The heap profile the runtime keeps (as of its last GC); why not, if
    /// it cannot be read.
    pub fn heap_profile(
        &self,
        binary: &GoBinary,
    ) -> Result<heap::HeapProfile, heap::HeapProfileError> {
        let at = |global: RuntimeGlobal| {
            binary
                .runtime_global(global)
                .map(|a| a.wrapping_add(self.load_bias))
        };
        let (Some(mbuckets), Some(mem_profile_rate)) = (
            at(RuntimeGlobal::Mbuckets),
            at(RuntimeGlobal::MemProfileRate),
        ) else {
            return Err(heap::HeapProfileError::NotFound);
        };
        heap::read(
            &self.memory,
            heap::HeapSymbols {
                mbuckets,
                mem_profile_rate,
                disable_memory_profiling: at(RuntimeGlobal::DisableMemoryProfiling),
            },
        )
    }

    /// Its GODEBUG environment variable, if set.
    pub fn godebug(&self) -> Option<String> {
        environment_variable(&self.environment()?, b"GODEBUG=")
    }

    /// Its environment block (`NAME=value` strings, NUL-separated).
    /// `/proc/PID/environ` is closed to other users by its file mode, even
    /// with CAP_SYS_PTRACE, so failing that it is read from memory, where
    /// `/proc/PID/stat` says it is.
    fn environment(&self) -> Option<Vec<u8>> {
        if let Ok(environ) = std::fs::read(format!("/proc/{}/environ", self.pid)) {
            return Some(environ);
        }
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        let (start, end) = environment_bounds(&stat)?;
        let len = usize::try_from(end.checked_sub(start)?)
            .ok()
            .filter(|&len| len <= MAX_ENVIRONMENT)?;
        let mut block = vec![0u8; len];
        self.memory.read(start, &mut block).ok()?;
        Some(block)
    }
}

/// Bytes of environment leaktrace reads at most.
const MAX_ENVIRONMENT: usize = 1 << 20;

/// `env_start` and `env_end` from a `/proc/PID/stat` line: fields 50 and 51,
/// counted from the pid, after the parenthesised command name.
fn environment_bounds(stat: &str) -> Option<(u64, u64)> {
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace().skip(50 - 3);
    let start = fields.next()?.parse().ok()?;
    let end = fields.next()?.parse().ok()?;
    Some((start, end))
}

/// The value of `name` (`NAME=`) in an environment block.
fn environment_variable(environ: &[u8], name: &[u8]) -> Option<String> {
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(name))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A process's goroutines at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub goroutines: Vec<Goroutine>,
    /// Current stacks of the parked ones, by `g` address.
    pub current_stacks: HashMap<u64, Vec<u64>>,
    /// Channels the blocked ones wait on, by `g` address.
    pub waiting_channels: HashMap<u64, Vec<u64>>,
    /// CLOCK_MONOTONIC when they were read.
    pub now_ns: u64,
    /// Goroutines that could not be read, or not held (past
    /// [`goroutines::MAX_SNAPSHOT`]).
    pub dropped: u64,
}

impl Snapshot {
    /// Adds the current stacks and the channels waited on to `goroutines`.
    pub fn read(mem: &dyn Memory, goroutines: Vec<Goroutine>, layout: &GLayout) -> Self {
        let now_ns = monotonic_ns();
        let current_stacks = goroutines
            .iter()
            .map(|g| (g.g, goroutines::current_stack(mem, g)))
            .filter(|(_, stack)| !stack.is_empty())
            .collect();
        let waiting_channels = goroutines
            .iter()
            .filter(|g| g.status.is_blocked())
            .map(|g| (g.g, goroutines::waiting_channels(mem, g, layout)))
            .filter(|(_, channels)| !channels.is_empty())
            .collect();
        Self {
            goroutines,
            current_stacks,
            waiting_channels,
            now_ns,
            dropped: 0,
        }
    }
}

/// CLOCK_MONOTONIC in ns: the clock of `bpf_ktime_get_ns` and of Go's nanotime.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// How far the executable was moved from its link-time addresses: 0 unless it
/// is position-independent. `address_of_offset` maps a file offset to the
/// address it was linked at.
fn load_bias(
    pid: u32,
    address_of_offset: impl Fn(u64) -> Option<u64>,
) -> Result<u64, ProcessError> {
    let maps_error = |source| ProcessError::Maps { pid, source };
    let executable = std::fs::read_link(format!("/proc/{pid}/exe")).map_err(maps_error)?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(maps_error)?;
    bias_from_maps(&maps, &executable, address_of_offset)
        .ok_or(ProcessError::NotMapped { pid, executable })
}

fn bias_from_maps(
    maps: &str,
    exe: &Path,
    address_of_offset: impl Fn(u64) -> Option<u64>,
) -> Option<u64> {
    let exe = exe.to_str()?;
    maps.lines().find_map(|line| {
        // start-end perms offset dev inode path; the path may hold spaces,
        // and ends in " (deleted)" once the file was replaced, as
        // /proc/PID/exe then says too.
        let mut rest = line;
        let mut fields = [""; 5];
        for field in &mut fields {
            let trimmed = rest.trim_start();
            let end = trimmed.find(' ').unwrap_or(trimmed.len());
            *field = &trimmed[..end];
            rest = &trimmed[end..];
        }
        if rest.trim_start() != exe {
            return None;
        }
        let offset = u64::from_str_radix(fields[2], 16).ok()?;
        let start = u64::from_str_radix(fields[0].split('-').next()?, 16).ok()?;
        start.checked_sub(address_of_offset(offset)? & !0xfff)
    })
}

/// Sends SIGCONT when dropped, so a target frozen at exit is always released.
pub struct Frozen(pub u32);

impl Drop for Frozen {
    fn drop(&mut self) {
        send_signal(self.0, libc::SIGCONT);
    }
}

impl Frozen {
    /// Waits until every thread of the process has stopped.
    pub async fn wait_stopped(&self) -> bool {
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if all_threads_stopped(self.0) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        false
    }
}

fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        matches!(state_of(&stat), Some('T' | 't' | 'Z' | 'X') | None)
    })
}

/// The state letter in a `/proc/.../stat` line; it follows the
/// parenthesised command name, which may itself contain ") ".
fn state_of(stat: &str) -> Option<char> {
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

pub fn send_signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, signal) };
}

/// Whether `pid` is still running: a zombie still has /proc/PID, but its
/// state is Z.
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| state_of(&stat))
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// Whether process `pid` is running the executable file at `path` (the same
/// inode), e.g. once `leaktrace run`'s trampoline has `exec`ed it.
pub fn runs_file(pid: u32, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let running = std::fs::metadata(format!("/proc/{pid}/exe"));
    let wanted = std::fs::metadata(path);
    matches!((running, wanted), (Ok(a), Ok(b)) if (a.dev(), a.ino()) == (b.dev(), b.ino()))
}

/// Whether `pid` belongs to the user leaktrace runs as.
pub fn is_own(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let owner = std::fs::metadata(format!("/proc/{pid}"))
        .map(|m| m.uid())
        .ok();
    // SAFETY: geteuid has no preconditions.
    owner == Some(unsafe { libc::geteuid() })
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

    #[test]
    fn paths_with_spaces_and_replaced_files_are_found() {
        let maps = "55d0c0000000-55d0c0001000 r--p 00000000 fd:00 2                          /srv/my app (deleted)\n";
        assert_eq!(
            bias_from_maps(maps, Path::new("/srv/my app (deleted)"), Some),
            Some(0x55d0c0000000)
        );
        assert_eq!(bias_from_maps(maps, Path::new("/srv/my"), Some), None);
    }

    #[test]
    fn finds_the_environment_in_stat_and_a_variable_in_it() {
        // Fields 1 to 52 of /proc/PID/stat; 50 and 51 are env_start, env_end.
        let fields: Vec<String> = (4..=52).map(|n| n.to_string()).collect();
        let stat = format!("42 (go app) S {}", fields.join(" "));
        assert_eq!(environment_bounds(&stat), Some((50, 51)));
        assert_eq!(environment_bounds("42 (x) S 1 2"), None);
        let environ = b"HOME=/root\0GODEBUG=asynctimerchan=1\0X=1";
        assert_eq!(
            environment_variable(environ, b"GODEBUG="),
            Some("asynctimerchan=1".to_string())
        );
        assert_eq!(environment_variable(environ, b"PATH="), None);
    }

    #[test]
    fn reads_the_state_after_an_awkward_command_name() {
        assert_eq!(state_of("42 (a) b) S 1 2"), Some('S'));
        assert_eq!(state_of("garbage"), None);
    }
}
