//! In-process HTTP/1.1 response decoding (criterion), behind `cargo xtask
//! bench http`.
//!
//! - `http_head`: a typical 200 head (11 fields) through netkit-http1's
//!   `ResponseDecoder` against `httparse::Response::parse` with the same 100
//!   header slots. netkit: a new decoder, one httparse pass over the head
//!   (it finds the end), one allocation holding a copy of the head and each
//!   field's spans (a `Head` the caller keeps), the framing and keep-alive
//!   decision from the fields, and dropping the `Head`. httparse: the parse,
//!   plus the least a caller needs to keep that head past its read buffer
//!   (the head's bytes copied into a `Vec`, then dropped); no framing
//!   decision, no field lookups.
//! - `http_chunked`: a 16 KiB body in 1 KiB chunks after a head, decoded
//!   whole and fed in 1 to 7 byte pieces (a read buffer whose visible end
//!   moves on by each piece, as the kernel fills a driver's buffer), against
//!   the same body framed by Content-Length in the same pieces (the floor of
//!   feeding that way); and the head whole against the head in 1 to 7 byte
//!   pieces (the pieces must stay within 3x: no quadratic rescans), also
//!   through a `Vec` appended to and drained per piece, to show that
//!   buffer's own cost.
//! - `http_hyper`: hyper's client connection (http1) over an in-memory
//!   duplex receiving the same 200 head with a 5-byte body, against
//!   netkit's decoder over the same bytes. Both include writing the request.
//!
//! `bench-http` reads criterion's estimates and prints the ratios.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use netkit_http1::{Event, Framing, Limits, RequestKind, ResponseDecoder, encode_head};

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.22.1\r\n\
Date: Sun, 29 Nov 2026 18:00:00 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 5\r\n\
Connection: keep-alive\r\n\
Cache-Control: max-age=0, private, must-revalidate\r\n\
ETag: \"5f8d-1a2b3c\"\r\n\
Last-Modified: Sat, 28 Nov 2026 12:00:00 GMT\r\n\
Vary: Accept-Encoding\r\n\
X-Request-Id: 0123456789abcdef\r\n\
Accept-Ranges: bytes\r\n\r\n";

fn response() -> Vec<u8> {
    let mut r = HEAD.to_vec();
    r.extend_from_slice(b"hello");
    r
}

fn chunked() -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for i in 0..16u8 {
        r.extend_from_slice(b"400\r\n");
        r.extend(std::iter::repeat_n(b'a' + i, 1024));
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

/// Decodes `input` fed in `pieces` (sizes cycling) as a driver's read
/// buffer receives it: each read makes `n` more bytes visible after what
/// the decoder has not consumed yet (the bytes are already where the kernel
/// would have written them, so the copy, equal for every split, is not
/// timed); returns body bytes seen.
fn decode(input: &[u8], pieces: &[usize]) -> usize {
    let mut d = ResponseDecoder::new(RequestKind::Other, Limits::default());
    let mut body = 0;
    let (mut start, mut end) = (0, 0);
    // Cycled, not `pieces[k % len]`: a division per piece cost about as much
    // as the decoder's own work on a 1 to 7 byte piece.
    let mut sizes = pieces.iter().cycle();
    while end < input.len() {
        end += sizes.next().map_or(1, |&n| n.min(input.len() - end));
        loop {
            let (used, ev) = d.decode(&input[start..end]).expect("valid");
            start += used;
            match ev {
                Some(Event::Data(b)) => body += b.len(),
                Some(Event::End) | None => break,
                Some(_) => {}
            }
        }
    }
    body
}

/// The same as [`decode`], with the bytes of each read appended to a `Vec`
/// and the consumed ones drained from its front, as a simpler driver does:
/// the per-piece cost of that buffer shown beside the decoder's. (The event
/// loop is written out in both: one shared helper, even `#[inline(always)]`,
/// made the piece rows 9-11% slower, harness cost that is not the decoder's.)
fn decode_vec(input: &[u8], pieces: &[usize], buf: &mut Vec<u8>) -> usize {
    let mut d = ResponseDecoder::new(RequestKind::Other, Limits::default());
    buf.clear();
    let mut body = 0;
    let mut at = 0;
    let mut sizes = pieces.iter().cycle();
    while at < input.len() {
        let n = sizes.next().map_or(1, |&n| n.min(input.len() - at));
        buf.extend_from_slice(&input[at..at + n]);
        at += n;
        let mut pos = 0;
        loop {
            let (used, ev) = d.decode(&buf[pos..]).expect("valid");
            pos += used;
            match ev {
                Some(Event::Data(b)) => body += b.len(),
                Some(Event::End) | None => break,
                Some(_) => {}
            }
        }
        buf.drain(..pos);
    }
    body
}

fn head(c: &mut Criterion) {
    let mut g = c.benchmark_group("http_head");
    g.bench_function("netkit_decoder", |b| {
        b.iter(|| {
            let mut d = ResponseDecoder::new(RequestKind::Other, Limits::default());
            let (n, ev) = d.decode(black_box(HEAD)).unwrap();
            black_box((n, ev.is_some()))
        });
    });
    g.bench_function("httparse", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 100];
            let mut r = httparse::Response::new(&mut headers);
            let input = black_box(HEAD);
            let httparse::Status::Complete(n) = r.parse(input).unwrap() else {
                unreachable!("the head is whole")
            };
            // The owned minimum that matches netkit's `Head`: its bytes.
            let kept = input[..n].to_vec();
            black_box((r.code, kept))
        });
    });
    g.finish();
}

