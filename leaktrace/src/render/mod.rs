//! The last stage: the report as text ([`text`]), JSON and NDJSON ([`json`]),
//! a pprof profile ([`pprof`]), SARIF ([`sarif`]) and GitHub annotations
//! ([`github`]) at the lines of its [`findings`], the agent's Prometheus
//! metrics ([`prometheus`]), and the live view on a terminal ([`live_view`]). This is the only code that writes to stdout;
//! messages for the user go to stderr through [`note`].

pub mod findings;
pub mod github;
pub mod json;
pub mod live_view;
pub mod pprof;
pub mod prometheus;
pub mod sarif;
pub mod source_tree;
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

/// The files besides the report: `--pprof` and `--sarif`. Each is written
/// even when another cannot be; the first failure is returned.
pub fn write_side_files(
    report: &Report,
    pprof: Option<&Path>,
    sarif: Option<&Path>,
) -> Result<(), RenderError> {
    let pprof =
        pprof.map(|path| write_bytes(&in_directory(path, report, "pb.gz"), &pprof::render(report)));
    let sarif = sarif.map(|path| {
        let tree = source_tree::SourceTree::discover();
        write_bytes(
            &in_directory(path, report, "sarif"),
            sarif::render(report, tree.as_ref()).as_bytes(),
        )
    });
    pprof.transpose()?;
    sarif.transpose()?;
    Ok(())
}

/// `go test -exec` runs one leaktrace per test binary: given a directory,
/// each writes its own file there, `leaktrace-<binary>-<pid>.<extension>`.
fn in_directory(path: &Path, report: &Report, extension: &str) -> PathBuf {
    if !path.is_dir() {
        return path.to_path_buf();
    }
    let binary = report
        .target
        .executable
        .rsplit('/')
        .next()
        .unwrap_or("target");
    path.join(format!(
        "leaktrace-{binary}-{}.{extension}",
        report.target.pid
    ))
}

/// `--fail-on-leak` in a GitHub Actions job: an annotation per leak, on
/// stderr, where the runner reads workflow commands as from stdout, and
/// which `go test` passes on.
pub fn github_annotations(report: &Report) -> Result<(), RenderError> {
    let tree = source_tree::SourceTree::discover();
    stderr(&github::annotations(report, tree.as_ref()))
}

/// A shell completion script on stdout (`leaktrace completions`).
pub fn completions(script: &[u8]) -> Result<(), RenderError> {
    stdout(&String::from_utf8_lossy(script))
}

/// One NDJSON line on stdout.
pub fn line(text: &str) -> Result<(), RenderError> {
    stdout(&format!("{text}\n"))
}

fn write_file(path: &Path, body: &str) -> Result<(), RenderError> {
    write_bytes(path, body.as_bytes())
}

fn write_bytes(path: &Path, body: &[u8]) -> Result<(), RenderError> {
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
