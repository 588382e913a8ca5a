//! Content decoding as a streaming layer: gzip, deflate (zlib), br, zstd.
//! A corrupt or truncated stream is an error, never a short body.

use std::io::Write;

use crate::Error;

/// The `Accept-Encoding` sent by default.
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// Codings stacked in one `Content-Encoding` at most (curl's limit).
const MAX_STACK: usize = 5;

/// A streaming decoder for one response body: its codings undone in the
/// reverse of the order they were applied (`gzip, br`: br first).
pub(crate) struct Decoder {
    /// In decoding order.
    stages: Vec<Coding>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.stages.iter().map(Coding::name))
            .finish()
    }
}

impl Decoder {
    /// The decoder for a `Content-Encoding` value (a list: `gzip, br`);
    /// `Ok(None)` for identity (or none). A coding not known, or more than
    /// five, is an error.
    pub(crate) fn for_encoding(value: &[u8]) -> Result<Option<Self>, Error> {
        let v = String::from_utf8_lossy(value).to_ascii_lowercase();
        let names: Vec<&str> = v
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty() && *c != "identity")
            .collect();
        if names.len() > MAX_STACK {
            return Err(Error::Decode(format!(
                "{} stacked Content-Encodings (at most {MAX_STACK})",
                names.len()
            )));
        }
        let stages = names
            .iter()
            .rev()
            .map(|n| Coding::named(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((!stages.is_empty()).then_some(Self { stages }))
    }

    /// Decodes `input`, appending the output to `out`.
    pub(crate) fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let Some((last, first)) = self.stages.split_last_mut() else {
            out.extend_from_slice(input);
            return Ok(());
        };
        if first.is_empty() {
            return last.write(input, out);
        }
        let mut cur = Vec::new();
        first[0].write(input, &mut cur)?;
        for stage in &mut first[1..] {
            let mut next = Vec::new();
            stage.write(&cur, &mut next)?;
            cur = next;
        }
        last.write(&cur, out)
    }

    /// The body ended: the rest of the output, or an error if a stream is
    /// incomplete.
    pub(crate) fn finish(self, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut carry: Vec<u8> = Vec::new();
        let n = self.stages.len();
        for (i, mut stage) in self.stages.into_iter().enumerate() {
            let mut got = Vec::new();
            if !carry.is_empty() {
                stage.write(&carry, &mut got)?;
            }
            stage.finish(&mut got)?;
            if i + 1 == n {
                out.append(&mut got);
            }
            carry = got;
        }
        Ok(())
    }
}

/// One coding's streaming decoder.
enum Coding {
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
    Zstd(Box<Zstd>),
}

/// zstd through its raw API, which says when a frame is complete (the
/// writer does not, so a truncated stream would pass for a short body).
pub(crate) struct Zstd {
    d: zstd::stream::raw::Decoder<'static>,
    /// zstd's hint of input still needed to end the frame (0: ended).
    remaining: usize,
}

