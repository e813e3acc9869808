//! The analysis on synthetic observations: what the probes and memory would
//! have said, symbolized by a table instead of a binary.

use std::collections::{HashMap, HashSet};

use leaktrace_ebpf::{SiteCounters, SiteKey};

use super::{
    heap::HeapObservation,
    symbols::fake::{FakeSymbols, at},
    *,
};
use crate::{
    probes::{Park, StackId, TrackedGoroutine, TrackedTimer},
    process::heap::{HeapBucket, HeapProfile},
    process::{
        Snapshot,
        goroutines::{GStatus, Goroutine},
        tickers::TickerMemory,
    },
    report::{HeapVerdict, TickerVerdict, TimerSemantics, Verdict},
};

const MAIN_GO: &str = "/src/app/main.go";
const GOROOT: &str = "/usr/lib/go/src/";

// The program's `go worker()` in main.main, and the goroutine's function.
const PROGRAM_GOPC: u64 = 0x1005;
const WORKER: u64 = 0x2000;
// net/http starting a connection's reader.
const STDLIB_GOPC: u64 = 0x3005;
const READ_LOOP: u64 = 0x4000;
// The runtime starting a GC worker.
const RUNTIME_GOPC: u64 = 0x5005;
const BG_SWEEP: u64 = 0x6000;
// Where a blocked worker stopped: in gopark, called by chanrecv1, called
// from main.worker line 21.
const GOPARK_PC: u64 = 0x7000;
const CHANRECV_RET: u64 = 0x7105;
const WORKER_RET: u64 = 0x2105;
// A creation stack: the probe, newproc, the go statement, runtime.main.
const PROBE_IP: u64 = 0x9000;
const NEWPROC_RET: u64 = 0x8005;
const RUNTIME_MAIN_RET: u64 = 0xa005;
const NOW: u64 = 100_000_000_000;
const SECOND: u64 = 1_000_000_000;
const CHAN_RECEIVE: u8 = 14;

fn symbols() -> FakeSymbols {
    let mut s = FakeSymbols {
        goroot: GOROOT.into(),
        ..Default::default()
    };
    s.call(PROGRAM_GOPC, "main.main", MAIN_GO, 10)
        .entry(WORKER, "main.worker", MAIN_GO, 20)
        .call(
            STDLIB_GOPC,
            "net/http.(*Transport).dialConn",
            "/usr/lib/go/src/net/http/transport.go",
            1944,
        )
        .entry(
            READ_LOOP,
            "net/http.(*persistConn).readLoop",
            "/usr/lib/go/src/net/http/transport.go",
            2100,
        )
        .call(
            RUNTIME_GOPC,
            "runtime.gcenable",
            "/usr/lib/go/src/runtime/mgc.go",
            200,
        )
        .entry(
            BG_SWEEP,
            "runtime.bgsweep",
            "/usr/lib/go/src/runtime/mgcsweep.go",
            1,
        )
        .call(
            GOPARK_PC,
            "runtime.gopark",
            "/usr/lib/go/src/runtime/proc.go",
            1,
        )
        .call(
            CHANRECV_RET,
            "runtime.chanrecv1",
            "/usr/lib/go/src/runtime/chan.go",
            1,
        )
        .call(WORKER_RET, "main.worker", MAIN_GO, 21)
        .call(
            NEWPROC_RET,
            "runtime.newproc",
            "/usr/lib/go/src/runtime/proc.go",
            1,
        )
        .call(
            RUNTIME_MAIN_RET,
            "runtime.main",
            "/usr/lib/go/src/runtime/proc.go",
            1,
        );
    s.wait_reasons = vec![String::new(); 20];
    s.wait_reasons[usize::from(CHAN_RECEIVE)] = "chan receive".into();
    s
}

fn site(gopc: u64, startpc: u64) -> SiteKey {
    SiteKey { gopc, startpc }
}

fn goroutine(g: u64, goid: u64, key: SiteKey, status: GStatus) -> Goroutine {
    Goroutine {
        g,
        goid,
        parent_goid: Some(1),
        gopc: key.gopc,
        startpc: key.startpc,
        status,
        wait_reason: if status == GStatus::Waiting {
            CHAN_RECEIVE
        } else {
            0
        },
        wait_since_ns: 0,
        tracking_seq: 0,
        sched_pc: GOPARK_PC,
        sched_sp: 0,
        sched_bp: 0,
        waiting: 0,
    }
}

