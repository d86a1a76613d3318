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

#[cfg(test)]
mod tests {
    use super::*;

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
