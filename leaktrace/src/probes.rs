//! Loading the eBPF programs and attaching them to one target process.
//!
//! Every probe is a perf-event link owned by the loaded [`Ebpf`]; dropping
//! [`Probes`] (or leaktrace dying, which closes the descriptors) removes them
//! all from the target.

use std::{collections::HashMap, num::NonZeroU32, path::Path};

use anyhow::{Context as _, anyhow};
use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf, StackTraceMap},
    programs::{
        UProbe,
        uprobe::{UProbeAttachLocation, UProbeLinkId, UProbeScope},
    },
};
use leaktrace_ebpf::{
    ExitNotice, FIELD_ABSENT, GoLayout, GoroutineRecord, NO_STACK, SiteCounters, SiteKey,
    TickerRecord, TimerLayout, counter,
};

use leaktrace_gobinary::{Function, GoBinary, disasm};

use crate::{cli::Placement, goroutines::Goroutine};

const BPF_NOEXIST: u32 = 1;

/// Go 1.23+: `time.newTimer` (the runtime's, linknamed) makes every timer and ticker.
const NEW_TIMER: &str = "time.newTimer";
/// Before Go 1.23: `Ticker{C <-chan Time; r runtimeTimer}`, and
/// `runtimeTimer{pp uintptr; when int64; period int64; ...}` (Go 1.19–1.22).
const PRE_GO123_TICKER_TIMER_FIELD: u64 = 8;
const PRE_GO123_RUNTIME_TIMER_PERIOD: u64 = 16;

static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/leaktrace"));

/// Whether to freeze the target when it calls `runtime.exit`, so that its
/// goroutines can be read before they are gone. Only `leaktrace run` does this:
/// it is the target's parent, so nobody else sees the stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtExit {
    Stop,
    Continue,
}

/// Event counts since attach, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EventCounts {
    pub created: u64,
    pub exited: u64,
    pub parked: u64,
    pub dropped_goroutine_table_full: u64,
    pub dropped_site_table_full: u64,
    pub dropped_read_fault: u64,
    pub dropped_exit_notice: u64,
    pub dropped_stack: u64,
    pub dropped_ticker_table_full: u64,
}

impl EventCounts {
    pub fn dropped(&self) -> u64 {
        self.dropped_goroutine_table_full
            + self.dropped_site_table_full
            + self.dropped_read_fault
            + self.dropped_exit_notice
            + self.dropped_stack
            + self.dropped_ticker_table_full
    }
}

pub struct Probes {
    ebpf: Ebpf,
    links: Vec<(&'static str, UProbeLinkId)>,
}

impl Probes {
    pub fn load(
        binary: &GoBinary,
        at_exit: AtExit,
        goroutine_stacks: bool,
    ) -> anyhow::Result<Self> {
        let g = &binary.g_layout;
        let layout = GoLayout {
            g_goid: g.goid,
            g_gopc: g.gopc,
            g_startpc: g.startpc,
            g_parent_goid: g.parent_goid.unwrap_or(FIELD_ABSENT),
        };
        let stop_at_exit = u8::from(at_exit == AtExit::Stop);
        let timers = TimerLayout {
            ticker_from_timer: if binary.function(NEW_TIMER).is_some() {
                0
            } else {
                PRE_GO123_TICKER_TIMER_FIELD
            },
            runtime_timer_period: PRE_GO123_RUNTIME_TIMER_PERIOD,
        };
        let ebpf = EbpfLoader::new()
            .override_global("LAYOUT", &layout, true)
            .override_global("STOP_AT_EXIT", &stop_at_exit, true)
            .override_global("TIMERS", &timers, true)
            .override_global("GOROUTINE_STACKS", &u8::from(goroutine_stacks), true)
            .load(EBPF_OBJECT)
            .context("loading the eBPF programs")?;
        Ok(Self {
            ebpf,
            links: Vec::new(),
        })
    }

