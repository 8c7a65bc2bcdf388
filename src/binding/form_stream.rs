//! A `multipart/form-data` body read as it arrives (`multipart.rs` reads one held whole):
//! text parts come out whole, file parts in pieces of a set size, so that a form to a
//! client-streaming method is sent upstream chunk by chunk and never held whole.

use bytes::BytesMut;

use super::multipart::{Part, bad_form, find, part_head};
use crate::error::GatewayError;

/// What the reader has next.
#[derive(Debug, PartialEq, Eq)]
pub enum FormEvent {
    /// A whole text part.
    Text(Part),
    /// The next piece of a file part: its head, and data of up to the piece size. A file
    /// comes as at least one piece (an empty file as one empty piece).
    File(Part),
    /// The closing boundary.
    End,
}

enum State {
    /// Before the first delimiter.
    Preamble,
    /// Right after a delimiter: `--` ends the form, padding and CRLF start a part.
    Delimited,
    /// In a part's headers.
    Head,
    /// In a part's data; for a file, whether a piece of it came out yet.
    Data(Part, bool),
    Done,
}

/// Longest part head read.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// An incremental form reader: `push` the body's bytes, take events with `next_event`.
pub struct FormReader {
    buf: BytesMut,
    delimiter: Vec<u8>,
    state: State,
    piece_bytes: usize,
    text_limit: usize,
}

