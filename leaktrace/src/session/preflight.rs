//! Checks made before loading anything, so that a missing privilege or kernel
//! feature is reported as one clear line instead of a failed syscall.

use std::path::Path;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "this kernel has no uprobe support (no uprobe PMU in /sys/bus/event_source/devices); \
         leaktrace needs a Linux kernel built with CONFIG_UPROBE_EVENTS"
    )]
    NoUprobes,
    #[error(
        "missing privileges: leaktrace needs {} to load eBPF uprobes{}; run it as root (sudo leaktrace ...) \
         or grant them with: sudo setcap cap_bpf,cap_perfmon,cap_sys_ptrace+ep $(which leaktrace)",
        .missing.join(" and "),
        if *.need_ptrace { " and read the target's memory" } else { "" }
    )]
    MissingCapabilities {
        missing: Vec<&'static str>,
        need_ptrace: bool,
    },
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
    if !has(CAP_SYS_ADMIN) {
        if !has(CAP_BPF) {
            missing.push("CAP_BPF");
        }
        if !has(CAP_PERFMON) {
            missing.push("CAP_PERFMON");
        }
    }
    if need_ptrace && !has(CAP_SYS_PTRACE) {
        missing.push("CAP_SYS_PTRACE");
    }
    if !missing.is_empty() {
        return Err(PreflightError::MissingCapabilities {
            missing,
            need_ptrace,
        });
    }
    Ok(())
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
