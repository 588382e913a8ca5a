use std::time::Duration;

use super::*;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn signer() -> Signer<'static> {
    Signer {
        access_key_id: AKID,
        secret_access_key: SECRET,
        region: "us-east-1",
        service: "s3",
        amz_date: "20130524T000000Z".into(),
    }
}

fn signature(auth: &str) -> &str {
    auth.rsplit("Signature=").next().unwrap()
}

/// The published SigV4 examples for S3 (header-based authentication): the
/// same keys, requests and time give the same signatures.
#[test]
fn the_published_s3_examples() {
    let s = signer();
    let host = ("Host", "examplebucket.s3.amazonaws.com");
    let date = ("x-amz-date", "20130524T000000Z");
    // GET Object with a Range header.
    let auth = s.authorization(
        "GET",
        "/test.txt",
        "",
        &[
            host,
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            date,
        ],
        EMPTY_SHA256,
    );
    assert_eq!(
        auth,
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    // PUT Object: a signed Date header, a storage class, the body's hash, and
    // a `$` in the key encoded as sent.
    let body = hex_sha256(b"Welcome to Amazon S3.");
    assert_eq!(
        body,
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    );
    let auth = s.authorization(
        "PUT",
        "/test%24file.text",
        "",
        &[
            ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
            host,
            ("x-amz-content-sha256", &body),
            date,
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ],
        &body,
    );
    assert_eq!(
        signature(&auth),
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    );
    // A bare query name (GET Bucket Lifecycle).
    let auth = s.authorization(
        "GET",
        "/",
        "lifecycle",
        &[host, ("x-amz-content-sha256", EMPTY_SHA256), date],
        EMPTY_SHA256,
    );
    assert_eq!(
        signature(&auth),
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
    );
    // A query sorted by name (ListObjects).
    let auth = s.authorization(
        "GET",
        "/",
        "prefix=J&max-keys=2",
        &[host, ("x-amz-content-sha256", EMPTY_SHA256), date],
        EMPTY_SHA256,
    );
    assert_eq!(
        signature(&auth),
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    );
}

#[test]
fn dates_in_sigv4_form() {
    let at = |s| amz_date(Duration::from_secs(s));
    assert_eq!(at(0), "19700101T000000Z");
    assert_eq!(at(1_369_353_600), "20130524T000000Z");
    assert_eq!(at(951_782_400), "20000229T000000Z");
    assert_eq!(at(1_700_000_000), "20231114T221320Z");
    assert_eq!(at(4_102_444_799), "20991231T235959Z");
}

/// An environment as (name, value) pairs.
type Env = &'static [(&'static str, &'static str)];

fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn configuration_from_the_environment() {
    assert_eq!(S3Config::from_env(env(&[])), Err(Error::NoCredentials));
    assert_eq!(
        S3Config::from_env(env(&[("S3_ACCESS_KEY_ID", "a")])),
        Err(Error::NoCredentials),
        "a key without its secret"
    );
    assert_eq!(
        S3Config::from_env(env(&[
            ("S3_ACCESS_KEY_ID", ""),
            ("S3_SECRET_ACCESS_KEY", "s")
        ])),
        Err(Error::NoCredentials),
        "empty is unset"
    );
    // S3_ wins over AWS_; AWS_ alone works; no endpoint: AWS in us-east-1.
    let c = S3Config::from_env(env(&[
        ("S3_ACCESS_KEY_ID", "s3key"),
        ("AWS_ACCESS_KEY_ID", "awskey"),
        ("AWS_SECRET_ACCESS_KEY", "awssecret"),
        ("AWS_SESSION_TOKEN", "tok"),
    ]))
    .unwrap();
    assert_eq!(c.access_key_id, "s3key");
    assert_eq!(c.secret_access_key, "awssecret");
    assert_eq!(c.session_token.as_deref(), Some("tok"));
    assert_eq!(c.region, "us-east-1");
    assert_eq!(c.endpoint.as_str(), "https://s3.us-east-1.amazonaws.com/");
    assert!(
        !format!("{c:?}").contains("awssecret"),
        "the secret is never printed"
    );
    // A region without an endpoint picks AWS's endpoint for it.
    let c = S3Config::from_env(env(&[
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_REGION", "eu-west-3"),
    ]))
    .unwrap();
    assert_eq!(c.endpoint.as_str(), "https://s3.eu-west-3.amazonaws.com/");
    // Endpoints: S3_ENDPOINT, then AWS_ENDPOINT_URL, then AWS_ENDPOINT; the
    // region guessed from an AWS host, else `auto`; no scheme is https.
    let cases: &[(Env, &str, &str)] = &[
        (
            &[
                ("S3_ENDPOINT", "http://127.0.0.1:9000"),
                ("AWS_ENDPOINT_URL", "http://x"),
            ],
            "http://127.0.0.1:9000/",
            "auto",
        ),
        (
            &[
                ("AWS_ENDPOINT_URL", "http://minio.test:9000"),
                ("AWS_ENDPOINT", "http://x"),
            ],
            "http://minio.test:9000/",
            "auto",
        ),
        (
            &[("AWS_ENDPOINT", "storage.test")],
            "https://storage.test/",
            "auto",
        ),
        (
            &[("S3_ENDPOINT", "https://s3.ap-south-1.amazonaws.com")],
            "https://s3.ap-south-1.amazonaws.com/",
            "ap-south-1",
        ),
        (
            &[("S3_ENDPOINT", "https://s3-us-west-2.amazonaws.com")],
            "https://s3-us-west-2.amazonaws.com/",
            "us-west-2",
        ),
        (
            &[("S3_ENDPOINT", "https://s3.amazonaws.com")],
            "https://s3.amazonaws.com/",
            "auto",
        ),
        (
            &[
                ("S3_ENDPOINT", "http://127.0.0.1:9000"),
                ("S3_REGION", "r1"),
                ("AWS_REGION", "r2"),
            ],
            "http://127.0.0.1:9000/",
            "r1",
        ),
    ];
    for (extra, endpoint, region) in cases {
        let e = env(extra);
        let c = S3Config::from_env(|k| match k {
            "S3_ACCESS_KEY_ID" => Some("k".into()),
            "S3_SECRET_ACCESS_KEY" => Some("s".into()),
            _ => e(k),
        })
        .unwrap();
        assert_eq!(
            (c.endpoint.as_str(), c.region.as_str()),
            (*endpoint, *region),
            "{extra:?}"
        );
    }
    let bad = S3Config::from_env(env(&[
        ("S3_ACCESS_KEY_ID", "k"),
        ("S3_SECRET_ACCESS_KEY", "s"),
        ("S3_ENDPOINT", "ftp://files.test"),
    ]));
    assert!(matches!(bad, Err(Error::Endpoint(..))), "{bad:?}");
}

fn config() -> S3Config {
    S3Config::from_env(env(&[
        ("S3_ACCESS_KEY_ID", AKID),
        ("S3_SECRET_ACCESS_KEY", SECRET),
        ("S3_ENDPOINT", "http://127.0.0.1:9000/prefix/"),
        ("S3_REGION", "us-east-1"),
    ]))
    .unwrap()
}

#[test]
fn keys_are_encoded_once_path_style() {
    let c = config();
    let url = |u| c.url(u).map(|u| u.to_string());
    assert_eq!(
        url("s3://b/k.txt").unwrap(),
        "http://127.0.0.1:9000/prefix/b/k.txt"
    );
    assert_eq!(
        url("s3://b/a b+c.txt").unwrap(),
        "http://127.0.0.1:9000/prefix/b/a%20b%2Bc.txt"
    );
    assert_eq!(
        url("s3://b/dir/sub/x~y_z-1.bin").unwrap(),
        "http://127.0.0.1:9000/prefix/b/dir/sub/x~y_z-1.bin"
    );
    assert_eq!(
        url("s3://b/%41?#").unwrap(),
        "http://127.0.0.1:9000/prefix/b/%2541%3F%23",
        "never decoded"
    );
    assert_eq!(
        url("s3://b/ünï").unwrap(),
        "http://127.0.0.1:9000/prefix/b/%C3%BCn%C3%AF"
    );
    assert_eq!(
        url("s3://b/a\nb").unwrap(),
        "http://127.0.0.1:9000/prefix/b/a%0Ab"
    );
    for bad in [
        "http://b/k",
        "s3://b",
        "s3://b/",
        "s3:///k",
        "s3://a b/k",
        "s3://b/a/../k",
        "s3://b/./k",
        "s3://b/k/.",
    ] {
        assert!(matches!(c.url(bad), Err(Error::Url(..))), "{bad:?}");
    }
}

#[test]
fn requests_are_signed_over_what_is_sent() {
    let c = config();
    let now = Duration::from_secs(1_369_353_600);
    let r = c
        .request("put", "s3://b/a b.txt", Some(b"hello".to_vec()), now)
        .unwrap();
    assert_eq!(r.method, "PUT");
    assert_eq!(r.body, Some(netkit_fetch::Body::Bytes(b"hello".to_vec())));
    assert!(!r.decompress);
    let h = |n: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
    };
    assert_eq!(h("host").as_deref(), Some("127.0.0.1:9000"));
    assert_eq!(h("x-amz-date").as_deref(), Some("20130524T000000Z"));
    assert_eq!(h("x-amz-content-sha256").unwrap(), hex_sha256(b"hello"));
    let auth = h("authorization").unwrap();
    assert!(
        auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"),
        "{auth}"
    );
    // The signature is the one over the encoded path actually sent.
    let again = c.signer(now).authorization(
        "PUT",
        "/prefix/b/a%20b.txt",
        "",
        &[
            ("host", "127.0.0.1:9000"),
            ("x-amz-content-sha256", &hex_sha256(b"hello")),
            ("x-amz-date", "20130524T000000Z"),
        ],
        &hex_sha256(b"hello"),
    );
    assert_eq!(auth, again);

    let r = c
        .request("GET", "s3://b/k", Some(b"ignored".to_vec()), now)
        .unwrap();
    assert_eq!(r.body, None, "only PUT carries a body");
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "x-amz-content-sha256" && v == EMPTY_SHA256.as_bytes())
    );
    assert_eq!(
        c.request("POST", "s3://b/k", None, now).unwrap_err(),
        Error::Method("POST".into())
    );
    let mut t = c.clone();
    t.session_token = Some("token".into());
    let r = t.request("DELETE", "s3://b/k", None, now).unwrap();
    let auth = r
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap();
    assert!(String::from_utf8_lossy(&auth.1).contains("x-amz-date;x-amz-security-token,"));
}

