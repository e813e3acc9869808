//! What the attached probes cost the target: each program's hits, counted in
//! the kernel, times an estimate of one hit.
//!
//! A hit is a trap into the kernel on the target's own thread. Measured on
//! this project's reference VM (`cargo xtask bench`, spawnbench, one probe
//! with an empty body): ≈ 0.8 µs when the kernel emulates the probed
//! instruction, ≈ 4.5–6 µs when it single-steps it out of line; walking a
//! creation stack through frame pointers adds ≈ 1 µs. The estimate rounds
//! these up, so it errs towards overstating the cost.

use aya::maps::{MapData, PerCpuArray};
use leaktrace_ebpf::{hit, map, program};

use super::{ProbeError, Probes, maps::typed};
use crate::report::ProbeCost;

/// One trap on an instruction the kernel emulates (`push`, `jcc`, `call`).
const EMULATED_TRAP_NS: u64 = 1_000;
/// One trap on an instruction the kernel single-steps out of line.
const SINGLE_STEPPED_TRAP_NS: u64 = 5_000;
/// The `sys_exit` raw tracepoint, per system call of the target: no trap,
/// a program run on the way out of the kernel (the few that open a
/// descriptor also walk their stack, which this rounds into).
const SYSCALL_EXIT_NS: u64 = 300;
/// Walking a creation stack (`bpf_get_stackid`) in the probe.
const STACK_WALK_NS: u64 = 1_000;

/// Programs that walk the creation stack on every hit (or may).
const WALKS_STACKS: &[&str] = &[
    program::GOROUTINE_QUEUED,
    program::GOROUTINE_CREATED,
    program::TIMER_STARTED,
    program::TIMER_CREATED,
    program::SITE_CREATING,
];

impl Probes {
    /// Hits per program since load, summed over CPUs, in [`program::ALL`] order.
    pub fn hits(&self) -> Result<Vec<u64>, ProbeError> {
        let hits: PerCpuArray<&MapData, u64> = typed(self.map(map::HITS)?)?;
        Ok((0..hit::COUNT)
            .map(|index| {
                hits.get(&index, 0)
                    .map(|v| v.iter().fold(0u64, |a, &c| a.saturating_add(c)))
                    .unwrap_or(0)
            })
            .collect())
    }

    /// Each attached program's points, hits and estimated cost over
    /// `elapsed_ns`; `stacks`: whether creation-stack walks are on.
    pub fn costs(&self, elapsed_ns: u64, stacks: bool) -> Result<Vec<ProbeCost>, ProbeError> {
        let hits = self.hits()?;
        let mut costs = Vec::new();
        for (index, &name) in program::ALL.iter().enumerate() {
            let points: Vec<bool> = self
                .attached
                .iter()
                .filter(|(p, _)| *p == name)
                .map(|&(_, emulated)| emulated)
                .collect();
            if points.is_empty() {
                continue;
            }
            let hits = hits.get(index).copied().unwrap_or(0);
            costs.push(ProbeCost {
                program: name.to_string(),
                points: points.len() as u32,
                hits,
                hits_per_second: per_second(hits, elapsed_ns),
                estimated_ns_per_hit: ns_per_hit(name, &points, stacks),
            });
        }
        Ok(costs)
    }
}

/// The estimate for one hit: the costlier trap among the program's points.
fn ns_per_hit(program: &str, points_emulated: &[bool], stacks: bool) -> u64 {
    if program == program::FD_SYSCALL {
        return SYSCALL_EXIT_NS;
    }
    let trap = if points_emulated.iter().all(|&e| e) {
        EMULATED_TRAP_NS
    } else {
        SINGLE_STEPPED_TRAP_NS
    };
    let walk = if stacks && WALKS_STACKS.contains(&program) {
        STACK_WALK_NS
    } else {
        0
    };
    trap + walk
}

pub fn per_second(count: u64, elapsed_ns: u64) -> f64 {
    if elapsed_ns == 0 {
        return 0.0;
    }
    count as f64 * 1e9 / elapsed_ns as f64
}

#[cfg(test)]
mod tests {
    use leaktrace_ebpf::hit;

    use super::*;

    #[test]
    fn hit_counters_follow_the_program_list() {
        let pairs = [
            (hit::GOROUTINE_QUEUED, program::GOROUTINE_QUEUED),
            (hit::GOROUTINE_CREATED, program::GOROUTINE_CREATED),
            (hit::GOROUTINE_DESTROYED, program::GOROUTINE_DESTROYED),
            (hit::GOROUTINE_PARKED, program::GOROUTINE_PARKED),
            (hit::PROCESS_EXITING, program::PROCESS_EXITING),
            (hit::TIMER_STARTED, program::TIMER_STARTED),
            (hit::TIMER_CREATED, program::TIMER_CREATED),
            (hit::TIMER_STOPPED, program::TIMER_STOPPED),
            (hit::TIMER_RESET, program::TIMER_RESET),
            (hit::TIMER_REARMED, program::TIMER_REARMED),
            (hit::SITE_CREATING, program::SITE_CREATING),
            (hit::PROCESS_DYING, program::PROCESS_DYING),
            (hit::FD_SYSCALL, program::FD_SYSCALL),
        ];
        assert_eq!(pairs.len(), program::ALL.len());
        assert_eq!(hit::COUNT as usize, program::ALL.len());
        for (index, name) in pairs {
            assert_eq!(program::ALL[index as usize], name);
        }
    }

    #[test]
    fn single_stepped_points_and_stack_walks_cost_more() {
        assert_eq!(ns_per_hit(program::GOROUTINE_PARKED, &[true], true), 1_000);
        assert_eq!(
            ns_per_hit(program::TIMER_STOPPED, &[true, false], true),
            5_000
        );
        assert_eq!(ns_per_hit(program::SITE_CREATING, &[true], true), 2_000);
        assert_eq!(ns_per_hit(program::GOROUTINE_QUEUED, &[true], false), 1_000);
        assert_eq!(per_second(50, 500_000_000), 100.0);
    }
}
