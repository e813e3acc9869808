//! Project tasks: `cargo xtask setup | demo | test | bench | stress | soak | dist | man`.

mod bench;
mod cmd;
mod demo;
mod dist;
mod fuzz;
mod go;
mod layouts;
mod process;
mod setup;
mod soak;
mod stress;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building and testing need (idempotent): rust-src, bpf-linker, Go toolchains.
    Setup,
    /// Set up, build leaktrace and a leaky Go program, and trace it.
    Demo,
    /// Regenerate leaktrace-gobinary/src/known_runtimes.rs from the installed Go toolchains.
    GenLayouts,
    /// Measure what tracing costs: per goroutine, and in realistic workloads.
    Bench(bench::Options),
    /// Stress leaktrace with every Go release: a million goroutines, stack
    /// growth, GC, parks, forks, killed targets and tracers, two tracers at once.
    Stress(stress::Options),
    /// Run `leaktrace agent` under process churn for minutes: its memory
    /// must stay flat, and no probe may outlive a process.
    Soak(soak::Options),
    /// Fuzz every parser for a bounded time, seeded with real Go binaries.
    Fuzz {
        /// Seconds per fuzz target.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
    },
    /// Build the release archive: a static musl binary with the eBPF object
    /// inside, its man pages and shell completions, in target/dist/.
    Dist,
    /// Write the man pages (clap_mangen) to a directory.
    Man {
        #[arg(long, default_value = "target/man")]
        out: std::path::PathBuf,
    },
    /// Set up, then run every test: unit tests and the privileged end-to-end tests.
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(last = true)]
        cargo_test_args: Vec<String>,
    },
}

fn main() {
    let result = match Cli::parse().task {
        Task::Setup => setup::all(),
        Task::Demo => demo::run(),
        Task::GenLayouts => layouts::generate(),
        Task::Fuzz { seconds } => fuzz::run(seconds),
        Task::Bench(options) => bench::run(options),
        Task::Stress(options) => stress::run(options),
        Task::Soak(options) => soak::run(options),
        Task::Dist => dist::run().map(drop),
        Task::Man { out } => dist::man_pages(&out),
        Task::Test { cargo_test_args } => test::run(&cargo_test_args),
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}