fn tracked(goid: u64, key: SiteKey) -> TrackedGoroutine {
    TrackedGoroutine {
        goid,
        parent_goid: Some(1),
        site: key,
        created_ns: Some(NOW - 10 * SECOND),
        last_park: None,
        creation_stack: Some(StackId(1)),
        creator_stack: None,
    }
}

fn counters(created: u64, exited: u64) -> SiteCounters {
    SiteCounters {
        created,
        exited,
        exited_preexisting: 0,
    }
}

fn observation(mode: Mode) -> Observation {
    Observation {
        mode,
        target: TargetInfo {
            pid: 42,
            executable: "/srv/app".into(),
            go_version: "go1.23.5".into(),
        },
        observed_ns: 10 * SECOND,
        exit_code: None,
        exiting_goroutine: None,
        snapshot: Some(Snapshot {
            now_ns: NOW,
            ..Default::default()
        }),
        census: None,
        sites: HashMap::new(),
        goroutines: HashMap::new(),
        timers: HashMap::new(),
        timer_counts: HashMap::new(),
        clock_ns: NOW,
        ticker_memory: TickerMemory::default(),
        heap: None,
        descriptors: None,
        stacks: HashMap::from([(
            StackId(1),
            vec![PROBE_IP, NEWPROC_RET, PROGRAM_GOPC, RUNTIME_MAIN_RET],
        )]),
        timeline: None,
        events: EventCounts::default(),
        timer_semantics: TimerSemantics::Sync,
        costs: ProbeCosts::default(),
    }
}

fn policy() -> Policy {
    Policy {
        thresholds: Thresholds {
            stuck_after_ns: 10 * SECOND,
            min_growth: 1,
        },
        ignore: IgnoreRules::default(),
        include_all: false,
    }
}

fn analyse_with(observation: &Observation, symbols: &FakeSymbols, policy: &Policy) -> Report {
    analyse(observation, &Symbolizer::new(symbols, 0), policy)
}

/// A run of the program: two workers blocked at exit (one seen parking by
/// the probe), one exited; a net/http reader alive; a GC worker.
fn run_observation() -> Observation {
    let worker = site(PROGRAM_GOPC, WORKER);
    let mut obs = observation(Mode::Run);
    obs.exit_code = Some(0);
    obs.sites = HashMap::from([
        (worker, counters(3, 1)),
        (site(STDLIB_GOPC, READ_LOOP), counters(1, 0)),
        (site(RUNTIME_GOPC, BG_SWEEP), counters(1, 0)),
    ]);
    let mut parked = tracked(7, worker);
    parked.last_park = Some(Park {
        at_ns: NOW - 3 * SECOND,
        reason: CHAN_RECEIVE,
    });
    obs.goroutines = HashMap::from([
        (0xc000, parked),
        (0xc100, tracked(8, worker)),
        (0xc200, tracked(9, site(STDLIB_GOPC, READ_LOOP))),
    ]);
    let mut older = goroutine(0xc100, 8, worker, GStatus::Waiting);
    older.wait_since_ns = (NOW - 60 * SECOND) as i64;
    older.parent_goid = Some(6);
    let snapshot = obs.snapshot.as_mut().unwrap();
    snapshot.goroutines = vec![
        goroutine(0xc000, 7, worker, GStatus::Waiting),
        older,
        goroutine(0xc200, 9, site(STDLIB_GOPC, READ_LOOP), GStatus::Waiting),
        goroutine(0xc300, 2, site(RUNTIME_GOPC, BG_SWEEP), GStatus::Waiting),
    ];
    snapshot.current_stacks = HashMap::from([
        (0xc000, vec![GOPARK_PC, CHANRECV_RET, WORKER_RET]),
        (0xc100, vec![GOPARK_PC, CHANRECV_RET, WORKER_RET]),
    ]);
    obs
}

