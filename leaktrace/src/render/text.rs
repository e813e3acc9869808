//! The human-readable report, laid out like Go's own goroutine dump.

use std::fmt::Write as _;

use crate::report::{
    AttributedBy, Attribution, BlockedFor, HeapReport, HeapVerdict, Mode, Observing, ProbeCosts,
    Report, ResourceSite, ResourceVerdict, SiteReport, SourceLocation, TickerSite, TickerVerdict,
    TimeSource, TimerKind, TimerSemantics, TimerSite, TimerVerdict, Verdict,
};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let target = &report.target;
    let how = match (report.mode, report.exit_code) {
        (_, Some(code)) => format!(
            "exited with status {code} after {}",
            duration(report.observed_ns)
        ),
        (Mode::Run, None) => format!("ended after {}", duration(report.observed_ns)),
        (Mode::Attach, None) => format!("observed for {}", duration(report.observed_ns)),
    };
    let _ = writeln!(
        out,
        "leaktrace: pid {} {} ({}) {how}",
        target.pid, target.executable, target.go_version
    );

    let leaks: Vec<&SiteReport> = report.leaking_sites().collect();
    let leaked: u64 = leaks.iter().map(|s| s.live).sum();
    let leaked_tickers: u64 = report
        .tickers
        .iter()
        .filter(|t| t.verdict == TickerVerdict::Leak)
        .map(|t| t.live)
        .sum();
    if leaked_tickers > 0 {
        let _ = writeln!(
            out,
            "{leaked_tickers} leaked {}",
            plural(leaked_tickers, "ticker")
        );
    }
    let leaked_descriptors: u64 = report
        .resources
        .iter()
        .filter(|r| r.verdict == ResourceVerdict::Leak)
        .map(|r| r.open)
        .sum();
    if leaked_descriptors > 0 {
        let _ = writeln!(
            out,
            "{leaked_descriptors} unclosed {}",
            plural(leaked_descriptors, "descriptor")
        );
    }
    let leaked_timers: u64 = report
        .timers
        .iter()
        .filter(|t| t.verdict == TimerVerdict::Leak)
        .map(|t| t.live)
        .sum();
    if leaked_timers > 0 {
        let _ = writeln!(
            out,
            "{leaked_timers} leaked {}",
            plural(leaked_timers, "timer")
        );
    }
    if leaks.is_empty() {
        let _ = writeln!(out, "no goroutine leaks found");
    } else {
        let _ = writeln!(
            out,
            "{leaked} leaked {} from {} {}",
            plural(leaked, "goroutine"),
            leaks.len(),
            plural(leaks.len() as u64, "site")
        );
    }
    for test in &report.tests {
        let _ = writeln!(
            out,
            "{} leaked {} {} from {} {}",
            test.name,
            test.leaked_goroutines,
            plural(test.leaked_goroutines, "goroutine"),
            test.leaking_sites,
            plural(test.leaking_sites, "site")
        );
    }
    if report.dropped > 0 {
        let _ = writeln!(
            out,
            "warning: {} probe events were dropped; counts may be low",
            report.dropped
        );
    }
    if !report.snapshot {
        let source = match report.costs.observing {
            Observing::Exact => "the probes alone",
            Observing::Sampled => "the last census before",
        };
        let _ = writeln!(
            out,
            "warning: the target's memory could not be read at the end; live counts come from {source}"
        );
    }
    let _ = writeln!(out, "{}", costs(&report.costs));
    for site in report
        .goroutines
        .iter()
        .filter(|s| s.live > 0 || s.verdict == Verdict::Leak)
    {
        out.push('\n');
        write_site(&mut out, site);
    }
    if !report.tickers.is_empty() {
        let semantics = match &report.timer_semantics {
            TimerSemantics::Async { reason } => format!("every unstopped ticker leaks: {reason}"),
            TimerSemantics::Sync => {
                "Go 1.23+: an unstopped ticker leaks while a goroutine or a global holds it".into()
            }
        };
        let _ = writeln!(out, "\ntickers ({semantics}):");
        for ticker in &report.tickers {
            out.push('\n');
            write_ticker(&mut out, ticker);
        }
    }
    let pending: Vec<&TimerSite> = report.timers.iter().filter(|t| t.live > 0).collect();
    if !pending.is_empty() {
        let semantics = match &report.timer_semantics {
            TimerSemantics::Async { reason } => {
                format!("the runtime holds every pending timer until it fires: {reason}")
            }
            TimerSemantics::Sync => "Go 1.23+: a pending channel timer is held only by a \
                 goroutine or a global; an AfterFunc by the runtime"
                .into(),
        };
        let _ = writeln!(out, "\ntimers ({semantics}):");
        for timer in pending {
            out.push('\n');
            write_timer(&mut out, timer);
        }
    }
    write_resources(&mut out, report);
    if let Some(heap) = &report.heap {
        write_heap(&mut out, heap);
    }
    let finished: Vec<&SiteReport> = report
        .goroutines
        .iter()
        .filter(|s| s.live == 0 && s.verdict != Verdict::Leak)
        .collect();
    if !finished.is_empty() {
        let total: u64 = finished.iter().map(|s| s.created).sum();
        let _ = writeln!(
            out,
            "\n{total} other {} from {} {} exited normally",
            plural(total, "goroutine"),
            finished.len(),
            plural(finished.len() as u64, "site")
        );
    }
    out
}

