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
//!
//! Every program, map and global is named exactly as in the library's
//! `program`, `map` and `global` modules, which userspace uses.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{
        bindings::pt_regs,
        bindings::{BPF_F_USER_STACK, BPF_NOEXIST},
        helpers::{
            bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_user,
            generated::bpf_send_signal,
        },
        macros::{map, raw_tracepoint, uprobe},
        maps::{HashMap, PerCpuArray, PerCpuHashMap, RingBuf, StackTrace},
        programs::{ProbeContext, RawTracePointContext, tracing::StackIdContext},
    };
    use aya_log_ebpf::warn;
    use leaktrace_ebpf::{
        ExitNotice, FIELD_ABSENT, FdCounters, FdRecord, FdSiteKey, GoLayout, GoroutineRecord,
        MAX_FD_SITES, MAX_FDS, MAX_GOROUTINES, MAX_SITE_STACKS, MAX_SITES, MAX_STACKS,
        MAX_TIMER_SITES, MAX_TIMERS, NO_STACK, SiteCounters, SiteKey, SiteStack, TimerCounters,
        TimerLayout, TimerRecord, counter, hit,
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
        g_m: 0,
        m_curg: 0,
    };

    /// Set by userspace before load.
    #[unsafe(no_mangle)]
    static TIMER_LAYOUT: TimerLayout = TimerLayout {
        handle_from_argument: 0,
        handle_from_receiver: 0,
        runtime_timer_when: 0,
        runtime_timer_period: 0,
        runtime_timer_f: 0,
    };

    /// Set by userspace before load: one-shot timers set less than this far
    /// ahead fire before they can pile up, and are not tracked.
    #[unsafe(no_mangle)]
    static MIN_TIMER_NS: u64 = 0;

    /// Set by userspace before load: the process whose descriptors
    /// `fd_syscall` tracks; 0 for none.
    #[unsafe(no_mangle)]
    static FD_TGID: u32 = 0;

    /// Non-zero: record goroutine creation stacks (about 1 µs per goroutine).
    #[unsafe(no_mangle)]
    static GOROUTINE_STACKS: u8 = 1;

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
    static TIMERS: HashMap<u64, TimerRecord> =
        HashMap::with_max_entries(MAX_TIMERS, BPF_F_NO_PREALLOC);

    /// Per-CPU, so counting needs no atomics; userspace sums the CPUs.
    #[map]
    static TIMER_SITES: PerCpuHashMap<i32, TimerCounters> =
        PerCpuHashMap::with_max_entries(MAX_TIMER_SITES, 0);

    #[map]
    static FDS: HashMap<u32, FdRecord> = HashMap::with_max_entries(MAX_FDS, BPF_F_NO_PREALLOC);

    #[map]
    static FD_SITES: PerCpuHashMap<FdSiteKey, FdCounters> =
        PerCpuHashMap::with_max_entries(MAX_FD_SITES, 0);

    #[map]
    static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

    #[map]
    static EXIT_NOTICES: RingBuf = RingBuf::with_byte_size(4096, 0);

    /// One slot per program: what the report's probe costs are computed from.
    #[map]
    static HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(hit::COUNT, 0);

    /// Per CPU, whether each rare path ([`counter`] index) has been logged:
    /// `--debug` shows first occurrences, never a flood.
    #[map]
    static LOGGED: PerCpuArray<u8> = PerCpuArray::with_max_entries(counter::COUNT, 0);

    #[map]
    static SITE_STACKS: PerCpuHashMap<SiteStack, u64> =
        PerCpuHashMap::with_max_entries(MAX_SITE_STACKS, 0);

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
    fn hit(program: u32) {
        if let Some(slot) = HITS.get_ptr_mut(program) {
            unsafe { *slot += 1 };
        }
    }

    /// Whether the rare path `kind` is seen for the first time on this CPU.
    /// The log level (`--debug`) decides whether the message is written.
    #[inline(always)]
    fn first_time(kind: u32) -> bool {
        match LOGGED.get_ptr_mut(kind) {
            Some(seen) if unsafe { *seen } == 0 => {
                unsafe { *seen = 1 };
                true
            }
            _ => false,
        }
    }

    #[inline(always)]
    fn read_u64(ctx: &ProbeContext, addr: u64) -> Option<u64> {
        match unsafe { bpf_probe_read_user(addr as *const u64) } {
            Ok(value) => Some(value),
            Err(e) => {
                bump(counter::DROPPED_READ_FAULT);
                if first_time(counter::DROPPED_READ_FAULT) {
                    warn!(
                        ctx,
                        "cannot read the target's memory at {:x} (error {})", addr, e
                    );
                }
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
    fn count_at_site(ctx: &ProbeContext, site: SiteKey, field: fn(&mut SiteCounters) -> &mut u64) {
        for _ in 0..2 {
            if let Some(counters) = SITES.get_ptr_mut(site) {
                *field(unsafe { &mut *counters }) += 1;
                return;
            }
            // Another CPU may insert first; then the retry finds its entry.
            let _ = SITES.insert(site, SiteCounters::default(), BPF_NOEXIST.into());
        }
        bump(counter::DROPPED_SITE_TABLE_FULL);
        if first_time(counter::DROPPED_SITE_TABLE_FULL) {
            warn!(
                ctx,
                "the site table is full; a goroutine of go statement {:x} is not counted",
                site.gopc
            );
        }
    }

    /// Where `runtime.newproc.func1` hands the new goroutine to
    /// `runqput(pp, newg, next)`: the `CALL`, which the kernel emulates, with
    /// the new `*g` in RBX. Every `go` statement passes here once; the
    /// function runs on the system stack, so it never re-enters.
    #[uprobe]
    pub fn goroutine_queued(ctx: ProbeContext) -> u32 {
        hit(hit::GOROUTINE_QUEUED);
        record_creation(&ctx, regs(&ctx).rbx);
        0
    }

    /// Right after a `CALL runtime.newproc1` (other callers, such as
    /// coroutines), or on its `RET`s as a fallback: the new `*g` is in RAX.
    #[uprobe]
    pub fn goroutine_created(ctx: ProbeContext) -> u32 {
        hit(hit::GOROUTINE_CREATED);
        record_creation(&ctx, regs(&ctx).rax);
        0
    }

    #[inline(always)]
    fn record_creation(ctx: &ProbeContext, g: u64) {
        let layout = layout();
        let (Some(goid), Some(gopc), Some(startpc)) = (
            read_u64(ctx, g + layout.g_goid),
            read_u64(ctx, g + layout.g_gopc),
            read_u64(ctx, g + layout.g_startpc),
        ) else {
            return;
        };
        let creator = current_goroutine(ctx, &layout);
        let parent_goid = if layout.g_parent_goid == FIELD_ABSENT {
            // Before Go 1.21 the runtime does not record it: ask the creator.
            creator
                .and_then(|c| read_u64(ctx, c + layout.g_goid))
                .unwrap_or(0)
        } else {
            read_u64(ctx, g + layout.g_parent_goid).unwrap_or(0)
        };
        bump(counter::CREATED);
        // The probe runs on g0; systemstack keeps the frame-pointer chain to
        // the goroutine that ran the `go` statement.
        let stack_id = if unsafe { core::ptr::read_volatile(&GOROUTINE_STACKS) } != 0 {
            creation_stack(ctx)
        } else {
            NO_STACK
        };
        let creator_stack_id = match creator.filter(|_| stack_id != NO_STACK) {
            Some(creator) => unsafe { GOROUTINES.get(creator) }.map_or(NO_STACK, |r| r.stack_id),
            None => NO_STACK,
        };
        let record = GoroutineRecord {
            goid,
            parent_goid,
            gopc,
            startpc,
            created_ns: unsafe { bpf_ktime_get_ns() },
            stack_id,
            creator_stack_id,
            ..Default::default()
        };
        if gopc == 0 || startpc == 0 {
            bump(counter::UNEXPECTED_LAYOUT);
            if first_time(counter::UNEXPECTED_LAYOUT) {
                warn!(
                    ctx,
                    "unexpected runtime.g layout: goroutine {} at {:x} has gopc {:x} and startpc {:x}",
                    goid,
                    g,
                    gopc,
                    startpc
                );
            }
        }
        if GOROUTINES.insert(g, record, 0).is_err() {
            bump(counter::DROPPED_GOROUTINE_TABLE_FULL);
            if first_time(counter::DROPPED_GOROUTINE_TABLE_FULL) {
                warn!(
                    ctx,
                    "the goroutine table is full; goroutine {} is not tracked", goid
                );
            }
        }
        count_at_site(ctx, SiteKey { gopc, startpc }, |c| &mut c.created);
    }

    /// The user goroutine the thread is running: `m.curg` of the `g` in R14,
    /// which is that goroutine itself or, on the system stack, `g0` (for a
    /// creation probe: the goroutine running the `go` statement). None before
    /// the scheduler runs one (the main goroutine is created from `rt0_go`).
    #[inline(always)]
    fn current_goroutine(ctx: &ProbeContext, layout: &GoLayout) -> Option<u64> {
        let m = read_u64(ctx, regs(ctx).r14 + layout.g_m).filter(|&m| m != 0)?;
        read_u64(ctx, m + layout.m_curg).filter(|&g| g != 0)
    }

    /// At `runtime.gdestroy(gp)` (Go 1.22+) or `runtime.goexit0(gp)` (older):
    /// every path by which a goroutine ends, including `runtime.Goexit` and
    /// coroutine exit, passes here with `gp` in RAX. Both run on g0, which never
    /// grows its stack, so a probe at the stack-check branch cannot fire twice.
    #[uprobe]
    pub fn goroutine_destroyed(ctx: ProbeContext) -> u32 {
        hit(hit::GOROUTINE_DESTROYED);
        let g = regs(&ctx).rax;
        bump(counter::EXITED);
        match unsafe { GOROUTINES.get(g) } {
            Some(record) => {
                let site = SiteKey {
                    gopc: record.gopc,
                    startpc: record.startpc,
                };
                // Seeded from memory at the attach (created_ns 0): older than it.
                let preexisting = record.created_ns == 0;
                let _ = GOROUTINES.remove(g);
                if preexisting {
                    count_at_site(&ctx, site, |c| &mut c.exited_preexisting);
                } else {
                    count_at_site(&ctx, site, |c| &mut c.exited);
                }
            }
            None => {
                // Created before the attach and not seeded (or its creation was dropped).
                let layout = layout();
                if let (Some(gopc), Some(startpc)) = (
                    read_u64(&ctx, g + layout.g_gopc),
                    read_u64(&ctx, g + layout.g_startpc),
                ) {
                    count_at_site(&ctx, SiteKey { gopc, startpc }, |c| {
                        &mut c.exited_preexisting
                    });
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
        hit(hit::GOROUTINE_PARKED);
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
        hit(hit::PROCESS_EXITING);
        // ABI0 assembly function: the code is on the stack above the return address.
        let code = read_u64(&ctx, regs(&ctx).rsp + 8).unwrap_or(0) as u32 as i32;
        notify_exit(code, current_goroutine(&ctx, &layout()).unwrap_or(0));
        0
    }

    /// At `runtime.dieFromSignal(sig)` (RAX): a signal whose default action
    /// ends the process (SIGTERM, SIGINT, SIGHUP, a crash's SIGABRT, ...) is
    /// about to be raised again with the runtime's handler out of the way;
    /// `runtime.exit` is never reached. The code is 128 + the signal.
    #[uprobe]
    pub fn process_dying(ctx: ProbeContext) -> u32 {
        hit(hit::PROCESS_DYING);
        let signal = regs(&ctx).rax as u32 as i32;
        // On the signal stack, m.curg is whichever goroutine the signal hit.
        notify_exit(128 + signal, 0);
        0
    }

    /// Tells userspace the process is ending, and in `leaktrace run` stops
    /// it until its goroutines are read.
    #[inline(always)]
    fn notify_exit(code: i32, g: u64) {
        let tgid = (aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32) as u32;
        if EXIT_NOTICES
            .output::<ExitNotice>(&ExitNotice { tgid, code, g }, 0)
            .is_err()
        {
            bump(counter::DROPPED_EXIT_NOTICE);
            return;
        }
        if unsafe { core::ptr::read_volatile(&STOP_AT_EXIT) } != 0 {
            unsafe { bpf_send_signal(SIGSTOP) };
        }
    }

    /// On one `go` statement's `CALL runtime.newproc` (a site that looks like
    /// a leak, in sampled attach mode): counts its creation stacks. It traps
    /// only for the goroutines this statement creates, and the kernel
    /// emulates the `CALL`. The goroutine does not exist yet; its `gopc` is
    /// the call's return address, 5 bytes on.
    #[uprobe]
    pub fn site_creating(ctx: ProbeContext) -> u32 {
        hit(hit::SITE_CREATING);
        let key = SiteStack {
            gopc: regs(&ctx).rip + 5,
            stack_id: creation_stack(&ctx),
            _pad: 0,
        };
        for _ in 0..2 {
            if let Some(count) = SITE_STACKS.get_ptr_mut(&key) {
                unsafe { *count += 1 };
                return 0;
            }
            // By value: a `&0` would be a constant in .rodata, which the
            // compiler may share with a zero-initialised global that
            // userspace overrides (MIN_TIMER_NS).
            let _ = SITE_STACKS.insert(&key, 0u64, BPF_NOEXIST.into());
        }
        bump(counter::DROPPED_STACK);
        0
    }

    #[inline(always)]
    fn timers() -> TimerLayout {
        unsafe { core::ptr::read_volatile(&TIMER_LAYOUT) }
    }

    #[inline(always)]
    fn creation_stack<C: StackIdContext + aya_ebpf::EbpfContext>(ctx: &C) -> i32 {
        match ctx.get_stackid(&STACKS, BPF_F_USER_STACK.into()) {
            Ok(id) => id as i32,
            Err(e) => {
                bump(counter::DROPPED_STACK);
                if first_time(counter::DROPPED_STACK) {
                    warn!(ctx, "a creation stack was not stored (error {})", e);
                }
                NO_STACK
            }
        }
    }

    /// A timer or ticker package time is starting. One-shot timers set less
    /// than `MIN_TIMER_NS` ahead are filtered out here, before the stack
    /// walk: they fire before they can pile up.
    #[inline(always)]
    fn record_timer(ctx: &ProbeContext, timer: u64, when_ns: i64, period_ns: i64, func: u64) {
        let now = unsafe { bpf_ktime_get_ns() };
        let min = unsafe { core::ptr::read_volatile(&MIN_TIMER_NS) };
        if period_ns <= 0 && when_ns.saturating_sub(now as i64) < min as i64 {
            bump(counter::TIMERS_TOO_SHORT);
            return;
        }
        let stack_id = creation_stack(ctx);
        let record = TimerRecord {
            when_ns,
            period_ns: period_ns.max(0),
            created_ns: now,
            func,
            stack_id,
            ..Default::default()
        };
        if TIMERS.insert(timer, record, 0).is_err() {
            bump(counter::DROPPED_TIMER_TABLE_FULL);
            if first_time(counter::DROPPED_TIMER_TABLE_FULL) {
                warn!(
                    ctx,
                    "the timer table is full; timer {:x} is not tracked", timer
                );
            }
            return;
        }
        count_timer(ctx, stack_id, |c| &mut c.created);
    }

    /// Adds to a creation stack's timer counters, creating them on first use.
    #[inline(always)]
    fn count_timer(ctx: &ProbeContext, stack_id: i32, field: fn(&mut TimerCounters) -> &mut u64) {
        for _ in 0..2 {
            if let Some(counters) = TIMER_SITES.get_ptr_mut(&stack_id) {
                *field(unsafe { &mut *counters }) += 1;
                return;
            }
            let _ = TIMER_SITES.insert(&stack_id, &TimerCounters::default(), BPF_NOEXIST.into());
        }
        bump(counter::DROPPED_TIMER_TABLE_FULL);
        if first_time(counter::DROPPED_TIMER_TABLE_FULL) {
            warn!(
                ctx,
                "the timer-site table is full; a timer event is not counted"
            );
        }
    }

    /// Before Go 1.23, at `time.startTimer(t *runtimeTimer)` (RAX): every
    /// NewTimer, After, AfterFunc and NewTicker passes here once. `t` is the
    /// Timer's or Ticker's `r` field.
    #[uprobe]
    pub fn timer_started(ctx: ProbeContext) -> u32 {
        hit(hit::TIMER_STARTED);
        let timer = regs(&ctx).rax;
        let layout = timers();
        let (Some(when), Some(period), Some(func)) = (
            read_u64(&ctx, timer + layout.runtime_timer_when),
            read_u64(&ctx, timer + layout.runtime_timer_period),
            read_u64(&ctx, timer + layout.runtime_timer_f),
        ) else {
            return 0;
        };
        record_timer(
            &ctx,
            timer - layout.handle_from_argument,
            when as i64,
            period as i64,
            func,
        );
        0
    }

    /// From Go 1.23, on the `CALL t.modify(when, period, f, arg, seq)` in
    /// `time.newTimer`, which every NewTimer, After, AfterFunc and NewTicker
    /// makes once: the receiver (RAX) is the new timer, RBX `when`, RCX the
    /// period, RDI `f`. The kernel emulates the `CALL`: one cheap trap per
    /// timer, where probing the entry and returns would take two.
    #[uprobe]
    pub fn timer_created(ctx: ProbeContext) -> u32 {
        hit(hit::TIMER_CREATED);
        let regs = regs(&ctx);
        record_timer(
            &ctx,
            regs.rax - timers().handle_from_receiver,
            regs.rbx as i64,
            regs.rcx as i64,
            regs.rdi,
        );
        0
    }

    /// At `time.stopTimer(t)` (RAX), for every timer.
    #[uprobe]
    pub fn timer_stopped(ctx: ProbeContext) -> u32 {
        hit(hit::TIMER_STOPPED);
        let timer = regs(&ctx).rax - timers().handle_from_argument;
        if let Some(record) = TIMERS.get_ptr_mut(timer) {
            let stack_id = unsafe {
                (*record).stopped = 1;
                (*record).stack_id
            };
            count_timer(&ctx, stack_id, |c| &mut c.stopped);
        }
        0
    }

    /// At `time.resetTimer(t, when, period)` (Go 1.23+) or `time.modTimer(t,
    /// when, period, ...)` (a pre-1.23 Ticker.Reset): RAX, RBX, RCX.
    #[uprobe]
    pub fn timer_reset(ctx: ProbeContext) -> u32 {
        hit(hit::TIMER_RESET);
        let regs = regs(&ctx);
        rearm(&ctx, regs.rax, regs.rbx as i64, Some(regs.rcx as i64));
        0
    }

    /// At `time.resetTimer(t, when)` before Go 1.23 (Timer.Reset): RAX, RBX.
    #[uprobe]
    pub fn timer_rearmed(ctx: ProbeContext) -> u32 {
        hit(hit::TIMER_REARMED);
        let regs = regs(&ctx);
        rearm(&ctx, regs.rax, regs.rbx as i64, None);
        0
    }

    #[inline(always)]
    fn rearm(ctx: &ProbeContext, argument: u64, when_ns: i64, period_ns: Option<i64>) {
        let timer = argument - timers().handle_from_argument;
        if let Some(record) = TIMERS.get_ptr_mut(timer) {
            let stack_id = unsafe {
                (*record).when_ns = when_ns;
                if let Some(period) = period_ns {
                    (*record).period_ns = period.max(0);
                }
                (*record).stopped = 0;
                (*record).resets = (*record).resets.saturating_add(1);
                (*record).stack_id
            };
            count_timer(ctx, stack_id, |c| &mut c.reset);
        }
    }

    /// x86-64 system call numbers that make or free descriptors.
    mod nr {
        pub const CLOSE: u64 = 3;
        pub const OPEN: u64 = 2;
        pub const PIPE: u64 = 22;
        pub const DUP: u64 = 32;
        pub const DUP2: u64 = 33;
        pub const SOCKET: u64 = 41;
        pub const ACCEPT: u64 = 43;
        pub const SOCKETPAIR: u64 = 53;
        pub const FCNTL: u64 = 72;
        pub const CREAT: u64 = 85;
        pub const EPOLL_CREATE: u64 = 213;
        pub const OPENAT: u64 = 257;
        pub const TIMERFD_CREATE: u64 = 283;
        pub const ACCEPT4: u64 = 288;
        pub const SIGNALFD4: u64 = 289;
        pub const EVENTFD2: u64 = 290;
        pub const EPOLL_CREATE1: u64 = 291;
        pub const DUP3: u64 = 292;
        pub const PIPE2: u64 = 293;
        pub const INOTIFY_INIT1: u64 = 294;
        pub const MEMFD_CREATE: u64 = 319;
        pub const PIDFD_OPEN: u64 = 434;
        pub const OPENAT2: u64 = 437;
    }

    /// `fcntl` commands that duplicate a descriptor.
    const F_DUPFD: u64 = 0;
    const F_DUPFD_CLOEXEC: u64 = 1030;

    /// At every system call's exit, `sys_exit(regs, ret)`: for the target
    /// only (the first thing checked, as every process passes here), the
    /// descriptors it opens, with the user stack that opened them, and
    /// those it closes. The registers the call was made with are in `regs`:
    /// the number in `orig_rax`, the arguments in RDI, RSI, RDX, R10, and
    /// the calling goroutine's `*g` in R14 (Go keeps it there).
    #[raw_tracepoint(tracepoint = "sys_exit")]
    pub fn fd_syscall(ctx: RawTracePointContext) -> i32 {
        let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        if tgid == 0 || tgid != unsafe { core::ptr::read_volatile(&FD_TGID) } {
            return 0;
        }
        let regs: *const pt_regs = ctx.arg(0);
        let ret: i64 = ctx.arg(1);
        if ret < 0 {
            return 0;
        }
        let Ok(regs) = (unsafe { bpf_probe_read_kernel(regs) }) else {
            return 0;
        };
        hit(hit::FD_SYSCALL);
        match regs.orig_rax {
            nr::CLOSE => fd_closed(&ctx, regs.rdi as u32),
            nr::OPEN
            | nr::OPENAT
            | nr::OPENAT2
            | nr::CREAT
            | nr::SOCKET
            | nr::ACCEPT
            | nr::ACCEPT4
            | nr::DUP
            | nr::EPOLL_CREATE
            | nr::EPOLL_CREATE1
            | nr::EVENTFD2
            | nr::TIMERFD_CREATE
            | nr::SIGNALFD4
            | nr::INOTIFY_INIT1
            | nr::MEMFD_CREATE
            | nr::PIDFD_OPEN => fd_opened(&ctx, &regs, ret as u32),
            nr::FCNTL if regs.rsi == F_DUPFD || regs.rsi == F_DUPFD_CLOEXEC => {
                fd_opened(&ctx, &regs, ret as u32)
            }
            // The new descriptor replaces (closes) whatever was there.
            nr::DUP2 | nr::DUP3 => {
                fd_closed(&ctx, regs.rsi as u32);
                fd_opened(&ctx, &regs, ret as u32)
            }
            nr::PIPE | nr::PIPE2 => fd_pair(&ctx, &regs, regs.rdi),
            nr::SOCKETPAIR => fd_pair(&ctx, &regs, regs.r10),
            _ => {}
        }
        0
    }

    /// `int fds[2]` written by pipe, pipe2 or socketpair.
    #[inline(always)]
    fn fd_pair(ctx: &RawTracePointContext, regs: &pt_regs, fds: u64) {
        if let Ok(pair) = unsafe { bpf_probe_read_user(fds as *const [u32; 2]) } {
            fd_opened(ctx, regs, pair[0]);
            fd_opened(ctx, regs, pair[1]);
        }
    }

    #[inline(always)]
    fn fd_opened(ctx: &RawTracePointContext, regs: &pt_regs, fd: u32) {
        let stack_id = creation_stack(ctx);
        let creator_stack_id = unsafe { GOROUTINES.get(regs.r14) }.map_or(NO_STACK, |g| g.stack_id);
        let record = FdRecord {
            opened_ns: unsafe { bpf_ktime_get_ns() },
            syscall: regs.orig_rax as u32,
            stack_id,
            creator_stack_id,
            _pad: 0,
        };
        if FDS.insert(fd, record, 0).is_err() {
            bump(counter::DROPPED_FD_TABLE_FULL);
            return;
        }
        count_fd(
            FdSiteKey {
                stack_id,
                creator_stack_id,
                syscall: regs.orig_rax as u32,
                _pad: 0,
            },
            |c| &mut c.opened,
        );
    }

    #[inline(always)]
    fn fd_closed(_ctx: &RawTracePointContext, fd: u32) {
        if let Some(record) = unsafe { FDS.get(fd) } {
            let key = FdSiteKey {
                stack_id: record.stack_id,
                creator_stack_id: record.creator_stack_id,
                syscall: record.syscall,
                _pad: 0,
            };
            let _ = FDS.remove(fd);
            count_fd(key, |c| &mut c.closed);
        }
    }

    #[inline(always)]
    fn count_fd(key: FdSiteKey, field: fn(&mut FdCounters) -> &mut u64) {
        for _ in 0..2 {
            if let Some(counters) = FD_SITES.get_ptr_mut(&key) {
                *field(unsafe { &mut *counters }) += 1;
                return;
            }
            let _ = FD_SITES.insert(&key, &FdCounters::default(), BPF_NOEXIST.into());
        }
        bump(counter::DROPPED_FD_TABLE_FULL);
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
