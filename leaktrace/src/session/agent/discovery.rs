//! Finding the processes `leaktrace agent` observes: every process in
//! `/proc`, its executable, and the container its cgroup names.

use std::{collections::HashMap, path::Path};

use crate::cli::MatchRule;

/// A process, told apart from a later one that reuses its pid by its start
/// time (`/proc/PID/stat` field 22, in clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity {
    pub pid: u32,
    pub start_time: u64,
}

impl Identity {
    /// The process `pid`, if it exists and is not a zombie.
    pub fn of(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (state, start_time) = parse_stat(&stat)?;
        (state != 'Z' && state != 'X').then_some(Self { pid, start_time })
    }

    /// Whether this very process is still running.
    pub fn is_running(&self) -> bool {
        Self::of(self.pid) == Some(*self)
    }
}

/// `(state, start time)` from `/proc/PID/stat`; the command name in
/// parentheses may itself hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; the start time is field 22.
    let start_time = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start_time))
}

/// Where a process runs, as its cgroup says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    /// The cgroup v2 path (or the first v1 hierarchy's).
    pub cgroup: String,
    /// A container runtime's 64-hex-digit id (docker, containerd, CRI-O, podman).
    pub id: Option<String>,
    /// A Kubernetes pod's UID.
    pub pod_uid: Option<String>,
}

impl Container {
    pub fn of(pid: u32) -> Self {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map(|text| Self::from_cgroup_file(&text))
            .unwrap_or_default()
    }

    fn from_cgroup_file(text: &str) -> Self {
        let path = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .or_else(|| text.lines().next().and_then(|l| l.splitn(3, ':').nth(2)))
            .unwrap_or_default();
        Self::from_path(path)
    }

    /// `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`,
    /// `/kubepods/besteffort/pod<uid>/<id>`, `/system.slice/docker-<id>.scope`, `/docker/<id>`.
    pub fn from_path(path: &str) -> Self {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let id = segments.iter().rev().find_map(|s| container_id(s));
        let pod_uid = segments.iter().rev().find_map(|s| pod_uid(s));
        Self {
            cgroup: path.to_string(),
            id,
            pod_uid,
        }
    }
}

/// A run of exactly 64 hex digits in a cgroup path segment.
fn container_id(segment: &str) -> Option<String> {
    let name = segment.strip_suffix(".scope").unwrap_or(segment);
    let id = name.rsplit(['-', ':']).next()?;
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
}

/// `pod<uid>` (cgroupfs) or `kubepods-<class>-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid(segment: &str) -> Option<String> {
    let name = segment.strip_suffix(".slice").unwrap_or(segment);
    let at = name.rfind("pod")?;
    let uid = name[at + 3..].replace('_', "-");
    let is_uid = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        });
    is_uid.then_some(uid)
}

/// An executable file, by device and inode.
pub type FileId = (u64, u64);

/// The file process `pid` runs now: it changes when the process `exec`s
/// (a shell that `exec`s the server keeps its pid and start time).
pub fn exe_file(pid: u32) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(format!("/proc/{pid}/exe"))
        .map(|m| (m.dev(), m.ino()))
        .ok()
}

/// A process that may be observed: its identity, executable and container.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub identity: Identity,
    /// The executable's file name.
    pub exe: String,
    pub exe_file: FileId,
    pub container: Container,
}

/// Whether the rules select a process (no rule: every process).
pub fn selects(rules: &[MatchRule], candidate: &Candidate) -> bool {
    rules.is_empty()
        || rules.iter().any(|rule| match rule {
            MatchRule::Exe(name) => match name.strip_suffix('*') {
                Some(prefix) => candidate.exe.starts_with(prefix),
                None => candidate.exe == *name,
            },
            MatchRule::Cgroup(text) => candidate.container.cgroup.contains(text.as_str()),
            MatchRule::Container(id) => candidate
                .container
                .id
                .as_deref()
                .is_some_and(|c| c.starts_with(id.as_str())),
        })
}

/// Every user-space process now, except leaktrace itself, by pid.
pub fn processes() -> HashMap<u32, Identity> {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter_map(|pid| Some((pid, Identity::of(pid)?)))
        .collect()
}

/// What `/proc` says of a process: `None` for kernel threads and for
/// processes gone or hidden from leaktrace.
pub fn describe(identity: Identity) -> Option<Candidate> {
    let target = std::fs::read_link(format!("/proc/{}/exe", identity.pid)).ok()?;
    Some(Candidate {
        identity,
        exe: file_name(&target),
        exe_file: exe_file(identity.pid)?,
        container: Container::of(identity.pid),
    })
}

/// The file name of an executable path, without the kernel's ` (deleted)`.
pub fn file_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix(" (deleted)")
        .map(str::to_string)
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c1e0b7d4a5f8e6c2b1a0d9f8e7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e";

    #[test]
    fn start_times_survive_odd_command_names() {
        let stat =
            "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 987654 1000 200";
        assert_eq!(parse_stat(stat), Some(('S', 987_654)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_running() {
        let me = Identity::of(std::process::id()).unwrap();
        assert!(me.is_running());
        let reused = Identity {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.is_running());
    }

    #[test]
    fn containers_from_systemd_and_cgroupfs_paths() {
        let systemd = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-{ID}.scope"
        );
        let container = Container::from_path(&systemd);
        assert_eq!(container.id.as_deref(), Some(ID));
        assert_eq!(
            container.pod_uid.as_deref(),
            Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        );
        let cgroupfs = format!("/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/{ID}");
        assert_eq!(
            Container::from_path(&cgroupfs),
            Container {
                cgroup: cgroupfs.clone(),
                id: Some(ID.into()),
                pod_uid: Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into()),
            }
        );
        let docker = Container::from_path(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!((docker.id.as_deref(), docker.pod_uid), (Some(ID), None));
        let host = Container::from_path("/user.slice/user-1000.slice/session-2.scope");
        assert_eq!((host.id, host.pod_uid), (None, None));
        // cgroup v1: the first hierarchy's path.
        let v1 =
            Container::from_cgroup_file(&format!("12:pids:/docker/{ID}\n11:cpu:/docker/{ID}\n"));
        assert_eq!(v1.id.as_deref(), Some(ID));
        let v2 = Container::from_cgroup_file("0::/system.slice/api.service\n");
        assert_eq!(v2.cgroup, "/system.slice/api.service");
    }

    #[test]
    fn rules_select_by_name_cgroup_or_container() {
        let candidate = Candidate {
            identity: Identity {
                pid: 1,
                start_time: 1,
            },
            exe: "api-server".into(),
            exe_file: (1, 1),
            container: Container::from_path(&format!("/system.slice/docker-{ID}.scope")),
        };
        let selects_with = |rules: &[MatchRule]| selects(rules, &candidate);
        assert!(selects_with(&[]));
        assert!(selects_with(&[MatchRule::Exe("api-server".into())]));
        assert!(selects_with(&[MatchRule::Exe("api*".into())]));
        assert!(!selects_with(&[MatchRule::Exe("api".into())]));
        assert!(selects_with(&[MatchRule::Cgroup("system.slice".into())]));
        assert!(selects_with(&[MatchRule::Container("3f2a9c".into())]));
        assert!(!selects_with(&[MatchRule::Container("ffff".into())]));
        assert!(selects_with(&[
            MatchRule::Exe("worker".into()),
            MatchRule::Container("3f2a".into())
        ]));
        assert_eq!(file_name(Path::new("/srv/api (deleted)")), "api");
    }
}
