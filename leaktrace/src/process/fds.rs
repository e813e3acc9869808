//! The target's open descriptors as `/proc/PID/fd` shows them: what each
//! one is (a file and its path, a socket and its peer, a pipe, ...). The
//! peers of sockets come from the target's own network namespace
//! (`/proc/PID/net/tcp`, `tcp6`, `udp`, `udp6`, `unix`), by inode.

use std::{collections::HashMap, net::IpAddr, path::Path};

/// What one descriptor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// `file`, `tcp`, `tcp6`, `udp`, `udp6`, `unix`, `socket`, `pipe`,
    /// `eventpoll`, `eventfd`, `pidfd`, `timerfd`, `signalfd`, `inotify`,
    /// `memfd`, or `other`.
    pub kind: String,
    /// The file's path; a socket's `local -> peer`; a pipe's inode.
    pub detail: String,
}

/// Every open descriptor of `pid`, by number; empty if they cannot be read.
pub fn read(pid: u32) -> HashMap<u32, Descriptor> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashMap::new();
    };
    let sockets = sockets(pid);
    dir.flatten()
        .filter_map(|entry| {
            let fd: u32 = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((fd, describe(&target.to_string_lossy(), &sockets)))
        })
        .collect()
}

/// Counts by kind.
pub fn count_by_kind<'a>(
    descriptors: impl IntoIterator<Item = &'a Descriptor>,
) -> std::collections::BTreeMap<String, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for d in descriptors {
        *counts.entry(d.kind.clone()).or_default() += 1;
    }
    counts
}

fn describe(target: &str, sockets: &HashMap<u64, (String, String)>) -> Descriptor {
    let inode = |prefix: &str| -> Option<u64> {
        target.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
    };
    if let Some(ino) = inode("socket:[") {
        return match sockets.get(&ino) {
            Some((kind, detail)) => Descriptor {
                kind: kind.clone(),
                detail: detail.clone(),
            },
            None => Descriptor {
                kind: "socket".into(),
                detail: target.into(),
            },
        };
    }
    if inode("pipe:[").is_some() {
        return Descriptor {
            kind: "pipe".into(),
            detail: target.into(),
        };
    }
    if let Some(name) = target
        .strip_prefix("anon_inode:")
        .map(|n| n.trim_start_matches('[').trim_end_matches(']'))
    {
        let kind = match name {
            "eventpoll" | "eventfd" | "pidfd" | "timerfd" | "signalfd" | "inotify" => name,
            _ => "other",
        };
        return Descriptor {
            kind: kind.into(),
            detail: target.into(),
        };
    }
    if target.starts_with("/memfd:") {
        return Descriptor {
            kind: "memfd".into(),
            detail: target.into(),
        };
    }
    Descriptor {
        kind: if target.starts_with('/') {
            "file"
        } else {
            "other"
        }
        .into(),
        detail: target.into(),
    }
}

/// Socket inode → (kind, `local -> peer` or the unix path).
fn sockets(pid: u32) -> HashMap<u64, (String, String)> {
    let mut found = HashMap::new();
    let net = Path::new("/proc").join(pid.to_string()).join("net");
    for kind in ["tcp", "tcp6", "udp", "udp6"] {
        if let Ok(table) = std::fs::read_to_string(net.join(kind)) {
            for (inode, detail) in parse_inet(&table) {
                found.insert(inode, (kind.to_string(), detail));
            }
        }
    }
    if let Ok(table) = std::fs::read_to_string(net.join("unix")) {
        for (inode, path) in parse_unix(&table) {
            found.insert(inode, ("unix".to_string(), path));
        }
    }
    found
}

/// Rows of `/proc/net/tcp` and the like: `sl local rem st ... inode`.
fn parse_inet(table: &str) -> Vec<(u64, String)> {
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let (local, peer, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
            let inode: u64 = inode.parse().ok()?;
            let detail = match address(peer) {
                Some(peer) if !peer.ends_with(":0") => {
                    format!("{} -> {peer}", address(local)?)
                }
                _ => format!("{} (listening or unconnected)", address(local)?),
            };
            Some((inode, detail))
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits (IPv6), each 32-bit word in
/// host (little-endian) order, then the port in hex.
fn address(field: &str) -> Option<String> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    })
}

/// Rows of `/proc/net/unix`: `Num RefCount Protocol Flags Type St Inode [Path]`.
fn parse_unix(table: &str) -> Vec<(u64, String)> {
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let inode: u64 = fields.get(6)?.parse().ok()?;
            Some((
                inode,
                fields.get(7).copied().unwrap_or("(unnamed)").to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inet_and_unix_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:A2C4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1\n   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1\n";
        assert_eq!(
            parse_inet(tcp),
            [
                (4242, "127.0.0.1:41668 -> 127.0.0.1:8080".to_string()),
                (4343, "0.0.0.0:8080 (listening or unconnected)".to_string())
            ]
        );
        let tcp6 = "header\n 0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:A2C4 01 0:0 0:0 0 0 0 77 1\n";
        assert_eq!(parse_inet(tcp6)[0].1, "[::1]:8080 -> [::1]:41668");
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n0000: 00000002 00000000 00010000 0001 01 9001 /run/app.sock\n0000: 00000003 00000000 00000000 0001 03 9002\n";
        assert_eq!(
            parse_unix(unix),
            [
                (9001, "/run/app.sock".to_string()),
                (9002, "(unnamed)".to_string())
            ]
        );
    }

    #[test]
    fn names_what_each_descriptor_is() {
        let sockets = HashMap::from([(7, ("tcp".to_string(), "a -> b".to_string()))]);
        let kind = |target: &str| describe(target, &sockets).kind;
        assert_eq!(kind("socket:[7]"), "tcp");
        assert_eq!(kind("socket:[8]"), "socket");
        assert_eq!(kind("pipe:[12]"), "pipe");
        assert_eq!(kind("anon_inode:[eventpoll]"), "eventpoll");
        assert_eq!(kind("anon_inode:[pidfd]"), "pidfd");
        assert_eq!(kind("/tmp/x (deleted)"), "file");
        assert_eq!(describe("/etc/hosts", &sockets).detail, "/etc/hosts");
    }
}
