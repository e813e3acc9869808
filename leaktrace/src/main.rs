//! leaktrace's command line; the work is in the library.

use clap::Parser as _;
use leaktrace::{EXIT_ERROR, EXIT_USAGE, Error, cli, error::one_line, render, session};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == session::launch::TRAMPOLINE_ARG)
    {
        let err = session::launch::trampoline(&args[2..]);
        render::note(format!("error: {}", one_line(&err)));
        std::process::exit(127);
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            render::note(cli::usage_error_line(&e.render().to_string()));
            std::process::exit(EXIT_USAGE);
        }
    };
    if let Some(cli::Command::Completions { shell }) = cli.command {
        let mut script = Vec::new();
        clap_complete::generate(
            shell,
            &mut <cli::Cli as clap::CommandFactory>::command(),
            "leaktrace",
            &mut script,
        );
        match render::completions(&script) {
            Ok(()) | Err(render::RenderError::Closed) => std::process::exit(0),
            Err(e) => fail(e.into()),
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => fail(Error::io("cannot start", e)),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(cli::Command::Run(run)) => session::run::run(run).await,
            Some(cli::Command::Agent(agent)) => session::agent::agent(agent).await,
            Some(cli::Command::Completions { .. }) => Ok(0),
            None => {
                let pid = cli.attach.pid.unwrap_or_default();
                session::attach::attach(cli.attach, pid).await
            }
        }
    });
    match result {
        Ok(code) => std::process::exit(code),
        // Whoever read the output is gone (`leaktrace ... | head`): stop
        // quietly; the probes went with the session.
        Err(Error::Render(render::RenderError::Closed)) => std::process::exit(0),
        Err(e) => fail(e),
    }
}

/// Bad input and failures end in one line on stderr, never a backtrace.
fn fail(error: Error) -> ! {
    render::note(format!("error: {}", one_line(&error)));
    std::process::exit(EXIT_ERROR);
}
