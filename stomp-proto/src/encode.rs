//! Encoding frames into a [`BytesMut`], with each version's escaping.

use std::fmt;

use bytes::{BufMut, BytesMut};
use memchr::memchr;

use crate::frame::{Command, Frame};
use crate::version::Version;

/// When the encoder writes a `content-length` header the frame does not carry.
///
/// A `content-length` the frame does carry is kept as written when it states the
/// body's real length, and rewritten when it does not; repeats after the first
/// are dropped. An encoded frame never announces a wrong length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContentLengthPolicy {
    /// Whenever the body is not empty: binary-safe, and what most brokers expect.
    #[default]
    WhenNonEmpty,
    /// Only when the body contains a NUL octet, the one case where it is required.
    /// ActiveMQ, for one, delivers a SEND without `content-length` as a JMS text
    /// message and one with it as a bytes message.
    WhenRequired,
}

/// A header that cannot be written in the frame's version or command.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A header name is empty.
    EmptyHeaderName,
    /// A header holds an octet that this version (or, for `CONNECT`/`CONNECTED`,
    /// this command) cannot carry: where nothing is escaped (1.0, and `CONNECT`,
    /// `STOMP` and `CONNECTED` in every version) a LF anywhere or a colon in a
    /// name; and where 1.2's `\r` escape is missing, a CR that ends a value
    /// (a decoder would take it for half of a CR LF line end).
    Unencodable {
        /// The header's name.
        header: String,
        /// The offending octet.
        octet: u8,
        /// Whether it is in the name (else the value).
        in_name: bool,
        /// The version the frame was encoded for.
        version: Version,
        /// The frame's command.
        command: Command,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::EmptyHeaderName => f.write_str("a header name is empty"),
            EncodeError::Unencodable {
                header,
                octet,
                in_name,
                version,
                command,
            } => write!(
                f,
                "header {header:?}: octet {:?} in its {} cannot be written in a STOMP {version} {command} frame",
                *octet as char,
                if *in_name { "name" } else { "value" },
            ),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Encodes frames for one protocol version.
///
/// ```
/// use bytes::BytesMut;
/// use stomp_proto::{Command, Encoder, Frame, Version};
///
/// let frame = Frame::builder(Command::Send)
///     .header("destination", "/queue/a")
///     .header("note", "a:b")
///     .body("hi")
///     .build();
/// let mut out = BytesMut::new();
/// Encoder::new(Version::V1_2).encode(&frame, &mut out).unwrap();
/// assert_eq!(&out[..], b"SEND\ndestination:/queue/a\nnote:a\\cb\ncontent-length:2\n\nhi\0");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Encoder {
    version: Version,
    content_length: ContentLengthPolicy,
}

impl Encoder {
    /// An encoder for `version`, adding `content-length` to non-empty bodies.
    pub fn new(version: Version) -> Encoder {
        Encoder {
            version,
            content_length: ContentLengthPolicy::default(),
        }
    }

    /// Chooses when `content-length` is added.
    pub fn content_length(mut self, policy: ContentLengthPolicy) -> Encoder {
        self.content_length = policy;
        self
    }

