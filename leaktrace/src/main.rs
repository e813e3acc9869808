//! leaktrace: goroutine leak reports for unmodified Go programs, from eBPF uprobes.

mod attach;
mod cli;
mod goroutines;
mod ignore;
mod launch;
mod live_view;
mod output;
mod preflight;
mod probes;
mod procmem;
mod report;
mod run;
mod target;
mod tickers;
mod timeline;

use clap::Parser as _;

/// Exit status when `--fail-on-leak` finds a leak.
pub const EXIT_LEAKS_FOUND: i32 = 3;
/// Exit status when leaktrace cannot trace.
const EXIT_ERROR: i32 = 1;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == launch::TRAMPOLINE_ARG) {
        let err = launch::trampoline(&args[2..]).unwrap_err();
        output::note(format!("error: {err:#}"));
        std::process::exit(127);
    }
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => fail(anyhow::anyhow!("cannot start: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(cli::Command::Run(run)) => run::run(run).await,
            None => {
                let pid = cli.attach.pid.unwrap_or_default();
                attach::attach(cli.attach, pid).await
            }
        }
    });
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(e),
    }
}

/// Bad input and failures end in one line on stderr, never a backtrace.
fn fail(error: anyhow::Error) -> ! {
    output::note(format!("error: {error:#}"));
    std::process::exit(EXIT_ERROR);
}