/// The same 16 KiB framed by Content-Length.
fn identity() -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 16384\r\n\r\n".to_vec();
    for i in 0..16u8 {
        r.extend(std::iter::repeat_n(b'a' + i, 1024));
    }
    r
}

fn chunked_body(c: &mut Criterion) {
    let input = chunked();
    let plain = identity();
    let mut g = c.benchmark_group("http_chunked");
    g.bench_function("whole", |b| {
        b.iter(|| black_box(decode(black_box(&input), &[usize::MAX])));
    });
    g.bench_function("pieces_1_to_7", |b| {
        b.iter(|| black_box(decode(black_box(&input), &[1, 2, 3, 4, 5, 6, 7])));
    });
    // The floor of feeding 1 to 7 bytes at a time: the same body framed by
    // Content-Length, so the difference is the chunk parsing.
    g.bench_function("length_pieces_1_to_7", |b| {
        b.iter(|| black_box(decode(black_box(&plain), &[1, 2, 3, 4, 5, 6, 7])));
    });
    // A head fed in pieces against the head whole (no quadratic rescans).
    g.bench_function("head_pieces_1_to_7", |b| {
        b.iter(|| black_box(decode(black_box(HEAD), &[1, 2, 3, 4, 5, 6, 7])));
    });
    g.bench_function("head_whole", |b| {
        b.iter(|| black_box(decode(black_box(HEAD), &[usize::MAX])));
    });
    // The same head through a `Vec` appended to and drained per piece.
    let mut buf = Vec::with_capacity(64 * 1024);
    g.bench_function("head_pieces_1_to_7_vec", |b| {
        b.iter(|| {
            black_box(decode_vec(
                black_box(HEAD),
                &[1, 2, 3, 4, 5, 6, 7],
                &mut buf,
            ))
        });
    });
    g.finish();
}

fn hyper_vs_netkit(c: &mut Criterion) {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let resp = response();
    let mut g = c.benchmark_group("http_hyper");
    // One connection, many exchanges: the server side answers each request
    // head with the canned response.
    let (client_io, mut server_io) = tokio::io::duplex(64 * 1024);
    let canned = resp.clone();
    rt.spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut held = Vec::new();
        loop {
            let n = match server_io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            held.extend_from_slice(&buf[..n]);
            while let Some(p) = held.windows(4).position(|w| w == b"\r\n\r\n") {
                held.drain(..p + 4);
                if server_io.write_all(&canned).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut sender = rt.block_on(async {
        let (sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(
            TokioIo::new(client_io),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        sender
    });
    g.bench_function("hyper_client", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = hyper::Request::get("/")
                    .header("host", "bench.test")
                    .body(Empty::new())
                    .unwrap();
                let res = sender.send_request(req).await.unwrap();
                let body = res.into_body().collect().await.unwrap().to_bytes();
                black_box(body.len())
            })
        });
    });
    let mut out = Vec::with_capacity(256);
    g.bench_function("netkit_exchange", |b| {
        b.iter(|| {
            out.clear();
            encode_head(
                &mut out,
                "GET",
                "/",
                &[("Host", b"bench.test".as_slice())],
                Framing::None,
            )
            .unwrap();
            black_box(&out);
            let mut d = ResponseDecoder::new(RequestKind::Other, Limits::default());
            let mut pos = 0;
            let mut body = 0;
            loop {
                let (n, ev) = d.decode(&resp[pos..]).unwrap();
                pos += n;
                match ev {
                    Some(Event::Data(b)) => body += b.len(),
                    Some(Event::End) | None => break,
                    Some(_) => {}
                }
            }
            black_box((body, d.reuse().is_some()))
        });
    });
    g.finish();
}

criterion_group!(benches, head, chunked_body, hyper_vs_netkit);
criterion_main!(benches);
