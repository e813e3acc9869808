//! The processes `cargo xtask bench` and `stress` start: killed and reaped
//! on every path (children first), waited for with a deadline, their output
//! read line by line with timeouts; and `leaktrace -p` sessions.

use std::{
    io::{self, BufRead as _, BufReader, Read},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

/// How often [`Guard::wait`] checks whether the child has exited.
const POLL: Duration = Duration::from_millis(5);
/// How long [`Lines::rest`] waits for the pipe of an exited child to close.
const REST_TIMEOUT: Duration = Duration::from_secs(5);

/// A child process that is killed (SIGKILL) and reaped when dropped, unless
/// it was reaped already.
pub struct Guard {
    name: String,
    child: Child,
    reaped: bool,
}

/// How a child ended.
pub struct Exit {
    pub status: ExitStatus,
    /// When it was reaped (within [`POLL`] of its exit).
    pub at: Instant,
    /// Its peak resident set size, in KiB.
    pub peak_rss_kib: u64,
}

impl Guard {
    /// Starts `command` with stdin from /dev/null.
    pub fn spawn(command: &mut Command) -> anyhow::Result<Self> {
        let name = Path::new(command.get_program())
            .file_name()
            .unwrap_or(command.get_program())
            .to_string_lossy()
            .into_owned();
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self {
            name,
            child,
            reaped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdout, which must have been piped.
    pub fn stdout(&mut self) -> anyhow::Result<Lines> {
        let pipe = self.child.stdout.take();
        Ok(Lines::new(pipe.with_context(|| {
            format!("{}'s stdout is not piped", self.name)
        })?))
    }

    /// The child's stderr, which must have been piped.
    pub fn stderr(&mut self) -> anyhow::Result<Lines> {
        let pipe = self.child.stderr.take();
        Ok(Lines::new(pipe.with_context(|| {
            format!("{}'s stderr is not piped", self.name)
        })?))
    }

    pub fn signal(&self, signal: libc::c_int) -> anyhow::Result<()> {
        anyhow::ensure!(!self.reaped, "{} has exited already", self.name);
        // SAFETY: kill has no memory-safety preconditions, and the child is
        // not reaped yet, so its PID cannot name another process.
        if unsafe { libc::kill(self.pid_t(), signal) } != 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("cannot signal {}", self.name));
        }
        Ok(())
    }

    /// Waits for the child to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<Exit> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exit) = self.exited()? {
                return Ok(exit);
            }
            if Instant::now() >= deadline {
                bail!("{} did not exit within {timeout:?}", self.name);
            }
            thread::sleep(POLL);
        }
    }

    /// Fails if the child has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.exited()? {
            None => Ok(()),
            Some(exit) => bail!("{} exited: {}", self.name, exit.status),
        }
    }

    /// Reaps the child if it has exited, with wait4 to learn its peak memory,
    /// which std's `Child::wait` does not report.
    fn exited(&mut self) -> anyhow::Result<Option<Exit>> {
        anyhow::ensure!(!self.reaped, "{} was reaped already", self.name);
        let mut status = 0;
        // SAFETY: rusage is plain integers, for which all zeroes is valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for writes during the call.
        let reaped = unsafe { libc::wait4(self.pid_t(), &mut status, libc::WNOHANG, &mut usage) };
        if reaped == self.pid_t() {
            self.reaped = true;
            return Ok(Some(Exit {
                status: std::os::unix::process::ExitStatusExt::from_raw(status),
                at: Instant::now(),
                peak_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
            }));
        }
        if reaped < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error).with_context(|| format!("waiting for {}", self.name));
            }
        }
        Ok(None)
    }

    fn pid_t(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).unwrap_or(libc::pid_t::MAX)
    }
}

