//! Frames: [`Command`], [`Headers`], [`Frame`] and [`FrameBuilder`].

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::version::Version;

/// A STOMP command: the first line of every frame.
///
/// Commands are upper-case and matched exactly; anything else is a decode error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Client: open a session.
    Connect,
    /// Client (1.1+): the same as `CONNECT`, a name that HTTP servers will not accept.
    Stomp,
    /// Server: the session is open.
    Connected,
    /// Client: send a message to a destination.
    Send,
    /// Client: subscribe to a destination.
    Subscribe,
    /// Client: end a subscription.
    Unsubscribe,
    /// Client: acknowledge a message.
    Ack,
    /// Client (1.1+): reject a message.
    Nack,
    /// Client: start a transaction.
    Begin,
    /// Client: commit a transaction.
    Commit,
    /// Client: roll back a transaction.
    Abort,
    /// Client: end the session gracefully.
    Disconnect,
    /// Server: a message for a subscription.
    Message,
    /// Server: the answer to a frame that asked for a `receipt`.
    Receipt,
    /// Server: something went wrong; the server closes the connection after it.
    Error,
}

impl Command {
    /// Every command, client commands first.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The command as it is written on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Connected => "CONNECTED",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Parses a command from its exact wire spelling (no line end, no white space).
    ///
    /// ```
    /// use stomp_proto::Command;
    /// assert_eq!(Command::from_bytes(b"SEND"), Some(Command::Send));
    /// assert_eq!(Command::from_bytes(b"send"), None);
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Option<Command> {
        Some(match bytes {
            b"SEND" => Command::Send,
            b"MESSAGE" => Command::Message,
            b"ACK" => Command::Ack,
            b"NACK" => Command::Nack,
            b"RECEIPT" => Command::Receipt,
            b"SUBSCRIBE" => Command::Subscribe,
            b"UNSUBSCRIBE" => Command::Unsubscribe,
            b"BEGIN" => Command::Begin,
            b"COMMIT" => Command::Commit,
            b"ABORT" => Command::Abort,
            b"CONNECT" => Command::Connect,
            b"STOMP" => Command::Stomp,
            b"CONNECTED" => Command::Connected,
            b"DISCONNECT" => Command::Disconnect,
            b"ERROR" => Command::Error,
            _ => return None,
        })
    }

    /// Whether a client sends this command (as opposed to a server).
    pub const fn is_client_command(self) -> bool {
        !matches!(
            self,
            Command::Connected | Command::Message | Command::Receipt | Command::Error
        )
    }

    /// Whether this command's header names and values are escaped in `version`.
    ///
    /// Escaping applies from 1.1 on, to every frame but `CONNECT` (and its alias
    /// `STOMP`) and `CONNECTED`, which stay unescaped for 1.0 compatibility.
    pub const fn escapes_headers(self, version: Version) -> bool {
        version.has_escapes()
            && !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A range of octets inside a [`Headers`] text buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        debug_assert!(start <= end && end <= u32::MAX as usize);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One header: where its (unescaped) name and value are in the text buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// The headers of a frame, in wire order, repeats kept.
///
/// Names and values are stored unescaped, as UTF-8, in one shared buffer; for a
/// decoded frame that buffer is a slice of the receive buffer, so reading headers
/// copies nothing. [`get`](Headers::get) returns the first occurrence of a name, as
/// the specification says; [`iter`](Headers::iter) shows every header, repeats
/// included.
///
/// ```
/// use stomp_proto::Headers;
///
/// let mut headers: Headers = [("destination", "/queue/a"), ("x-tag", "1"), ("x-tag", "2")]
///     .into_iter()
///     .collect();
/// assert_eq!(headers.get("x-tag"), Some("1"));
/// assert_eq!(headers.get_all("x-tag").collect::<Vec<_>>(), ["1", "2"]);
/// headers.set("destination", "/queue/b");
/// assert_eq!(headers.get("destination"), Some("/queue/b"));
/// assert_eq!(headers.len(), 3);
/// ```
#[derive(Clone, Default)]
pub struct Headers {
    /// Holds every name and value; always valid UTF-8 at each entry's spans.
    text: Bytes,
    entries: Vec<Entry>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Builds headers from a text buffer and spans the decoder checked for UTF-8.
    pub(crate) fn from_parts(text: Bytes, entries: Vec<Entry>) -> Headers {
        Headers { text, entries }
    }

    /// The number of headers, repeats included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn str_at(&self, span: Span) -> &str {
        // Every constructor guarantees UTF-8 at entry spans (the decoder validates,
        // the writers take `&str`), so this never falls back to "".
        std::str::from_utf8(&self.text[span.range()]).unwrap_or_default()
    }

    fn name_is(&self, entry: &Entry, name: &str) -> bool {
        &self.text[entry.name.range()] == name.as_bytes()
    }

    /// The value of the first header called `name` (names are case-sensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| self.name_is(e, name))
            .map(|e| self.str_at(e.value))
    }