#[test]
fn run_mode_reports_what_the_program_left_behind() {
    let report = analyse_with(&run_observation(), &symbols(), &policy());
    assert_eq!(report.mode, Mode::Run);
    assert!(report.snapshot);
    assert!(report.has_leaks());
    let sites: Vec<(&str, Verdict, u64)> = report
        .goroutines
        .iter()
        .map(|s| (s.entry.function.as_str(), s.verdict, s.live))
        .collect();
    assert_eq!(
        sites,
        [
            ("main.worker", Verdict::Leak, 2),
            ("net/http.(*persistConn).readLoop", Verdict::Library, 1),
        ],
        "the runtime's goroutines are hidden"
    );
    let worker = &report.goroutines[0];
    assert_eq!(worker.created_at, at("main.main", MAIN_GO, 10));
    assert_eq!((worker.created, worker.exited), (3, 1));
    assert_eq!(worker.states, [("chan receive".to_string(), 2)].into());
    // The longest-blocked one: the runtime's 60 s beats the probe's exact 3 s.
    assert_eq!(
        worker.blocked_for,
        Some(BlockedFor {
            longest_ns: 60 * SECOND,
            source: TimeSource::Runtime
        })
    );
    assert_eq!(worker.blocked_at, Some(at("main.worker", MAIN_GO, 21)));
    assert_eq!(worker.goids, [7, 8]);
    assert_eq!(worker.parent_goids, [1, 6]);
    // Past the probe and newproc; runtime.main at the bottom says nothing.
    assert_eq!(
        worker.stacks,
        [CreationStack {
            count: 2,
            frames: vec![at("main.main", MAIN_GO, 10)]
        }]
    );
    assert_eq!(worker.origin, Origin::Program);
}

#[test]
fn exact_block_times_come_from_the_park_probe() {
    let mut obs = run_observation();
    obs.snapshot.as_mut().unwrap().goroutines.remove(1);
    let report = analyse_with(&obs, &symbols(), &policy());
    assert_eq!(
        report.goroutines[0].blocked_for,
        Some(BlockedFor {
            longest_ns: 3 * SECOND,
            source: TimeSource::Exact
        })
    );
}

#[test]
fn all_shows_the_runtime_and_a_gone_target_is_counted_from_the_probes() {
    let mut policy = policy();
    policy.include_all = true;
    let report = analyse_with(&run_observation(), &symbols(), &policy);
    assert_eq!(
        report.goroutines.last().map(|s| (s.verdict, s.live)),
        Some((Verdict::Runtime, 1))
    );

    let mut gone = run_observation();
    gone.snapshot = None;
    let report = analyse_with(&gone, &symbols(), &super::tests::policy());
    assert!(!report.snapshot);
    let worker = &report.goroutines[0];
    assert_eq!((worker.verdict, worker.live), (Verdict::Leak, 2));
    assert!(worker.states.is_empty(), "no memory, no states");
    assert_eq!(worker.goids, [7, 8]);
}

#[test]
fn run_time_pcs_are_symbolized_with_the_load_bias() {
    const BIAS: u64 = 0x5555_0000_0000;
    let mut obs = run_observation();
    let rebase = |key: SiteKey| site(key.gopc + BIAS, key.startpc + BIAS);
    obs.sites = obs.sites.into_iter().map(|(k, c)| (rebase(k), c)).collect();
    for g in obs.goroutines.values_mut() {
        g.site = rebase(g.site);
    }
    let snapshot = obs.snapshot.as_mut().unwrap();
    for g in &mut snapshot.goroutines {
        g.gopc += BIAS;
        g.startpc += BIAS;
    }
    for stack in snapshot.current_stacks.values_mut() {
        stack.iter_mut().for_each(|pc| *pc += BIAS);
    }
    for stack in obs.stacks.values_mut() {
        stack.iter_mut().for_each(|pc| *pc += BIAS);
    }
    let biased = analyse(&obs, &Symbolizer::new(&symbols(), BIAS), &policy());
    let plain = analyse_with(&run_observation(), &symbols(), &policy());
    assert_eq!(biased.goroutines, plain.goroutines);
}

#[test]
fn ignore_rules_match_function_top_frame_and_creator() {
    for rules in [
        IgnoreRules {
            functions: vec!["main.worker".into()],
            ..Default::default()
        },
        IgnoreRules {
            top_functions: vec!["main.work*".into()],
            ..Default::default()
        },
        IgnoreRules {
            creators: vec!["main.main".into()],
            ..Default::default()
        },
    ] {
        let mut policy = policy();
        policy.ignore = rules.clone();
        let report = analyse_with(&run_observation(), &symbols(), &policy);
        assert!(!report.has_leaks(), "{rules:?}");
        policy.include_all = true;
        let report = analyse_with(&run_observation(), &symbols(), &policy);
        assert_eq!(
            report
                .goroutines
                .iter()
                .find(|s| s.entry.function == "main.worker")
                .map(|s| s.verdict),
            Some(Verdict::Ignored),
            "{rules:?}"
        );
    }
}