    /// The version whose escaping is applied.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Switches to another version's escaping, as after negotiation.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// Appends the whole frame (head, body, NUL) to `dst`.
    ///
    /// On error nothing is appended.
    pub fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), EncodeError> {
        dst.reserve(frame.body.len() + 1);
        self.encode_head(frame, dst)?;
        dst.extend_from_slice(&frame.body);
        dst.put_u8(0);
        Ok(())
    }

    /// Appends the command line, headers and blank line, but not the body and its
    /// NUL: a transport can then write `frame.body` (a shared `Bytes`) and a NUL
    /// after it without copying a large body.
    ///
    /// On error nothing is appended.
    pub fn encode_head(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let mark = dst.len();
        let result = self.write_head(frame, dst);
        if result.is_err() {
            dst.truncate(mark);
        }
        result
    }

    fn write_head(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let escapes = frame.command.escapes_headers(self.version);
        let body = &frame.body[..];
        // Write into a region sized for the worst case (every octet escaped),
        // then cut it to what was written: no capacity check per octet.
        let start = dst.len();
        let growth = if escapes { 2 } else { 1 };
        let worst = frame.command.as_str().len()
            + growth * frame.headers.text_len()
            + 2 * frame.headers.len()
            + "\ncontent-length:18446744073709551615\n\n".len();
        dst.resize(start + worst, 0);
        let mut out = Cursor {
            out: &mut dst[start..],
            at: 0,
        };
        out.put(frame.command.as_str().as_bytes());
        out.put(b"\n");
        let table = crate::escape::escapes(self.version);
        let mut length_written = false;
        for (name, value) in frame.headers.raw_iter() {
            if name == b"content-length" {
                if !length_written {
                    length_written = true;
                    if states_length(value, body.len()) {
                        // Passed through as written (leading zeros included).
                        out.put(b"content-length:");
                        out.put(value);
                        out.put(b"\n");
                    } else {
                        out.put_content_length(body.len());
                    }
                }
                continue;
            }
            if name.is_empty() {
                return Err(EncodeError::EmptyHeaderName);
            }
            let fail = |octet, in_name| EncodeError::Unencodable {
                header: String::from_utf8_lossy(name).into_owned(),
                octet,
                in_name,
                version: self.version,
                command: frame.command,
            };
            if escapes {
                // 1.1 has no `\r` escape: a CR ending a value would read as a CR LF.
                if self.version == Version::V1_1 && value.last() == Some(&b'\r') {
                    return Err(fail(b'\r', false));
                }
                out.put_escaped(name, table);
                out.put(b":");
                out.put_escaped(value, table);
            } else {
                check_raw(name, true).map_err(|o| fail(o, true))?;
                check_raw(value, false).map_err(|o| fail(o, false))?;
                out.put(name);
                out.put(b":");
                out.put(value);
            }
            out.put(b"\n");
        }
        if !length_written {
            let needed = match self.content_length {
                ContentLengthPolicy::WhenNonEmpty => !body.is_empty(),
                ContentLengthPolicy::WhenRequired => memchr(0, body).is_some(),
            };
            if needed {
                out.put_content_length(body.len());
            }
        }
        out.put(b"\n");
        let written = out.at;
        dst.truncate(start + written);
        Ok(())
    }
}

/// Writes into a pre-sized region.
struct Cursor<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, octets: &[u8]) {
        self.out[self.at..self.at + octets.len()].copy_from_slice(octets);
        self.at += octets.len();
    }

    fn put_escaped(&mut self, text: &[u8], table: &[u8; 256]) {
        for &octet in text {
            let escape = table[usize::from(octet)];
            if escape == 0 {
                self.out[self.at] = octet;
                self.at += 1;
            } else {
                self.out[self.at] = b'\\';
                self.out[self.at + 1] = escape;
                self.at += 2;
            }
        }
    }

    fn put_content_length(&mut self, len: usize) {
        self.put(b"content-length:");
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = len;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[at..]);
        self.put(b"\n");
    }
}

/// Appends `frame` encoded for `version` (with `content-length` on non-empty
/// bodies) to `dst`. See [`Encoder`] for other policies.
pub fn encode(frame: &Frame, version: Version, dst: &mut BytesMut) -> Result<(), EncodeError> {
    Encoder::new(version).encode(frame, dst)
}

/// Appends one heart-beat (a LF) to `dst`.
pub fn encode_heartbeat(dst: &mut BytesMut) {
    dst.put_u8(b'\n');
}

/// Whether `value` is a decimal octet count equal to `len`.
fn states_length(value: &[u8], len: usize) -> bool {
    let mut n: usize = 0;
    for &digit in value {
        if !digit.is_ascii_digit() {
            return false;
        }
        match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(digit - b'0')))
        {
            Some(next) => n = next,
            None => return false,
        }
    }
    !value.is_empty() && n == len
}

/// `text` escaped for `version` (1.1 or 1.2), for tests.
#[cfg(test)]
pub(crate) fn escape(text: &[u8], version: Version) -> Vec<u8> {
    let table = crate::escape::escapes(version);
    let mut out = vec![0; 2 * text.len()];
    let mut cursor = Cursor {
        out: &mut out,
        at: 0,
    };
    cursor.put_escaped(text, table);
    let written = cursor.at;
    out.truncate(written);
    out
}

/// Checks a name or value written without escapes; returns the offending octet.
fn check_raw(text: &[u8], is_name: bool) -> Result<(), u8> {
    if let Some(&b) = text.iter().find(|&&b| b == b'\n' || (is_name && b == b':')) {
        return Err(b);
    }
    if !is_name && text.last() == Some(&b'\r') {
        return Err(b'\r');
    }
    Ok(())
}
