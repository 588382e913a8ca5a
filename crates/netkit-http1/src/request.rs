//! Request encoding: the head, then the body in its framing.

use crate::Error;

/// How a request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body and no framing header (GET, HEAD, DELETE without a body).
    None,
    /// `Content-Length: n` (written even for 0, as curl does for `-d ''`).
    Length(u64),
    /// `Transfer-Encoding: chunked`, for a body of unknown length (a stream).
    Chunked,
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `s` is an HTTP token (a method or a header name).
#[must_use]
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Checks one request header: the name a token, the value free of CR, LF
/// and NUL (the bytes that would split or end the head).
pub fn check_header(name: &str, value: &[u8]) -> Result<(), Error> {
    if !is_token(name) {
        return Err(Error::InvalidHeaderName(name.to_owned()));
    }
    if value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(Error::InvalidHeaderValue(name.to_owned()));
    }
    Ok(())
}

/// Appends a request head to `out`: `METHOD target HTTP/1.1`, the headers in
/// order, then the framing header `framing` calls for. The target is written
/// as given: origin-form (`/path?q`), absolute-form (`http://h/p`, to a
/// proxy) or authority-form (`host:port`, for CONNECT). Nothing is written if
/// anything is refused.
pub fn encode_head<N: AsRef<str>, V: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    headers: &[(N, V)],
    framing: Framing,
) -> Result<(), Error> {
    if !is_token(method) {
        return Err(Error::InvalidMethod(method.to_owned()));
    }
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(Error::InvalidTarget(target.to_owned()));
    }
    let mut len = method.len() + target.len() + 16;
    for (n, v) in headers {
        let (n, v) = (n.as_ref(), v.as_ref());
        check_header(n, v)?;
        if n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Error::FramingHeader(n.to_owned()));
        }
        len += n.len() + v.len() + 4;
    }
    out.reserve(len + 40);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (n, v) in headers {
        out.extend_from_slice(n.as_ref().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_ref());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::None => {}
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Frames a request body as it is written, and holds the writer to the
/// framing: never more than `Content-Length`, never fewer at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyEncoder {
    framing: Framing,
    sent: u64,
    finished: bool,
}

impl BodyEncoder {
    /// An encoder for a body framed as `framing`.
    #[must_use]
    pub fn new(framing: Framing) -> Self {
        Self {
            framing,
            sent: 0,
            finished: false,
        }
    }

    /// Body bytes written so far.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Whether [`finish`](Self::finish) succeeded.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Appends `data`, framed, to `out`. An empty write writes nothing (an
    /// empty chunk would end a chunked body).
    pub fn write(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        match self.framing {
            Framing::None => return Err(Error::BodyTooLong { declared: 0 }),
            Framing::Length(n) => {
                if self.finished || self.sent + data.len() as u64 > n {
                    return Err(Error::BodyTooLong { declared: n });
                }
                out.extend_from_slice(data);
            }
            Framing::Chunked => {
                if self.finished {
                    return Err(Error::BodyTooLong {
                        declared: self.sent,
                    });
                }
                out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.sent += data.len() as u64;
        Ok(())
    }

    /// Ends the body: the last chunk for chunked framing; for
    /// `Content-Length`, an error if fewer bytes were written.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        match self.framing {
            Framing::None => {}
            Framing::Length(n) if self.sent < n => {
                return Err(Error::BodyTooShort {
                    sent: self.sent,
                    declared: n,
                });
            }
            Framing::Length(_) => {}
            Framing::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
        }
        self.finished = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, target: &str, h: &[(&str, &[u8])], f: Framing) -> Result<String, Error> {
        let mut out = Vec::new();
        encode_head(&mut out, method, target, h, f)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn forms_and_framing() {
        assert_eq!(
            head("GET", "/a?b=c", &[("Host", b"x")], Framing::None).unwrap(),
            "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        assert_eq!(
            head("POST", "http://x/y", &[("Host", b"x")], Framing::Length(0)).unwrap(),
            "POST http://x/y HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(
            head("CONNECT", "x:443", &[("Host", b"x:443")], Framing::None).unwrap(),
            "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n"
        );
        assert_eq!(
            head("PURGE", "*", &[], Framing::Chunked).unwrap(),
            "PURGE * HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn refuses_what_would_split_the_head() {
        for v in [&b"a\rb"[..], b"a\nb", b"a\0b", b"\r\n"] {
            assert_eq!(
                head("GET", "/", &[("X", v)], Framing::None),
                Err(Error::InvalidHeaderValue("X".into()))
            );
        }
        for n in ["", "a b", "a:b", "a\r\nb", "é"] {
            assert_eq!(
                head("GET", "/", &[(n, b"v".as_slice())], Framing::None),
                Err(Error::InvalidHeaderName(n.into()))
            );
        }
        assert!(matches!(
            head("GE T", "/", &[], Framing::None),
            Err(Error::InvalidMethod(_))
        ));
        for t in ["", "/a b", "/a\r\n", "/\x7f"] {
            assert!(matches!(
                head("GET", t, &[], Framing::None),
                Err(Error::InvalidTarget(_))
            ));
        }
        assert_eq!(
            head("GET", "/", &[("content-LENGTH", b"5")], Framing::None),
            Err(Error::FramingHeader("content-LENGTH".into()))
        );
        let mut out = b"keep".to_vec();
        let _ = encode_head(&mut out, "GET", "/", &[("a\n", b"")], Framing::None);
        assert_eq!(out, b"keep", "nothing written on refusal");
    }

    #[test]
    fn body_framing_is_enforced() {
        let mut out = Vec::new();
        let mut b = BodyEncoder::new(Framing::Length(5));
        b.write(b"abc", &mut out).unwrap();
        assert_eq!(
            b.finish(&mut out),
            Err(Error::BodyTooShort {
                sent: 3,
                declared: 5
            })
        );
        assert_eq!(
            b.write(b"def", &mut out),
            Err(Error::BodyTooLong { declared: 5 })
        );
        b.write(b"de", &mut out).unwrap();
        b.finish(&mut out).unwrap();
        assert_eq!(out, b"abcde");

        let mut out = Vec::new();
        let mut c = BodyEncoder::new(Framing::Chunked);
        c.write(b"", &mut out).unwrap();
        c.write(&[b'x'; 26], &mut out).unwrap();
        c.finish(&mut out).unwrap();
        let mut want = b"1a\r\n".to_vec();
        want.extend([b'x'; 26]);
        want.extend(b"\r\n0\r\n\r\n");
        assert_eq!(out, want);
        assert!(c.write(b"late", &mut out).is_err());

        let mut none = BodyEncoder::new(Framing::None);
        assert!(none.write(b"x", &mut Vec::new()).is_err());
        none.finish(&mut Vec::new()).unwrap();
    }
}