/// One line on what observing cost: the target's time in probes, and in
/// sampled mode the censuses, which cost leaktrace, not the target.
fn costs(costs: &ProbeCosts) -> String {
    let hits: u64 = costs.probes.iter().map(|p| p.hits).sum();
    let points: u32 = costs.probes.iter().map(|p| p.points).sum();
    let per_second: f64 = costs.probes.iter().map(|p| p.hits_per_second).sum();
    let probes = format!(
        "{hits} probe {} ({per_second:.0}/s) on {points} {}, about {} of the target's time ({:.3}% of a CPU)",
        plural(hits, "hit"),
        plural(u64::from(points), "probe point"),
        short_duration(costs.estimated_target_ns),
        costs.estimated_cpu_share * 100.0
    );
    match costs.last_census {
        Some(census) => format!(
            "cost: {probes}; {} {} of {} {} read from memory, the last in {}",
            costs.censuses,
            if costs.censuses == 1 {
                "census"
            } else {
                "censuses"
            },
            census.goroutines,
            plural(census.goroutines, "goroutine"),
            short_duration(census.took_ns)
        ),
        None => format!("cost: {probes}"),
    }
}

/// A duration below a second in µs or ms.
fn short_duration(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{}µs", ns / 1_000)
    } else {
        duration(ns)
    }
}

/// Creation-stack frames shown per stack; JSON has them all.
const STACK_FRAMES_SHOWN: usize = 4;
/// Distinct creation stacks shown per site.
const STACKS_SHOWN: usize = 3;