impl Drop for Guard {
    /// Kills the child's own children first (the target of `leaktrace run`,
    /// which may be stopped by leaktrace's exit probe), then the child.
    fn drop(&mut self) {
        if !self.reaped {
            for pid in children(self.pid()) {
                let _ = signal_pid(pid, libc::SIGKILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The children of `pid`, from /proc/PID/task/*/children.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|child| child.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Sends `signal` to `pid`.
pub fn signal_pid(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The lines a child writes to a pipe, read on a thread so that waiting for
/// one can time out. The thread ends when the pipe closes.
pub struct Lines {
    lines: Receiver<String>,
}

impl Lines {
    fn new(pipe: impl Read + Send + 'static) -> Self {
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { lines }
    }

    /// The next line, or `None` once the pipe is closed; fails if no line
    /// comes before `deadline`.
    pub fn next_before(&self, deadline: Instant) -> anyhow::Result<Option<String>> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(Some(line)),
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => bail!("no output within the time allowed"),
        }
    }

    /// The first of the next lines that `f` maps to a value, before `timeout`.
    pub fn find_map<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&str) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + timeout;
        while let Some(line) = self.next_before(deadline)? {
            if let Some(value) = f(&line) {
                return Ok(value);
            }
        }
        bail!("the output ended first")
    }

    /// Every line until the pipe closes, which must happen before `timeout`.
    pub fn to_end(&self, timeout: Duration) -> anyhow::Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        while let Some(line) = self.next_before(deadline)? {
            lines.push(line);
        }
        Ok(lines)
    }

    /// The rest of an exited child's output: every line until the pipe
    /// closes, or what comes within a few seconds if it does not.
    pub fn rest(&self) -> Vec<String> {
        let deadline = Instant::now() + REST_TIMEOUT;
        let mut lines = Vec::new();
        while let Ok(Some(line)) = self.next_before(deadline) {
            lines.push(line);
        }
        lines
    }

    /// The lines read so far and not yet taken.
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

/// A `leaktrace -p PID` session.
pub struct Tracer {
    process: Guard,
    stderr: Lines,
    /// How long leaktrace took from its start to say it was tracing.
    pub attach_time: Duration,
    /// When it said so.
    pub attached_at: Instant,
}

/// What leaktrace prints on stderr once its probes are attached and the
/// target's existing goroutines are read.
pub const TRACING: &str = "leaktrace: tracing pid";
/// How long attaching (reading up to a million goroutines) may take.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(180);
/// How long leaktrace may take to report and exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(180);

impl Tracer {
    /// Starts `leaktrace -p pid args...` and waits until it is tracing.
    pub fn attach(leaktrace: &Path, pid: u32, args: &[&str]) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut process = Guard::spawn(
            Command::new(leaktrace)
                .arg("-p")
                .arg(pid.to_string())
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )?;
        let stderr = process.stderr()?;
        let deadline = started + ATTACH_TIMEOUT;
        let mut said = Vec::new();
        loop {
            let line = stderr
                .next_before(deadline)
                .context("leaktrace did not attach in time")?;
            match line {
                Some(line) if line.starts_with(TRACING) => break,
                Some(line) => said.push(line),
                None => {
                    let exit = process.wait(EXIT_TIMEOUT)?;
                    bail!(
                        "leaktrace {} exited ({}) before attaching: {}",
                        args.join(" "),
                        exit.status,
                        said.join("\n")
                    );
                }
            }
        }
        Ok(Self {
            process,
            stderr,
            attach_time: started.elapsed(),
            attached_at: Instant::now(),
        })
    }

    /// Stops leaktrace as Ctrl-C would, and waits for it to report and exit.
    pub fn detach(self) -> anyhow::Result<Exit> {
        self.process.signal(libc::SIGINT)?;
        self.finish()
    }

    /// Waits for leaktrace to report and exit by itself (after `--duration`);
    /// fails unless it exits with status 0.
    pub fn finish(mut self) -> anyhow::Result<Exit> {
        let exit = self.process.wait(EXIT_TIMEOUT)?;
        if !exit.status.success() {
            let said = self.stderr.rest().join("\n");
            bail!("leaktrace failed ({}): {said}", exit.status);
        }
        Ok(exit)
    }
}
