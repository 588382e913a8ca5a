//! The chunked body decoder (RFC 9112 §7.1): hex sizes with overflow
//! checked, extensions skipped (bounded), CRLF (or a bare LF) required after
//! each chunk's data, trailers parsed and kept.

use crate::{Error, Fields, Limits, parse_error};

#[derive(Debug, Clone, PartialEq, Eq)]
enum St {
    /// In the size digits; `digits` so far.
    Size {
        digits: u32,
        value: u64,
    },
    /// After the digits: whitespace or extensions until LF.
    Ext {
        value: u64,
    },
    /// A CR ended the size line: LF must follow.
    SizeCr {
        value: u64,
    },
    /// Inside a chunk's data.
    Data {
        remaining: u64,
    },
    /// After the data: CR LF or LF.
    DataEnd {
        cr: bool,
    },
    /// The trailer section, buffered until its empty line.
    Trailers,
    /// The trailer fields are ready to hand out.
    TrailersReady,
    Done,
}

/// What the chunked decoder produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Out<'a> {
    Data(&'a [u8]),
    Trailers(Fields),
    End,
}

#[derive(Debug, Clone)]
pub(crate) struct Chunked {
    st: St,
    /// Bytes of the current size line (to bound extensions).
    line: usize,
    trailer: Vec<u8>,
    fields: Option<Fields>,
    /// Body bytes delivered.
    pub(crate) got: u64,
    limits: Limits,
}

impl Chunked {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            st: St::Size {
                digits: 0,
                value: 0,
            },
            line: 0,
            trailer: Vec::new(),
            fields: None,
            got: 0,
            limits,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.st == St::Done
    }

    /// Consumes from `input` until it has something to report; `None`: all
    /// of `input` was consumed and more is needed.
    pub(crate) fn decode<'a>(
        &mut self,
        input: &'a [u8],
    ) -> Result<(usize, Option<Out<'a>>), Error> {
        let mut i = 0;
        loop {
            match self.st {
                St::Done => return Ok((i, Some(Out::End))),
                St::TrailersReady => {
                    self.st = St::Done;
                    let f = self.fields.take().unwrap_or_else(Fields::empty);
                    return Ok((i, Some(Out::Trailers(f))));
                }
                St::Data { remaining } => {
                    let avail = input.len() - i;
                    if avail == 0 {
                        return Ok((i, None));
                    }
                    let n = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
                    let left = remaining - n as u64;
                    self.st = if left == 0 {
                        St::DataEnd { cr: false }
                    } else {
                        St::Data { remaining: left }
                    };
                    self.got += n as u64;
                    return Ok((i + n, Some(Out::Data(&input[i..i + n]))));
                }
                St::Trailers => {
                    if i == input.len() {
                        return Ok((i, None));
                    }
                    // Up to and including the next LF, so nothing past the
                    // trailers' end is taken.
                    let rest = &input[i..];
                    let n = memchr::memchr(b'\n', rest).map_or(rest.len(), |p| p + 1);
                    if self.trailer.len() + n > self.limits.max_head {
                        return Err(Error::TrailersTooLarge {
                            limit: self.limits.max_head,
                        });
                    }
                    self.trailer.extend_from_slice(&rest[..n]);
                    i += n;
                    let t = &self.trailer;
                    let ended = t == b"\n"
                        || t == b"\r\n"
                        || t.ends_with(b"\n\n")
                        || t.ends_with(b"\n\r\n");
                    if ended {
                        self.finish_trailers()?;
                    }
                }
                _ => {
                    if i == input.len() {
                        return Ok((i, None));
                    }
                    let b = input[i];
                    i += 1;
                    self.step(b)?;
                }
            }
        }
    }

    /// One byte of a size line or of a chunk's end.
    fn step(&mut self, b: u8) -> Result<(), Error> {
        self.line += 1;
        if self.line > self.limits.max_head {
            return Err(Error::ChunkLineTooLong {
                limit: self.limits.max_head,
            });
        }
        self.st = match (self.st.clone(), b) {
            (St::Size { digits, value }, _) if b.is_ascii_hexdigit() => {
                if value >> 60 != 0 {
                    return Err(Error::ChunkSizeOverflow);
                }
                let d = (b as char).to_digit(16).unwrap_or(0);
                St::Size {
                    digits: digits + 1,
                    value: value << 4 | u64::from(d),
                }
            }
            (St::Size { digits: 0, .. }, _) => return Err(Error::BadChunkSize),
            (St::Size { value, .. } | St::Ext { value }, b'\r') => St::SizeCr { value },
            (St::Size { value, .. }, b';' | b' ' | b'\t') => St::Ext { value },
            (St::Size { value, .. } | St::Ext { value } | St::SizeCr { value }, b'\n') => {
                self.line = 0;
                if value == 0 {
                    St::Trailers
                } else {
                    St::Data { remaining: value }
                }
            }
            (St::Size { .. } | St::SizeCr { .. }, _) => return Err(Error::BadChunkSize),
            (St::Ext { value }, _) => St::Ext { value },
            (St::DataEnd { cr: false }, b'\r') => St::DataEnd { cr: true },
            (St::DataEnd { .. }, b'\n') => {
                self.line = 0;
                St::Size {
                    digits: 0,
                    value: 0,
                }
            }
            (St::DataEnd { .. }, _) => return Err(Error::MissingChunkCrlf),
            (s, _) => s,
        };
        Ok(())
    }

    fn finish_trailers(&mut self) -> Result<(), Error> {
        let t = std::mem::take(&mut self.trailer);
        if t == b"\n" || t == b"\r\n" {
            self.st = St::Done;
            return Ok(());
        }
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        match httparse::parse_headers(&t, &mut headers) {
            Ok(httparse::Status::Complete((_, parsed))) => {
                self.fields = Some(Fields::from_parsed(&t, parsed));
                self.st = St::TrailersReady;
                Ok(())
            }
            Ok(httparse::Status::Partial) => Err(Error::BadTrailers("incomplete")),
            Err(httparse::Error::TooManyHeaders) => Err(Error::TooManyHeaders {
                limit: self.limits.max_headers,
            }),
            Err(e) => Err(Error::BadTrailers(parse_error(e))),
        }
    }
}
