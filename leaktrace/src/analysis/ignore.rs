//! Ignore rules, like goleak's: by the function a goroutine runs, by the frame
//! it is blocked in, or by the function whose `go` statement created it.
//! From flags and from a TOML config file:
//!
//! ```toml
//! [ignore]
//! functions = ["main.worker"]           # the goroutine's function
//! top_functions = ["net/http.(*conn).serve"]   # its topmost frame outside the runtime
//! creators = ["github.com/foo/pool.New*"]      # the function with the go statement
//! ```
//!
//! A name matches exactly, or as a prefix when it ends with `*`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::IgnoreArgs;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {}: {}", .path.display(), .source.message())]
    Parse {
        path: PathBuf,
        // The message above is the whole story; toml's Display adds a
        // multi-line excerpt that does not fit on one line.
        source: toml::de::Error,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreRules {
    #[serde(default)]
    pub functions: Vec<String>,
    #[serde(default)]
    pub top_functions: Vec<String>,
    #[serde(default)]
    pub creators: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    ignore: IgnoreRules,
}

impl IgnoreRules {
    /// The rules from the flags and the config file they name.
    pub fn from_args(args: &IgnoreArgs) -> Result<Self, ConfigError> {
        let flags = IgnoreRules {
            functions: args.functions.clone(),
            top_functions: args.top_functions.clone(),
            creators: args.creators.clone(),
        };
        Ok(match &args.config {
            Some(path) => IgnoreRules::load(path)?.merge(flags),
            None => flags,
        })
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    fn parse(text: &str) -> Result<Self, toml::de::Error> {
        let config: ConfigFile = toml::from_str(text)?;
        Ok(config.ignore)
    }

    pub fn merge(mut self, other: Self) -> Self {
        self.functions.extend(other.functions);
        self.top_functions.extend(other.top_functions);
        self.creators.extend(other.creators);
        self
    }

    /// Whether a site is ignored, given the function its goroutines run, the
    /// frame they are blocked in (if known), and the function that created them.
    pub fn ignores(&self, entry: &str, top: Option<&str>, creator: &str) -> bool {
        matches_any(&self.functions, entry)
            || top.is_some_and(|top| matches_any(&self.top_functions, top))
            || matches_any(&self.creators, creator)
    }
}

fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_config_file() {
        let rules = IgnoreRules::parse(
            "[ignore]\nfunctions = [\"main.worker\"]\ncreators = [\"pool.*\"]\n",
        )
        .unwrap();
        assert!(rules.ignores("main.worker", None, "main.main"));
        assert!(rules.ignores("main.other", None, "pool.New"));
        assert!(!rules.ignores("main.other", Some("main.worker"), "main.main"));
        assert!(
            IgnoreRules::parse("[ignore]\nfunction = [\"x\"]\n").is_err(),
            "typos are errors"
        );
    }

    #[test]
    fn top_function_rules_need_a_known_top_frame() {
        let rules = IgnoreRules {
            top_functions: vec!["net/http.(*conn).serve".into()],
            ..Default::default()
        };
        assert!(rules.ignores("main.f", Some("net/http.(*conn).serve"), "main.g"));
        assert!(!rules.ignores("main.f", None, "main.g"));
    }
}