impl FormReader {
    /// A reader of the form cut at `boundary`, with file pieces of `piece_bytes` and text
    /// parts of at most `text_limit` bytes (413 past it).
    pub fn new(boundary: &str, piece_bytes: usize, text_limit: usize) -> FormReader {
        let mut buf = BytesMut::new();
        // The first delimiter may open the body, with no CRLF before it.
        buf.extend_from_slice(b"\r\n");
        FormReader {
            buf,
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            state: State::Preamble,
            piece_bytes: piece_bytes.max(1),
            text_limit,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next event, or `None` until more of the body is pushed.
    pub fn next_event(&mut self) -> Result<Option<FormEvent>, GatewayError> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Ok(None),
                State::Preamble => match find(&self.buf, &self.delimiter) {
                    Some(at) => {
                        let _ = self.buf.split_to(at + self.delimiter.len());
                        self.state = State::Delimited;
                    }
                    None => {
                        // Keep only what may still start a delimiter.
                        let keep = self.delimiter.len() - 1;
                        if self.buf.len() > keep {
                            let _ = self.buf.split_to(self.buf.len() - keep);
                        }
                        self.state = State::Preamble;
                        return Ok(None);
                    }
                },
                State::Delimited => {
                    if self.buf.len() < 2 {
                        self.state = State::Delimited;
                        return Ok(None);
                    }
                    if self.buf.starts_with(b"--") {
                        self.buf.clear();
                        return Ok(Some(FormEvent::End));
                    }
                    match find(&self.buf, b"\r\n") {
                        Some(at) => {
                            let _ = self.buf.split_to(at + 2);
                            self.state = State::Head;
                        }
                        None if self.buf.len() > MAX_HEAD_BYTES => {
                            return Err(bad_form("a delimiter line too long"));
                        }
                        None => {
                            self.state = State::Delimited;
                            return Ok(None);
                        }
                    }
                }
                State::Head => match find(&self.buf, b"\r\n\r\n") {
                    Some(at) => {
                        let head = self.buf.split_to(at + 4);
                        let part = part_head(&head[..at])?;
                        self.state = State::Data(part, false);
                    }
                    None if self.buf.len() > MAX_HEAD_BYTES => return Err(bad_form("part headers too long")),
                    None => {
                        self.state = State::Head;
                        return Ok(None);
                    }
                },
                State::Data(part, emitted) => return self.data(part, emitted),
            }
        }
    }

    /// The next event of a part's data.
    fn data(&mut self, part: Part, emitted: bool) -> Result<Option<FormEvent>, GatewayError> {
        let found = find(&self.buf, &self.delimiter);
        if part.filename.is_none() {
            return match found {
                Some(at) => {
                    let data = self.buf.split_to(at).freeze();
                    let _ = self.buf.split_to(self.delimiter.len());
                    self.state = State::Delimited;
                    Ok(Some(FormEvent::Text(Part { data, ..part })))
                }
                None if self.buf.len() > self.text_limit.saturating_add(self.delimiter.len()) => {
                    Err(GatewayError::body_too_large(self.text_limit))
                }
                None => {
                    self.state = State::Data(part, emitted);
                    Ok(None)
                }
            };
        }
        // Bytes that cannot be the start of a delimiter are the file's for sure.
        let (ready, last) = match found {
            Some(at) if at > self.piece_bytes => (self.piece_bytes, false),
            Some(at) => (at, true),
            None => (self.buf.len().saturating_sub(self.delimiter.len() - 1), false),
        };
        if last {
            let data = self.buf.split_to(ready).freeze();
            let _ = self.buf.split_to(self.delimiter.len());
            self.state = State::Delimited;
            if data.is_empty() && emitted {
                return self.next_event();
            }
            return Ok(Some(FormEvent::File(Part { data, ..part })));
        }
        if ready >= self.piece_bytes {
            let data = self.buf.split_to(self.piece_bytes).freeze();
            self.state = State::Data(part.clone(), true);
            return Ok(Some(FormEvent::File(Part { data, ..part })));
        }
        self.state = State::Data(part, emitted);
        Ok(None)
    }

    /// Checks that the body ended where the form did.
    pub fn finish(&self) -> Result<(), GatewayError> {
        match self.state {
            State::Done => Ok(()),
            _ => Err(bad_form("no closing boundary")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(body: &[u8], step: usize, piece: usize) -> Result<Vec<FormEvent>, GatewayError> {
        let mut reader = FormReader::new("XyZ", piece, 1024);
        let mut out = Vec::new();
        for chunk in body.chunks(step) {
            reader.push(chunk);
            while let Some(event) = reader.next_event()? {
                out.push(event);
            }
        }
        reader.finish()?;
        Ok(out)
    }

    #[test]
    fn text_and_file_parts_come_out_whatever_the_body_pieces() {
        let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nDune\r\n".to_vec();
        body.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"d.bin\"\r\n\
              Content-Type: application/pdf\r\n\r\n",
        );
        let file: Vec<u8> = (0..1000)
            .map(|i: usize| (i % 7) as u8)
            .chain(*b"\r\n--XyY")
            .collect();
        body.extend_from_slice(&file);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        for step in [1, 3, 7, 64, 5000] {
            let out = events(&body, step, 100).expect("a good form");
            let FormEvent::Text(title) = &out[0] else {
                panic!("{out:?}")
            };
            assert_eq!((title.name.as_str(), &title.data[..]), ("title", &b"Dune"[..]));
            let mut got = Vec::new();
            for event in &out[1..out.len() - 1] {
                let FormEvent::File(piece) = event else {
                    panic!("{event:?}")
                };
                assert_eq!(piece.name, "doc");
                assert_eq!(piece.content_type.as_deref(), Some("application/pdf"));
                assert!(piece.data.len() <= 100);
                got.extend_from_slice(&piece.data);
            }
            assert_eq!(got, file, "step {step}");
            assert_eq!(out.last(), Some(&FormEvent::End));
        }
    }

    #[test]
    fn an_empty_file_is_one_empty_piece_and_a_cut_form_fails() {
        let body =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"e\"\r\n\r\n\r\n--XyZ--";
        let out = events(body, 4, 100).expect("a good form");
        assert!(
            matches!(&out[0], FormEvent::File(p) if p.data.is_empty()),
            "{out:?}"
        );
        assert_eq!(out.len(), 2);
        assert!(events(&body[..body.len() - 4], 4, 100).is_err());
    }
}