fn write_site(out: &mut String, site: &SiteReport) {
    let _ = writeln!(
        out,
        "{}: {} {} [{}]{}",
        site.verdict.as_str(),
        site.live,
        plural(site.live, "goroutine"),
        states(site),
        what_and_whose(site)
    );
    match &site.attributed_to {
        // The program's function first, as the top of Go's dump would be.
        Some(Attribution {
            frame: Some(frame),
            by: AttributedBy::Running,
            ..
        }) => {
            let _ = writeln!(out, "{}()\n\t{}", frame.function, file_line(frame));
            let _ = writeln!(
                out,
                "run by {}, created by {}{}\n\t{}",
                site.entry.function,
                site.created_at.function,
                in_goroutines(&site.parent_goids),
                file_line(&site.created_at)
            );
        }
        attributed => {
            let _ = writeln!(
                out,
                "{}()\n\t{}",
                site.entry.function,
                file_line(&site.entry)
            );
            let _ = writeln!(
                out,
                "created by {}{}\n\t{}",
                site.created_at.function,
                in_goroutines(&site.parent_goids),
                file_line(&site.created_at)
            );
            match attributed.as_ref().map(|a| &a.frame) {
                Some(Some(call)) => {
                    let _ = writeln!(
                        out,
                        "for the call in {}\n\t{}",
                        call.function,
                        file_line(call)
                    );
                }
                Some(None) => {
                    let _ = writeln!(
                        out,
                        "for a call of the program not known here: no creation stacks were recorded (-p --exact and run record them)"
                    );
                }
                None => {}
            }
        }
    }
    if let Some(at) = &site.blocked_at {
        let _ = writeln!(out, "blocked in {}", frame(at, Path::Full));
    }
    if site.test.is_none() && !site.tests.is_empty() {
        let tests: Vec<String> = site
            .tests
            .iter()
            .map(|t| format!("{} ({})", t.name, t.live))
            .collect();
        let _ = writeln!(out, "in tests {}", tests.join(", "));
    }
    for ticker in &site.tickers {
        let _ = writeln!(
            out,
            "receiving from the ticker created at {}",
            frame(ticker, Path::Short)
        );
    }
    for timer in &site.timers {
        let _ = writeln!(
            out,
            "receiving from the timer created at {}",
            frame(timer, Path::Short)
        );
    }
    let mut observed = format!(
        "{} alive, {} created and {} exited while observed",
        site.live, site.created, site.exited
    );
    if site.exited_preexisting > 0 {
        let _ = write!(observed, ", {} older ones exited", site.exited_preexisting);
    }
    if let Some(trend) = &site.trend {
        let (first, last) = (
            trend.live.first().unwrap_or(&0),
            trend.live.last().unwrap_or(&0),
        );
        let how = if trend.rising { "rising" } else { "not rising" };
        let _ = write!(observed, "; live {first} → {last} ({how})");
    }
    let _ = writeln!(out, "{observed}");
    for stack in site.stacks.iter().take(STACKS_SHOWN) {
        let frames: Vec<String> = stack
            .frames
            .iter()
            .take(STACK_FRAMES_SHOWN)
            .map(|f| frame(f, Path::Short))
            .collect();
        let more = if stack.frames.len() > STACK_FRAMES_SHOWN {
            " ← ..."
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {}× created via {}{more}",
            stack.count,
            frames.join(" ← ")
        );
    }
}

/// `: response body never closed, in TestFoo`: the recognised pattern and
/// the test, after the headline.
fn what_and_whose(site: &SiteReport) -> String {
    let pattern = site
        .attributed_to
        .as_ref()
        .and_then(|a| a.pattern)
        .map(|p| p.describe());
    match (pattern, &site.test) {
        (Some(pattern), Some(test)) => format!(": {pattern}, in {test}"),
        (Some(pattern), None) => format!(": {pattern}"),
        (None, Some(test)) => format!(" in {test}"),
        (None, None) => String::new(),
    }
}

fn write_ticker(out: &mut String, ticker: &TickerSite) {
    let every = duration(ticker.period_ns.max(0) as u64);
    let what = match ticker.verdict {
        TickerVerdict::Ok => format!(
            "{} {} stopped",
            ticker.stopped,
            plural(ticker.stopped, "ticker")
        ),
        _ => format!(
            "{} {} every {every}, never stopped",
            ticker.live,
            plural(ticker.live, "ticker")
        ),
    };
    let _ = writeln!(out, "{}: {what}", ticker.verdict.as_str());
    match &ticker.created_at {
        Some(at) => {
            let _ = writeln!(out, "created at {}\n\t{}", at.function, file_line(at));
        }
        None => {
            let _ = writeln!(
                out,
                "created at a line not known: found in the runtime's timer heap (--exact records where)"
            );
        }
    }
    if ticker.live > 0 && ticker.stopped > 0 {
        let _ = writeln!(out, "{} more stopped", ticker.stopped);
    }
    write_holders(
        out,
        ticker.receiving_goroutines,
        &ticker.receivers,
        ticker.referenced,
    );
}

/// What holds a ticker or timer: goroutines blocked on its channel, globals.
fn write_holders(out: &mut String, receiving: u64, receivers: &[SourceLocation], referenced: u64) {
    if receiving > 0 {
        let from: Vec<String> = receivers.iter().map(|r| frame(r, Path::Short)).collect();
        let _ = writeln!(
            out,
            "{receiving} {} blocked receiving from it, created by {}",
            plural(receiving, "goroutine"),
            from.join(", ")
        );
    }
    if referenced > 0 {
        let _ = writeln!(out, "{referenced} referenced by a global variable");
    }
}