    /// Attaches every probe to process `pid`, whose executable is reachable at
    /// `target` (for a running process, `/proc/PID/exe`).
    pub fn attach(
        &mut self,
        binary: &GoBinary,
        target: &Path,
        pid: u32,
        placement: Placement,
    ) -> anyhow::Result<()> {
        let pid = NonZeroU32::new(pid).ok_or_else(|| anyhow!("invalid pid 0"))?;
        let points = probe_points(binary, placement)?;
        let mut loaded: Vec<&'static str> = Vec::new();
        for ProbePoint {
            program,
            function,
            offset,
        } in points
        {
            let uprobe: &mut UProbe = self
                .ebpf
                .program_mut(program)
                .ok_or_else(|| anyhow!("eBPF program {program} is missing"))?
                .try_into()?;
            if !loaded.contains(&program) {
                uprobe
                    .load()
                    .with_context(|| format!("loading eBPF program {program}"))?;
                loaded.push(program);
            }
            let address = binary
                .function(&function)
                .ok_or_else(|| anyhow!("{function} vanished"))?
                .address
                + offset;
            let file_offset = binary
                .file_offset(address)
                .ok_or_else(|| anyhow!("{function}+{offset:#x} is not backed by the file"))?;
            let link = uprobe
                .attach(
                    UProbeAttachLocation::AbsoluteOffset(file_offset),
                    target,
                    UProbeScope::OneProcess(pid),
                )
                .with_context(|| {
                    format!(
                        "attaching a uprobe to {function}+{offset:#x} in {}",
                        target.display()
                    )
                })?;
            self.links.push((program, link));
        }
        Ok(())
    }

    pub fn event_counts(&self) -> anyhow::Result<EventCounts> {
        let map: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(self.map("COUNTERS")?)?;
        let sum = |index: u32| -> u64 { map.get(&index, 0).map(|v| v.iter().sum()).unwrap_or(0) };
        Ok(EventCounts {
            created: sum(counter::CREATED),
            exited: sum(counter::EXITED),
            parked: sum(counter::PARKED),
            dropped_goroutine_table_full: sum(counter::DROPPED_GOROUTINE_TABLE_FULL),
            dropped_site_table_full: sum(counter::DROPPED_SITE_TABLE_FULL),
            dropped_read_fault: sum(counter::DROPPED_READ_FAULT),
            dropped_exit_notice: sum(counter::DROPPED_EXIT_NOTICE),
            dropped_stack: sum(counter::DROPPED_STACK),
            dropped_ticker_table_full: sum(counter::DROPPED_TICKER_TABLE_FULL),
        })
    }

    /// Per creation site, summed over CPUs.
    pub fn site_counters(&self) -> anyhow::Result<HashMap<SiteKey, SiteCounters>> {
        let map: PerCpuHashMap<&MapData, SiteKey, SiteCounters> =
            PerCpuHashMap::try_from(self.map("SITES")?)?;
        let mut sites = HashMap::new();
        for entry in map.iter() {
            let (site, per_cpu) = entry?;
            let total = per_cpu
                .iter()
                .fold(SiteCounters::default(), |a, c| SiteCounters {
                    created: a.created + c.created,
                    exited: a.exited + c.exited,
                    exited_preexisting: a.exited_preexisting + c.exited_preexisting,
                });
            sites.insert(site, total);
        }
        Ok(sites)
    }

    /// Goroutines created while attached and not yet destroyed, by `*g` address.
    pub fn goroutine_records(&self) -> anyhow::Result<HashMap<u64, GoroutineRecord>> {
        let map: BpfHashMap<&MapData, u64, GoroutineRecord> =
            BpfHashMap::try_from(self.map("GOROUTINES")?)?;
        // An entry deleted while iterating is skipped, not an error worth failing for.
        let records = map.iter().flatten().collect();
        Ok(records)
    }

    /// Adds goroutines that existed before the attach to the kernel's table,
    /// so the exit and park probes track them like new ones. Never replaces a
    /// record the probes made. Returns how many were added.
    pub fn seed(&mut self, goroutines: &[Goroutine]) -> anyhow::Result<usize> {
        let map = self
            .ebpf
            .map_mut("GOROUTINES")
            .ok_or_else(|| anyhow!("map GOROUTINES is missing"))?;
        let mut table: BpfHashMap<&mut MapData, u64, GoroutineRecord> = BpfHashMap::try_from(map)?;
        let mut added = 0;
        for g in goroutines {
            let record = GoroutineRecord {
                goid: g.goid,
                parent_goid: g.parent_goid.unwrap_or(0),
                gopc: g.gopc,
                startpc: g.startpc,
                created_ns: 0,
                parked_ns: 0,
                park_reason: g.wait_reason,
                _pad: [0; 3],
                stack_id: NO_STACK,
            };
            if table.insert(g.g, record, u64::from(BPF_NOEXIST)).is_ok() {
                added += 1;
            }
        }
        Ok(added)
    }

    /// Removes seeded records of goroutines that turned out to be gone.
    pub fn unseed(&mut self, gone: &[(u64, u64)]) -> anyhow::Result<()> {
        let map = self
            .ebpf
            .map_mut("GOROUTINES")
            .ok_or_else(|| anyhow!("map GOROUTINES is missing"))?;
        let mut table: BpfHashMap<&mut MapData, u64, GoroutineRecord> = BpfHashMap::try_from(map)?;
        for &(g, goid) in gone {
            if table
                .get(&g, 0)
                .is_ok_and(|r| r.goid == goid && r.created_ns == 0)
            {
                let _ = table.remove(&g);
            }
        }
        Ok(())
    }