/// Attach mode: `worker` grew by 4 while observed with one goroutine stuck
/// for 20 s; `pool` (an older site) did not grow but is stuck; `churn` rose
/// and fell.
fn attach_observation(rising: &[i64]) -> Observation {
    let worker = site(PROGRAM_GOPC, WORKER);
    let mut obs = observation(Mode::Attach);
    obs.sites = HashMap::from([(worker, counters(4, 0))]);
    let mut stuck = goroutine(0xc000, 7, worker, GStatus::Waiting);
    stuck.wait_since_ns = (NOW - 20 * SECOND) as i64;
    obs.snapshot.as_mut().unwrap().goroutines = (0..5)
        .map(|i| {
            let mut g = stuck.clone();
            g.g += i * 0x100;
            g.goid += i;
            g
        })
        .collect();
    let mut timeline = Timeline::new(HashMap::from([(worker, 1)]));
    let mut created = 0;
    for (i, &live) in rising.iter().enumerate() {
        created = (live - 1).max(created);
        timeline.push(timeline::Sample {
            elapsed_ns: i as u64 * SECOND,
            events: EventCounts::default(),
            sites: HashMap::from([(
                worker,
                counters(created as u64, (created - (live - 1)) as u64),
            )]),
        });
    }
    obs.timeline = Some(timeline);
    obs
}

#[test]
fn attach_mode_needs_growth_a_rising_trend_and_a_stuck_goroutine() {
    let report = analyse_with(&attach_observation(&[1, 2, 3, 5]), &symbols(), &policy());
    let worker = &report.goroutines[0];
    assert_eq!((worker.verdict, worker.live), (Verdict::Leak, 5));
    assert_eq!(
        worker.trend,
        Some(crate::report::Trend {
            live: vec![1, 2, 3, 5],
            rising: true
        })
    );

    let churn = analyse_with(&attach_observation(&[1, 5, 2, 1]), &symbols(), &policy());
    assert_eq!(churn.goroutines[0].verdict, Verdict::Suspect);

    let mut patient = policy();
    patient.thresholds.stuck_after_ns = 30 * SECOND;
    let not_stuck = analyse_with(&attach_observation(&[1, 2, 3, 5]), &symbols(), &patient);
    assert_eq!(not_stuck.goroutines[0].verdict, Verdict::Ok);
}

fn ticker(stopped: bool, stack: Option<StackId>) -> TrackedTimer {
    TrackedTimer {
        when_ns: (NOW + SECOND) as i64,
        period_ns: SECOND as i64,
        created_ns: NOW - SECOND,
        func: 0,
        creation_stack: stack,
        stopped,
        resets: 0,
    }
}

/// Three tickers made by main.main line 10: one a worker receives from,
/// one a global holds, one nothing holds; and one stopped.
fn ticker_observation(semantics: TimerSemantics) -> Observation {
    let worker = site(PROGRAM_GOPC, WORKER);
    let mut obs = observation(Mode::Run);
    obs.timer_semantics = semantics;
    obs.timers = HashMap::from([
        (0x7001, ticker(false, Some(StackId(1)))),
        (0x7002, ticker(false, Some(StackId(1)))),
        (0x7003, ticker(false, Some(StackId(1)))),
        (0x7004, ticker(true, Some(StackId(1)))),
    ]);
    obs.ticker_memory = TickerMemory {
        channels: HashMap::from([(0x7001, 0xc1), (0x7002, 0xc2), (0x7003, 0xc3)]),
        referenced: HashSet::from([0x7002]),
        func_pcs: HashMap::new(),
    };
    let snapshot = obs.snapshot.as_mut().unwrap();
    snapshot.goroutines = vec![goroutine(0xc000, 7, worker, GStatus::Waiting)];
    snapshot.waiting_channels = HashMap::from([(0xc000, vec![0xc1])]);
    obs
}