    /// The values of every header called `name`, in wire order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |e| self.name_is(e, name))
            .map(|e| self.str_at(e.value))
    }

    /// Whether a header called `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|e| self.name_is(e, name))
    }

    /// Every header as `(name, value)`, in wire order, repeats included.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            headers: self,
            inner: self.entries.iter(),
        }
    }

    /// Every header as raw `(name, value)` octets, without UTF-8 checks (for the
    /// encoder, which needs octets anyway).
    pub(crate) fn raw_iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.entries
            .iter()
            .map(|e| (&self.text[e.name.range()], &self.text[e.value.range()]))
    }

    /// An upper bound of the octets all names and values take, unescaped.
    pub(crate) fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Appends a header (after any with the same name).
    pub fn push(&mut self, name: &str, value: &str) {
        let mut writer = self.take_writer();
        writer.push(name, value);
        *self = writer.finish();
    }

    /// Sets the first header called `name` to `value`, or appends it when absent.
    /// Later repeats of `name` are left as they are.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.entries.iter().position(|e| self.name_is(e, name)) {
            Some(index) => {
                let mut writer = self.take_writer();
                writer.text.extend_from_slice(value.as_bytes());
                let end = writer.text.len();
                writer.entries[index].value = Span::new(end - value.len(), end);
                *self = writer.finish();
            }
            None => self.push(name, value),
        }
    }

    /// Removes every header called `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.entries.len();
        let text = &self.text;
        self.entries
            .retain(|e| &text[e.name.range()] != name.as_bytes());
        before - self.entries.len()
    }

    /// Turns these headers back into a writer, reusing the buffer when it is not
    /// shared and copying it otherwise.
    fn take_writer(&mut self) -> HeaderWriter {
        let text = std::mem::take(&mut self.text);
        let text = match text.try_into_mut() {
            Ok(text) => text,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        HeaderWriter {
            text,
            entries: std::mem::take(&mut self.entries),
        }
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Headers {
        let mut writer = HeaderWriter::default();
        for (name, value) in iter {
            writer.push(name.as_ref(), value.as_ref());
        }
        writer.finish()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// An iterator over `(name, value)` pairs of [`Headers`], in wire order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    headers: &'a Headers,
    inner: std::slice::Iter<'a, Entry>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let entry = self.inner.next()?;
        Some((
            self.headers.str_at(entry.name),
            self.headers.str_at(entry.value),
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Accumulates headers in one buffer; `finish` freezes it.
#[derive(Default)]
struct HeaderWriter {
    text: BytesMut,
    entries: Vec<Entry>,
}

impl HeaderWriter {
    fn push(&mut self, name: &str, value: &str) {
        let start = self.text.len();
        self.text.extend_from_slice(name.as_bytes());
        self.text.extend_from_slice(value.as_bytes());
        let middle = start + name.len();
        self.entries.push(Entry {
            name: Span::new(start, middle),
            value: Span::new(middle, self.text.len()),
        });
    }

    fn finish(self) -> Headers {
        Headers {
            text: self.text.freeze(),
            entries: self.entries,
        }
    }
}

/// A STOMP frame: a command, headers and a body.
///
/// Cloning is cheap: the body and the header text are reference-counted slices.
/// A decoded frame shares its bytes with the decoder's receive buffer, so the
/// buffer's memory is reused only once the frames cut from it are dropped.
///
/// ```
/// use stomp_proto::{Command, Frame};
///
/// let frame = Frame::builder(Command::Send)
///     .header("destination", "/queue/orders")
///     .header("content-type", "text/plain")
///     .body("hello")
///     .build();
/// assert_eq!(frame.command, Command::Send);
/// assert_eq!(frame.header("destination"), Some("/queue/orders"));
/// assert_eq!(&frame.body[..], b"hello");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The command line.
    pub command: Command,
    /// The headers, unescaped, in wire order.
    pub headers: Headers,
    /// The body: opaque octets (see the `content-type` header).
    pub body: Bytes,
}

impl Frame {
    /// A frame with no headers and an empty body.
    pub fn new(command: Command) -> Frame {
        Frame {
            command,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Starts building a frame.
    pub fn builder(command: Command) -> FrameBuilder {
        FrameBuilder {
            command,
            headers: HeaderWriter::default(),
            body: Bytes::new(),
        }
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The frame as one line for logs: the command, the headers (a
    /// `passcode` masked, control characters escaped) and the body's length.
    ///
    /// ```
    /// use stomp_proto::{Command, Frame};
    ///
    /// let frame = Frame::builder(Command::Connect)
    ///     .header("login", "guest")
    ///     .header("passcode", "secret")
    ///     .body("")
    ///     .build();
    /// assert_eq!(frame.summary().to_string(), "CONNECT login:guest passcode:*** (0 bytes)");
    /// ```
    pub fn summary(&self) -> Summary<'_> {
        Summary(self)
    }
}

/// A frame as one log line; see [`Frame::summary`].
#[derive(Clone, Copy, Debug)]
pub struct Summary<'a>(&'a Frame);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = self.0;
        f.write_str(frame.command.as_str())?;
        for (name, value) in frame.headers.iter() {
            let value = if name == "passcode" { "***" } else { value };
            write!(f, " {}:{}", name.escape_debug(), value.escape_debug())?;
        }
        write!(f, " ({} bytes)", frame.body.len())
    }
}

/// Builds a [`Frame`], keeping every header in one buffer.
///
/// ```
/// use stomp_proto::{Command, Frame};
///
/// let frame = Frame::builder(Command::Subscribe)
///     .header("id", "0")
///     .header("destination", "/topic/prices")
///     .header("ack", "client-individual")
///     .build();
/// assert_eq!(frame.headers.len(), 3);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct FrameBuilder {
    command: Command,
    headers: HeaderWriter,
    body: Bytes,
}

impl FrameBuilder {
    /// Appends a header.
    pub fn header(mut self, name: &str, value: &str) -> FrameBuilder {
        self.headers.push(name, value);
        self
    }

    /// Appends every `(name, value)` pair.
    pub fn headers<N: AsRef<str>, V: AsRef<str>>(
        mut self,
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> FrameBuilder {
        for (name, value) in headers {
            self.headers.push(name.as_ref(), value.as_ref());
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> FrameBuilder {
        self.body = body.into();
        self
    }

    /// Finishes the frame.
    pub fn build(self) -> Frame {
        Frame {
            command: self.command,
            headers: self.headers.finish(),
            body: self.body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips_through_its_spelling() {
        for command in Command::ALL {
            assert_eq!(
                Command::from_bytes(command.as_str().as_bytes()),
                Some(command)
            );
        }
        for bad in [&b"send"[..], b"SEND ", b" SEND", b"", b"SENDX", b"Send"] {
            assert_eq!(Command::from_bytes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn connect_and_connected_are_never_escaped() {
        for v in Version::ALL {
            assert!(!Command::Connect.escapes_headers(v));
            assert!(!Command::Stomp.escapes_headers(v));
            assert!(!Command::Connected.escapes_headers(v));
            assert_eq!(Command::Send.escapes_headers(v), v != Version::V1_0);
        }
    }

    #[test]
    fn repeated_headers_keep_order_and_first_wins() {
        let headers: Headers = [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect();
        assert_eq!(headers.get("a"), Some("1"));
        assert_eq!(headers.get("A"), None);
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            [("a", "1"), ("b", "2"), ("a", "3")]
        );
    }

    #[test]
    fn set_replaces_only_the_first_and_remove_drops_all() {
        let mut headers: Headers = [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect();
        headers.set("a", "one");
        headers.set("c", "new");
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            [("a", "one"), ("b", "2"), ("a", "3"), ("c", "new")]
        );
        assert_eq!(headers.remove("a"), 2);
        assert_eq!(headers.remove("zzz"), 0);
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            [("b", "2"), ("c", "new")]
        );
    }

    #[test]
    fn push_on_shared_headers_leaves_the_clone_alone() {
        let original: Headers = [("a", "1")].into_iter().collect();
        let mut copy = original.clone();
        copy.push("b", "2");
        assert_eq!(original.len(), 1);
        assert_eq!(copy.get("b"), Some("2"));
        assert_eq!(copy.get("a"), Some("1"));
    }

    #[test]
    fn empty_values_and_odd_text_are_kept_verbatim() {
        let headers: Headers = [("e", ""), (" sp ", " v: \n x ")].into_iter().collect();
        assert_eq!(headers.get("e"), Some(""));
        assert_eq!(headers.get(" sp "), Some(" v: \n x "));
        assert!(headers.contains("e"));
    }

    #[test]
    fn headers_compare_by_content() {
        let a: Headers = [("x", "1")].into_iter().collect();
        let mut b = Headers::new();
        b.push("x", "1");
        assert_eq!(a, b);
        b.push("y", "2");
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), r#"[("x", "1")]"#);
    }
}
