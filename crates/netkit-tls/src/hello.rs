//! The SNI of a ClientHello, read from the first TLS record a server receives.
//!
//! rustls 0.23's unbuffered server connection keeps the SNI it parsed to itself,
//! so the session reads it here. Only what rustls then accepts matters: a
//! session whose handshake completes had a well-formed ClientHello, and rustls
//! refuses a malformed server_name extension. Every length is checked against
//! the bytes present; nothing here can panic or allocate beyond the name.

use rustls_pki_types::DnsName;

/// What the first record says about SNI.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sni {
    /// The first record is not complete yet.
    Incomplete,
    /// The client asked for this host name.
    Found(String),
    /// No usable SNI (none sent, an IP literal, not a ClientHello, or a
    /// ClientHello spanning several records).
    None,
}

/// A cursor over bytes that fails instead of reading past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }

    /// A vector with a `len_bytes`-byte length prefix.
    fn vec(&mut self, len_bytes: usize) -> Option<Self> {
        let n = match len_bytes {
            1 => self.u8()?,
            2 => self.u16()?,
            _ => self.u24()?,
        };
        self.take(n).map(Self)
    }
}

/// Reads the SNI from the start of what a server received.
pub(crate) fn sni(input: &[u8]) -> Sni {
    const HANDSHAKE: u8 = 22;
    const CLIENT_HELLO: usize = 1;
    const SERVER_NAME: usize = 0;
    const HOST_NAME: usize = 0;
    let mut rec = Reader(input);
    let Some(header) = rec.take(5) else {
        return Sni::Incomplete;
    };
    if header[0] != HANDSHAKE {
        return Sni::None;
    }
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let Some(body) = rec.take(len) else {
        return Sni::Incomplete;
    };
    let found = (|| {
        let mut hs = Reader(body);
        if hs.u8()? != CLIENT_HELLO {
            return None;
        }
        // A ClientHello longer than its first record is left alone.
        let mut hello = hs.vec(3)?;
        hello.take(2 + 32)?; // legacy_version, random
        hello.vec(1)?; // legacy_session_id
        hello.vec(2)?; // cipher_suites
        hello.vec(1)?; // legacy_compression_methods
        let mut exts = hello.vec(2)?;
        while !exts.0.is_empty() {
            let typ = exts.u16()?;
            let mut data = exts.vec(2)?;
            if typ != SERVER_NAME {
                continue;
            }
            let mut names = data.vec(2)?;
            while !names.0.is_empty() {
                let kind = names.u8()?;
                let name = names.vec(2)?;
                if kind == HOST_NAME {
                    let name = std::str::from_utf8(name.0).ok()?;
                    return DnsName::try_from(name).ok().map(|_| name.to_owned());
                }
            }
            return None;
        }
        None
    })();
    found.map_or(Sni::None, Sni::Found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello_with(ext: &[u8]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.extend([0]); // session id
        body.extend([0, 2, 0x13, 0x01]); // one suite
        body.extend([1, 0]); // null compression
        body.extend((ext.len() as u16).to_be_bytes());
        body.extend(ext);
        let mut hs = vec![1];
        hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend(body);
        let mut rec = vec![22, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    fn sni_ext(name: &[u8]) -> Vec<u8> {
        let mut entry = vec![0];
        entry.extend((name.len() as u16).to_be_bytes());
        entry.extend(name);
        let mut list = (entry.len() as u16).to_be_bytes().to_vec();
        list.extend(entry);
        let mut ext = vec![0, 0];
        ext.extend((list.len() as u16).to_be_bytes());
        ext.extend(list);
        ext
    }

    #[test]
    fn finds_the_host_name_after_other_extensions() {
        let mut ext = vec![0, 10, 0, 2, 0, 0]; // an unrelated extension first
        ext.extend(sni_ext(b"example.com"));
        let rec = hello_with(&ext);
        assert_eq!(sni(&rec), Sni::Found("example.com".into()));
        // Any prefix of the record is incomplete, never a wrong answer.
        for cut in 0..rec.len() {
            assert_eq!(sni(&rec[..cut]), Sni::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn absent_invalid_or_not_a_hello() {
        assert_eq!(sni(&hello_with(&[])), Sni::None);
        assert_eq!(sni(&hello_with(&sni_ext(b"127.0.0.1"))), Sni::None);
        assert_eq!(sni(&hello_with(&sni_ext(b"bad name!"))), Sni::None);
        assert_eq!(sni(b"GET / HTTP/1.1\r\n"), Sni::None);
        // Lengths that point past the record.
        let mut rec = hello_with(&sni_ext(b"example.com"));
        let last = rec.len() - 1;
        rec[last - 12] = 0xff;
        assert_eq!(sni(&rec), Sni::None);
    }
}
