//! The rule that turns what was observed at a site into a verdict.

use crate::report::{Mode, Origin, SiteReport, Verdict};

/// The `-p` mode thresholds, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A goroutine blocked at least this long counts as stuck.
    pub stuck_after_ns: u64,
    /// A site must end the window with at least this many more goroutines
    /// (created minus exited) to count as growing.
    pub min_growth: u64,
}

/// `run`: everything the program started must be gone when it exits.
///
/// `-p`: a leak is a site that grew by at least `min_growth` while observed,
/// whose live count was rising over the window (when sampled), and that has a
/// goroutine blocked at least `stuck_after`. Stuck without growing is
/// `suspect`: a long-lived goroutine by design, or a leak that stopped.
pub fn judge(mode: Mode, site: &SiteReport, thresholds: &Thresholds) -> Verdict {
    match site.origin {
        Origin::Runtime => return Verdict::Runtime,
        _ if site.live == 0 => return Verdict::Ok,
        Origin::StandardLibrary
            if !site.attributed_to.as_ref().is_some_and(|a| a.is_programs()) =>
        {
            return Verdict::Library;
        }
        Origin::StandardLibrary | Origin::Program => {}
    }
    match mode {
        // Everything the program started must be gone when it exits.
        Mode::Run => Verdict::Leak,
        Mode::Attach => {
            let stuck = site
                .blocked_for
                .is_some_and(|b| b.longest_ns >= thresholds.stuck_after_ns);
            let growth = site.created.saturating_sub(site.exited);
            let rising = site.trend.as_ref().is_none_or(|t| t.rising);
            let grew = growth >= thresholds.min_growth.max(1) && rising;
            match (stuck, grew) {
                (true, true) => Verdict::Leak,
                (true, false) => Verdict::Suspect,
                (false, _) => Verdict::Ok,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use leaktrace_gobinary::SourceLocation;

    use super::*;
    use crate::report::{BlockedFor, TimeSource, Trend};

    fn site(
        origin: Origin,
        live: u64,
        created: u64,
        exited: u64,
        blocked_s: Option<u64>,
    ) -> SiteReport {
        let here = SourceLocation {
            function: "main.f".into(),
            file: "main.go".into(),
            line: 1,
        };
        SiteReport {
            created_at: here.clone(),
            entry: here,
            live,
            created,
            exited,
            exited_preexisting: 0,
            states: BTreeMap::new(),
            blocked_for: blocked_s.map(|s| BlockedFor {
                longest_ns: s * 1_000_000_000,
                source: TimeSource::Exact,
            }),
            blocked_at: None,
            stacks: vec![],
            trend: None,
            tickers: vec![],
            timers: vec![],
            origin,
            attributed_to: None,
            test: None,
            tests: vec![],
            verdict: Verdict::Ok,
            goids: vec![],
            parent_goids: vec![],
        }
    }

    const T: Thresholds = Thresholds {
        stuck_after_ns: 10_000_000_000,
        min_growth: 1,
    };

    #[test]
    fn run_mode_flags_every_program_goroutine_left_at_exit() {
        assert_eq!(
            judge(Mode::Run, &site(Origin::Program, 3, 3, 0, None), &T),
            Verdict::Leak
        );
        assert_eq!(
            judge(Mode::Run, &site(Origin::Program, 0, 5, 5, None), &T),
            Verdict::Ok
        );
        assert_eq!(
            judge(
                Mode::Run,
                &site(Origin::StandardLibrary, 1, 1, 0, Some(1)),
                &T
            ),
            Verdict::Library
        );
        assert_eq!(
            judge(Mode::Run, &site(Origin::Runtime, 4, 4, 0, Some(1)), &T),
            Verdict::Runtime
        );
    }

    #[test]
    fn attach_mode_growth_must_be_rising_and_reach_the_minimum() {
        let mut s = site(Origin::Program, 9, 4, 0, Some(20));
        s.trend = Some(Trend {
            live: vec![5, 9, 5, 9],
            rising: false,
        });
        assert_eq!(
            judge(Mode::Attach, &s, &T),
            Verdict::Suspect,
            "churn is not growth"
        );
        s.trend = Some(Trend {
            live: vec![5, 6, 8, 9],
            rising: true,
        });
        assert_eq!(judge(Mode::Attach, &s, &T), Verdict::Leak);
        let strict = Thresholds { min_growth: 5, ..T };
        assert_eq!(judge(Mode::Attach, &s, &strict), Verdict::Suspect);
    }

    #[test]
    fn attach_mode_needs_growth_and_stuck_goroutines() {
        assert_eq!(
            judge(Mode::Attach, &site(Origin::Program, 5, 5, 0, Some(20)), &T),
            Verdict::Leak
        );
        assert_eq!(
            judge(Mode::Attach, &site(Origin::Program, 5, 0, 0, Some(20)), &T),
            Verdict::Suspect
        );
        assert_eq!(
            judge(Mode::Attach, &site(Origin::Program, 5, 5, 0, Some(2)), &T),
            Verdict::Ok
        );
        assert_eq!(
            judge(Mode::Attach, &site(Origin::Program, 5, 9, 9, None), &T),
            Verdict::Ok
        );
    }
}
