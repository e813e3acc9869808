//! leaktrace's command line: every flag, its help and its parsing, and
//! nothing else. It is its own crate so that `cargo xtask man` can render the
//! man page without building the eBPF programs; the `leaktrace` library
//! re-exports it as `leaktrace::cli`.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

/// `leaktrace --version`: the version and the source commit, as `rustc -V` prints them.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("LEAKTRACE_COMMIT"),
    ")"
);

/// `leaktrace --version` in full: also what the build can trace.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("LEAKTRACE_COMMIT"),
    ")\n",
    "Go runtimes: 1.19 and 1.21 to 1.27, amd64; Linux with uprobes and BPF"
);

const AFTER_HELP: &str = "\
Examples:
  sudo leaktrace -p 1234 --duration 30s
  leaktrace run -- ./server --port 8080
  go test -exec 'leaktrace run --fail-on-leak --' ./...
  go test -exec 'leaktrace run --fail-on-leak --sarif sarif/ --' ./...
  sudo leaktrace agent --listen 0.0.0.0:9464 --match exe=api*
  source <(leaktrace completions bash)

Privileges:
  root, or: run needs CAP_SYS_ADMIN; -p of another user's process, and
  agent, also CAP_SYS_PTRACE. Kernels without the fix for CVE-2025-38466
  (before Linux 6.16) accept CAP_BPF and CAP_PERFMON instead of
  CAP_SYS_ADMIN.

Exit status:
  0    no site judged leaking (or --fail-on-leak not given); also when the
       output is closed (leaktrace ... | head), which ends leaktrace at once
  1    leaktrace could not trace: bad PID, command, binary, privileges or kernel
  2    the command line is wrong
  3    --fail-on-leak and a goroutine, ticker or timer site was judged
       leaking; or --fail-on-unclosed and descriptors were left open
  run: a command that fails passes its own status through (128+N if killed
       by signal N); that takes precedence over 3.";

/// Finds goroutine, ticker, timer and descriptor leaks in unmodified Go programs with eBPF.
///
/// Reports goroutines that are created but never exit, grouped by the `go`
/// statement that created them, with what they are blocked on and for how
/// long; tickers never stopped and timers still pending, by the line that
/// created them; descriptors left open, by the line that opened them; and
/// the heap in use by allocation line, from the runtime's own heap profile.
#[derive(Debug, Parser)]
#[command(name = "leaktrace", version = VERSION, long_version = LONG_VERSION, after_help = AFTER_HELP, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub attach: AttachArgs,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only obscure the clap derive"
)]
pub enum Command {
    /// Start CMD with the probes live from its first instruction; report when it exits.
    ///
    /// A leak is a goroutine started by the program's own code that is still
    /// alive when the program exits. leaktrace freezes the program for a moment
    /// inside runtime.exit to read its goroutines, so the report is exact.
    ///
    /// Goroutines the standard library started count as the program's when
    /// they run its code (a test function, an AfterFunc callback, a handler)
    /// or wait on its behalf (an unclosed response body, a command never
    /// waited for), at the program's line. In a `go test` binary each leak
    /// names the test whose goroutine created it, also under t.Parallel.
    Run(RunArgs),

    /// Observe every Go process on this host (or those --match selects) and
    /// serve their leak signals as Prometheus metrics.
    ///
    /// Processes are found as they start and left as they exit. Each is
    /// observed the way `leaktrace -p` does by default: censuses of its
    /// memory, which cost it nothing, and probes only on `runtime.exit` and
    /// on the `go` statements that look like leaks. A site leaks when its
    /// goroutines grew over the last --window. The metrics are documented
    /// in the README ("On a fleet"); the names are a contract.
    Agent(AgentArgs),