impl Coding {
    fn named(v: &str) -> Result<Self, Error> {
        Ok(match v {
            "gzip" | "x-gzip" => Self::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
            "deflate" => Self::Deflate(flate2::write::ZlibDecoder::new(Vec::new())),
            "br" => Self::Brotli(Box::new(brotli::DecompressorWriter::new(
                Vec::new(),
                16 * 1024,
            ))),
            "zstd" => Self::Zstd(Box::new(Zstd {
                d: zstd::stream::raw::Decoder::new()
                    .map_err(|e| Error::Decode(format!("zstd: {e}")))?,
                remaining: 1,
            })),
            other => {
                return Err(Error::Decode(format!(
                    "unsupported Content-Encoding {other:?}"
                )));
            }
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Gzip(_) => "gzip",
            Self::Deflate(_) => "deflate",
            Self::Brotli(_) => "br",
            Self::Zstd(_) => "zstd",
        }
    }

    fn fail(&self, e: &std::io::Error) -> Error {
        Error::Decode(format!("{} body: {e}", self.name()))
    }

    fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let r = match self {
            Self::Gzip(d) => d.write_all(input).and_then(|()| d.flush()),
            Self::Deflate(d) => d.write_all(input).and_then(|()| d.flush()),
            Self::Brotli(d) => d.write_all(input).and_then(|()| d.flush()),
            Self::Zstd(z) => return z.write(input, out),
        };
        r.map_err(|e| self.fail(&e))?;
        let got = match self {
            Self::Gzip(d) => d.get_mut(),
            Self::Deflate(d) => d.get_mut(),
            Self::Brotli(d) => d.get_mut(),
            Self::Zstd(_) => return Ok(()),
        };
        out.append(got);
        Ok(())
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<(), Error> {
        let name = self.name();
        let fail = |e: std::io::Error| Error::Decode(format!("{name} body: {e}"));
        let rest = match self {
            Self::Gzip(d) => d.finish().map_err(fail)?,
            Self::Deflate(d) => d.finish().map_err(fail)?,
            Self::Brotli(d) => d
                .into_inner()
                .map_err(|_| Error::Decode("br body: the compressed stream is truncated".into()))?,
            Self::Zstd(z) if z.remaining == 0 => Vec::new(),
            Self::Zstd(_) => {
                return Err(Error::Decode(
                    "zstd body: the compressed stream is truncated".into(),
                ));
            }
        };
        out.extend_from_slice(&rest);
        Ok(())
    }
}

impl Zstd {
    fn write(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        use zstd::stream::raw::Operation;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let st = self
                .d
                .run_on_buffers(input, &mut buf)
                .map_err(|e| Error::Decode(format!("zstd body: {e}")))?;
            out.extend_from_slice(&buf[..st.bytes_written]);
            input = &input[st.bytes_read..];
            self.remaining = st.remaining;
            // Done when the input is used up and the output buffer was not
            // filled (nothing more is pending inside zstd).
            if input.is_empty() && st.bytes_written < buf.len() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(name: &str, encoded: &[u8], pieces: usize) -> Result<Vec<u8>, Error> {
        let mut d = Decoder::for_encoding(name.as_bytes())?.expect("a coding");
        let mut out = Vec::new();
        for c in encoded.chunks(pieces.max(1)) {
            d.write(c, &mut out)?;
        }
        d.finish(&mut out)?;
        Ok(out)
    }

    fn text() -> Vec<u8> {
        (0..20_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_coding_decodes_in_any_pieces() {
        let t = text();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&t).unwrap();
        let deflate = z.finish().unwrap();
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&t).unwrap();
        }
        let zst = zstd::stream::encode_all(&t[..], 3).unwrap();
        for (name, enc) in [
            ("gzip", gzip(&t)),
            ("deflate", deflate),
            ("br", br),
            ("zstd", zst),
        ] {
            for pieces in [1, 7, 1000, usize::MAX] {
                assert_eq!(
                    roundtrip(name, &enc, pieces).unwrap(),
                    t,
                    "{name} in {pieces}"
                );
            }
        }
    }

    #[test]
    fn corrupt_and_truncated_streams_are_errors() {
        let g = gzip(&text());
        assert!(matches!(
            roundtrip("gzip", &g[..g.len() / 2], 100),
            Err(Error::Decode(_))
        ));
        let mut bad = g.clone();
        bad[20] ^= 0xff;
        bad[21] ^= 0xff;
        assert!(matches!(
            roundtrip("gzip", &bad, 100),
            Err(Error::Decode(_))
        ));
        assert!(matches!(
            roundtrip("br", b"\xff\xff\xff\xff garbage", 3),
            Err(Error::Decode(_))
        ));
        assert!(matches!(
            roundtrip("zstd", b"not zstd at all", 3),
            Err(Error::Decode(_))
        ));
        assert!(matches!(
            Decoder::for_encoding(b"gzip, compress"),
            Err(Error::Decode(_))
        ));
        assert!(matches!(
            Decoder::for_encoding(b"gzip, gzip, gzip, gzip, gzip, gzip"),
            Err(Error::Decode(_))
        ));
        assert!(Decoder::for_encoding(b"identity").unwrap().is_none());
        assert!(Decoder::for_encoding(b" , identity").unwrap().is_none());
    }

    /// `Content-Encoding: deflate, gzip, br` means deflate was applied
    /// first: undone as br, then gzip, then deflate, in any pieces; a
    /// truncated outer stream is still an error.
    #[test]
    fn stacked_codings_are_undone_in_reverse() {
        let t = text();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&t).unwrap();
        let gz = gzip(&z.finish().unwrap());
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&gz).unwrap();
        }
        for pieces in [1, 13, 4096, usize::MAX] {
            assert_eq!(
                roundtrip("deflate, gzip, br", &br, pieces).unwrap(),
                t,
                "{pieces}"
            );
        }
        assert!(roundtrip("deflate, gzip, br", &br[..br.len() - 10], 100).is_err());
        assert_eq!(roundtrip("identity, gzip", &gzip(&t), 100).unwrap(), t);
    }
}
