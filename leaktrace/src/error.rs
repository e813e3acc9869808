//! leaktrace's error: one variant per concern, each keeping its cause.

use std::io;

use leaktrace_gobinary::BinaryError;

use crate::{
    analysis::ignore::ConfigError, probes::ProbeError, process::ProcessError, render::RenderError,
    session::agent::AgentError, session::launch::LaunchError, session::preflight::PreflightError,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Binary(#[from] BinaryError),
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Probes(#[from] ProbeError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// Setting up the session itself (signals, the async runtime).
    #[error("{what}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub fn io(what: &'static str, source: io::Error) -> Self {
        Self::Io { what, source }
    }
}

/// An error and its causes on one line: `outer: cause: root cause`.
pub fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some causes repeat their own source's text; say it once.
        if !text.is_empty() && !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn causes_follow_on_one_line() {
        let error = Error::from(BinaryError::Unreadable(
            PathBuf::from("/srv/app"),
            io::Error::from(io::ErrorKind::NotFound),
        ));
        assert_eq!(one_line(&error), "cannot read /srv/app: entity not found");
    }
}