fn write_timer(out: &mut String, timer: &TimerSite) {
    let api = timer.made_by.as_deref().unwrap_or(match timer.kind {
        TimerKind::Channel => "time.NewTimer",
        TimerKind::Func => "time.AfterFunc",
    });
    let remaining = timer
        .longest_remaining_ns
        .map(|ns| format!(", the last firing in {}", duration(ns)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: {} {api} {} pending{remaining}",
        timer.verdict.as_str(),
        timer.live,
        plural(timer.live, "timer"),
    );
    let at = &timer.created_at;
    let _ = writeln!(out, "created at {}\n\t{}", at.function, file_line(at));
    let _ = writeln!(
        out,
        "{} created, {} stopped, {} reset",
        timer.created, timer.stopped, timer.reset
    );
    write_holders(
        out,
        timer.receiving_goroutines,
        &timer.receivers,
        timer.referenced,
    );
}

fn write_resources(out: &mut String, report: &Report) {
    let open: Vec<&ResourceSite> = report
        .resources
        .iter()
        .filter(|r| r.open > 0 && r.verdict != ResourceVerdict::Ok)
        .collect();
    let by_kind = |counts: &std::collections::BTreeMap<String, u64>| {
        counts
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(summary) = &report.descriptors else {
        return;
    };
    let whence = match report.mode {
        Mode::Run => "at exit",
        Mode::Attach => "at the end",
    };
    let _ = writeln!(
        out,
        "\ndescriptors open {whence}: {}",
        by_kind(&summary.at_end)
    );
    if let Some(before) = &summary.before_attach {
        let _ = writeln!(out, "descriptors open at the attach: {}", by_kind(before));
    }
    for site in open {
        out.push('\n');
        let what = match report.mode {
            Mode::Run => "left open at exit",
            Mode::Attach => "more opened than closed while observed, still open",
        };
        let _ = writeln!(
            out,
            "{}: {} {} {}, {what}",
            site.verdict.as_str(),
            site.open,
            site.kind,
            plural(site.open, "descriptor"),
        );
        let via = match site.attributed_by {
            Some(AttributedBy::CreatedFor) => " (opened by the standard library for this call)",
            _ => "",
        };
        let at = &site.created_at;
        let _ = writeln!(out, "opened at {}{via}\n\t{}", at.function, file_line(at));
        let _ = writeln!(out, "{} opened, {} closed", site.opened, site.closed);
        for example in &site.examples {
            let _ = writeln!(out, "\t{example}");
        }
    }
}

/// Heap sites shown in the text; the JSON and pprof have them all.
const HEAP_SITES_SHOWN: usize = 10;

fn write_heap(out: &mut String, heap: &HeapReport) {
    if let Some(why) = &heap.unavailable {
        let _ = writeln!(out, "\nheap profile not read: {why}");
        return;
    }
    let sampling = if heap.sample_rate <= 1 {
        "every allocation recorded".to_string()
    } else {
        format!(
            "one allocation in {} sampled, scaled as pprof does",
            bytes(heap.sample_rate)
        )
    };
    let _ = if heap.window {
        writeln!(
            out,
            "\nheap ({} in use, {} over the window; the runtime's heap profile as of its last GC, {sampling}):",
            bytes(heap.inuse_bytes),
            signed_bytes(heap.growth_bytes)
        )
    } else {
        writeln!(
            out,
            "\nheap in use at exit ({}; the runtime's heap profile as of its last GC, {sampling}):",
            bytes(heap.inuse_bytes)
        )
    };
    let shown = heap.sites.iter().filter(|s| match s.verdict {
        HeapVerdict::Growing | HeapVerdict::InUse => s.inuse_bytes > 0,
        HeapVerdict::Steady => false,
    });
    for site in shown.take(HEAP_SITES_SHOWN) {
        out.push('\n');
        let at = &site.allocated_at;
        let growth = if heap.window {
            format!(", {} over the window", signed_bytes(site.growth_bytes))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{}: {} in {} {}{growth}",
            site.verdict.as_str(),
            bytes(site.inuse_bytes),
            site.inuse_objects,
            plural(site.inuse_objects, "object"),
        );
        let _ = writeln!(out, "allocated at {}\n\t{}", at.function, file_line(at));
    }
}

/// `10.0 MiB`, `512 KiB`, `96 B`.
pub(crate) fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let n = n as f64;
    if n >= KIB * KIB * KIB {
        format!("{:.1} GiB", n / (KIB * KIB * KIB))
    } else if n >= KIB * KIB {
        format!("{:.1} MiB", n / (KIB * KIB))
    } else if n >= KIB {
        format!("{:.1} KiB", n / KIB)
    } else {
        format!("{n} B")
    }
}

fn signed_bytes(n: i64) -> String {
    if n < 0 {
        format!("-{}", bytes(n.unsigned_abs()))
    } else {
        format!("+{}", bytes(n as u64))
    }
}

/// How much of a file's path a one-line frame shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The whole path: where the user is sent to look.
    Full,
    /// The last two elements: enough to recognise a file in a list of frames.
    Short,
}

