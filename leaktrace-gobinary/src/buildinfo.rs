//! The Go version recorded in `.go.buildinfo`.
//!
//! Since Go 1.18 the section starts with the 14-byte magic, the pointer size,
//! a flags byte with bit 1 set, and at offset 32 the version and module info
//! as two varint-prefixed strings. Older binaries (Go 1.13–1.17) hold, at
//! offset 16, two pointers to Go string headers instead ([`parse_pointed`]).

use std::{cmp::Ordering, fmt, str::FromStr};

const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const FLAG_INLINE_STRINGS: u8 = 0x2;

/// A Go release, as in `go1.21.13`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl GoVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

impl Ord for GoVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch))
    }
}

impl PartialOrd for GoVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "go{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for GoVersion {
    type Err = String;

    /// Parses `go1.21.13`, `go1.22` or `go1.23rc1` (pre-releases count as .0);
    /// anything after a space or `-` (`go1.24.4 X:...`) is ignored.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("not a Go version: {text:?}");
        let core = text
            .strip_prefix("go")
            .ok_or_else(bad)?
            .split([' ', '-', '+'])
            .next()
            .ok_or_else(bad)?;
        let mut parts = core.split('.');
        let mut number = |optional: bool| -> Result<u32, String> {
            match parts.next() {
                None if optional => Ok(0),
                None => Err(bad()),
                Some(part) => {
                    let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().map_err(|_| bad())
                }
            }
        };
        Ok(Self {
            major: number(false)?,
            minor: number(false)?,
            patch: number(true)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildInfoError {
    /// No magic: not written by the Go linker.
    #[error("no Go build info")]
    NotGo,
    /// The pre-1.18 layout.
    #[error("the build info layout of Go before 1.18")]
    OlderThanGo118,
    #[error(".go.buildinfo: corrupt {0}")]
    Corrupt(&'static str),
}

/// What `.go.buildinfo` says about the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: GoVersion,
    /// The version string as the toolchain wrote it (`go1.24.4`).
    pub version_text: String,
    /// `go version -m` style module info: `path`, `mod`, `dep`, `build` lines.
    pub modinfo: String,
}

pub fn parse(section: &[u8]) -> Result<BuildInfo, BuildInfoError> {
    if section.len() < 32 || &section[..14] != MAGIC {
        return Err(BuildInfoError::NotGo);
    }
    if section[15] & FLAG_INLINE_STRINGS == 0 {
        return Err(BuildInfoError::OlderThanGo118);
    }
    let (version_text, rest) =
        read_string(&section[32..]).ok_or(BuildInfoError::Corrupt("version"))?;
    let modinfo = read_string(rest)
        .map(|(info, _)| trim_modinfo_sentinels(&info))
        .unwrap_or_default();
    let version = version_text
        .parse()
        .map_err(|_| BuildInfoError::Corrupt("version string"))?;
    Ok(BuildInfo {
        version,
        version_text,
        modinfo,
    })
}

/// The build info of Go 1.13–1.17: two pointers (to the version's and the
/// module info's string headers) that `read` resolves, by address.
pub fn parse_pointed(
    section: &[u8],
    read: impl Fn(u64, usize) -> Option<Vec<u8>>,
) -> Result<BuildInfo, BuildInfoError> {
    if section.len() < 32 || &section[..14] != MAGIC {
        return Err(BuildInfoError::NotGo);
    }
    if section[14] != 8 || section[15] != 0 {
        return Err(BuildInfoError::Corrupt("pointer size or byte order"));
    }
    let word = |bytes: &[u8], at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    // A string header: {data, len}; module info is at most a few MiB.
    let string = |header_at: u64| -> Option<String> {
        let header = read(header_at, 16)?;
        let len = usize::try_from(word(&header, 8)?).ok()?.min(1 << 24);
        let body = read(word(&header, 0)?, len)?;
        Some(String::from_utf8_lossy(&body).into_owned())
    };
    let version_text = word(section, 16)
        .and_then(string)
        .ok_or(BuildInfoError::Corrupt("version"))?;
    let modinfo = word(section, 24)
        .and_then(string)
        .map(|info| trim_modinfo_sentinels(&info))
        .unwrap_or_default();
    let version = version_text
        .parse()
        .map_err(|_| BuildInfoError::Corrupt("version string"))?;
    Ok(BuildInfo {
        version,
        version_text,
        modinfo,
    })
}

fn read_string(data: &[u8]) -> Option<(String, &[u8])> {
    let mut len: u64 = 0;
    let mut used = 0;
    for (i, &byte) in data.iter().take(10).enumerate() {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            used = i + 1;
            break;
        }
    }
    if used == 0 {
        return None;
    }
    let len = usize::try_from(len).ok()?;
    let body = data.get(used..used.checked_add(len)?)?;
    Some((
        String::from_utf8_lossy(body).into_owned(),
        &data[used + len..],
    ))
}

/// The linker wraps modinfo in 16-byte sentinels.
fn trim_modinfo_sentinels(info: &str) -> String {
    if info.len() >= 33 && info.is_char_boundary(16) && info.is_char_boundary(info.len() - 16) {
        info[16..info.len() - 16].to_string()
    } else {
        info.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(version: &str, modinfo: &str) -> Vec<u8> {
        let mut data = MAGIC.to_vec();
        data.extend([8, FLAG_INLINE_STRINGS]);
        data.resize(32, 0);
        for s in [version, modinfo] {
            data.push(s.len() as u8);
            data.extend_from_slice(s.as_bytes());
        }
        data
    }

    #[test]
    fn parses_versions() {
        assert_eq!("go1.21.13".parse(), Ok(GoVersion::new(1, 21, 13)));
        assert_eq!("go1.22".parse(), Ok(GoVersion::new(1, 22, 0)));
        assert_eq!("go1.23rc1".parse(), Ok(GoVersion::new(1, 23, 0)));
        assert_eq!(
            "go1.24.4 X:nocoverageredesign".parse(),
            Ok(GoVersion::new(1, 24, 4))
        );
        assert!("devel +abc".parse::<GoVersion>().is_err());
        assert!(GoVersion::new(1, 19, 8) < GoVersion::new(1, 21, 0));
    }

    #[test]
    fn reads_inline_buildinfo() {
        let info = parse(&section(
            "go1.27.4",
            "0123456789abcdefpath\tmain\n0123456789abcdef",
        ))
        .unwrap();
        assert_eq!(info.version, GoVersion::new(1, 27, 4));
        assert_eq!(info.modinfo, "path\tmain\n");
    }

    #[test]
    fn reads_pointed_buildinfo() {
        let mut section = MAGIC.to_vec();
        section.extend([8, 0]);
        section.extend(0x1000u64.to_le_bytes());
        section.extend(0x2000u64.to_le_bytes());
        section.resize(32, 0);
        let memory = |address: u64, len: usize| -> Option<Vec<u8>> {
            let header = |data: u64, n: u64| {
                let mut h = data.to_le_bytes().to_vec();
                h.extend(n.to_le_bytes());
                h
            };
            let bytes = match address {
                0x1000 => header(0x3000, 8),
                0x2000 => header(0x4000, 42),
                0x3000 => b"go1.17.2".to_vec(),
                0x4000 => b"0123456789abcdefpath\tmain\n0123456789abcdef".to_vec(),
                _ => return None,
            };
            bytes.get(..len).map(<[u8]>::to_vec)
        };
        let info = parse_pointed(&section, memory).unwrap();
        assert_eq!(info.version, GoVersion::new(1, 17, 2));
        assert_eq!(parse(&section), Err(BuildInfoError::OlderThanGo118));
        assert_eq!(
            parse_pointed(&section, |_, _| None),
            Err(BuildInfoError::Corrupt("version"))
        );
    }

    #[test]
    fn rejects_other_sections() {
        assert_eq!(parse(b"hello"), Err(BuildInfoError::NotGo));
        let mut old = section("x", "");
        old[15] = 0;
        assert_eq!(parse(&old), Err(BuildInfoError::OlderThanGo118));
        let mut truncated = section("go1.21.0", "");
        truncated.truncate(36);
        assert!(matches!(parse(&truncated), Err(BuildInfoError::Corrupt(_))));
    }
}
