//! Starting the command for `leaktrace run` so that the probes are live before
//! its first instruction.
//!
//! leaktrace re-executes itself as a small trampoline (`leaktrace __exec FD
//! PATH ARGV0 ARGS...`) that blocks on a pipe. Once the parent has attached
//! the uprobes to the trampoline's PID, it writes one byte; the trampoline then
//! `exec`s the command, which keeps the PID. If the parent dies first, the read
//! sees EOF and the trampoline exits without running anything.

use std::{
    ffi::OsString,
    fs::File,
    io::{Read as _, Write as _},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::process::CommandExt as _,
    },
    path::{Path, PathBuf},
};

pub const TRAMPOLINE_ARG: &str = "__exec";

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot start {0}: no such file or command in PATH")]
    NotFound(String),
    #[error("cannot start {}: it is not an executable file", .0.display())]
    NotExecutable(PathBuf),
    #[error("creating a pipe")]
    Pipe(#[source] std::io::Error),
    #[error("starting the command")]
    Spawn(#[source] std::io::Error),
    #[error("the command exited before it could be traced")]
    ExitedEarly,
    #[error("releasing the command")]
    Release(#[source] std::io::Error),
    #[error("usage: leaktrace __exec FD PATH ARGV0 [ARGS...]")]
    TrampolineUsage,
    #[error("cannot execute {}", .0.display())]
    Exec(PathBuf, #[source] std::io::Error),
}

/// A command started but held before `exec` until [`HeldCommand::release`].
pub struct HeldCommand {
    pub child: tokio::process::Child,
    pub pid: u32,
    go: File,
}

impl HeldCommand {
    pub fn spawn(path: &Path, argv: &[String]) -> Result<Self, LaunchError> {
        let (read, write) = pipe()?;
        // The running image itself, even if its file was replaced since.
        let mut cmd = tokio::process::Command::new("/proc/self/exe");
        cmd.arg(TRAMPOLINE_ARG)
            .arg(read.as_raw_fd().to_string())
            .arg(path)
            .args(argv);
        let child = cmd.spawn().map_err(LaunchError::Spawn)?;
        drop(read);
        let pid = child.id().ok_or(LaunchError::ExitedEarly)?;
        Ok(Self {
            child,
            pid,
            go: File::from(write),
        })
    }

    /// Lets the held command `exec`.
    pub fn release(mut self) -> Result<tokio::process::Child, LaunchError> {
        self.go.write_all(b"x").map_err(LaunchError::Release)?;
        Ok(self.child)
    }
}

/// The trampoline's side; only returns on error.
pub fn trampoline(args: &[OsString]) -> LaunchError {
    let [fd, path, argv0, rest @ ..] = args else {
        return LaunchError::TrampolineUsage;
    };
    let Some(fd) = fd.to_str().and_then(|s| s.parse::<i32>().ok()) else {
        return LaunchError::TrampolineUsage;
    };
    // SAFETY: the parent passed us this descriptor, and nothing else owns it.
    let mut pipe = unsafe { File::from_raw_fd(fd) };
    let mut byte = [0u8; 1];
    if !matches!(pipe.read(&mut byte), Ok(1)) {
        // The parent went away before tracing started: do not run untraced.
        std::process::exit(1);
    }
    drop(pipe);
    let err = std::process::Command::new(path)
        .arg0(argv0)
        .args(rest)
        .exec();
    LaunchError::Exec(PathBuf::from(path), err)
}

/// A pipe whose read end survives `exec` (for the trampoline) and whose write
/// end does not.
fn pipe() -> Result<(OwnedFd, OwnedFd), LaunchError> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(LaunchError::Pipe(std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 returned two fresh descriptors we now own.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: clearing FD_CLOEXEC on a descriptor we own.
    if unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFD, 0) } != 0 {
        return Err(LaunchError::Pipe(std::io::Error::last_os_error()));
    }
    Ok((read, write))
}

/// Resolves CMD like a shell does: a name without `/` is looked up in PATH.
pub fn resolve_command(command: &str) -> Result<PathBuf, LaunchError> {
    let found = if command.contains('/') {
        Some(PathBuf::from(command)).filter(|p| p.exists())
    } else {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(command))
            .find(|p| is_executable(p))
    };
    match found {
        Some(path) if is_executable(&path) => Ok(path),
        Some(path) => Err(LaunchError::NotExecutable(path)),
        None => Err(LaunchError::NotFound(command.to_string())),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