    /// The creation stacks the goroutine and ticker records refer to, by id.
    pub fn creation_stacks(
        &self,
        records: &HashMap<u64, GoroutineRecord>,
        tickers: &HashMap<u64, TickerRecord>,
    ) -> HashMap<i32, Vec<u64>> {
        self.stacks(
            records
                .values()
                .map(|r| r.stack_id)
                .chain(tickers.values().map(|t| t.stack_id)),
        )
    }

    fn stacks(&self, ids: impl IntoIterator<Item = i32>) -> HashMap<i32, Vec<u64>> {
        let mut stacks = HashMap::new();
        for id in ids {
            if id != NO_STACK && !stacks.contains_key(&id) {
                stacks.extend(self.stack(id).map(|frames| (id, frames)));
            }
        }
        stacks
    }

    /// Every ticker created while attached, by `*time.Ticker` address.
    pub fn tickers(&self) -> anyhow::Result<HashMap<u64, TickerRecord>> {
        let map: BpfHashMap<&MapData, u64, TickerRecord> =
            BpfHashMap::try_from(self.map("TICKERS")?)?;
        Ok(map.iter().flatten().collect())
    }

    /// The return addresses of a creation stack, innermost first.
    pub fn stack(&self, stack_id: i32) -> Option<Vec<u64>> {
        let id = u32::try_from(stack_id).ok()?;
        let map: StackTraceMap<&MapData> =
            StackTraceMap::try_from(self.map("STACKS").ok()?).ok()?;
        Some(
            map.get(&id, 0)
                .ok()?
                .frames()
                .iter()
                .map(|f| f.ip)
                .collect(),
        )
    }

    /// The ring buffer the exit probe writes to; taken once.
    pub fn take_exit_notices(&mut self) -> anyhow::Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map("EXIT_NOTICES")
            .ok_or_else(|| anyhow!("map EXIT_NOTICES is missing"))?;
        Ok(RingBuf::try_from(map)?)
    }
}

/// The exit code of the next `runtime.exit` of process `pid` in the ring, if any.
pub fn next_exit_code(ring: &mut RingBuf<MapData>, pid: u32) -> Option<i32> {
    while let Some(item) = ring.next() {
        if item.len() < size_of::<ExitNotice>() {
            continue;
        }
        // SAFETY: the probe wrote an ExitNotice; read_unaligned copes with alignment.
        let notice: ExitNotice = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
        if notice.tgid == pid {
            return Some(notice.code);
        }
    }
    None
}

impl Probes {
    /// Removes every probe from the target. Each uprobe removal waits for an
    /// RCU grace period in the kernel (~0.1 s here), so they are removed
    /// concurrently rather than one after another as a plain drop would.
    pub fn detach(mut self) {
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

    fn map(&self, name: &str) -> anyhow::Result<&aya::maps::Map> {
        self.ebpf
            .map(name)
            .ok_or_else(|| anyhow!("map {name} is missing"))
    }
}

/// One uprobe: which program, in which function, at which offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePoint {
    pub program: &'static str,
    pub function: String,
    pub offset: u64,
}

/// Where each probe goes in this binary. See the README's "How it works".
pub fn probe_points(binary: &GoBinary, placement: Placement) -> anyhow::Result<Vec<ProbePoint>> {
    let mut points = match placement {
        Placement::Emulated => creation_points(binary)?,
        Placement::Naive => return_points(binary)?,
    };
    let destroy_fn = if binary.function("runtime.gdestroy").is_some() {
        "runtime.gdestroy"
    } else {
        "runtime.goexit0"
    };
    for (program, function) in [
        ("goroutine_destroyed", destroy_fn),
        ("goroutine_parked", "runtime.gopark"),
    ] {
        let f = required(binary, function)?;
        let offset = match placement {
            Placement::Emulated => disasm::entry_probe_offset(code(binary, f)?, f.address),
            Placement::Naive => 0,
        };
        points.push(ProbePoint {
            program,
            function: function.to_string(),
            offset,
        });
    }
    points.extend(ticker_points(binary, placement)?);
    // Assembly without a prologue, run once. The symbol table calls it
    // `runtime.exit.abi0`, the pclntab `runtime.exit`.
    let exit_fn = if binary.function("runtime.exit.abi0").is_some() {
        "runtime.exit.abi0"
    } else {
        "runtime.exit"
    };
    required(binary, exit_fn)?;
    points.push(ProbePoint {
        program: "process_exiting",
        function: exit_fn.to_string(),
        offset: 0,
    });
    Ok(points)
}