    /// Print a shell completion script: `source <(leaktrace completions bash)`.
    ///
    /// For good: bash, write it to /usr/share/bash-completion/completions/leaktrace;
    /// zsh, to a file `_leaktrace` in a directory of $fpath; fish, to
    /// ~/.config/fish/completions/leaktrace.fish.
    Completions {
        /// The shell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Attach to the running Go process PID.
    #[arg(short = 'p', long = "pid", value_name = "PID", required = true)]
    pub pid: Option<u32>,

    /// Observe for this long (e.g. 30s, 5m), then report. Default: until Ctrl-C or SIGTERM.
    #[arg(short = 'd', long, value_name = "D", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// A goroutine blocked at least this long counts as stuck (see "Verdicts" in the README).
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "10s")]
    pub stuck_after: Duration,

    /// A site must gain at least N goroutines (created minus exited) while
    /// observed, with its live count rising, to be judged leaking.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_growth: u64,

    /// Print one JSON object per interval D on stdout (NDJSON), then the report
    /// as a last line. Without it, a live view refreshes on a terminal.
    #[arg(long, value_name = "D", value_parser = parse_positive_duration)]
    pub interval: Option<Duration>,

    /// Probe every goroutine creation, exit and park, for exact counts and
    /// blocking times, at about 1 µs of the target's time per event. By
    /// default leaktrace reads the goroutines from memory every 100 ms or
    /// so, which costs the target nothing, and probes only the `go`
    /// statements that look like leaks, for their creation stacks.
    #[arg(long)]
    pub exact: bool,

    #[command(flatten)]
    pub ignore: IgnoreArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub probes: ProbeArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Exit with status 3 when any goroutine, ticker or timer site is judged
    /// leaking. In a GitHub Actions job (GITHUB_ACTIONS=true) also print an
    /// `::error` annotation for each, at its line in the repository.
    #[arg(long)]
    pub fail_on_leak: bool,

    /// Also exit with status 3 when descriptors (files, sockets, pipes) the
    /// program opened are left open at exit. Not part of --fail-on-leak: a
    /// server stopped by a signal still holds its listener.
    #[arg(long)]
    pub fail_on_unclosed: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub probes: ProbeArgs,

    #[command(flatten)]
    pub ignore: IgnoreArgs,

    /// The Go program to run, and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Serve the metrics on ADDR, at /metrics.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub listen: std::net::SocketAddr,

    /// Observe only the processes a rule selects: `exe=NAME` (the
    /// executable's file name; `NAME*` a prefix), `cgroup=TEXT` (text in the
    /// cgroup path) or `container=ID` (a container id or its prefix).
    /// Repeatable; any rule may select. Default: every Go process.
    #[arg(long = "match", value_name = "RULE", value_parser = parse_match_rule)]
    pub matches: Vec<MatchRule>,

    /// At most N sites per process, the most goroutines first; the rest are
    /// summed into site="other".
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sites: u32,

    /// A site leaks when its goroutines grew over the last D (between D/2
    /// and D: windows overlap).
    #[arg(long, value_name = "D", value_parser = parse_positive_duration, default_value = "10m")]
    pub window: Duration,

    /// Count each process's goroutines every D (longer for a process whose
    /// census is slow: at most 1/20 of a CPU each).
    #[arg(long, value_name = "D", value_parser = parse_positive_duration, default_value = "5s")]
    pub sample_interval: Duration,

    /// Look for new and exited processes every D.
    #[arg(long, value_name = "D", value_parser = parse_positive_duration, default_value = "2s")]
    pub scan_interval: Duration,

    /// A goroutine blocked at least this long counts as stuck.
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "1m")]
    pub stuck_after: Duration,

    /// A site must gain at least N goroutines over the window to leak.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_growth: u64,

    #[command(flatten)]
    pub ignore: IgnoreArgs,

    #[command(flatten)]
    pub probes: ProbeArgs,
}

/// Which processes `leaktrace agent` observes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchRule {
    /// The executable's file name, or a prefix of it (`name*`).
    Exe(String),
    /// Text in the process's cgroup path.
    Cgroup(String),
    /// A container id, or a prefix of one.
    Container(String),
}

impl std::fmt::Display for MatchRule {
    /// As given on the command line: `exe=api*`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatchRule::Exe(name) => write!(f, "exe={name}"),
            MatchRule::Cgroup(text) => write!(f, "cgroup={text}"),
            MatchRule::Container(id) => write!(f, "container={id}"),
        }
    }
}

