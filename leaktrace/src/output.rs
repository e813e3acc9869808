//! Where the report goes.

use std::io::Write as _;

use anyhow::Context as _;

use crate::{
    cli::OutputArgs,
    report::{Report, json, text},
};

/// Which stream a text report goes to when no `--output` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextStream {
    Stdout,
    /// `leaktrace run`: keep the command's own stdout clean.
    Stderr,
}

pub fn emit(report: &Report, args: &OutputArgs, text_stream: TextStream) -> anyhow::Result<()> {
    let body = if args.json {
        json::render(report) + "\n"
    } else {
        text::render(report)
    };
    if let Some(path) = &args.output {
        return std::fs::write(path, body)
            .with_context(|| format!("writing the report to {}", path.display()));
    }
    let result = if args.json || text_stream == TextStream::Stdout {
        std::io::stdout().lock().write_all(body.as_bytes())
    } else {
        std::io::stderr().lock().write_all(body.as_bytes())
    };
    // A closed pipe (leaktrace ... | head) is not an error worth a message.
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the report"),
    }
}

/// One line of human text on stderr, prefixed like every leaktrace message.
pub fn note(message: impl std::fmt::Display) {
    eprintln!("leaktrace: {message}");
}
