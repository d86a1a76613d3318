//! STOMP protocol versions.

use std::fmt;
use std::str::FromStr;

/// A STOMP protocol version.
///
/// The version decides how header names and values are escaped on the wire:
/// 1.0 has no escaping, 1.1 escapes `\n`, `\c` (colon) and `\\`, and 1.2 adds `\r`.
///
/// ```
/// use stomp_proto::Version;
///
/// let v: Version = "1.2".parse().unwrap();
/// assert_eq!(v, Version::V1_2);
/// assert_eq!(v.to_string(), "1.2");
/// assert!(Version::V1_1 < Version::V1_2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// STOMP 1.0: no escaping, no heart-beats, no NACK.
    V1_0,
    /// STOMP 1.1: escaping of `\n`, `:` and `\`, heart-beats, NACK.
    V1_1,
    /// STOMP 1.2: adds the `\r` escape, CR LF line ends and the `ack` header.
    V1_2,
}

impl Version {
    /// Every version, oldest first.
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    /// The version as it is written in `accept-version` and `version` headers.
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Whether header names and values are escaped in this version (1.1 and later).
    pub const fn has_escapes(self) -> bool {
        !matches!(self, Version::V1_0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a string names no STOMP version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseVersionError {
    text: String,
}

impl fmt::Display for ParseVersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown STOMP version {:?} (expected 1.0, 1.1 or 1.2)",
            self.text
        )
    }
}

impl std::error::Error for ParseVersionError {}

impl FromStr for Version {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1.0" => Ok(Version::V1_0),
            "1.1" => Ok(Version::V1_1),
            "1.2" => Ok(Version::V1_2),
            _ => Err(ParseVersionError { text: s.into() }),
        }
    }
}

/// A set of versions, as in an `accept-version` header.
///
/// ```
/// use stomp_proto::{Version, VersionSet};
///
/// let offered = VersionSet::parse_accept_version(Some("1.1,1.2,2.0"));
/// assert_eq!(offered.to_string(), "1.1,1.2"); // unknown entries are ignored
/// assert_eq!(offered.highest_common(VersionSet::ALL), Some(Version::V1_2));
/// // No accept-version header at all means a 1.0 client.
/// assert_eq!(VersionSet::parse_accept_version(None).highest(), Some(Version::V1_0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VersionSet(u8);

impl VersionSet {
    /// 1.0, 1.1 and 1.2.
    pub const ALL: VersionSet = VersionSet(0b111);
    /// No version.
    pub const EMPTY: VersionSet = VersionSet(0);

    const fn bit(version: Version) -> u8 {
        1 << version as u8
    }

    /// A set holding just `version`.
    pub const fn only(version: Version) -> VersionSet {
        VersionSet(Self::bit(version))
    }

    /// This set with `version` added.
    pub const fn with(self, version: Version) -> VersionSet {
        VersionSet(self.0 | Self::bit(version))
    }

    /// Whether `version` is in the set.
    pub const fn contains(self, version: Version) -> bool {
        self.0 & Self::bit(version) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The highest version in the set.
    pub fn highest(self) -> Option<Version> {
        self.iter().last()
    }

    /// The highest version in both sets: the negotiated version.
    pub fn highest_common(self, other: VersionSet) -> Option<Version> {
        VersionSet(self.0 & other.0).highest()
    }

    /// The versions, oldest first.
    pub fn iter(self) -> impl Iterator<Item = Version> {
        Version::ALL.into_iter().filter(move |v| self.contains(*v))
    }

    /// Reads an `accept-version` header: a comma-separated list, entries that
    /// are no known version ignored; an absent header means 1.0 only.
    pub fn parse_accept_version(value: Option<&str>) -> VersionSet {
        match value {
            None => VersionSet::only(Version::V1_0),
            Some(list) => list
                .split(',')
                .filter_map(|v| v.trim().parse().ok())
                .fold(VersionSet::EMPTY, VersionSet::with),
        }
    }
}

impl FromIterator<Version> for VersionSet {
    fn from_iter<I: IntoIterator<Item = Version>>(iter: I) -> VersionSet {
        iter.into_iter().fold(VersionSet::EMPTY, VersionSet::with)
    }
}

impl fmt::Display for VersionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(v.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_the_highest_common_version_for_every_pair() {
        let sets: Vec<VersionSet> = (1..8u8).map(VersionSet).collect();
        for client in &sets {
            for server in &sets {
                let expected = Version::ALL
                    .into_iter()
                    .rev()
                    .find(|v| client.contains(*v) && server.contains(*v));
                assert_eq!(
                    client.highest_common(*server),
                    expected,
                    "{client} vs {server}"
                );
            }
        }
        assert_eq!(
            VersionSet::parse_accept_version(Some("")),
            VersionSet::EMPTY
        );
        assert_eq!(
            VersionSet::parse_accept_version(Some(" 1.2 , 1.0")).to_string(),
            "1.0,1.2"
        );
    }

    #[test]
    fn parses_and_prints_every_version() {
        for v in Version::ALL {
            assert_eq!(v.as_str().parse::<Version>(), Ok(v));
        }
        let err = "2.0".parse::<Version>().unwrap_err();
        assert!(err.to_string().contains("\"2.0\""), "{err}");
        assert!(" 1.2".parse::<Version>().is_err());
    }

    #[test]
    fn only_1_0_lacks_escapes() {
        assert!(!Version::V1_0.has_escapes());
        assert!(Version::V1_1.has_escapes());
        assert!(Version::V1_2.has_escapes());
    }
}
