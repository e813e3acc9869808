//! A small report for the renderers' unit tests: one program site that
//! leaked 5 goroutines at `/src/app/main.go:10`, 3 of them with their
//! creation stack.

use super::{
    CreationStack, EventCounts, Mode, Origin, ProbeCosts, Report, SCHEMA_VERSION, SiteReport,
    SourceLocation, TargetInfo, TimerSemantics, Verdict,
};

pub fn at(function: &str, line: u32) -> SourceLocation {
    SourceLocation {
        function: function.into(),
        file: "/src/app/main.go".into(),
        line,
    }
}

pub fn report() -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        mode: Mode::Run,
        target: TargetInfo {
            pid: 7,
            executable: "/srv/app".into(),
            go_version: "go1.27.4".into(),
        },
        observed_ns: 1_000,
        exit_code: Some(0),
        snapshot: true,
        dropped: 0,
        events: EventCounts::default(),
        goroutines: vec![SiteReport {
            created_at: at("main.leak", 10),
            entry: at("main.leak.func1", 10),
            live: 5,
            created: 5,
            exited: 0,
            exited_preexisting: 0,
            states: [("chan receive".to_string(), 5)].into(),
            blocked_for: None,
            blocked_at: None,
            stacks: vec![CreationStack {
                count: 3,
                frames: vec![at("main.leak", 10), at("main.main", 20)],
            }],
            trend: None,
            tickers: vec![],
            timers: vec![],
            origin: Origin::Program,
            attributed_to: None,
            test: None,
            tests: vec![],
            verdict: Verdict::Leak,
            goids: vec![],
            parent_goids: vec![],
        }],
        costs: ProbeCosts::default(),
        timer_semantics: TimerSemantics::Sync,
        tickers: vec![],
        timers: vec![],
        heap: None,
        resources: vec![],
        descriptors: None,
        tests: vec![],
    }
}
