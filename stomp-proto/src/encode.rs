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
        dst.reserve(estimate_head(frame));
        dst.extend_from_slice(frame.command.as_str().as_bytes());
        dst.put_u8(b'\n');
        let mut length_written = false;
        for (name, value) in frame.headers.iter() {
            if name == "content-length" {
                if !length_written {
                    length_written = true;
                    if states_length(value, body.len()) {
                        // Passed through as written (leading zeros included).
                        dst.extend_from_slice(b"content-length:");
                        dst.extend_from_slice(value.as_bytes());
                        dst.put_u8(b'\n');
                    } else {
                        write_content_length(dst, body.len());
                    }
                }
                continue;
            }
            if name.is_empty() {
                return Err(EncodeError::EmptyHeaderName);
            }
            if escapes {
                write_escaped(dst, name.as_bytes(), self.version);
                dst.put_u8(b':');
                write_escaped(dst, value.as_bytes(), self.version);
            } else {
                let fail = |octet, in_name| EncodeError::Unencodable {
                    header: name.into(),
                    octet,
                    in_name,
                    version: self.version,
                    command: frame.command,
                };
                check_raw(name.as_bytes(), true).map_err(|o| fail(o, true))?;
                check_raw(value.as_bytes(), false).map_err(|o| fail(o, false))?;
                dst.extend_from_slice(name.as_bytes());
                dst.put_u8(b':');
                dst.extend_from_slice(value.as_bytes());
            }
            if escapes && self.version == Version::V1_1 && value.ends_with('\r') {
                return Err(EncodeError::Unencodable {
                    header: name.into(),
                    octet: b'\r',
                    in_name: false,
                    version: self.version,
                    command: frame.command,
                });
            }
            dst.put_u8(b'\n');
        }
        if !length_written {
            let needed = match self.content_length {
                ContentLengthPolicy::WhenNonEmpty => !body.is_empty(),
                ContentLengthPolicy::WhenRequired => memchr(0, body).is_some(),
            };
            if needed {
                write_content_length(dst, body.len());
            }
        }
        dst.put_u8(b'\n');
        Ok(())
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

fn estimate_head(frame: &Frame) -> usize {
    let headers: usize = frame
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 2)
        .sum();
    frame.command.as_str().len() + headers + "content-length:18446744073709551615\n\n".len() + 1
}

fn write_content_length(dst: &mut BytesMut, len: usize) {
    dst.extend_from_slice(b"content-length:");
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
    dst.extend_from_slice(&digits[at..]);
    dst.put_u8(b'\n');
}

/// Whether `value` is a decimal octet count equal to `len`.
fn states_length(value: &str, len: usize) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
        && value.trim_start_matches('0').parse::<usize>().unwrap_or(0) == len
}

/// Whether `b` must be escaped in `version` (1.1 or 1.2).
fn needs_escape(b: u8, version: Version) -> bool {
    matches!(b, b'\\' | b'\n' | b':') || (b == b'\r' && version == Version::V1_2)
}

pub(crate) fn write_escaped(dst: &mut BytesMut, text: &[u8], version: Version) {
    let mut rest = text;
    while let Some(at) = rest.iter().position(|&b| needs_escape(b, version)) {
        dst.extend_from_slice(&rest[..at]);
        dst.extend_from_slice(match rest[at] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b':' => b"\\c",
            _ => b"\\r",
        });
        rest = &rest[at + 1..];
    }
    dst.extend_from_slice(rest);
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