/// Where tickers are made, stopped and reset. A program that links no timer
/// functions gets none. NewTicker itself may be inlined, so the runtime's
/// timer functions underneath it are probed: `time.newTimer` (entry and
/// returns, Go 1.23+) or `time.startTimer` (before), `time.stopTimer`, and
/// `time.resetTimer` (Go 1.23+) or `time.modTimer` (before).
fn ticker_points(binary: &GoBinary, placement: Placement) -> anyhow::Result<Vec<ProbePoint>> {
    let entry = |f: Function| -> anyhow::Result<u64> {
        Ok(match placement {
            Placement::Emulated => disasm::entry_probe_offset(code(binary, f)?, f.address),
            Placement::Naive => 0,
        })
    };
    let point = |program: &'static str, function: &str, offset: u64| ProbePoint {
        program,
        function: function.to_string(),
        offset,
    };
    let mut points = Vec::new();
    if let Some(new_timer) = binary.function(NEW_TIMER) {
        points.push(point("ticker_creating", NEW_TIMER, entry(new_timer)?));
        for offset in disasm::return_offsets(code(binary, new_timer)?, new_timer.address) {
            points.push(point("ticker_created", NEW_TIMER, offset));
        }
    } else if let Some(start) = binary.function("time.startTimer") {
        points.push(point("ticker_started", "time.startTimer", entry(start)?));
    }
    if let Some(stop) = binary.function("time.stopTimer") {
        points.push(point("ticker_stopped", "time.stopTimer", entry(stop)?));
    }
    if let Some((name, reset)) = ["time.resetTimer", "time.modTimer"]
        .iter()
        .find_map(|n| binary.function(n).map(|f| (*n, f)))
    {
        points.push(point("ticker_reset", name, entry(reset)?));
    }
    Ok(points)
}

/// Where to read each new goroutine: in every runtime function that calls
/// `runtime.newproc1`, after the call. `runtime.newproc.func1` (every `go`
/// statement) passes the result in RBX to a `CALL runtime.runqput`, which the
/// kernel emulates; other callers (coroutines, synctest) are probed on the
/// instruction after the call, with the result in RAX. If no caller is found,
/// newproc1's own `RET`s are probed. Never a uretprobe.
fn creation_points(binary: &GoBinary) -> anyhow::Result<Vec<ProbePoint>> {
    let newproc1 = required(binary, "runtime.newproc1")?;
    let runqput = binary.function("runtime.runqput").map(|f| f.address);
    let mut points = Vec::new();
    for (function, caller) in binary.callers(newproc1.address, "runtime.") {
        let code = code(binary, caller)?;
        for (_, after) in disasm::calls_to(code, caller.address, newproc1.address) {
            let point = match runqput
                .and_then(|q| disasm::result_passed_in_rbx(code, caller.address, after, q))
            {
                Some(offset) => ProbePoint {
                    program: "goroutine_queued",
                    function: function.clone(),
                    offset,
                },
                None => ProbePoint {
                    program: "goroutine_created",
                    function: function.clone(),
                    offset: after,
                },
            };
            points.push(point);
        }
    }
    if points.is_empty() {
        return return_points(binary);
    }
    Ok(points)
}

/// Every `RET` of `runtime.newproc1`, with the new goroutine in RAX.
fn return_points(binary: &GoBinary) -> anyhow::Result<Vec<ProbePoint>> {
    let newproc1 = required(binary, "runtime.newproc1")?;
    let returns = disasm::return_offsets(code(binary, newproc1)?, newproc1.address);
    if returns.is_empty() {
        return Err(anyhow!("found no return instruction in runtime.newproc1"));
    }
    Ok(returns
        .into_iter()
        .map(|offset| ProbePoint {
            program: "goroutine_created",
            function: "runtime.newproc1".to_string(),
            offset,
        })
        .collect())
}

fn required(binary: &GoBinary, name: &'static str) -> anyhow::Result<Function> {
    binary.function(name).ok_or_else(|| {
        anyhow!(
            "{} has no function {name}; is it a Go program?",
            binary.path.display()
        )
    })
}

fn code(binary: &GoBinary, function: Function) -> anyhow::Result<&[u8]> {
    binary.code(function).ok_or_else(|| {
        anyhow!(
            "the code of a runtime function is not in {}",
            binary.path.display()
        )
    })
}
