//! The traced process: finding it, freezing it at exit, and reading its goroutines.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};
use leaktrace_ebpf::TickerRecord;
use leaktrace_gobinary::{GoBinary, dwarf::GLayout};

use crate::{
    goroutines::{self, Goroutine},
    procmem::{ProcessMemory, load_bias},
    tickers::TickerMemory,
};

/// How long to wait for a SIGSTOP to take hold of every thread.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// CLOCK_MONOTONIC in ns: the clock of `bpf_ktime_get_ns` and of Go's nanotime.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The executable of a running process, for display, and a path to it that
/// works across mount namespaces.
pub fn executable_of(pid: u32) -> anyhow::Result<(PathBuf, PathBuf)> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !proc_dir.exists() {
        bail!("no process with PID {pid}; check the PID (is the process still running?)");
    }
    let exe = proc_dir.join("exe");
    match std::fs::read_link(&exe) {
        Ok(shown) => Ok((shown, exe)),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "cannot read /proc/{pid}/exe: permission denied; leaktrace needs CAP_SYS_PTRACE to trace another user's process (run it with sudo)"
        ),
        Err(_) => bail!(
            "process {pid} has no executable (a kernel thread or a zombie); give the PID of a running Go program"
        ),
    }
}

/// A process's goroutines at one moment.
pub struct Snapshot {
    pub goroutines: Vec<Goroutine>,
    /// Current stacks of the parked ones, by `g` address.
    pub current_stacks: HashMap<u64, Vec<u64>>,
    /// Channels the blocked ones wait on, by `g` address.
    pub waiting_channels: HashMap<u64, Vec<u64>>,
    /// CLOCK_MONOTONIC when they were read.
    pub now_ns: u64,
}

/// Every goroutine of process `pid` right now, from `runtime.allgs`.
pub fn read_all_goroutines(pid: u32, binary: &GoBinary) -> anyhow::Result<Snapshot> {
    let bias = load_bias(pid, |offset| binary.address_of_file_offset(offset))
        .with_context(|| format!("reading the memory map of process {pid}"))?;
    let allgs = binary.allgs_address()? + bias;
    let mem = open_memory(pid)?;
    let goroutines = goroutines::read_all(&mem, allgs, &binary.g_layout)
        .with_context(|| format!("reading the goroutines of process {pid}"))?;
    Ok(with_stacks(&mem, goroutines, &binary.g_layout))
}

/// The goroutines at these `runtime.g` addresses (those the probes track).
pub fn read_goroutines_at(
    pid: u32,
    binary: &GoBinary,
    addresses: impl IntoIterator<Item = u64>,
) -> anyhow::Result<Snapshot> {
    let mem = open_memory(pid)?;
    let goroutines = goroutines::read_each(&mem, addresses, &binary.g_layout);
    Ok(with_stacks(&mem, goroutines, &binary.g_layout))
}

fn open_memory(pid: u32) -> anyhow::Result<ProcessMemory> {
    ProcessMemory::open(pid).with_context(|| format!("opening the memory of process {pid}"))
}

fn with_stacks(mem: &ProcessMemory, goroutines: Vec<Goroutine>, layout: &GLayout) -> Snapshot {
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
    Snapshot {
        goroutines,
        current_stacks,
        waiting_channels,
        now_ns,
    }
}

/// What memory says about the tracked tickers, read now.
pub fn read_tickers(
    pid: u32,
    binary: &GoBinary,
    bias: u64,
    tickers: &HashMap<u64, TickerRecord>,
) -> anyhow::Result<TickerMemory> {
    Ok(crate::tickers::read_ticker_memory(
        &open_memory(pid)?,
        binary,
        bias,
        tickers,
    ))
}

/// The GODEBUG environment variable of process `pid`, if set.
pub fn godebug_of(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(b"GODEBUG="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The load bias of a running process, for symbolizing its PCs.
pub fn bias_of(pid: u32, binary: &GoBinary) -> u64 {
    load_bias(pid, |offset| binary.address_of_file_offset(offset)).unwrap_or(0)
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
        // The state follows the parenthesised command name.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        matches!(state, Some('T' | 't' | 'Z' | 'X') | None)
    })
}

pub fn send_signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, signal) };
}

pub fn is_alive(pid: u32) -> bool {
    // A zombie still has /proc/PID, but its stat state is Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        .is_some_and(|state| state != 'Z' && state != 'X')
}
