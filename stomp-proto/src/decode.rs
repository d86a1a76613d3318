//! The streaming frame decoder: [`Decoder`], [`Limits`], [`DecodeError`].
//!
//! The decoder reads from a [`BytesMut`] the caller fills, and cuts complete frames
//! off its front. Input may arrive split at any octet: the decoder remembers how far
//! it has scanned and resumes there, so no octet is scanned twice and a body whose
//! length is known (`content-length`) is not scanned at all. Header names and values
//! are unescaped in place inside the receive buffer, and the frame's header text and
//! body are reference-counted slices of that buffer: decoding copies nothing, and
//! allocates one vector (the header index) per frame that has headers.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};
use memchr::memchr;

use crate::frame::{Command, Entry, Frame, Headers, Span};
use crate::version::Version;

/// One item of a STOMP stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A complete frame.
    Frame(Frame),
    /// A bare end-of-line between frames: a heart-beat (or the padding some
    /// brokers put after every frame's NUL).
    Heartbeat,
}

/// Size limits the decoder enforces while it buffers, before it buffers past them.
///
/// A peer that streams an endless header line, too many headers, or announces a
/// huge `content-length` gets a [`DecodeError`] once the buffered input crosses the
/// limit (or at once, for a declared length), never an allocation of its choosing.
///
/// ```
/// use stomp_proto::Limits;
///
/// let limits = Limits { max_body: 1 << 20, ..Limits::default() };
/// assert_eq!(limits.max_headers, 1000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame in octets: command line, headers, body and NUL.
    /// Default: 129 MiB (the body limit plus 1 MiB).
    pub max_frame_size: usize,
    /// The most headers one frame may carry. Default: 1000.
    pub max_headers: usize,
    /// The longest header line in octets, line end excluded. Default: 64 KiB.
    pub max_header_line: usize,
    /// The largest body in octets. Default: 128 MiB (RabbitMQ's own limit).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_size: (128 << 20) + (1 << 20),
            max_headers: 1000,
            max_header_line: 64 << 10,
            max_body: 128 << 20,
        }
    }
}

impl Limits {
    fn line_too_long(&self, at: usize) -> (usize, DecodeErrorKind) {
        let limit = self.max_header_line;
        (at, DecodeErrorKind::HeaderLineTooLong { limit })
    }

    fn frame_too_large(&self, at: usize) -> (usize, DecodeErrorKind) {
        let limit = self.max_frame_size;
        (at, DecodeErrorKind::FrameTooLarge { limit })
    }
}

/// What rule the input broke. Part of a [`DecodeError`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The command line is not one of the STOMP commands (they are upper-case and
    /// exact). Holds the start of the line, lossily decoded.
    UnknownCommand {
        /// The first octets of the offending line.
        line: String,
    },
    /// A header line has no colon.
    MissingColon {
        /// The first octets of the offending line.
        line: String,
    },
    /// A header line starts with a colon.
    EmptyHeaderName,
    /// A backslash is followed by an octet that is no escape in this version, or
    /// ends the name or value.
    InvalidEscape {
        /// The (raw) header name the escape is in.
        header: String,
        /// The octet after the backslash, `None` when the backslash was last.
        escape: Option<u8>,
    },
    /// The command line or a header is not UTF-8.
    InvalidUtf8 {
        /// The (lossily decoded) header name, `None` on the command line.
        header: Option<String>,
    },
    /// `content-length` is not a decimal number of octets.
    InvalidContentLength {
        /// The value found.
        value: String,
    },
    /// The octet after a `content-length` body is not NUL.
    MissingNul {
        /// The octet found instead.
        found: u8,
    },
    /// A header line is longer than [`Limits::max_header_line`].
    HeaderLineTooLong {
        /// The limit.
        limit: usize,
    },
    /// The frame has more headers than [`Limits::max_headers`].
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The body (declared or buffered) is longer than [`Limits::max_body`].
    BodyTooLarge {
        /// The limit.
        limit: usize,
        /// The `content-length` that was declared, if any.
        declared: Option<u64>,
    },
    /// The frame is longer than [`Limits::max_frame_size`].
    FrameTooLarge {
        /// The limit.
        limit: usize,
    },
}