/// A PUT whose body is streamed is signed exactly as the same PUT with the
/// body in memory, given the body's hash from the hasher.
#[test]
fn a_streamed_put_is_signed_as_the_same_put_in_memory() {
    let c = config();
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let now = Duration::from_secs(1_700_000_000);
    let whole = c
        .request("PUT", "s3://b/k", Some(body.clone()), now)
        .unwrap();
    let mut h = PayloadHasher::new();
    for piece in body.chunks(4096) {
        h.update(piece);
    }
    let streamed = c.put_streamed("s3://b/k", &h.finish(), now).unwrap();
    assert_eq!(streamed.headers, whole.headers);
    assert_eq!(
        (streamed.method.as_str(), &streamed.url),
        ("PUT", &whole.url)
    );
    assert!(streamed.body.is_none(), "the driver attaches the stream");
    assert!(!streamed.decompress);
    assert_eq!(PayloadHasher::new().finish(), EMPTY_SHA256);
    // Fed by io::copy, as a caller hashes a file.
    let mut h = PayloadHasher::new();
    std::io::copy(&mut body.as_slice(), &mut h).unwrap();
    assert_eq!(h.finish(), hex_sha256(&body));
}

proptest::proptest! {
    /// The hash of a body fed in any pieces is the hash of the whole.
    #[test]
    fn any_split_of_the_payload_hashes_alike(body in proptest::collection::vec(proptest::num::u8::ANY, 0..2000), cuts in proptest::collection::vec(0usize..2000, 0..8)) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
        cuts.sort_unstable();
        let mut h = PayloadHasher::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([body.len()]) {
            h.update(&body[at..c]);
            at = c;
        }
        proptest::prop_assert_eq!(h.finish(), hex_sha256(&body));
    }

    /// Any key round-trips: the encoded path decodes back to the key, and
    /// only unreserved characters, `/` and `%XX` appear in it.
    #[test]
    fn any_key_is_encoded_once(key in "\\PC{1,20}[\\x00-\\x7f]?\\PC{0,20}") {
        let c = config();
        proptest::prop_assume!(!key.split('/').any(|s| s == "." || s == ".."));
        let url = c.url(&format!("s3://b/{key}")).unwrap();
        let path = url.path().strip_prefix("/prefix/b/").unwrap().to_owned();
        proptest::prop_assert!(path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~/%".contains(&b)), "{}", path);
        let decoded = percent_encoding::percent_decode_str(&path).decode_utf8().unwrap();
        proptest::prop_assert_eq!(decoded, key);
    }
}
