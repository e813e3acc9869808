//! The report as findings at lines of code, for the formats of code-review
//! tools ([`super::github`], [`super::sarif`]): one per site judged leaking
//! or stuck, with a one-line message and the program's lines that explain it.

use std::fmt::Write as _;

use crate::report::{
    AttributedBy, Origin, Report, ResourceSite, ResourceVerdict, SiteReport, SourceLocation,
    TickerSite, TickerVerdict, TimerSite, TimerVerdict, Verdict,
};

use super::text::{duration, plural};

/// What kind of finding; its id is the SARIF rule id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// Goroutines the program started and never ended.
    GoroutineLeak,
    /// `-p`: goroutines blocked for long at a site that did not grow.
    StuckGoroutines,
    /// Tickers never stopped, still held.
    TickerLeak,
    /// One-shot timers pending and held until they fire.
    TimerLeak,
    /// Descriptors opened and never closed.
    ResourceLeak,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::GoroutineLeak,
        Rule::StuckGoroutines,
        Rule::TickerLeak,
        Rule::TimerLeak,
        Rule::ResourceLeak,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::GoroutineLeak => "goroutine-leak",
            Rule::StuckGoroutines => "stuck-goroutines",
            Rule::TickerLeak => "ticker-leak",
            Rule::TimerLeak => "timer-leak",
            Rule::ResourceLeak => "resource-leak",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Rule::GoroutineLeak => "goroutine leak",
            Rule::StuckGoroutines => "stuck goroutines",
            Rule::TickerLeak => "ticker leak",
            Rule::TimerLeak => "timer leak",
            Rule::ResourceLeak => "unclosed resource",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Rule::GoroutineLeak => {
                "Goroutines started at this line never ended: alive when the program exited, or piling up blocked while observed. Each holds its stack and everything it references."
            }
            Rule::StuckGoroutines => {
                "Goroutines started at this line have been blocked for longer than --stuck-after, though their number did not grow while observed: long-lived by design, or an old leak."
            }
            Rule::TickerLeak => {
                "Tickers created at this line were never stopped and are still held, so the runtime keeps firing them. Call Stop, usually with defer."
            }
            Rule::TimerLeak => {
                "Timers created at this line are pending, never stopped, and held until they fire with everything they refer to: time.After in a loop, an AfterFunc or a context.WithTimeout whose cancel is never called. Stop the timer (or call cancel) once it is not needed."
            }
            Rule::ResourceLeak => {
                "Descriptors opened at this line (files, sockets, pipes) were never closed: left open at exit, or piling up while observed. The GC does not close them. Close them, usually with defer, and close HTTP response bodies."
            }
        }
    }

    pub fn level(self) -> Level {
        match self {
            Rule::GoroutineLeak | Rule::TickerLeak | Rule::TimerLeak => Level::Error,
            // Like stuck goroutines, not what --fail-on-leak fails on.
            Rule::StuckGoroutines | Rule::ResourceLeak => Level::Warning,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
}

/// One site judged leaking or stuck.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding<'a> {
    pub rule: Rule,
    /// `goroutine leak in TestFetch`.
    pub title: String,
    /// `100 goroutines leaked, blocked on chan send for 2 minutes: ...`.
    pub message: String,
    /// The line to show it at: the `go` statement, or for goroutines the
    /// standard library started on the program's behalf, the program's call.
    pub at: &'a SourceLocation,
    /// Where it was created, leaf first: the `go` statement and its callers;
    /// a finding is shown at the first of these in the repository when `at`
    /// is not.
    pub stack: Vec<&'a SourceLocation>,
    /// What identifies the site across builds, whatever its line number.
    pub fingerprint: String,
    /// The goroutines or tickers it counts.
    pub count: u64,
    pub test: Option<&'a str>,
}

/// The report's findings, the worst first.
pub fn findings(report: &Report) -> Vec<Finding<'_>> {
    let mut found: Vec<Finding> = report.goroutines.iter().filter_map(site).collect();
    found.extend(report.tickers.iter().filter_map(ticker));
    found.extend(report.timers.iter().filter_map(timer));
    found.extend(report.resources.iter().filter_map(resource));
    found.sort_by_key(|f| f.rule.level() != Level::Error);
    found
}