/// A decoding failure: what was wrong, and the offset of the offending octet
/// counted from the start of the stream.
///
/// The stream cannot be resynchronised after one; the decoder keeps returning the
/// same error until [`Decoder::reset`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    offset: u64,
    kind: DecodeErrorKind,
}

impl DecodeError {
    /// The offset of the offending octet from the start of the stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What rule was broken.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }

    /// The header the error is in, where one applies.
    pub fn header(&self) -> Option<&str> {
        match &self.kind {
            DecodeErrorKind::InvalidEscape { header, .. } => Some(header),
            DecodeErrorKind::InvalidUtf8 { header } => header.as_deref(),
            DecodeErrorKind::InvalidContentLength { .. } => Some("content-length"),
            _ => None,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeErrorKind::*;
        match &self.kind {
            UnknownCommand { line } => write!(f, "unknown command {line:?}")?,
            MissingColon { line } => write!(f, "header line {line:?} has no colon")?,
            EmptyHeaderName => f.write_str("header line has an empty name")?,
            InvalidEscape {
                header,
                escape: Some(octet),
            } => write!(
                f,
                "invalid escape \"\\{}\" in header {header:?}",
                (*octet as char).escape_default()
            )?,
            InvalidEscape {
                header,
                escape: None,
            } => write!(f, "lone backslash at the end of header {header:?}")?,
            InvalidUtf8 { header: Some(h) } => write!(f, "header {h:?} is not valid UTF-8")?,
            InvalidUtf8 { header: None } => f.write_str("command line is not valid UTF-8")?,
            InvalidContentLength { value } => {
                write!(f, "content-length {value:?} is not a number of octets")?
            }
            MissingNul { found } => write!(
                f,
                "expected NUL after the content-length body, found 0x{found:02x}"
            )?,
            HeaderLineTooLong { limit } => {
                write!(f, "header line longer than the limit of {limit} octets")?
            }
            TooManyHeaders { limit } => write!(f, "more than {limit} headers")?,
            BodyTooLarge {
                limit,
                declared: Some(n),
            } => write!(
                f,
                "content-length {n} exceeds the body limit of {limit} octets"
            )?,
            BodyTooLarge {
                limit,
                declared: None,
            } => write!(f, "body longer than the limit of {limit} octets")?,
            FrameTooLarge { limit } => write!(f, "frame longer than the limit of {limit} octets")?,
        }
        write!(f, " at offset {}", self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// Where the decoder is inside the current frame. Positions are indexes into the
/// caller's buffer, whose front is always the start of the current frame.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Between frames: end-of-lines are heart-beats, anything else starts a frame.
    Idle,
    /// Reading the command line; `scanned` octets hold no LF.
    Command { scanned: usize },
    /// Reading header lines.
    Headers {
        command: Command,
        /// Start of the line being read.
        line: usize,
        /// Octets from `line` on that were already searched for LF.
        scanned: usize,
        escapes: bool,
        content_length: ContentLength,
    },
    /// Waiting for the body.
    Body {
        command: Command,
        start: usize,
        /// Octets of the body already searched for NUL (no content-length).
        scanned: usize,
        content_length: ContentLength,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContentLength {
    /// No `content-length` header yet.
    Absent,
    /// The first `content-length` header's value.
    Known(usize),
}

/// The longest command line: `UNSUBSCRIBE` or `DISCONNECT` and a CR.
const MAX_COMMAND_LINE: usize = "UNSUBSCRIBE\r".len();

/// How much of an offending line goes into an error message.
const SNIPPET: usize = 40;

/// A streaming STOMP frame decoder.
///
/// Feed it a `BytesMut` that grows as input arrives; each call cuts at most one
/// [`Item`] off the front and returns `Ok(None)` when more input is needed. It
/// never re-scans what it has already scanned, and never panics.
///
/// ```
/// use bytes::BytesMut;
/// use stomp_proto::{Decoder, Item, Limits, Version};
///
/// let mut decoder = Decoder::new(Version::V1_2, Limits::default());
/// let mut buf = BytesMut::from(&b"MESSAGE\ndestination:/queue/a\nk:a\\cb\n\nhel"[..]);
/// assert_eq!(decoder.decode(&mut buf).unwrap(), None); // body not complete yet
///
/// buf.extend_from_slice(b"lo\0\n");
/// let Some(Item::Frame(frame)) = decoder.decode(&mut buf).unwrap() else { panic!() };
/// assert_eq!(frame.header("k"), Some("a:b"));
/// assert_eq!(&frame.body[..], b"hello");
/// assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Item::Heartbeat));
/// assert_eq!(decoder.decode(&mut buf).unwrap(), None);
/// ```
#[derive(Debug)]
pub struct Decoder {
    version: Version,
    limits: Limits,
    /// Stream offset of the caller's buffer's first octet.
    consumed: u64,
    state: State,
    /// Header index of the frame being read; copied out exactly sized per frame.
    entries: Vec<Entry>,
    failed: Option<DecodeError>,
}

impl Decoder {
    /// A decoder for `version` with these limits.
    pub fn new(version: Version, limits: Limits) -> Decoder {
        Decoder {
            version,
            limits,
            consumed: 0,
            state: State::Idle,
            entries: Vec::with_capacity(16),
            failed: None,
        }
    }

    /// The version whose escaping rules apply.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Switches escaping rules, as after version negotiation. Takes effect from
    /// the next frame.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The stream offset of the next octet the decoder will cut from the buffer.
    pub fn offset(&self) -> u64 {
        self.consumed
    }

    /// Whether the decoder is between frames (no partial frame consumed or pending).
    /// At the end of a stream, an idle decoder with an empty buffer means the
    /// input was complete.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle) && self.failed.is_none()
    }

    /// Forgets any partial frame and error, and restarts counting offsets at 0,
    /// for a new connection. The caller clears its buffer.
    pub fn reset(&mut self) {
        self.consumed = 0;
        self.state = State::Idle;
        self.entries.clear();
        self.failed = None;
    }

    /// Cuts the next item off the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds no complete item yet; append more input
    /// and call again, with the same buffer (the decoder remembers how far it got).
    /// After an error the stream is unusable and every later call returns the same
    /// error, until [`reset`](Decoder::reset).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.step(buf) {
            Ok(item) => Ok(item),
            Err((at, kind)) => {
                let err = DecodeError {
                    offset: self.consumed + at as u64,
                    kind,
                };
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, (usize, DecodeErrorKind)> {
        loop {
            match self.state {
                State::Idle => match buf.first() {
                    None => return Ok(None),
                    Some(b'\n') => return Ok(Some(self.heartbeat(buf, 1))),
                    Some(b'\r') => match buf.get(1) {
                        None => return Ok(None),
                        Some(b'\n') => return Ok(Some(self.heartbeat(buf, 2))),
                        Some(_) => self.state = State::Command { scanned: 0 },
                    },
                    Some(_) => self.state = State::Command { scanned: 0 },
                },
                State::Command { scanned } => {
                    let window = buf.len().min(MAX_COMMAND_LINE + 1);
                    let Some(lf) = memchr(b'\n', &buf[scanned..window]).map(|i| i + scanned) else {
                        if buf.len() > MAX_COMMAND_LINE {
                            return Err((0, unknown_command(buf)));
                        }
                        self.state = State::Command { scanned: window };
                        return Ok(None);
                    };
                    let end = strip_cr(buf, 0, lf);
                    let Some(command) = Command::from_bytes(&buf[..end]) else {
                        return Err((0, unknown_command(&buf[..end])));
                    };
                    self.entries.clear();
                    self.state = State::Headers {
                        command,
                        line: lf + 1,
                        scanned: lf + 1,
                        escapes: command.escapes_headers(self.version),
                        content_length: ContentLength::Absent,
                    };
                }
                State::Headers { .. } => {
                    if !self.read_headers(buf)? {
                        return Ok(None);
                    }
                }
                State::Body {
                    command,
                    start,
                    scanned,
                    content_length,
                } => {
                    let end = match content_length {
                        ContentLength::Known(len) => {
                            let end = start + len;
                            if buf.len() <= end {
                                return Ok(None);
                            }
                            if buf[end] != 0 {
                                return Err((end, DecodeErrorKind::MissingNul { found: buf[end] }));
                            }
                            end
                        }
                        ContentLength::Absent => {
                            match memchr(0, &buf[scanned..self.body_window(buf.len(), start)]) {
                                Some(i) => scanned + i,
                                None => {
                                    self.check_unterminated_body(buf.len(), start)?;
                                    self.state = State::Body {
                                        command,
                                        start,
                                        scanned: self.body_window(buf.len(), start),
                                        content_length,
                                    };
                                    return Ok(None);
                                }
                            }
                        }
                    };
                    return Ok(Some(Item::Frame(self.cut_frame(buf, command, start, end))));
                }
            }
        }
    }

    fn heartbeat(&mut self, buf: &mut BytesMut, len: usize) -> Item {
        buf.advance(len);
        self.consumed += len as u64;
        Item::Heartbeat
    }

    /// Reads header lines until the blank line (returns true, state is `Body`) or
    /// the end of the buffered input (returns false).
    fn read_headers(&mut self, buf: &mut BytesMut) -> Result<bool, (usize, DecodeErrorKind)> {
        let State::Headers {
            command,
            mut line,
            mut scanned,
            escapes,
            mut content_length,
        } = self.state
        else {
            unreachable!("read_headers is only called in the Headers state")
        };
        let limits = self.limits;
        loop {
            // A line may hold `max_header_line` octets, a CR and the LF.
            let window = buf
                .len()
                .min(line.saturating_add(limits.max_header_line + 2));
            let Some(lf) = memchr(b'\n', &buf[scanned..window]).map(|i| i + scanned) else {
                if buf.len() - line > limits.max_header_line + 1 {
                    return Err(limits.line_too_long(line));
                }
                if buf.len() > limits.max_frame_size {
                    return Err(limits.frame_too_large(limits.max_frame_size));
                }
                self.state = State::Headers {
                    command,
                    line,
                    scanned: window,
                    escapes,
                    content_length,
                };
                return Ok(false);
            };
            let end = strip_cr(buf, line, lf);
            if end - line > limits.max_header_line {
                return Err(limits.line_too_long(line));
            }
            if lf >= limits.max_frame_size {
                return Err(limits.frame_too_large(limits.max_frame_size));
            }
            if end == line {
                let start = lf + 1;
                if let ContentLength::Known(len) = content_length {
                    if start + len >= limits.max_frame_size {
                        return Err(limits.frame_too_large(start));
                    }
                }
                self.state = State::Body {
                    command,
                    start,
                    scanned: start,
                    content_length,
                };
                return Ok(true);
            }
            if self.entries.len() == limits.max_headers {
                return Err((
                    line,
                    DecodeErrorKind::TooManyHeaders {
                        limit: limits.max_headers,
                    },
                ));
            }
            let entry = parse_header(buf, line, end, escapes, self.version)?;
            if content_length == ContentLength::Absent
                && &buf[entry.name.start as usize..entry.name.end as usize] == b"content-length"
            {
                content_length = ContentLength::Known(parse_content_length(
                    &buf[entry.value.start as usize..entry.value.end as usize],
                    line,
                    limits.max_body,
                )?);
            }
            self.entries.push(entry);
            line = lf + 1;
            scanned = line;
        }
    }

    /// How far a NUL may be searched for: one octet past the body limit.
    fn body_window(&self, buffered: usize, start: usize) -> usize {
        buffered.min(start.saturating_add(self.limits.max_body + 1))
    }

    fn check_unterminated_body(
        &self,
        buffered: usize,
        start: usize,
    ) -> Result<(), (usize, DecodeErrorKind)> {
        if buffered - start > self.limits.max_body {
            return Err((
                start + self.limits.max_body,
                DecodeErrorKind::BodyTooLarge {
                    limit: self.limits.max_body,
                    declared: None,
                },
            ));
        }
        if buffered > self.limits.max_frame_size {
            return Err(self.limits.frame_too_large(self.limits.max_frame_size));
        }
        Ok(())
    }

    /// Cuts the complete frame `[0, body_end]` (NUL included) off `buf`.
    fn cut_frame(
        &mut self,
        buf: &mut BytesMut,
        command: Command,
        start: usize,
        body_end: usize,
    ) -> Frame {
        let mut frame = buf.split_to(body_end + 1);
        self.consumed += (body_end + 1) as u64;
        self.state = State::Idle;
        let (headers, body) = if self.entries.is_empty() {
            frame.advance(start);
            (Headers::new(), frame)
        } else {
            let text = frame.split_to(start).freeze();
            (
                Headers::from_parts(text, self.entries.as_slice().to_vec()),
                frame,
            )
        };
        let body = slice_body(body, body_end - start);
        self.entries.clear();
        Frame {
            command,
            headers,
            body,
        }
    }
}

/// Drops the NUL from the body's tail; an empty body shares nothing.
fn slice_body(mut body: BytesMut, len: usize) -> Bytes {
    if len == 0 {
        return Bytes::new();
    }
    body.truncate(len);
    body.freeze()
}

/// The end of the line that ends with the LF at `lf`, without a CR before it.
fn strip_cr(buf: &[u8], line: usize, lf: usize) -> usize {
    if lf > line && buf[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    }
}

fn snippet(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(SNIPPET)];
    String::from_utf8_lossy(bytes).into_owned()
}

fn unknown_command(line: &[u8]) -> DecodeErrorKind {
    let end = memchr(b'\n', line).unwrap_or(line.len());
    DecodeErrorKind::UnknownCommand {
        line: snippet(&line[..end]),
    }
}

/// Parses the header line `buf[line..end]`, unescaping its name and value in place.
fn parse_header(
    buf: &mut [u8],
    line: usize,
    end: usize,
    escapes: bool,
    version: Version,
) -> Result<Entry, (usize, DecodeErrorKind)> {
    let text = &buf[line..end];
    let scan = scan_line(text);
    let Some(colon) = scan.colon else {
        return Err((
            line,
            DecodeErrorKind::MissingColon {
                line: snippet(text),
            },
        ));
    };
    if colon == 0 {
        return Err((line, DecodeErrorKind::EmptyHeaderName));
    }
    if !scan.ascii {
        if let Err(e) = std::str::from_utf8(text) {
            let header = Some(snippet(&text[..colon]));
            return Err((
                line + e.valid_up_to(),
                DecodeErrorKind::InvalidUtf8 { header },
            ));
        }
    }
    let backslash = if escapes { scan.backslash } else { None };
    let colon = line + colon;
    let mut name = Span::new(line, colon);
    let mut value = Span::new(colon + 1, end);
    if let Some(first) = backslash {
        let first = line + first;
        let fail = |buf: &[u8], (at, escape): (usize, Option<u8>)| {
            let header = snippet(&buf[line..colon]);
            (at, DecodeErrorKind::InvalidEscape { header, escape })
        };
        // The first backslash tells where unescaping starts: in the name (then
        // the value is searched as it is unescaped) or only in the value.
        let value_from = if first < colon {
            name.end =
                unescape_in_place(buf, first, colon, version).map_err(|e| fail(buf, e))? as u32;
            colon + 1
        } else {
            first
        };
        value.end =
            unescape_in_place(buf, value_from, end, version).map_err(|e| fail(buf, e))? as u32;
    }
    Ok(Entry { name, value })
}

/// What one pass over a header line found.
pub(crate) struct LineScan {
    pub(crate) colon: Option<usize>,
    pub(crate) backslash: Option<usize>,
    pub(crate) ascii: bool,
}

/// Lines longer than this are scanned with `memchr`, shorter ones a word at a time.
const SHORT_LINE: usize = 128;

/// Finds the first colon and the first backslash of a header line, and whether
/// it is all ASCII, in one pass eight octets at a time (short lines), or with
/// vectorised `memchr` (long ones).
pub(crate) fn scan_line(text: &[u8]) -> LineScan {
    if text.len() > SHORT_LINE {
        return LineScan {
            colon: memchr(b':', text),
            backslash: memchr(b'\\', text),
            ascii: text.is_ascii(),
        };
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The lowest set bit marks the first zero octet of `x` exactly.
    let zeros = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let (mut colon, mut backslash, mut high) = (None, None, 0u64);
    let mut chunks = text.chunks_exact(8);
    for (i, chunk) in chunks.by_ref().enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        high |= word;
        if colon.is_none() {
            let hits = zeros(word ^ (ONES * u64::from(b':')));
            if hits != 0 {
                colon = Some(i * 8 + (hits.trailing_zeros() / 8) as usize);
            }
        }
        if backslash.is_none() {
            let hits = zeros(word ^ (ONES * u64::from(b'\\')));
            if hits != 0 {
                backslash = Some(i * 8 + (hits.trailing_zeros() / 8) as usize);
            }
        }
    }
    let base = text.len() - chunks.remainder().len();
    for (i, &octet) in chunks.remainder().iter().enumerate() {
        high |= u64::from(octet);
        if octet == b':' && colon.is_none() {
            colon = Some(base + i);
        } else if octet == b'\\' && backslash.is_none() {
            backslash = Some(base + i);
        }
    }
    LineScan {
        colon,
        backslash,
        ascii: high & HIGH == 0,
    }
}

/// Unescapes `buf[start..end]` in place; returns the new end. On an invalid escape
/// returns the backslash's position and the octet after it.
///
/// A plain loop: header values are short, and per-escape `memchr` and
/// `copy_within` calls cost more than they save there.
pub(crate) fn unescape_in_place(
    buf: &mut [u8],
    start: usize,
    end: usize,
    version: Version,
) -> Result<usize, (usize, Option<u8>)> {
    let table = crate::escape::unescapes(version);
    let text = &mut buf[..end];
    let mut read = start;
    while read < end && text[read] != b'\\' {
        read += 1;
    }
    let mut write = read;
    while read < end {
        let octet = text[read];
        if octet != b'\\' {
            text[write] = octet;
            write += 1;
            read += 1;
            continue;
        }
        let escape = text.get(read + 1).copied();
        let unescaped = escape.map_or(0, |e| table[usize::from(e)]);
        if unescaped == 0 {
            return Err((read, escape));
        }
        text[write] = unescaped;
        write += 1;
        read += 2;
    }
    Ok(write)
}

/// Parses a `content-length` value: decimal digits only, at most `max_body`.
fn parse_content_length(
    value: &[u8],
    line: usize,
    max_body: usize,
) -> Result<usize, (usize, DecodeErrorKind)> {
    let invalid = || {
        (
            line,
            DecodeErrorKind::InvalidContentLength {
                value: snippet(value),
            },
        )
    };
    if value.is_empty() || value.len() > 20 {
        return Err(invalid());
    }
    let mut n: u64 = 0;
    for &digit in value {
        if !digit.is_ascii_digit() {
            return Err(invalid());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(digit - b'0')))
            .ok_or_else(invalid)?;
    }
    if n > max_body as u64 {
        return Err((
            line,
            DecodeErrorKind::BodyTooLarge {
                limit: max_body,
                declared: Some(n),
            },
        ));
    }
    Ok(n as usize)
}