fn parse_match_rule(text: &str) -> Result<MatchRule, String> {
    let (kind, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected exe=NAME, cgroup=TEXT or container=ID"))?;
    if value.is_empty() {
        return Err(format!("{text:?}: nothing after '='"));
    }
    match kind {
        "exe" => Ok(MatchRule::Exe(value.to_string())),
        "cgroup" => Ok(MatchRule::Cgroup(value.to_string())),
        "container" => Ok(MatchRule::Container(value.to_string())),
        other => Err(format!(
            "{other:?} is not a rule: use exe=NAME, cgroup=TEXT or container=ID"
        )),
    }
}

#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Print the report as one JSON document on stdout (schema in the README).
    #[arg(long)]
    pub json: bool,

    /// Write the report to FILE instead of the terminal.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Also write the report as a gzipped pprof profile to FILE, for `go
    /// tool pprof`: live goroutines (and tickers, pending timers) by creation
    /// stack, and the heap in use by allocation stack (`-sample_index=inuse_space`).
    /// A directory instead of a file holds one file per traced process,
    /// `leaktrace-<binary>-<pid>.pb.gz`: one per test binary of `go test ./...`.
    #[arg(long, value_name = "FILE")]
    pub pprof: Option<PathBuf>,

    /// Also write the findings as SARIF 2.1.0 to FILE, for GitHub code
    /// scanning: one result per leaking site, at its line in the repository
    /// ($GITHUB_WORKSPACE, or the git checkout around the working directory).
    /// A directory holds one file per traced process, as for --pprof.
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,

    /// Also show the runtime's own goroutines.
    #[arg(long)]
    pub all: bool,
}

/// Ignore rules, like goleak's options. A trailing `*` matches a prefix.
#[derive(Debug, Args, Clone, Default)]
pub struct IgnoreArgs {
    /// Ignore goroutines that run function F (e.g. main.worker). Repeatable.
    #[arg(long = "ignore-function", value_name = "F")]
    pub functions: Vec<String>,

    /// Ignore goroutines blocked in function F, their topmost frame outside
    /// the runtime (like goleak.IgnoreTopFunction). Repeatable.
    #[arg(long = "ignore-top", value_name = "F")]
    pub top_functions: Vec<String>,

    /// Ignore goroutines created by a `go` statement in function F. Repeatable.
    #[arg(long = "ignore-creator", value_name = "F")]
    pub creators: Vec<String>,

    /// Read ignore rules from a TOML file (format in the README).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Where probes go; see `probes::plan` in the `leaktrace` library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Placement {
    /// On instructions the kernel emulates instead of single-stepping:
    /// several times cheaper per hit.
    Emulated,
    /// Function entries and `newproc1`'s RETs, as other eBPF Go tracers place
    /// them; for comparing costs.
    Naive,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct ProbeArgs {
    /// Where probes go: `emulated` (instructions the kernel emulates instead of
    /// single-stepping; several times cheaper per hit) or `naive` (function
    /// entries and `newproc1`'s RETs, as other eBPF Go tracers place them;
    /// for comparing costs with `cargo xtask bench`).
    #[arg(long, value_name = "WHERE", default_value = "emulated")]
    pub probe_placement: Placement,

    /// Do not record goroutine creation stacks: about 1 µs less per goroutine,
    /// for programs that start goroutines at very high rates.
    #[arg(long)]
    pub no_stacks: bool,

    /// Show the first occurrence of each rare event in the probes (a failed
    /// read of the target's memory, a full table, a lost creation stack, an
    /// unexpected runtime layout) on stderr, with its context.
    #[arg(long)]
    pub debug: bool,

    /// Track only one-shot timers (NewTimer, After, AfterFunc) set at least D
    /// ahead; shorter ones fire before they can pile up, and are filtered
    /// out in the kernel before their stack is walked. `0` tracks them all.
    /// Tickers are always tracked.
    #[arg(long, value_name = "D", default_value = "500ms", value_parser = parse_duration)]
    pub min_timer: Duration,
}

/// A usage error as one line: clap's message without its usage block and
/// hints, e.g. `error: invalid value 'soon' for '--duration <D>': ...`.
pub fn usage_error_line(rendered: &str) -> String {
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    format!("{} (see leaktrace --help)", message.join(" "))
}

/// A duration that must not be zero (a period).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "{text:?} is not a period: give more than 0, e.g. 1s"
        ));
    }
    Ok(duration)
}