/// `main.handle (app/main.go:21)`: a frame on one line.
pub fn frame(at: &SourceLocation, path: Path) -> String {
    let file = match path {
        Path::Full => at.file.as_str(),
        Path::Short => short_file(&at.file),
    };
    format!("{} ({file}:{})", at.function, at.line)
}

/// `/src/app/main.go:21`, as the second line of a frame in Go's goroutine dump.
pub fn file_line(at: &SourceLocation) -> String {
    format!("{}:{}", at.file, at.line)
}

/// ` in goroutine 1`, as Go 1.21+ tracebacks name the creator; several
/// creators are listed; none known (Go < 1.21), nothing.
fn in_goroutines(parents: &[u64]) -> String {
    match parents {
        [] => String::new(),
        [one] => format!(" in goroutine {one}"),
        many => {
            let ids: Vec<String> = many.iter().map(u64::to_string).collect();
            format!(" in goroutines {}", ids.join(", "))
        }
    }
}

/// The last two path elements: enough to recognise a file in a stack line.
fn short_file(file: &str) -> &str {
    let mut cut = file.len();
    for _ in 0..2 {
        match file[..cut].rfind('/') {
            Some(i) => cut = i,
            None => return file,
        }
    }
    &file[cut + 1..]
}

/// `chan receive, 2 minutes` or `chan receive: 9, select: 1, 3.1s`.
fn states(site: &SiteReport) -> String {
    let mut parts: Vec<(&String, &u64)> = site.states.iter().collect();
    parts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut text = match parts.as_slice() {
        [] => "exited".to_string(),
        [(only, _)] => (*only).clone(),
        many => many
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    if let Some(blocked) = site.blocked_for {
        let _ = write!(text, ", {}", blocked_for(blocked));
    }
    text
}

fn blocked_for(blocked: BlockedFor) -> String {
    let approx = if matches!(blocked.source, TimeSource::Runtime | TimeSource::Sampled) {
        "≥"
    } else {
        ""
    };
    format!("{approx}{}", duration(blocked.longest_ns))
}

/// Go's dump says "N minutes"; below a minute leaktrace shows what it measured.
pub fn duration(ns: u64) -> String {
    let secs = ns as f64 / 1e9;
    if secs >= 60.0 {
        let minutes = (secs / 60.0) as u64;
        format!("{minutes} {}", plural(minutes, "minute"))
    } else if secs >= 1.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}ms", ns / 1_000_000)
    }
}

