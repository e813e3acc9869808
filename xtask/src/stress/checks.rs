//! What every workload checks after it: no probe left in the target's code,
//! and no leaktrace program left in the kernel.

use std::{
    collections::HashSet,
    path::Path,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::cmd;

/// The names of leaktrace's eBPF programs (leaktrace-ebpf).
const PROGRAMS: &[&str] = &[
    "goroutine_created",
    "goroutine_destroyed",
    "goroutine_parked",
    "goroutine_queued",
    "process_dying",
    "process_exiting",
    "site_creating",
    "ticker_created",
    "ticker_creating",
    "ticker_reset",
    "ticker_started",
    "ticker_stopped",
];
/// The longest name the kernel keeps (BPF_OBJ_NAME_LEN less its NUL).
const NAME_LEN: usize = 15;
/// How often the polling checks look again.
const POLL: Duration = Duration::from_millis(20);

/// Whether the code of `pid`'s executable in memory is byte-identical to its
/// file, i.e. no uprobe breakpoint is left in it. Reads the file through
/// /proc/PID/exe and finds `.text` in memory through /proc/PID/maps, as the
/// end-to-end tests do.
pub fn text_is_pristine(pid: u32) -> anyhow::Result<bool> {
    use object::{Object as _, ObjectSection as _};
    let exe = format!("/proc/{pid}/exe");
    let data = std::fs::read(&exe).with_context(|| format!("reading {exe}"))?;
    let file = object::File::parse(&*data).with_context(|| format!("parsing {exe}"))?;
    let (offset, size) = file
        .section_by_name(".text")
        .and_then(|text| text.file_range())
        .with_context(|| format!("{exe} has no .text"))?;
    let on_disk = usize::try_from(offset)
        .ok()
        .zip(usize::try_from(offset + size).ok())
        .and_then(|(start, end)| data.get(start..end))
        .context(".text is outside the file")?;
    let mapped_name = std::fs::read_link(&exe).with_context(|| format!("reading {exe}"))?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .with_context(|| format!("reading /proc/{pid}/maps"))?;
    let address = maps
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (range, map_offset, path) = (fields.first()?, fields.get(2)?, fields.get(5)?);
            let (start, end) = range.split_once('-')?;
            let start = u64::from_str_radix(start, 16).ok()?;
            let end = u64::from_str_radix(end, 16).ok()?;
            let map_offset = u64::from_str_radix(map_offset, 16).ok()?;
            let covers = map_offset <= offset && offset + size <= map_offset + (end - start);
            (Path::new(path) == mapped_name && covers).then(|| start + (offset - map_offset))
        })
        .with_context(|| format!("pid {pid}'s .text is not mapped"))?;
    let mut in_memory = vec![0u8; on_disk.len()];
    let mem = std::fs::File::open(format!("/proc/{pid}/mem"))
        .with_context(|| format!("opening /proc/{pid}/mem"))?;
    std::os::unix::fs::FileExt::read_exact_at(&mem, &mut in_memory, address)
        .with_context(|| format!("reading pid {pid}'s text"))?;
    Ok(in_memory == on_disk)
}

/// Waits up to `timeout` for `pid`'s text to be pristine; fails if it is not.
pub fn await_pristine(pid: u32, timeout: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if text_is_pristine(pid)? {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= timeout {
            bail!("pid {pid}'s text still has probes {timeout:?} after leaktrace exited");
        }
        thread::sleep(POLL);
    }
}

/// The kernel's eBPF programs, as `bpftool prog show` lists them.
pub struct Programs {
    /// The highest program ID loaded before the workload: IDs only grow, so
    /// programs at or below it are someone else's.
    baseline: u64,
}

impl Programs {
    /// Notes which programs are loaded before a workload.
    pub fn before() -> anyhow::Result<Self> {
        let baseline = list()?
            .iter()
            .filter_map(|program| program["id"].as_u64())
            .max()
            .unwrap_or(0);
        Ok(Self { baseline })
    }

    /// Waits up to `timeout` until no leaktrace program loaded since
    /// [`Programs::before`] is left in the kernel, other than those another
    /// leaktrace holds; fails naming those left.
    pub fn ensure_none_left(&self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let others = held_by_other_leaktraces();
            let left: Vec<String> = list()?
                .iter()
                .filter(|program| {
                    program["id"]
                        .as_u64()
                        .is_some_and(|id| id > self.baseline && !others.contains(&id))
                })
                .filter(|program| program["name"].as_str().is_some_and(is_leaktraces))
                .map(|program| format!("{} (id {})", program["name"], program["id"]))
                .collect();
            if left.is_empty() {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                bail!("eBPF programs left in the kernel: {}", left.join(", "));
            }
            thread::sleep(POLL);
        }
    }
}

fn list() -> anyhow::Result<Vec<Value>> {
    let out = cmd::output(Command::new("bpftool").args(["prog", "show", "--json"]))?;
    let programs: Value = serde_json::from_str(&out).context("parsing bpftool's JSON")?;
    Ok(programs.as_array().cloned().unwrap_or_default())
}

/// Whether `name` is one of leaktrace's programs: in full (bpftool reads it
/// from the program's BTF when there is one) or as the kernel truncates it.
fn is_leaktraces(name: &str) -> bool {
    PROGRAMS
        .iter()
        .any(|program| *program == name || program.get(..NAME_LEN) == Some(name))
}

/// The programs that live leaktrace processes hold a file descriptor for
/// (`prog_id` in /proc/PID/fdinfo): the harness kills and reaps its own before
/// checking, so these are another leaktrace's, e.g. end-to-end tests running
/// next to the stress suite. (bpftool 7.1 cannot name a program's holders.)
fn held_by_other_leaktraces() -> HashSet<u64> {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return HashSet::new();
    };
    processes
        .flatten()
        .map(|process| process.path())
        .filter(|path| {
            std::fs::read_to_string(path.join("comm")).is_ok_and(|comm| comm.trim() == "leaktrace")
        })
        .filter_map(|path| std::fs::read_dir(path.join("fdinfo")).ok())
        .flat_map(|fds| fds.flatten())
        .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
        .flat_map(|info| {
            info.lines()
                .filter_map(|line| line.strip_prefix("prog_id:")?.trim().parse().ok())
                .collect::<Vec<u64>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::is_leaktraces;

    #[test]
    fn names_match_in_full_or_truncated() {
        assert!(is_leaktraces("goroutine_destroyed"));
        assert!(is_leaktraces("goroutine_destr"));
        assert!(is_leaktraces("site_creating"));
        assert!(!is_leaktraces("goroutine_"));
        assert!(!is_leaktraces("sd_fw_ingress"));
    }
}