/// The longest duration a flag takes: deadlines are computed from it, and
/// ten years is longer than any observation.
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Parses `500ms`, `30s`, `5m`, `2h`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 30s, 5m, 500ms"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit {unit:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    let duration =
        Duration::try_from_secs_f64(seconds).map_err(|_| format!("invalid duration {text:?}"))?;
    if duration > MAX_DURATION {
        return Err(format!(
            "duration {text:?} is too long: at most 87600h (ten years)"
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_version_names_the_commit() {
        let (version, commit) = VERSION.split_once(' ').unwrap();
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
        let commit = commit.trim_start_matches('(').trim_end_matches(')');
        let hash = commit.split(' ').next().unwrap();
        assert!(
            commit == "unknown commit"
                || (hash.len() == 12 && hash.chars().all(|c| c.is_ascii_hexdigit())),
            "{VERSION}"
        );
        assert!(LONG_VERSION.starts_with(VERSION));
    }

    #[test]
    fn agent_rules() {
        let cli = Cli::try_parse_from([
            "leaktrace",
            "agent",
            "--match",
            "exe=api*",
            "--match",
            "container=3f2a",
        ])
        .unwrap();
        let Some(Command::Agent(agent)) = cli.command else {
            panic!("not agent")
        };
        assert_eq!(
            agent.matches,
            [
                MatchRule::Exe("api*".into()),
                MatchRule::Container("3f2a".into())
            ]
        );
        assert_eq!(agent.listen.to_string(), "127.0.0.1:9464");
        let err = Cli::try_parse_from(["leaktrace", "agent", "--match", "pid=1"]).unwrap_err();
        assert!(
            usage_error_line(&err.render().to_string())
                .contains("\"pid\" is not a rule: use exe=NAME, cgroup=TEXT or container=ID")
        );
        assert!(Cli::try_parse_from(["leaktrace", "agent", "--max-sites", "0"]).is_err());
    }

    #[test]
    fn completions_name_a_shell() {
        let cli = Cli::try_parse_from(["leaktrace", "completions", "fish"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Completions {
                shell: clap_complete::Shell::Fish
            })
        ));
        assert!(Cli::try_parse_from(["leaktrace", "completions"]).is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_fit_on_one_line() {
        let err = Cli::try_parse_from(["leaktrace", "-p", "1", "--duration", "soon"]).unwrap_err();
        let line = usage_error_line(&err.render().to_string());
        assert_eq!(
            line,
            "error: invalid value 'soon' for '--duration <D>': invalid duration \"soon\": expected e.g. 30s, 5m, 500ms (see leaktrace --help)"
        );
        let err = Cli::try_parse_from(["leaktrace", "--json"]).unwrap_err();
        let line = usage_error_line(&err.render().to_string());
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--pid <PID>"), "{line}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(
            parse_duration("18000000000000000000"),
            Err("duration \"18000000000000000000\" is too long: at most 87600h (ten years)".into())
        );
        assert_eq!(
            parse_duration("87600h"),
            Ok(Duration::from_secs(10 * 365 * 24 * 3600))
        );
        assert!(parse_positive_duration("0s").is_err());
        assert_eq!(parse_positive_duration("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn parses_both_modes() {
        let cli =
            Cli::try_parse_from(["leaktrace", "-p", "42", "--duration", "1s", "--json"]).unwrap();
        assert_eq!(cli.attach.pid, Some(42));
        assert!(cli.attach.output.json);
        let cli =
            Cli::try_parse_from(["leaktrace", "run", "--fail-on-leak", "--", "./x", "-v"]).unwrap();
        let Some(Command::Run(run)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.command, ["./x", "-v"]);
        assert!(Cli::try_parse_from(["leaktrace"]).is_err());
    }
}
