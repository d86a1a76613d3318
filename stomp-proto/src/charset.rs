//! A body as text, in the charset its `content-type` names.

use std::borrow::Cow;

/// `body` as text in the charset `content_type` names (`text/plain;
/// charset=iso-8859-1`): UTF-8 when it names none (STOMP's default) or
/// `utf-8`; `us-ascii` and `iso-8859-1` (Latin-1) as well. `None` when the
/// body is not valid in that charset, or the charset is another one (decode
/// [`Frame::body`](crate::Frame::body) yourself then). Borrows the body
/// unless Latin-1 text holds octets past ASCII.
///
/// ```
/// use stomp_proto::body_text;
///
/// assert_eq!(body_text(None, b"caf\xc3\xa9").as_deref(), Some("café"));
/// let latin1 = Some("text/plain; charset=ISO-8859-1");
/// assert_eq!(body_text(latin1, b"caf\xe9").as_deref(), Some("café"));
/// assert_eq!(body_text(Some("text/plain;charset=us-ascii"), b"caf\xe9"), None);
/// assert_eq!(body_text(Some("text/plain;charset=koi8-r"), b"abc"), None);
/// ```
pub fn body_text<'a>(content_type: Option<&str>, body: &'a [u8]) -> Option<Cow<'a, str>> {
    match Charset::of(content_type) {
        Charset::Utf8 => std::str::from_utf8(body).ok().map(Cow::Borrowed),
        Charset::Ascii if body.is_ascii() => std::str::from_utf8(body).ok().map(Cow::Borrowed),
        Charset::Ascii => None,
        Charset::Latin1 if body.is_ascii() => std::str::from_utf8(body).ok().map(Cow::Borrowed),
        Charset::Latin1 => Some(Cow::Owned(body.iter().map(|&b| char::from(b)).collect())),
        Charset::Other => None,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Charset {
    Utf8,
    Ascii,
    Latin1,
    Other,
}

impl Charset {
    /// The `charset` parameter of a `content-type`, as a MIME type names
    /// it: case-insensitive, maybe quoted.
    fn of(content_type: Option<&str>) -> Charset {
        let Some(content_type) = content_type else {
            return Charset::Utf8;
        };
        let charset = content_type.split(';').skip(1).find_map(|parameter| {
            let (name, value) = parameter.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"'))
        });
        let Some(charset) = charset else {
            return Charset::Utf8;
        };
        let is = |names: &[&str]| names.iter().any(|n| charset.eq_ignore_ascii_case(n));
        if is(&["utf-8", "utf8"]) {
            Charset::Utf8
        } else if is(&["us-ascii", "ascii", "ansi_x3.4-1968"]) {
            Charset::Ascii
        } else if is(&["iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1"]) {
            Charset::Latin1
        } else {
            Charset::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets_are_read_as_mime_writes_them() {
        assert_eq!(Charset::of(None), Charset::Utf8);
        assert_eq!(Charset::of(Some("application/json")), Charset::Utf8);
        assert_eq!(Charset::of(Some("text/plain;charset=UTF-8")), Charset::Utf8);
        assert_eq!(
            Charset::of(Some("text/plain; format=flowed; Charset=\"us-ascii\"")),
            Charset::Ascii
        );
        assert_eq!(
            Charset::of(Some("text/plain;charset=latin1")),
            Charset::Latin1
        );
        assert_eq!(
            Charset::of(Some("text/plain;charset=utf-16")),
            Charset::Other
        );
    }

    #[test]
    fn latin1_maps_every_octet_and_borrows_ascii() {
        let all: Vec<u8> = (0..=255).collect();
        let text = body_text(Some("text/plain;charset=iso-8859-1"), &all).unwrap();
        assert_eq!(text.chars().count(), 256);
        assert!(text.chars().zip(0u32..).all(|(c, n)| c as u32 == n));
        let ascii = body_text(Some("text/plain;charset=iso-8859-1"), b"plain").unwrap();
        assert!(matches!(ascii, Cow::Borrowed("plain")));
        assert_eq!(body_text(None, b"\xff"), None, "not UTF-8");
    }
}
