//! The JSON-lines form of a STOMP stream, shared by `decode`, `encode` and (later)
//! `subscribe --json`: one compact object per item, in stream order.
//!
//! - a frame: `{"command":"SEND","headers":[["destination","/queue/a"]],"body":"hi"}`,
//!   headers unescaped and in wire order with repeats kept; `body` when the body is
//!   UTF-8, else `body_base64` (standard alphabet, padded);
//! - a heart-beat (a bare end-of-line between frames): `{"heartbeat":true}`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use stomp_proto::{Command, Frame, Item};

#[derive(Serialize)]
struct FrameOut<'a> {
    command: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

#[derive(Serialize)]
struct HeartbeatOut {
    heartbeat: bool,
}

/// Writes `item` as one JSON line.
pub fn write_item(out: &mut impl std::io::Write, item: &Item) -> std::io::Result<()> {
    match item {
        Item::Heartbeat => serde_json::to_writer(&mut *out, &HeartbeatOut { heartbeat: true })?,
        Item::Frame(frame) => {
            let text = std::str::from_utf8(&frame.body).ok();
            let value = FrameOut {
                command: frame.command.as_str(),
                headers: frame.headers.iter().collect(),
                body: text,
                body_base64: text.is_none().then(|| BASE64.encode(&frame.body)),
            };
            serde_json::to_writer(&mut *out, &value)?;
        }
    }
    out.write_all(b"\n")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemIn {
    command: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    body: Option<String>,
    body_base64: Option<String>,
    heartbeat: Option<bool>,
}

/// Parses one JSON line into an item; the error says what is wrong with it.
pub fn parse_item(line: &str) -> Result<Item, String> {
    let item: ItemIn = serde_json::from_str(line).map_err(|e| e.to_string())?;
    if item.heartbeat == Some(true) {
        if item.command.is_some()
            || !item.headers.is_empty()
            || item.body.is_some()
            || item.body_base64.is_some()
        {
            return Err("a heartbeat object has no other fields".into());
        }
        return Ok(Item::Heartbeat);
    }
    let name = item
        .command
        .ok_or("missing \"command\" (or \"heartbeat\":true)")?;
    let command =
        Command::from_bytes(name.as_bytes()).ok_or_else(|| format!("unknown command {name:?}"))?;
    let body = match (item.body, item.body_base64) {
        (Some(_), Some(_)) => return Err("give \"body\" or \"body_base64\", not both".into()),
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => BASE64
            .decode(b64)
            .map_err(|e| format!("body_base64: {e}"))?,
        (None, None) => Vec::new(),
    };
    Ok(Item::Frame(
        Frame::builder(command)
            .headers(item.headers)
            .body(body)
            .build(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(item: &Item) -> String {
        let mut out = Vec::new();
        write_item(&mut out, item).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn frames_print_in_the_documented_shape() {
        let frame = Frame::builder(Command::Send)
            .header("destination", "/queue/a")
            .body("hi")
            .build();
        assert_eq!(
            line(&Item::Frame(frame)),
            "{\"command\":\"SEND\",\"headers\":[[\"destination\",\"/queue/a\"]],\"body\":\"hi\"}\n"
        );
        assert_eq!(line(&Item::Heartbeat), "{\"heartbeat\":true}\n");
        let binary = Frame::builder(Command::Message)
            .body(&b"\xff\0"[..])
            .build();
        assert_eq!(
            line(&Item::Frame(binary)),
            "{\"command\":\"MESSAGE\",\"headers\":[],\"body_base64\":\"/wA=\"}\n"
        );
    }

    #[test]
    fn parse_is_the_inverse_of_write() {
        let frame = Frame::builder(Command::Message)
            .header("a", "x\ny:z")
            .header("a", "2")
            .body(&b"\x00\x01\xfe"[..])
            .build();
        let item = Item::Frame(frame);
        assert_eq!(parse_item(line(&item).trim_end()), Ok(item));
        assert_eq!(parse_item("{\"heartbeat\":true}"), Ok(Item::Heartbeat));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert!(parse_item("{\"command\":\"send\"}")
            .unwrap_err()
            .contains("unknown command"));
        assert!(parse_item("{}")
            .unwrap_err()
            .contains("missing \"command\""));
        assert!(
            parse_item("{\"command\":\"SEND\",\"body\":\"a\",\"body_base64\":\"YQ==\"}")
                .unwrap_err()
                .contains("not both")
        );
        assert!(parse_item("{\"command\":\"SEND\",\"body_base64\":\"!!\"}")
            .unwrap_err()
            .contains("body_base64"));
        assert!(parse_item("{\"command\":\"SEND\",\"extra\":1}")
            .unwrap_err()
            .contains("unknown field"));
        assert!(parse_item("[").is_err());
    }
}
