//! Checks made before loading anything, so that a missing privilege or kernel
//! feature is reported as one clear line instead of a failed syscall.
//!
//! What a non-root user needs:
//! - CAP_BPF and CAP_PERFMON to load the eBPF programs (or CAP_SYS_ADMIN);
//! - to attach a uprobe through perf: CAP_PERFMON on older kernels, but
//!   CAP_SYS_ADMIN since the fix for CVE-2025-38466 (Linux 6.16, and the
//!   stable kernels of July 2025): the kernel cannot check that a uprobe
//!   sits on an instruction boundary. leaktrace asks the kernel which rule
//!   it follows by opening one uprobe event on its own executable;
//! - CAP_SYS_PTRACE to read another user's process (`process_vm_readv`,
//!   `/proc/PID/exe`).

use std::{ffi::CString, path::Path};

const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";
const UPROBE_PMU_TYPE: &str = "/sys/bus/event_source/devices/uprobe/type";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "this kernel has no uprobe support (no uprobe PMU in /sys/bus/event_source/devices); \
         leaktrace needs a Linux kernel built with CONFIG_UPROBE_EVENTS"
    )]
    NoUprobes,
    #[error(
        "missing privileges: leaktrace needs {}; run it as root (sudo leaktrace ...) \
         or grant them with: sudo setcap {}+ep $(which leaktrace)",
        .missing.join(", and "),
        if *.need_ptrace { "cap_sys_admin,cap_sys_ptrace" } else { "cap_sys_admin" }
    )]
    MissingCapabilities {
        missing: Vec<&'static str>,
        need_ptrace: bool,
    },
    #[error(
        "missing privileges: this kernel lets only CAP_SYS_ADMIN attach uprobes (since the fix for \
         CVE-2025-38466, Linux 6.16 and the stable kernels of July 2025); run it as root (sudo leaktrace ...) \
         or grant it with: sudo setcap cap_sys_admin,cap_sys_ptrace+ep $(which leaktrace)"
    )]
    UprobesNeedSysAdmin,
}

/// Everything a session needs of the kernel and of leaktrace's privileges,
/// before it loads anything; `need_ptrace` to read other users' processes.
pub fn check(need_ptrace: bool) -> Result<(), PreflightError> {
    check_kernel()?;
    check_capabilities(need_ptrace)?;
    check_uprobe_permission()
}

/// The kernel registers a "uprobe" PMU when built with CONFIG_UPROBE_EVENTS.
pub fn check_kernel() -> Result<(), PreflightError> {
    check_uprobe_pmu(Path::new(UPROBE_PMU))
}

fn check_uprobe_pmu(pmu: &Path) -> Result<(), PreflightError> {
    if !pmu.exists() {
        return Err(PreflightError::NoUprobes);
    }
    Ok(())
}

/// Loading eBPF needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN on older
/// kernels); reading another user's process needs CAP_SYS_PTRACE.
pub fn check_capabilities(need_ptrace: bool) -> Result<(), PreflightError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = effective_capabilities(&status);
    let has = |cap: u32| effective & (1 << cap) != 0;
    let mut missing = Vec::new();
    let can_load = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
    if !can_load {
        missing.push(
            "CAP_SYS_ADMIN to load and attach eBPF uprobes (CAP_BPF and CAP_PERFMON \
             are enough on kernels without the fix for CVE-2025-38466)",
        );
    }
    if need_ptrace && !has(CAP_SYS_PTRACE) {
        missing.push("CAP_SYS_PTRACE to read another user's process");
    }
    if !missing.is_empty() {
        return Err(PreflightError::MissingCapabilities {
            missing,
            need_ptrace,
        });
    }
    Ok(())
}

/// The kernel's `perf_event_attr` up to `config2` (PERF_ATTR_SIZE_VER1,
/// 72 bytes): all a uprobe event needs. libc does not define it.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    /// Bit fields; bit 0 is `disabled`.
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
}

const PERF_ATTR_DISABLED: u64 = 1;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// Whether this kernel lets leaktrace attach a uprobe through perf, by
/// asking it: one uprobe event on leaktrace's own executable (on its ELF
/// header, which is never executed), opened and closed at once. Only a
/// refusal for lack of privilege is an error; anything else is left to the
/// real attach to report.
pub fn check_uprobe_permission() -> Result<(), PreflightError> {
    let Some(pmu_type) = std::fs::read_to_string(UPROBE_PMU_TYPE)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
    else {
        return Ok(());
    };
    let Ok(path) = CString::new("/proc/self/exe") else {
        return Ok(());
    };
    let attr = PerfEventAttr {
        type_: pmu_type,
        size: size_of::<PerfEventAttr>() as u32,
        flags: PERF_ATTR_DISABLED,
        // The path, and the file offset (0: the ELF header).
        config1: path.as_ptr() as u64,
        config2: 0,
        ..PerfEventAttr::default()
    };
    // SAFETY: attr is a valid perf_event_attr of the size it says, `path`
    // outlives the call, and the returned descriptor is closed right away.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            0,
            -1,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd >= 0 {
        // SAFETY: fd is a descriptor this function owns.
        unsafe { libc::close(fd as i32) };
        return Ok(());
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => Err(PreflightError::UprobesNeedSysAdmin),
        _ => Ok(()),
    }
}

fn effective_capabilities(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_without_uprobes_is_named() {
        let err = check_uprobe_pmu(Path::new("/nonexistent/uprobe"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("this kernel has no uprobe support"),
            "{err}"
        );
        assert!(err.contains("CONFIG_UPROBE_EVENTS"), "{err}");
    }

    #[test]
    fn reads_effective_capabilities() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_capabilities(status), 0x1ff_ffff_ffff);
        assert_eq!(effective_capabilities("garbage"), 0);
    }
}