fn site(site: &SiteReport) -> Option<Finding<'_>> {
    let rule = match site.verdict {
        Verdict::Leak => Rule::GoroutineLeak,
        Verdict::Suspect => Rule::StuckGoroutines,
        _ => return None,
    };
    let at = match &site.attributed_to {
        Some(attribution) if site.origin == Origin::StandardLibrary => attribution
            .frame
            .as_ref()
            .filter(|_| attribution.is_programs())
            .unwrap_or(&site.created_at),
        _ => &site.created_at,
    };
    let mut title = rule.title().to_string();
    if let Some(test) = &site.test {
        let _ = write!(title, " in {test}");
    }
    let mut message = format!(
        "{} {} {}",
        site.live,
        plural(site.live, "goroutine"),
        if rule == Rule::GoroutineLeak {
            "leaked"
        } else {
            "stuck"
        }
    );
    if let Some(state) = dominant_state(site) {
        let _ = write!(message, ", blocked on {state}");
    }
    if let Some(blocked) = site.blocked_for {
        let _ = write!(message, " for {}", duration(blocked.longest_ns));
    }
    if let Some(pattern) = site.attributed_to.as_ref().and_then(|a| a.pattern) {
        let _ = write!(message, " ({})", pattern.describe());
    }
    let running = match &site.attributed_to {
        Some(a) if a.by == AttributedBy::Running => a.frame.as_ref().unwrap_or(&site.entry),
        _ => &site.entry,
    };
    let _ = write!(message, ": {}", running.function);
    match &site.blocked_at {
        Some(blocked_at) if blocked_at.function == running.function => {
            let _ = write!(
                message,
                " blocked at {}:{}",
                base_name(&blocked_at.file),
                blocked_at.line
            );
        }
        Some(blocked_at) => {
            let _ = write!(
                message,
                " blocked in {} ({}:{})",
                blocked_at.function,
                base_name(&blocked_at.file),
                blocked_at.line
            );
        }
        None => {}
    }
    let _ = write!(message, ", created by {}", site.created_at.function);
    Some(Finding {
        rule,
        title,
        message,
        at,
        stack: stack_of(&site.stacks, &site.created_at),
        fingerprint: format!(
            "{}:{}:{}",
            rule.id(),
            site.created_at.function,
            site.entry.function
        ),
        count: site.live,
        test: site.test.as_deref(),
    })
}

fn ticker(ticker: &TickerSite) -> Option<Finding<'_>> {
    if ticker.verdict != TickerVerdict::Leak {
        return None;
    }
    let at = ticker.created_at.as_ref()?;
    let mut message = format!(
        "{} {} never stopped, firing every {}",
        ticker.live,
        plural(ticker.live, "ticker"),
        duration(ticker.period_ns.max(0) as u64)
    );
    if ticker.receiving_goroutines > 0 {
        let _ = write!(
            message,
            "; {} {} blocked receiving from it",
            ticker.receiving_goroutines,
            plural(ticker.receiving_goroutines, "goroutine")
        );
    }
    Some(Finding {
        rule: Rule::TickerLeak,
        title: Rule::TickerLeak.title().to_string(),
        message,
        at,
        stack: stack_of(&ticker.stacks, at),
        fingerprint: format!("{}:{}", Rule::TickerLeak.id(), at.function),
        count: ticker.live,
        test: None,
    })
}

fn timer(timer: &TimerSite) -> Option<Finding<'_>> {
    if timer.verdict != TimerVerdict::Leak {
        return None;
    }
    let at = &timer.created_at;
    let api = timer.made_by.as_deref().unwrap_or("timer");
    let mut message = format!(
        "{} {api} {} pending, never stopped",
        timer.live,
        plural(timer.live, "timer")
    );
    if let Some(remaining) = timer.longest_remaining_ns {
        let _ = write!(message, ", the last firing in {}", duration(remaining));
    }
    if timer.receiving_goroutines > 0 {
        let _ = write!(
            message,
            "; {} {} blocked receiving from it",
            timer.receiving_goroutines,
            plural(timer.receiving_goroutines, "goroutine")
        );
    }
    Some(Finding {
        rule: Rule::TimerLeak,
        title: Rule::TimerLeak.title().to_string(),
        message,
        at,
        stack: stack_of(&timer.stacks, at),
        fingerprint: format!("{}:{}", Rule::TimerLeak.id(), at.function),
        count: timer.live,
        test: None,
    })
}

