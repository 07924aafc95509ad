//! An incremental Server-Sent Events parser (the client side of the WHATWG event-stream
//! format). Bytes are fed in whatever chunks the network delivers; a line is only decoded
//! once it is complete, so a multi-byte UTF-8 character split across chunks is never torn.
//!
//! Unlike a browser, a message is dispatched even when it has no `data:` line: the source
//! sometimes sends such messages and the harvest must count them as malformed, not lose them.

/// One message: the fields the harvest uses, and the raw text for inspection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseMessage {
    pub id: Option<String>,
    pub event: Option<String>,
    /// `data:` lines joined with `\n`; `None` when the message had none.
    pub data: Option<String>,
    /// Every non-comment line of the message, joined with `\n`.
    pub raw: String,
}

#[derive(Default)]
pub struct SseParser {
    /// The unterminated tail of the previous chunk.
    partial: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` opening the next one belongs to it.
    after_cr: bool,
    /// Still at the very start of the stream, where a byte-order mark may stand.
    at_start: bool,
    current: SseMessage,
    /// The current message has at least one field line.
    has_fields: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseParser {
    pub fn new() -> Self {
        SseParser {
            at_start: true,
            ..Default::default()
        }
    }

    /// Feeds the next chunk; `out` gets every message it completes.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut impl FnMut(SseMessage)) {
        if chunk.is_empty() {
            return;
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        if self.at_start {
            // The BOM may itself be split across the first chunks.
            let seen = [self.partial.as_slice(), chunk].concat();
            if seen.len() < BOM.len() && BOM.starts_with(&seen) {
                self.partial = seen;
                return;
            }
            self.at_start = false;
            if seen.starts_with(BOM) {
                let skip = BOM.len() - self.partial.len();
                self.partial.clear();
                chunk = &chunk[skip..];
            }
        }
        let mut start = 0;
        while let Some(off) = memchr::memchr2(b'\n', b'\r', &chunk[start..]) {
            let end = start + off;
            if self.partial.is_empty() {
                self.line(&chunk[start..end], out);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&chunk[start..end]);
                self.line(&line, out);
            }
            start = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(start) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.partial.extend_from_slice(&chunk[start..]);
    }

    /// End of input. On a network stream an unfinished message is discarded (the
    /// connection dropped in the middle of it); a capture file may end without the final
    /// blank line, so `finish` dispatches what it has.
    pub fn finish(&mut self, out: &mut impl FnMut(SseMessage)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, out);
        }
        self.dispatch(out);
    }

    fn line(&mut self, line: &[u8], out: &mut impl FnMut(SseMessage)) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        // Valid UTF-8 is the rule; only a broken line pays for the lossy conversion.
        let text = match std::str::from_utf8(line) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(line),
        };
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&*text, ""),
        };
        match field {
            "data" => match &mut self.current.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.current.data = Some(value.to_owned()),
            },
            "event" => self.current.event = Some(value.to_owned()),
            // The standard ignores ids containing NUL.
            "id" if !value.contains('\0') => self.current.id = Some(value.to_owned()),
            // `retry` and unknown fields carry nothing for the harvest.
            _ => {}
        }
        if self.has_fields {
            self.current.raw.push('\n');
        }
        self.current.raw.push_str(&text);
        self.has_fields = true;
    }

    fn dispatch(&mut self, out: &mut impl FnMut(SseMessage)) {
        if std::mem::take(&mut self.has_fields) {
            out(std::mem::take(&mut self.current));
        }
    }
}

/// Parses a whole capture (a file of messages), the final message possibly unterminated.
pub fn parse_all(bytes: &[u8]) -> Vec<SseMessage> {
    let mut parser = SseParser::new();
    let mut messages = Vec::new();
    parser.feed(bytes, &mut |m| messages.push(m));
    parser.finish(&mut |m| messages.push(m));
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_chunks(chunks: &[&[u8]]) -> Vec<SseMessage> {
        let mut p = SseParser::new();
        let mut got = Vec::new();
        for c in chunks {
            p.feed(c, &mut |m| got.push(m));
        }
        got
    }

    #[test]
    fn fields_with_and_without_space_crlf_comments_retry() {
        let got = feed_chunks(&[
            b": hello\r\nretry: 3000\r\nid:1\r\nevent: stream-started\r\ndata:{\"a\":\r\ndata: 1}\r\n\r\n",
        ]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id.as_deref(), Some("1"));
        assert_eq!(got[0].event.as_deref(), Some("stream-started"));
        assert_eq!(got[0].data.as_deref(), Some("{\"a\":\n1}"));
        assert_eq!(
            got[0].raw,
            "retry: 3000\nid:1\nevent: stream-started\ndata:{\"a\":\ndata: 1}"
        );
    }

    #[test]
    fn cr_only_line_ends_and_cr_lf_split_across_chunks() {
        let got = feed_chunks(&[b"event:a\rdata:x\r", b"", b"\n\r", b"\nevent:b\ndata:y\n\n"]);
        let events: Vec<_> = got.iter().map(|m| m.event.clone().unwrap()).collect();
        assert_eq!(events, ["a", "b"]);
        assert_eq!(got[0].data.as_deref(), Some("x"));
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let text = "data:{\"t\":\"Hamián\"}\n\n".as_bytes();
        let cut = text.iter().position(|&b| b == 0xC3).unwrap() + 1;
        let got = feed_chunks(&[&text[..cut], &text[cut..]]);
        assert_eq!(got[0].data.as_deref(), Some("{\"t\":\"Hamián\"}"));
    }

    #[test]
    fn message_without_data_is_dispatched_comment_only_is_not() {
        let got = feed_chunks(&[b":keepalive\n\nid:1\nevent:stream-started\n\n"]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, None);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let got = feed_chunks(&[b"data:a\xFFb\n\ndata:ok\n\n"]);
        assert_eq!(got[0].data.as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(got[1].data.as_deref(), Some("ok"));
    }

    #[test]
    fn bom_is_skipped_even_when_split() {
        let got = feed_chunks(&[b"\xEF", b"\xBB\xBFdata:1\n\n"]);
        assert_eq!(got[0].raw, "data:1");
    }

    #[test]
    fn line_without_colon_and_unterminated_tail() {
        let mut p = SseParser::new();
        let mut got = Vec::new();
        p.feed(b"data\n\ndata:last", &mut |m| got.push(m));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data.as_deref(), Some(""));
        p.finish(&mut |m| got.push(m));
        assert_eq!(got[1].data.as_deref(), Some("last"));
    }
}