#[test]
fn sync_tickers_leak_while_held_and_link_their_receivers() {
    let report = analyse_with(
        &ticker_observation(TimerSemantics::Sync),
        &symbols(),
        &policy(),
    );
    assert_eq!(report.tickers.len(), 1, "one line made them all");
    let tickers = &report.tickers[0];
    assert_eq!(tickers.created_at, Some(at("main.main", MAIN_GO, 10)));
    assert_eq!((tickers.live, tickers.stopped), (3, 1));
    assert_eq!(tickers.period_ns, SECOND as i64);
    assert_eq!(tickers.referenced, 1);
    assert_eq!(tickers.receiving_goroutines, 1);
    assert_eq!(tickers.receivers, [at("main.main", MAIN_GO, 10)]);
    assert_eq!(tickers.verdict, TickerVerdict::Leak);
    assert_eq!(
        report.goroutines[0].tickers,
        [at("main.main", MAIN_GO, 10)],
        "the goroutine knows its ticker"
    );
}

#[test]
fn unreferenced_sync_tickers_are_collected_and_async_ones_always_leak() {
    let mut obs = ticker_observation(TimerSemantics::Sync);
    obs.ticker_memory = TickerMemory::default();
    obs.snapshot.as_mut().unwrap().waiting_channels.clear();
    let report = analyse_with(&obs, &symbols(), &policy());
    assert_eq!(report.tickers[0].verdict, TickerVerdict::Unreferenced);

    obs.timer_semantics = TimerSemantics::Async {
        reason: "go1.22.12 holds every running ticker".into(),
    };
    let report = analyse_with(&obs, &symbols(), &policy());
    assert_eq!(report.tickers[0].verdict, TickerVerdict::Leak);

    for t in obs.timers.values_mut() {
        t.stopped = true;
    }
    let report = analyse_with(&obs, &symbols(), &policy());
    assert_eq!(report.tickers[0].verdict, TickerVerdict::Ok);
}

// testing's `go tRunner(t, f)` in (*T).Run, and a test function's frame.
const T_RUN_GOPC: u64 = 0xb005;
const T_RUNNER: u64 = 0xc000;
const TEST_RET: u64 = 0xd105;
const T_RUNNER_RET: u64 = 0xc105;

fn test_symbols() -> FakeSymbols {
    let mut s = symbols();
    s.call(
        T_RUN_GOPC,
        "testing.(*T).Run",
        "/usr/lib/go/src/testing/testing.go",
        1700,
    )
    .entry(
        T_RUNNER,
        "testing.tRunner",
        "/usr/lib/go/src/testing/testing.go",
        1600,
    )
    .call(TEST_RET, "app.TestStuck", "/src/app/app_test.go", 12)
    .call(
        T_RUNNER_RET,
        "testing.tRunner",
        "/usr/lib/go/src/testing/testing.go",
        1650,
    );
    s
}

/// A run in which testing's `go tRunner` site has these counters and one
/// test goroutine alive, blocked in `app.TestStuck`.
fn stuck_test(counted: SiteCounters) -> Observation {
    let runs_tests = site(T_RUN_GOPC, T_RUNNER);
    let mut obs = observation(Mode::Run);
    obs.sites = HashMap::from([(runs_tests, counted)]);
    obs.goroutines = HashMap::from([(0xe000, tracked(30, runs_tests))]);
    let snapshot = obs.snapshot.as_mut().unwrap();
    snapshot.goroutines = vec![goroutine(0xe000, 30, runs_tests, GStatus::Waiting)];
    snapshot.current_stacks = HashMap::from([(
        0xe000,
        vec![GOPARK_PC, CHANRECV_RET, TEST_RET, T_RUNNER_RET],
    )]);
    obs
}

#[test]
fn a_test_goroutine_blocked_in_the_test_is_the_tests_leak_and_the_rest_of_its_site_is_not() {
    // Three tests ran; two finished, one is stuck in its own code.
    let mut obs = stuck_test(counters(3, 2));
    obs.exit_code = Some(2);
    let report = analyse_with(&obs, &test_symbols(), &policy());
    let [stuck, finished] = report.goroutines.as_slice() else {
        panic!("two entries: {:#?}", report.goroutines);
    };
    assert_eq!(stuck.verdict, Verdict::Leak);
    assert_eq!(stuck.origin, Origin::StandardLibrary);
    assert_eq!(
        stuck
            .attributed_to
            .as_ref()
            .map(|a| (&a.frame, a.by, a.pattern)),
        Some((
            &Some(at("app.TestStuck", "/src/app/app_test.go", 12)),
            crate::report::AttributedBy::Running,
            Some(crate::report::Pattern::TestGoroutine)
        ))
    );
    assert_eq!(stuck.test.as_deref(), Some("TestStuck"));
    assert_eq!((stuck.live, stuck.created, stuck.exited), (1, 1, 0));
    assert_eq!(
        stuck.blocked_at,
        Some(at("app.TestStuck", "/src/app/app_test.go", 12)),
        "past the runtime, in the test"
    );
    // The go statement's own entry keeps the tests that finished.
    assert_eq!(finished.attributed_to, None);
    assert_eq!(
        (finished.live, finished.created, finished.exited),
        (0, 2, 2)
    );
    assert_eq!(finished.verdict, Verdict::Ok);
    assert_eq!(
        report.tests,
        [crate::report::TestLeaks {
            name: "TestStuck".into(),
            leaked_goroutines: 1,
            leaking_sites: 1,
        }]
    );
}

