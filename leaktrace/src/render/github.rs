//! GitHub Actions annotations: one workflow command per finding, e.g.
//! `::error file=cmd/server/main.go,line=42,title=goroutine leak::...`,
//! which the runner shows on the pull request at that line.
//!
//! The escaping is that of `@actions/core` (`toolkit/packages/core/src/command.ts`).

use std::fmt::Write as _;

use super::{
    findings::{Finding, Level, findings},
    source_tree::SourceTree,
};
use crate::report::Report;

/// Whether leaktrace runs in a GitHub Actions job.
pub fn in_github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// One workflow command per finding, each on its own line. A finding whose
/// lines are all outside the repository is annotated without a file, on the
/// job, with the path in its message.
pub fn annotations(report: &Report, tree: Option<&SourceTree>) -> String {
    let mut out = String::new();
    for finding in findings(report) {
        let command = match finding.rule.level() {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        let mut message = finding.message.clone();
        let _ = write!(out, "::{command} ");
        match locate(&finding, tree) {
            Some((file, line)) => {
                let _ = write!(out, "file={},line={line},", escape_property(&file));
            }
            None => {
                let _ = write!(message, " at {}:{}", finding.at.file, finding.at.line);
            }
        }
        let _ = writeln!(
            out,
            "title={}::{}",
            escape_property(&format!("leaktrace: {}", finding.title)),
            escape_data(&message)
        );
    }
    out
}

/// The first of the finding's lines that is in the repository.
pub fn locate(finding: &Finding, tree: Option<&SourceTree>) -> Option<(String, u32)> {
    let tree = tree?;
    std::iter::once(finding.at)
        .chain(finding.stack.iter().copied())
        .find_map(|at| Some((tree.relative(&at.file)?, at.line)))
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::report::fixtures::report;

    #[test]
    fn one_command_per_finding_at_the_repositorys_path() {
        let root = std::env::temp_dir().join(format!("leaktrace-gh-{}", std::process::id()));
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::write(root.join("app/main.go"), "package main\n").unwrap();
        let tree = SourceTree::at(&root);
        // Built in /src, checked out at `root`: found by the path's tail.
        assert_eq!(
            annotations(&report(), Some(&tree)),
            "::error file=app/main.go,line=10,title=leaktrace%3A goroutine leak::5 goroutines leaked, blocked on chan receive: main.leak.func1, created by main.leak\n"
        );
        // Outside any repository: on the job, with the path in the message.
        assert_eq!(
            annotations(&report(), None),
            "::error title=leaktrace%3A goroutine leak::5 goroutines leaked, blocked on chan receive: main.leak.func1, created by main.leak at /src/app/main.go:10\n"
        );
    }

    #[test]
    fn escapes_as_the_actions_toolkit_does() {
        assert_eq!(escape_data("50% a\nb:c,d"), "50%25 a%0Ab:c,d");
        assert_eq!(escape_property("a: b, c%"), "a%3A b%2C c%25");
    }
}
