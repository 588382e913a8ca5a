//! The decoder against SEMANTICS.md's framing rules, one named test each,
//! and properties over splits of the input.

use proptest::prelude::*;

use crate::*;

/// An event with its data owned (body bytes merged), for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Info(u16),
    Head(u16),
    Data(Vec<u8>),
    Trailers(Vec<(String, String)>),
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    events: Vec<Ev>,
    /// Bytes left after the response's end (a tunnel's or a poison).
    left: usize,
    reuse: Option<Reuse>,
}

/// Feeds `pieces` one at a time as a driver would (a buffer it appends to
/// and drains), then EOF if `eof`.
fn run(kind: RequestKind, pieces: &[&[u8]], eof: bool) -> Result<Outcome, Error> {
    run_limits(kind, pieces, eof, Limits::default())
}

fn run_limits(
    kind: RequestKind,
    pieces: &[&[u8]],
    eof: bool,
    limits: Limits,
) -> Result<Outcome, Error> {
    let mut d = ResponseDecoder::new(kind, limits);
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let push = |events: &mut Vec<Ev>, e: Event<'_>| match e {
        Event::Informational(h) => events.push(Ev::Info(h.status())),
        Event::Head(h) => events.push(Ev::Head(h.status())),
        Event::Data(b) => match events.last_mut() {
            Some(Ev::Data(v)) => v.extend_from_slice(b),
            _ => events.push(Ev::Data(b.to_vec())),
        },
        Event::Trailers(f) => events.push(Ev::Trailers(
            f.iter()
                .map(|(n, v)| (n.to_owned(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
        )),
        Event::End => events.push(Ev::End),
    };
    for p in pieces {
        buf.extend_from_slice(p);
        while !d.is_done() {
            let (n, e) = d.decode(&buf)?;
            let more = e.is_some();
            if let Some(e) = e {
                push(&mut events, e);
            }
            buf.drain(..n);
            if !more {
                break;
            }
        }
    }
    if eof && !d.is_done() {
        if let Some(e) = d.finish()? {
            push(&mut events, e);
        }
    }
    Ok(Outcome {
        events,
        left: buf.len(),
        reuse: d.reuse(),
    })
}

fn whole(kind: RequestKind, input: &[u8]) -> Result<Outcome, Error> {
    run(kind, &[input], true)
}

fn get(input: &[u8]) -> Result<Outcome, Error> {
    whole(RequestKind::Other, input)
}

fn data(b: &[u8]) -> Ev {
    Ev::Data(b.to_vec())
}

const KEEP: Option<Reuse> = Some(Reuse { timeout: None });

#[test]
fn content_length_body_is_reusable() {
    let o = get(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    assert_eq!(o.events, [Ev::Head(200), data(b"hello"), Ev::End]);
    assert_eq!((o.left, o.reuse), (0, KEEP));
}

#[test]
fn head_keeps_fields_as_received() {
    let input = b"HTTP/1.1 200 Fine\r\nX-Many: a\r\nx-many: b\r\nContent-Length: 0\r\n\r\n";
    let mut d = ResponseDecoder::new(RequestKind::Other, Limits::default());
    let (n, e) = d.decode(input).unwrap();
    assert_eq!(n, input.len());
    let Some(Event::Head(h)) = e else {
        panic!("{e:?}")
    };
    assert_eq!((h.status(), h.version(), h.reason()), (200, 1, "Fine"));
    assert_eq!(h.raw(), input);
    let many: Vec<_> = h.headers().get_all("X-MANY").collect();
    assert_eq!(many, [b"a", b"b"]);
    assert_eq!(h.headers().len(), 3);
}

#[test]
fn http10_closes_unless_keep_alive() {
    let o = get(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx").unwrap();
    assert_eq!(o.reuse, None);
    let o =
        get(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx").unwrap();
    assert_eq!(o.reuse, KEEP);
}

#[test]
fn any_close_token_closes() {
    let o = get(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, CLOSE\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(o.reuse, None);
}

#[test]
fn keep_alive_timeout_is_read() {
    let o = get(b"HTTP/1.1 200 OK\r\nKeep-Alive: max=100, timeout=5\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(
        o.reuse,
        Some(Reuse {
            timeout: Some(std::time::Duration::from_secs(5))
        })
    );
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let o = get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;name=value\r\nhello\r\n1 ; x\r\n!\r\n0\r\nX-Sum: 6\r\nX-Two: b\r\n\r\n")
    .unwrap();
    assert_eq!(
        o.events,
        [
            Ev::Head(200),
            data(b"hello!"),
            Ev::Trailers(vec![
                ("X-Sum".into(), "6".into()),
                ("X-Two".into(), "b".into())
            ]),
            Ev::End
        ]
    );
    assert_eq!(o.reuse, KEEP);
}

#[test]
fn chunked_bare_lf_accepted() {
    let o = get(b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nhi\n0\n\n").unwrap();
    assert_eq!(o.events, [Ev::Head(200), data(b"hi"), Ev::End]);
}

#[test]
fn chunk_size_overflow_is_an_error() {
    let r = get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n");
    assert_eq!(r, Err(Error::ChunkSizeOverflow));
    // Leading zeros are not an overflow.
    let o = get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n000000000000000000001\r\nx\r\n0\r\n\r\n")
        .unwrap();
    assert_eq!(o.events[1], data(b"x"));
}

#[test]
fn chunk_missing_crlf_is_an_error() {
    let r = get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX0\r\n\r\n");
    assert_eq!(r, Err(Error::MissingChunkCrlf));
    let r = get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\r\n");
    assert_eq!(r, Err(Error::MissingChunkCrlf));
}

#[test]
fn bad_chunk_sizes_are_errors() {
    for bad in [&b"zz\r\n"[..], b"\r\n", b";ext\r\n", b"5\rX\n", b"-5\r\n"] {
        let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        input.extend_from_slice(bad);
        let r = get(&input);
        assert_eq!(
            r,
            Err(Error::BadChunkSize),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn chunk_extensions_are_bounded() {
    let limits = Limits {
        max_head: 64,
        max_headers: 10,
    };
    let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;".to_vec();
    input.extend([b'x'; 100]);
    let r = run_limits(RequestKind::Other, &[&input], true, limits);
    assert_eq!(r, Err(Error::ChunkLineTooLong { limit: 64 }));
}

#[test]
fn trailers_are_bounded() {
    let limits = Limits {
        max_head: 64,
        max_headers: 10,
    };
    let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ".to_vec();
    input.extend([b'x'; 100]);
    let r = run_limits(RequestKind::Other, &[&input], true, limits);
    assert_eq!(r, Err(Error::TrailersTooLarge { limit: 64 }));
}

#[test]
fn chunked_eof_before_last_chunk_is_truncated() {
    let r = get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    assert_eq!(r, Err(Error::TruncatedChunked { got: 5 }));
}

#[test]
fn transfer_encoding_beats_content_length_and_closes() {
    let o = get(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(o.events, [Ev::Head(200), data(b"hi"), Ev::End]);
    assert_eq!(
        o.reuse, None,
        "TE with CL never leaves the connection reusable"
    );
}

#[test]
fn chunked_not_last_reads_to_close() {
    let o = get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nraw bytes").unwrap();
    assert_eq!(o.events, [Ev::Head(200), data(b"raw bytes"), Ev::End]);
    assert_eq!(o.reuse, None);
}

#[test]
fn content_length_must_be_digits() {
    for bad in [
        "+5",
        "0x5",
        "5 5",
        "-1",
        "",
        "123456789012345678901",
        "5;",
        "1e3",
    ] {
        let input = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\nhello");
        assert!(
            matches!(get(input.as_bytes()), Err(Error::BadContentLength(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn identical_content_length_list_is_one_value() {
    let o =
        get(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    assert_eq!(o.events[1], data(b"hello"));
}

#[test]
fn differing_content_lengths_are_an_error() {
    for input in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
    ] {
        assert!(matches!(
            get(input),
            Err(Error::ConflictingContentLength(_))
        ));
    }
}

#[test]
fn no_body_for_head_204_304() {
    let o = whole(
        RequestKind::Head,
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
    )
    .unwrap();
    assert_eq!(o.events, [Ev::Head(200), Ev::End]);
    assert_eq!(o.reuse, KEEP);
    for s in [204, 304] {
        let input =
            format!("HTTP/1.1 {s} X\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        let o = get(input.as_bytes()).unwrap();
        assert_eq!(o.events, [Ev::Head(s), Ev::End]);
    }
}

#[test]
fn connect_2xx_opens_a_tunnel() {
    let o = whole(
        RequestKind::Connect,
        b"HTTP/1.1 200 Connection established\r\nContent-Length: 10\r\n\r\n\x16\x03\x01",
    )
    .unwrap();
    assert_eq!(o.events, [Ev::Head(200), Ev::End]);
    assert_eq!(o.left, 3, "the bytes after the head belong to the tunnel");
    assert_eq!(o.reuse, None);
    // A refusal has a body like any response.
    let o = whole(
        RequestKind::Connect,
        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\nno",
    )
    .unwrap();
    assert_eq!(o.events, [Ev::Head(407), data(b"no"), Ev::End]);
}

#[test]
fn informational_responses_are_surfaced_then_the_final_one() {
    let o = get(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
          HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )
    .unwrap();
    assert_eq!(
        o.events,
        [
            Ev::Info(100),
            Ev::Info(102),
            Ev::Info(103),
            Ev::Head(200),
            data(b"ok"),
            Ev::End
        ]
    );
}

#[test]
fn switching_protocols_hands_the_stream_back() {
    let o = get(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00").unwrap();
    assert_eq!(o.events, [Ev::Head(101), Ev::End]);
    assert_eq!((o.left, o.reuse), (2, None));
}

#[test]
fn eof_inside_content_length_is_truncated() {
    let r = get(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello");
    assert_eq!(
        r,
        Err(Error::Truncated {
            got: 5,
            expected: 100
        })
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "response truncated: got 5 of 100 body bytes"
    );
}

#[test]
fn close_delimited_body_ends_at_eof() {
    let o = get(b"HTTP/1.1 200 OK\r\n\r\nall of it").unwrap();
    assert_eq!(o.events, [Ev::Head(200), data(b"all of it"), Ev::End]);
    assert_eq!(o.reuse, None);
}

#[test]
fn eof_before_and_inside_the_head() {
    assert_eq!(get(b""), Err(Error::NoResponse));
    assert!(get(b"").unwrap_err().is_no_response());
    assert_eq!(
        get(b"HTTP/1.1 200 OK\r\nContent-"),
        Err(Error::TruncatedHead)
    );
}

#[test]
fn head_size_and_field_count_are_bounded() {
    let mut big = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    big.extend(vec![b'a'; 70 * 1024]);
    assert_eq!(
        run(RequestKind::Other, &[&big], false),
        Err(Error::HeadTooLarge { limit: 64 * 1024 })
    );
    big.extend(b"\r\n\r\n");
    assert_eq!(get(&big), Err(Error::HeadTooLarge { limit: 64 * 1024 }));
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..101 {
        many.extend(format!("X-{i}: v\r\n").bytes());
    }
    many.extend(b"\r\n");
    assert_eq!(get(&many), Err(Error::TooManyHeaders { limit: 100 }));
    let limits = Limits {
        max_head: 1 << 20,
        max_headers: 200,
    };
    assert!(run_limits(RequestKind::Other, &[&many], true, limits).is_ok());
}

#[test]
fn obs_fold_is_rejected() {
    assert!(matches!(
        get(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
        Err(Error::BadHead(_))
    ));
}

#[test]
fn bare_lf_head_accepted() {
    let o = get(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi").unwrap();
    assert_eq!(o.events, [Ev::Head(200), data(b"hi"), Ev::End]);
}

#[test]
fn leading_empty_lines_are_skipped() {
    let o = get(b"\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n").unwrap();
    assert_eq!(o.events, [Ev::Head(204), Ev::End]);
}

#[test]
fn not_http1_is_an_error() {
    for input in [
        &b"SSH-2.0-OpenSSH_9.2\r\n\r\n"[..],
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
    ] {
        assert!(matches!(get(input), Err(Error::BadHead(_))), "{input:?}");
    }
}

#[test]
fn bytes_after_the_end_are_left_for_the_caller() {
    let o = get(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA").unwrap();
    assert_eq!(o.events, [Ev::Head(200), data(b"hi"), Ev::End]);
    assert_eq!(o.left, 5, "the caller sees the poison and does not reuse");
}

#[test]
fn decoder_after_error_stays_failed() {
    let mut d = ResponseDecoder::new(RequestKind::Other, Limits::default());
    assert!(
        d.decode(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
            .is_err()
    );
    assert_eq!(d.decode(b"more").unwrap(), (0, None));
    assert_eq!(d.finish().unwrap(), None);
    assert_eq!(d.reuse(), None);
}

/// Valid responses covering each framing.
fn valid_responses() -> Vec<(RequestKind, &'static [u8])> {
    vec![
        (RequestKind::Other, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        (
            RequestKind::Other,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n4\r\n abc\r\n0\r\nT: 1\r\n\r\nEXTRA",
        ),
        (RequestKind::Other, b"HTTP/1.0 200 OK\r\n\r\nclose delimited body"),
        (RequestKind::Head, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"),
        (RequestKind::Connect, b"HTTP/1.1 200 OK\r\n\r\ntunnel"),
        (RequestKind::Other, b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n1\nx\n0\n\n"),
        // Leading empty lines (skipped), which a split can cut anywhere.
        (RequestKind::Other, b"\r\n\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
    ]
}

/// Splits `input` at the given cut points.
fn split<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for c in cuts {
        out.push(&input[at..c]);
        at = c;
    }
    out.push(&input[at..]);
    out
}

proptest! {
    #[test]
    fn any_split_gives_the_same_events(which in 0usize..7, cuts in prop::collection::vec(any::<usize>(), 0..40)) {
        let (kind, input) = valid_responses()[which];
        let want = whole(kind, input).unwrap();
        let got = run(kind, &split(input, &cuts), true).unwrap();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn byte_at_a_time_gives_the_same_events(which in 0usize..7) {
        let (kind, input) = valid_responses()[which];
        let pieces: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(run(kind, &pieces, true).unwrap(), whole(kind, input).unwrap());
    }

    #[test]
    fn arbitrary_input_never_panics_and_splits_agree(
        prefix in 0usize..4,
        body in prop::collection::vec(any::<u8>(), 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let heads: [&[u8]; 4] = [
            b"",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
        ];
        let mut input = heads[prefix].to_vec();
        input.extend(body);
        let a = whole(RequestKind::Other, &input);
        let b = run(RequestKind::Other, &split(&input, &cuts), true);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn requests_round_trip_through_a_parser(
        method in "[A-Z]{1,10}",
        path in "/[a-zA-Z0-9._~%!$&'()*+,;=:@/?-]{0,40}",
        headers in prop::collection::vec(("[A-Za-z0-9-]{1,20}", "[ -~]{0,40}"), 0..20),
        len in prop::option::of(0u64..1_000_000),
    ) {
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("transfer-encoding"))
            .map(|(n, v)| (n, v.trim().to_owned()))
            .collect();
        let framing = len.map_or(Framing::None, Framing::Length);
        let mut out = Vec::new();
        encode_head(&mut out, &method, &path, &headers, framing).unwrap();
        let mut hs = vec![httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut hs);
        let n = req.parse(&out).unwrap();
        prop_assert_eq!(n, httparse::Status::Complete(out.len()));
        prop_assert_eq!(req.method, Some(method.as_str()));
        prop_assert_eq!(req.path, Some(path.as_str()));
        let mut want: Vec<(String, Vec<u8>)> = headers.iter().map(|(n, v)| (n.clone(), v.clone().into_bytes())).collect();
        if let Some(l) = len {
            want.push(("Content-Length".into(), l.to_string().into_bytes()));
        }
        let got: Vec<(String, Vec<u8>)> = req.headers.iter().map(|h| (h.name.to_owned(), h.value.to_vec())).collect();
        prop_assert_eq!(got, want);
    }
}
