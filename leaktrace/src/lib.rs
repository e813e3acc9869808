//! leaktrace: goroutine and ticker leak reports for unmodified Go programs,
//! from eBPF uprobes on the Go runtime.
//!
//! A session runs five stages, and data flows one way through them:
//!
//! 1. **open the binary**: [`leaktrace_gobinary::GoBinary`] reads symbols,
//!    the `runtime.g` layout and the wait reasons, once;
//! 2. **plan and attach the probes**: [`probes`] decides where each uprobe
//!    goes ([`probes::plan`], a pure function of the binary), attaches them,
//!    and reads what they aggregated in the kernel ([`probes::maps`]);
//! 3. **read the process**: [`process`] knows the target's pid and load bias,
//!    and decodes its goroutines and tickers through the [`process::Memory`]
//!    trait;
//! 4. **analyse**: [`analysis`] turns what was observed into a
//!    [`report::Report`], the schema, with a verdict for every site;
//! 5. **render**: [`render`] prints it as text, JSON or NDJSON, or as a live
//!    view; it is the only code that writes to stdout.
//!
//! [`session`] drives the stages for `leaktrace run` and `leaktrace -p`.

pub mod analysis;
pub mod error;
pub mod probes;
pub mod process;
pub mod render;
pub mod report;
pub mod session;

pub use error::Error;
/// The command line, in its own crate.
pub use leaktrace_cli as cli;

/// Exit status when `--fail-on-leak` finds a leak.
pub const EXIT_LEAKS_FOUND: i32 = 3;
/// Exit status when leaktrace cannot trace.
pub const EXIT_ERROR: i32 = 1;
/// Exit status for a wrong command line.
pub const EXIT_USAGE: i32 = 2;
