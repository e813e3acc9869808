//! The rule that turns what was observed at a site into a verdict.

use serde::Serialize;

use super::{Mode, Origin, SiteReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Goroutines the program started and never ended: at exit (`run`), or
    /// piling up blocked while observed (`-p`).
    Leak,
    /// `-p` only: goroutines blocked longer than `--stuck-after`, but the site
    /// did not grow while observed. Long-lived by design, or an old leak.
    Suspect,
    /// Nothing from this site is left, or nothing looks stuck.
    Ok,
    /// Alive, but started by the standard library (signal handling, net/http
    /// internals); not counted as the program's leak.
    Library,
    /// The runtime's own goroutines; shown only with `--all`.
    Runtime,
}

impl Verdict {
    /// Order in the report: the worst first.
    pub fn rank(self) -> u8 {
        match self {
            Self::Leak => 0,
            Self::Suspect => 1,
            Self::Library => 2,
            Self::Ok => 3,
            Self::Runtime => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leak => "leak",
            Self::Suspect => "suspect",
            Self::Ok => "ok",
            Self::Library => "library",
            Self::Runtime => "runtime",
        }
    }
}

/// The `-p` mode thresholds, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachThresholds {
    /// A goroutine blocked at least this long counts as stuck.
    pub stuck_after_ns: u64,
}

pub fn judge(mode: Mode, site: &SiteReport, thresholds: &AttachThresholds) -> Verdict {
    match site.origin {
        Origin::Runtime => return Verdict::Runtime,
        _ if site.live == 0 => return Verdict::Ok,
        Origin::StandardLibrary => return Verdict::Library,
        Origin::Program => {}
    }
    match mode {
        // Everything the program started must be gone when it exits.
        Mode::Run => Verdict::Leak,
        Mode::Attach => {
            let stuck = site
                .blocked_for
                .is_some_and(|b| b.longest_ns >= thresholds.stuck_after_ns);
            let grew = site.created > site.exited;
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
    use crate::report::{BlockedFor, TimeSource};

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
            origin,
            verdict: Verdict::Ok,
            goids: vec![],
        }
    }

    const T: AttachThresholds = AttachThresholds {
        stuck_after_ns: 10_000_000_000,
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
