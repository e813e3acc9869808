//! The uprobes leaktrace attaches to the Go runtime of one target process.
//!
//! Each leaktrace session loads its own copy of these programs and maps, with
//! the target's `runtime.g` layout set as a global, so nothing here needs to
//! tell processes apart.
//!
//! Per goroutine the cost is one probe at creation (where `newproc1`'s
//! result is handed on), one at destruction, and one per `runtime.gopark`,
//! each on an instruction the kernel emulates where possible.
//! All aggregation happens here; userspace only reads the maps.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{
        bindings::{BPF_F_USER_STACK, BPF_NOEXIST},
        helpers::{bpf_ktime_get_ns, bpf_probe_read_user, generated::bpf_send_signal},
        macros::{map, uprobe},
        maps::{HashMap, PerCpuArray, PerCpuHashMap, RingBuf, StackTrace},
        programs::{ProbeContext, tracing::StackIdContext},
    };
    use leaktrace_ebpf::{
        ExitNotice, FIELD_ABSENT, GoLayout, GoroutineRecord, MAX_GOROUTINES, MAX_SITES, MAX_STACKS,
        NO_STACK, SiteCounters, SiteKey, counter,
    };

    const BPF_F_NO_PREALLOC: u32 = 1;
    const SIGSTOP: u32 = 19;

    /// Set by userspace before load.
    #[unsafe(no_mangle)]
    static LAYOUT: GoLayout = GoLayout {
        g_goid: 0,
        g_gopc: 0,
        g_startpc: 0,
        g_parent_goid: FIELD_ABSENT,
    };

    /// Non-zero: stop the target with SIGSTOP when it enters `runtime.exit`, so
    /// userspace can read its goroutines before they are gone (`leaktrace run`).
    #[unsafe(no_mangle)]
    static STOP_AT_EXIT: u8 = 0;

    #[map]
    static GOROUTINES: HashMap<u64, GoroutineRecord> =
        HashMap::with_max_entries(MAX_GOROUTINES, BPF_F_NO_PREALLOC);

    /// Per-CPU, so counting needs no atomics; userspace sums the CPUs.
    #[map]
    static SITES: PerCpuHashMap<SiteKey, SiteCounters> =
        PerCpuHashMap::with_max_entries(MAX_SITES, 0);

    /// Creation stacks, walked through Go's frame pointers.
    #[map]
    static STACKS: StackTrace = StackTrace::with_max_entries(MAX_STACKS, 0);

    #[map]
    static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

    #[map]
    static EXIT_NOTICES: RingBuf = RingBuf::with_byte_size(4096, 0);

    #[inline(always)]
    fn layout() -> GoLayout {
        // Volatile so the compiler does not fold the placeholder values above.
        unsafe { core::ptr::read_volatile(&LAYOUT) }
    }

    #[inline(always)]
    fn bump(index: u32) {
        if let Some(slot) = COUNTERS.get_ptr_mut(index) {
            unsafe { *slot += 1 };
        }
    }

    #[inline(always)]
    fn read_u64(addr: u64) -> Option<u64> {
        match unsafe { bpf_probe_read_user(addr as *const u64) } {
            Ok(value) => Some(value),
            Err(_) => {
                bump(counter::DROPPED_READ_FAULT);
                None
            }
        }
    }

    #[inline(always)]
    fn regs(ctx: &ProbeContext) -> &aya_ebpf::bindings::pt_regs {
        unsafe { &*ctx.regs }
    }

    /// Adds to a site's counters, creating the entry on first use.
    #[inline(always)]
    fn count_at_site(site: SiteKey, field: fn(&mut SiteCounters) -> &mut u64) {
        for _ in 0..2 {
            if let Some(counters) = SITES.get_ptr_mut(site) {
                *field(unsafe { &mut *counters }) += 1;
                return;
            }
            // Another CPU may insert first; then the retry finds its entry.
            let _ = SITES.insert(site, SiteCounters::default(), BPF_NOEXIST.into());
        }
        bump(counter::DROPPED_SITE_TABLE_FULL);
    }

    /// Where `runtime.newproc.func1` hands the new goroutine to
    /// `runqput(pp, newg, next)`: the `CALL`, which the kernel emulates, with
    /// the new `*g` in RBX. Every `go` statement passes here once; the
    /// function runs on the system stack, so it never re-enters.
    #[uprobe]
    pub fn goroutine_queued(ctx: ProbeContext) -> u32 {
        record_creation(&ctx, regs(&ctx).rbx);
        0
    }

    /// Right after a `CALL runtime.newproc1` (other callers, such as
    /// coroutines), or on its `RET`s as a fallback: the new `*g` is in RAX.
    #[uprobe]
    pub fn goroutine_created(ctx: ProbeContext) -> u32 {
        record_creation(&ctx, regs(&ctx).rax);
        0
    }

    #[inline(always)]
    fn record_creation(ctx: &ProbeContext, g: u64) {
        let layout = layout();
        let (Some(goid), Some(gopc), Some(startpc)) = (
            read_u64(g + layout.g_goid),
            read_u64(g + layout.g_gopc),
            read_u64(g + layout.g_startpc),
        ) else {
            return;
        };
        let parent_goid = if layout.g_parent_goid == FIELD_ABSENT {
            0
        } else {
            read_u64(g + layout.g_parent_goid).unwrap_or(0)
        };
        bump(counter::CREATED);
        // The probe runs on g0; systemstack keeps the frame-pointer chain to
        // the goroutine that ran the `go` statement.
        let stack_id = match ctx.get_stackid(&STACKS, BPF_F_USER_STACK.into()) {
            Ok(id) => id as i32,
            Err(_) => {
                bump(counter::DROPPED_STACK);
                NO_STACK
            }
        };
        let record = GoroutineRecord {
            goid,
            parent_goid,
            gopc,
            startpc,
            created_ns: unsafe { bpf_ktime_get_ns() },
            stack_id,
            ..Default::default()
        };
        if GOROUTINES.insert(g, record, 0).is_err() {
            bump(counter::DROPPED_GOROUTINE_TABLE_FULL);
        }
        count_at_site(SiteKey { gopc, startpc }, |c| &mut c.created);
    }

    /// At `runtime.gdestroy(gp)` (Go 1.22+) or `runtime.goexit0(gp)` (older):
    /// every path by which a goroutine ends, including `runtime.Goexit` and
    /// coroutine exit, passes here with `gp` in RAX. Both run on g0, which never
    /// grows its stack, so a probe at the stack-check branch cannot fire twice.
    #[uprobe]
    pub fn goroutine_destroyed(ctx: ProbeContext) -> u32 {
        let g = regs(&ctx).rax;
        bump(counter::EXITED);
        match unsafe { GOROUTINES.get(g) } {
            Some(record) => {
                let site = SiteKey {
                    gopc: record.gopc,
                    startpc: record.startpc,
                };
                let _ = GOROUTINES.remove(g);
                count_at_site(site, |c| &mut c.exited);
            }
            None => {
                // Created before the attach and not seeded (or its creation was dropped).
                let layout = layout();
                if let (Some(gopc), Some(startpc)) =
                    (read_u64(g + layout.g_gopc), read_u64(g + layout.g_startpc))
                {
                    count_at_site(SiteKey { gopc, startpc }, |c| &mut c.exited_preexisting);
                }
            }
        }
        0
    }

    /// At `runtime.gopark(unlockf, lock, reason, ...)`, on the parking goroutine's
    /// own stack: R14 is its `*g`, RCX the wait reason. Idempotent, so a second
    /// hit after stack growth only refreshes the timestamp.
    #[uprobe]
    pub fn goroutine_parked(ctx: ProbeContext) -> u32 {
        let regs = regs(&ctx);
        bump(counter::PARKED);
        if let Some(record) = GOROUTINES.get_ptr_mut(regs.r14) {
            unsafe {
                (*record).parked_ns = bpf_ktime_get_ns();
                (*record).park_reason = regs.rcx as u8;
            }
        }
        0
    }

    /// At `runtime.exit(code)`, the only way a Go process ends on its own.
    #[uprobe]
    pub fn process_exiting(ctx: ProbeContext) -> u32 {
        let regs = regs(&ctx);
        // ABI0 assembly function: the code is on the stack above the return address.
        let code = read_u64(regs.rsp + 8).unwrap_or(0) as u32 as i32;
        let tgid = (aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32) as u32;
        if EXIT_NOTICES
            .output::<ExitNotice>(&ExitNotice { tgid, code }, 0)
            .is_err()
        {
            bump(counter::DROPPED_EXIT_NOTICE);
            return 0;
        }
        if unsafe { core::ptr::read_volatile(&STOP_AT_EXIT) } != 0 {
            unsafe { bpf_send_signal(SIGSTOP) };
        }
        0
    }

    #[cfg(not(test))]
    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }

    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 4] = *b"GPL\0";
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
