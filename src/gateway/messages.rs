//! Cutting a request body into request messages as it arrives, for methods that take a
//! stream of requests: `application/x-ndjson` (one message per line; blank lines skipped)
//! and `application/json` (a top-level array, one message per element, or one object, the
//! only message). A message is handed out as soon as its last byte is in, so the body is
//! never held whole: only the message being read is buffered, and no message may pass the
//! limit. Messages are numbered from 1 (`line 3`, `element 3`) for the errors that name them.
//!
//! It only finds where each message ends (strings and nesting are tracked, nothing is
//! decoded); the binder and the codec judge the message itself.

use bytes::{Bytes, BytesMut};

use crate::error::GatewayError;

/// How the body carries its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    NdJson,
    Json,
}

impl Form {
    /// The form a request's `Content-Type` names; none means JSON. Anything else is 415.
    pub fn of(content_type: Option<&str>) -> Result<Form, GatewayError> {
        let Some(raw) = content_type else {
            return Ok(Form::Json);
        };
        let essence = raw
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-ndjson" | "application/jsonl" | "application/json-seq" => Ok(Form::NdJson),
            "application/json" => Ok(Form::Json),
            _ => Err(GatewayError::unsupported_media_type(raw)),
        }
    }
}

/// Where the scan of a JSON body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Nothing but whitespace yet.
    Start,
    /// Not an array: the whole body is one message.
    Single,
    /// Inside the array, before an element (`first`: right after `[`).
    BeforeElement { first: bool },
    /// Inside an element that started at `buf[0]`.
    Element,
    /// After an element, before `,` or `]`.
    AfterElement,
    /// After the closing `]`: only whitespace may follow.
    Done,
}

/// Cuts one request body into messages.
pub struct Splitter {
    form: Form,
    /// The bytes of the message being read (and, for NDJSON, possibly more lines).
    buf: BytesMut,
    /// How far `buf` has been scanned.
    pos: usize,
    scan: Scan,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Lines (NDJSON) or elements (JSON) seen so far.
    count: usize,
    limit: usize,
}

impl Splitter {
    pub fn new(form: Form, limit: usize) -> Splitter {
        Splitter {
            form,
            buf: BytesMut::new(),
            pos: 0,
            scan: Scan::Start,
            depth: 0,
            in_string: false,
            escaped: false,
            count: 0,
            limit,
        }
    }

    /// What the errors call the current message: `line 3` or `element 3`.
    pub fn name(&self, n: usize) -> String {
        match (self.form, self.scan) {
            (Form::NdJson, _) => format!("line {n}"),
            (Form::Json, Scan::Single | Scan::Start) => "the body".to_string(),
            (Form::Json, _) => format!("element {n}"),
        }
    }

    /// Adds the next piece of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole message (with its number), if one is in.
    pub fn next_message(&mut self) -> Result<Option<(usize, Bytes)>, GatewayError> {
        match self.form {
            Form::NdJson => self.next_line(),
            Form::Json => self.next_element(),
        }
    }

    /// The body ended: its last message, if any is left (a final line without a newline,
    /// or the single object).
    pub fn finish(&mut self) -> Result<Option<(usize, Bytes)>, GatewayError> {
        if let Some(message) = self.next_message()? {
            return Ok(Some(message));
        }
        let rest = std::mem::take(&mut self.buf).freeze();
        let blank = rest.iter().all(u8::is_ascii_whitespace);
        match (self.form, self.scan) {
            (Form::NdJson, _) if blank => Ok(None),
            (Form::NdJson, _) => {
                self.count += 1;
                Ok(Some((self.count, rest)))
            }
            (Form::Json, Scan::Start | Scan::Done) if blank => Ok(None),
            (Form::Json, Scan::Single) => {
                self.count = 1;
                Ok(Some((1, rest)))
            }
            (Form::Json, _) => Err(GatewayError::bad_request("the body ends inside its JSON array")),
        }
    }