pub(crate) fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creators_are_named_like_go_tracebacks() {
        assert_eq!(in_goroutines(&[]), "");
        assert_eq!(in_goroutines(&[1]), " in goroutine 1");
        assert_eq!(in_goroutines(&[1, 7]), " in goroutines 1, 7");
    }

    #[test]
    fn frames_on_one_line() {
        let at = SourceLocation {
            function: "main.handle".into(),
            file: "/src/app/cmd/main.go".into(),
            line: 21,
        };
        assert_eq!(frame(&at, Path::Short), "main.handle (cmd/main.go:21)");
        assert_eq!(
            frame(&at, Path::Full),
            "main.handle (/src/app/cmd/main.go:21)"
        );
        assert_eq!(file_line(&at), "/src/app/cmd/main.go:21");
    }

    #[test]
    fn short_files_keep_the_package_directory() {
        assert_eq!(short_file("/src/app/cmd/server/main.go"), "server/main.go");
        assert_eq!(short_file("main.go"), "main.go");
    }

    fn at(function: &str, file: &str, line: u32) -> SourceLocation {
        SourceLocation {
            function: function.into(),
            file: file.into(),
            line,
        }
    }

    /// The test goroutine of TestMutex, blocked in the code under test.
    fn test_goroutine() -> SiteReport {
        SiteReport {
            created_at: at("testing.(*T).Run", "/go/src/testing/testing.go", 2260),
            entry: at("testing.tRunner", "/go/src/testing/testing.go", 2032),
            live: 1,
            created: 1,
            exited: 0,
            exited_preexisting: 0,
            states: [("sync.Mutex.Lock".to_string(), 1)].into(),
            blocked_for: None,
            blocked_at: Some(at("app.(*Counter).Incr", "/src/app/counter.go", 16)),
            stacks: vec![],
            trend: None,
            tickers: vec![],
            timers: vec![],
            origin: crate::report::Origin::StandardLibrary,
            attributed_to: Some(Attribution {
                frame: Some(at("app.TestMutex", "/src/app/counter_test.go", 12)),
                by: AttributedBy::Running,
                pattern: Some(crate::report::Pattern::TestGoroutine),
            }),
            test: Some("TestMutex".into()),
            tests: vec![crate::report::TestCount {
                name: "TestMutex".into(),
                live: 1,
            }],
            verdict: Verdict::Leak,
            goids: vec![21],
            parent_goids: vec![1],
        }
    }

    #[test]
    fn a_library_goroutine_running_the_programs_code_shows_the_programs_frame_first() {
        let mut out = String::new();
        write_site(&mut out, &test_goroutine());
        assert_eq!(
            out,
            "leak: 1 goroutine [sync.Mutex.Lock]: the test's own goroutine, in TestMutex\n\
             app.TestMutex()\n\t/src/app/counter_test.go:12\n\
             run by testing.tRunner, created by testing.(*T).Run in goroutine 1\n\
             \t/go/src/testing/testing.go:2260\n\
             blocked in app.(*Counter).Incr (/src/app/counter.go:16)\n\
             1 alive, 1 created and 0 exited while observed\n"
        );
    }

    #[test]
    fn a_library_goroutine_working_for_the_program_names_the_call() {
        let mut site = test_goroutine();
        site.entry = at(
            "net/http.(*persistConn).readLoop",
            "/go/src/net/http/transport.go",
            2454,
        );
        site.created_at = at(
            "net/http.(*Transport).dialConn",
            "/go/src/net/http/transport.go",
            2123,
        );
        site.attributed_to = Some(Attribution {
            frame: Some(at("main.fetch", "/src/app/main.go", 57)),
            by: AttributedBy::CreatedFor,
            pattern: Some(crate::report::Pattern::ResponseBodyNotClosed),
        });
        site.test = None;
        site.tests = vec![];
        site.blocked_at = None;
        let mut out = String::new();
        write_site(&mut out, &site);
        assert_eq!(
            out.lines().take(6).collect::<Vec<_>>(),
            [
                "leak: 1 goroutine [sync.Mutex.Lock]: response body never closed",
                "net/http.(*persistConn).readLoop()",
                "\t/go/src/net/http/transport.go:2454",
                "created by net/http.(*Transport).dialConn in goroutine 1",
                "\t/go/src/net/http/transport.go:2123",
                "for the call in main.fetch",
            ]
        );
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(duration(250_000_000), "250ms");
        assert_eq!(duration(3_210_000_000), "3.2s");
        assert_eq!(duration(60_000_000_000), "1 minute");
        assert_eq!(duration(12 * 60_000_000_000 + 5), "12 minutes");
    }
}