#[test]
fn a_library_goroutine_running_an_ignored_function_is_ignored() {
    let obs = stuck_test(counters(1, 0));
    let mut ignoring = policy();
    ignoring.ignore.functions = vec!["app.TestStuck".into()];
    let report = analyse_with(&obs, &test_symbols(), &ignoring);
    assert!(!report.has_leaks(), "{:#?}", report.goroutines);
    assert!(report.tests.is_empty());
}

fn heap_bucket(stack: &[u64], size: u64, allocs: u64, frees: u64) -> HeapBucket {
    HeapBucket {
        stack: stack.to_vec(),
        size,
        allocs,
        frees,
    }
}

fn heap_profile(buckets: &[(u64, HeapBucket)]) -> HeapProfile {
    HeapProfile {
        buckets: buckets.iter().cloned().collect(),
        rate: 1,
        dropped: 0,
    }
}

/// Two buckets at main.main:10 (two sizes), one at main.worker:21: over an
/// attach window, main.main's grew and main.worker's shrank.
#[test]
fn heap_sites_grow_over_the_attach_window() {
    let mut obs = observation(Mode::Attach);
    obs.heap = Some(HeapObservation {
        before: Some(heap_profile(&[
            (
                1,
                heap_bucket(&[PROGRAM_GOPC, RUNTIME_MAIN_RET], 1024, 10, 0),
            ),
            (3, heap_bucket(&[WORKER_RET], 64, 100, 0)),
        ])),
        between: vec![HashMap::from([(1, 20 * 1024), (3, 70 * 64)])],
        after: Ok(heap_profile(&[
            (
                1,
                heap_bucket(&[PROGRAM_GOPC, RUNTIME_MAIN_RET], 1024, 30, 5),
            ),
            (2, heap_bucket(&[PROGRAM_GOPC], 16, 4, 0)),
            (3, heap_bucket(&[WORKER_RET], 64, 100, 60)),
        ])),
    });
    let heap = analyse_with(&obs, &symbols(), &policy()).heap.unwrap();
    assert!(heap.window);
    assert_eq!(heap.inuse_bytes, 25 * 1024 + 64 + 40 * 64);
    assert_eq!(heap.growth_bytes, 15 * 1024 + 64 - 60 * 64);
    let summary: Vec<(u32, u64, i64, HeapVerdict)> = heap
        .sites
        .iter()
        .map(|s| {
            (
                s.allocated_at.line,
                s.inuse_bytes,
                s.growth_bytes,
                s.verdict,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (10, 25 * 1024 + 64, 15 * 1024 + 64, HeapVerdict::Growing),
            (21, 40 * 64, -60 * 64, HeapVerdict::Steady),
        ]
    );
    // Both buckets' stacks read main.main once runtime.main is left out.
    assert_eq!(heap.sites[0].stacks.len(), 1);
    assert_eq!(heap.sites[0].stacks[0].inuse_bytes, 25 * 1024 + 64);
}

#[test]
fn heap_not_read_says_why() {
    let mut obs = observation(Mode::Run);
    obs.heap = Some(HeapObservation {
        before: None,
        between: Vec::new(),
        after: Err("the program set runtime.MemProfileRate to 0".into()),
    });
    let heap = analyse_with(&obs, &symbols(), &policy()).heap.unwrap();
    assert_eq!(
        heap.unavailable.as_deref(),
        Some("the program set runtime.MemProfileRate to 0")
    );
    assert!(heap.sites.is_empty());
}