    fn next_line(&mut self) -> Result<Option<(usize, Bytes)>, GatewayError> {
        loop {
            let Some(end) = self.buf[self.pos..].iter().position(|&b| b == b'\n') else {
                self.pos = self.buf.len();
                return self.check_size(self.buf.len()).map(|()| None);
            };
            let line = self.buf.split_to(self.pos + end + 1).freeze();
            self.pos = 0;
            self.count += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.check_size(line.len())?;
            return Ok(Some((self.count, line)));
        }
    }

    fn next_element(&mut self) -> Result<Option<(usize, Bytes)>, GatewayError> {
        while self.pos < self.buf.len() {
            let byte = self.buf[self.pos];
            match self.scan {
                Scan::Start | Scan::BeforeElement { .. } | Scan::AfterElement | Scan::Done
                    if byte.is_ascii_whitespace() =>
                {
                    // Whitespace between messages is dropped, so it is never buffered.
                    let _ = self.buf.split_to(1);
                    continue;
                }
                Scan::Start if byte == b'[' => {
                    let _ = self.buf.split_to(1);
                    self.scan = Scan::BeforeElement { first: true };
                    continue;
                }
                Scan::Start => self.scan = Scan::Single,
                Scan::Single => {
                    self.pos = self.buf.len();
                    return self.check_size(self.buf.len()).map(|()| None);
                }
                Scan::BeforeElement { first: true } if byte == b']' => {
                    let _ = self.buf.split_to(1);
                    self.scan = Scan::Done;
                    continue;
                }
                Scan::BeforeElement { .. } => {
                    self.count += 1;
                    self.scan = Scan::Element;
                    continue;
                }
                Scan::Element => {
                    if let Some(message) = self.scan_element(byte)? {
                        return Ok(Some(message));
                    }
                }
                Scan::AfterElement if byte == b',' || byte == b']' => {
                    let _ = self.buf.split_to(1);
                    self.scan = match byte {
                        b',' => Scan::BeforeElement { first: false },
                        _ => Scan::Done,
                    };
                    continue;
                }
                Scan::AfterElement => {
                    return Err(GatewayError::bad_request(format!(
                        "element {}: expected `,` or `]` after it",
                        self.count
                    )));
                }
                Scan::Done => {
                    return Err(GatewayError::bad_request("the body goes on after its JSON array"));
                }
            }
            self.pos += 1;
        }
        if self.scan == Scan::Element {
            self.check_size(self.buf.len())?;
        }
        Ok(None)
    }

    /// One byte of an element: the element when it ends with this byte (a closing `}`,
    /// `]` or `"` at the array's level) or just before it (`,`, `]` or whitespace after a
    /// number or literal).
    fn scan_element(&mut self, byte: u8) -> Result<Option<(usize, Bytes)>, GatewayError> {
        let end = if self.in_string {
            match byte {
                _ if self.escaped => self.escaped = false,
                b'\\' => self.escaped = true,
                b'"' => self.in_string = false,
                _ => {}
            }
            (!self.in_string && self.depth == 0).then_some(self.pos + 1)
        } else {
            match byte {
                b'"' => {
                    self.in_string = true;
                    None
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    None
                }
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    (self.depth == 0).then_some(self.pos + 1)
                }
                b',' | b']' if self.depth == 0 => Some(self.pos),
                _ if byte.is_ascii_whitespace() && self.depth == 0 => Some(self.pos),
                _ => None,
            }
        };
        let Some(end) = end else {
            return Ok(None);
        };
        let element = self.buf.split_to(end).freeze();
        self.pos = 0;
        self.scan = Scan::AfterElement;
        self.check_size(element.len())?;
        if element.is_empty() {
            return Err(GatewayError::bad_request(format!(
                "element {} is empty",
                self.count
            )));
        }
        Ok(Some((self.count, element)))
    }

    fn check_size(&self, len: usize) -> Result<(), GatewayError> {
        if len > self.limit {
            let which = self.name(self.count + usize::from(self.form == Form::NdJson));
            return Err(GatewayError::body_too_large(self.limit).in_message(&which));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "messages_tests.rs"]
mod tests;