fn resource(site: &ResourceSite) -> Option<Finding<'_>> {
    if site.verdict != ResourceVerdict::Leak {
        return None;
    }
    let at = &site.created_at;
    let mut message = format!(
        "{} {} {} never closed",
        site.open,
        site.kind,
        plural(site.open, "descriptor")
    );
    if let Some(example) = site.examples.first() {
        let _ = write!(message, ": {example}");
    }
    Some(Finding {
        rule: Rule::ResourceLeak,
        title: Rule::ResourceLeak.title().to_string(),
        message,
        at,
        stack: stack_of(&site.stacks, at),
        fingerprint: format!("{}:{}:{}", Rule::ResourceLeak.id(), at.function, site.kind),
        count: site.open,
        test: None,
    })
}

/// The most frequent wait reason.
fn dominant_state(site: &SiteReport) -> Option<&str> {
    site.states
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(state, _)| state.as_str())
}

/// The commonest creation stack, or the creating line alone.
fn stack_of<'a>(
    stacks: &'a [crate::report::CreationStack],
    created_at: &'a SourceLocation,
) -> Vec<&'a SourceLocation> {
    match stacks.iter().max_by_key(|s| s.count) {
        Some(stack) if !stack.frames.is_empty() => stack.frames.iter().collect(),
        _ => vec![created_at],
    }
}

fn base_name(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{
        Attribution, Pattern,
        fixtures::{at, report},
    };

    #[test]
    fn a_program_site_is_shown_at_its_go_statement() {
        let mut report = report();
        report.goroutines[0].blocked_at = Some(at("main.leak.func1", 11));
        report.goroutines[0].test = Some("TestLeak".into());
        let found = findings(&report);
        assert_eq!(found.len(), 1);
        let finding = &found[0];
        assert_eq!(finding.rule, Rule::GoroutineLeak);
        assert_eq!(finding.title, "goroutine leak in TestLeak");
        assert_eq!(
            finding.message,
            "5 goroutines leaked, blocked on chan receive: main.leak.func1 blocked at main.go:11, created by main.leak"
        );
        assert_eq!(
            (finding.at.function.as_str(), finding.at.line),
            ("main.leak", 10)
        );
        let stack: Vec<u32> = finding.stack.iter().map(|f| f.line).collect();
        assert_eq!(stack, [10, 20]);
    }

    #[test]
    fn a_library_goroutine_working_for_the_program_is_shown_at_its_call() {
        let mut report = report();
        let site = &mut report.goroutines[0];
        site.origin = Origin::StandardLibrary;
        site.created_at = SourceLocation {
            function: "net/http.(*Transport).dialConn".into(),
            file: "/usr/lib/go/src/net/http/transport.go".into(),
            line: 1944,
        };
        site.attributed_to = Some(Attribution {
            frame: Some(at("main.fetch", 30)),
            by: AttributedBy::CreatedFor,
            pattern: Some(Pattern::ResponseBodyNotClosed),
        });
        let found = findings(&report);
        assert_eq!(
            (found[0].at.function.as_str(), found[0].at.line),
            ("main.fetch", 30)
        );
        assert!(
            found[0].message.contains("(response body never closed)"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn ok_and_library_sites_are_no_findings() {
        for verdict in [
            Verdict::Ok,
            Verdict::Library,
            Verdict::Runtime,
            Verdict::Ignored,
        ] {
            let mut report = report();
            report.goroutines[0].verdict = verdict;
            assert!(findings(&report).is_empty(), "{verdict:?}");
        }
    }
}
