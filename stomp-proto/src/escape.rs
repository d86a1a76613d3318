//! The escape rules of STOMP 1.1 and 1.2 in one place, as lookup tables for the
//! encoder (octet → escape letter) and the decoder (escape letter → octet).

use crate::version::Version;

/// Each escaped octet, the letter written after the backslash, and the first
/// version that has the escape.
const RULES: [(u8, u8, Version); 4] = [
    (b'\n', b'n', Version::V1_1),
    (b':', b'c', Version::V1_1),
    (b'\\', b'\\', Version::V1_1),
    (b'\r', b'r', Version::V1_2),
];

const fn table(version: Version, encoding: bool) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < RULES.len() {
        let (octet, letter, since) = RULES[i];
        if version as u8 >= since as u8 {
            if encoding {
                table[octet as usize] = letter;
            } else {
                table[letter as usize] = octet;
            }
        }
        i += 1;
    }
    table
}

static ESCAPES_1_1: [u8; 256] = table(Version::V1_1, true);
static ESCAPES_1_2: [u8; 256] = table(Version::V1_2, true);
static UNESCAPES_1_1: [u8; 256] = table(Version::V1_1, false);
static UNESCAPES_1_2: [u8; 256] = table(Version::V1_2, false);

/// For each octet, the letter of its escape in `version`, or 0 when it is
/// written as it is. (1.0 has no escaping; callers do not ask for it.)
pub(crate) fn escapes(version: Version) -> &'static [u8; 256] {
    if version == Version::V1_2 {
        &ESCAPES_1_2
    } else {
        &ESCAPES_1_1
    }
}

/// For each octet after a backslash, what the escape stands for in `version`,
/// or 0 when it is no escape there.
pub(crate) fn unescapes(version: Version) -> &'static [u8; 256] {
    if version == Version::V1_2 {
        &UNESCAPES_1_2
    } else {
        &UNESCAPES_1_1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_are_inverse_and_carriage_return_is_1_2_only() {
        for version in [Version::V1_1, Version::V1_2] {
            for octet in 0..=255u8 {
                let letter = escapes(version)[usize::from(octet)];
                if letter != 0 {
                    assert_eq!(unescapes(version)[usize::from(letter)], octet);
                }
            }
        }
        assert_eq!(escapes(Version::V1_1)[usize::from(b'\r')], 0);
        assert_eq!(escapes(Version::V1_2)[usize::from(b'\r')], b'r');
        assert_eq!(unescapes(Version::V1_1)[usize::from(b'r')], 0);
        assert_eq!(unescapes(Version::V1_2)[usize::from(b't')], 0);
    }
}
