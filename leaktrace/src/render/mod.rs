//! The last stage: the report as text ([`text`]), JSON and NDJSON ([`json`]),
//! a pprof profile ([`pprof`]), and the live view on a terminal ([`live_view`]). This is the only code that
//! writes to stdout; messages for the user go to stderr through [`note`].

pub mod json;
pub mod live_view;
pub mod pprof;
pub mod text;

use std::{
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use crate::report::Report;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("writing the report to {}", .path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the report")]
    Stream(#[source] io::Error),
    /// Whoever read leaktrace's output closed it (`leaktrace ... | head`).
    #[error("the output was closed")]
    Closed,
}

/// The report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Which stream a text report goes to when it is not written to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextStream {
    Stdout,
    /// `leaktrace run`: keep the command's own stdout clean.
    Stderr,
}

/// Where the report goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub format: Format,
    /// A file, or else the terminal.
    pub file: Option<PathBuf>,
    pub text_stream: TextStream,
}

/// Writes the report where `to` says.
pub fn emit(report: &Report, to: &Destination) -> Result<(), RenderError> {
    let body = match to.format {
        Format::Json => json::render(report) + "\n",
        Format::Text => text::render(report),
    };
    if let Some(path) = &to.file {
        return write_file(path, &body);
    }
    if to.format == Format::Json || to.text_stream == TextStream::Stdout {
        stdout(&body)
    } else {
        stderr(&body)
    }
}

/// The report as a gzipped pprof profile in `path` (`--pprof`).
pub fn write_pprof(report: &Report, path: &Path) -> Result<(), RenderError> {
    std::fs::write(path, pprof::render(report)).map_err(|source| RenderError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// One NDJSON line on stdout.
pub fn line(text: &str) -> Result<(), RenderError> {
    stdout(&format!("{text}\n"))
}

fn write_file(path: &Path, body: &str) -> Result<(), RenderError> {
    std::fs::write(path, body).map_err(|source| RenderError::File {
        path: path.to_path_buf(),
        source,
    })
}

fn stdout(body: &str) -> Result<(), RenderError> {
    let mut out = io::stdout().lock();
    quiet_on_closed_pipe(out.write_all(body.as_bytes()).and_then(|()| out.flush()))
}

fn stderr(body: &str) -> Result<(), RenderError> {
    quiet_on_closed_pipe(io::stderr().lock().write_all(body.as_bytes()))
}

/// A closed pipe (leaktrace ... | head) is no failure worth a message, but
/// leaktrace has no reader left: [`RenderError::Closed`] ends the session.
fn quiet_on_closed_pipe(result: io::Result<()>) -> Result<(), RenderError> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(RenderError::Closed),
        other => other.map_err(RenderError::Stream),
    }
}

/// One line of human text on stderr, prefixed like every leaktrace message.
pub fn note(message: impl std::fmt::Display) {
    let _ = writeln!(io::stderr(), "leaktrace: {message}");
}
