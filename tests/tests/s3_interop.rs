//! `netkit fetch s3://` against a real S3-compatible server: s3s-fs (the
//! s3s project's file-system backend, which verifies SigV4 signatures with
//! the access and secret keys it is started with). Objects land as files
//! under its root, so the tests check the key the server understood too.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use netkit_tests::peer::{Peer, TempDir, have, run_bounded, wait_tcp};

const LIMIT: Duration = Duration::from_secs(60);
const BUCKET: &str = "netkit-test";

/// s3s-fs on a loopback port picked now, with keys `AK`/`SK` and one bucket.
struct S3 {
    _peer: Peer,
    endpoint: String,
    dir: TempDir,
}

impl S3 {
    fn start() -> Option<Self> {
        if !have("s3s-fs", "--version") {
            return None;
        }
        let dir = TempDir::new("nk-s3").expect("temp dir");
        std::fs::create_dir_all(dir.path().join(BUCKET)).expect("bucket");
        let port = netkit_tests::free_port();
        let mut cmd = Command::new("s3s-fs");
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "AK", "--secret-key", "SK"])
            .arg(dir.path());
        let peer = Peer::spawn("s3s-fs", cmd).expect("spawn s3s-fs");
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        assert!(
            wait_tcp(addr, LIMIT),
            "s3s-fs never listened: {}",
            peer.stderr()
        );
        Some(Self {
            _peer: peer,
            endpoint: format!("http://{addr}"),
            dir,
        })
    }

    fn object(&self, key: &str) -> std::path::PathBuf {
        self.dir.path().join(BUCKET).join(key)
    }
}

/// `netkit fetch ARGS` with exactly `env` as S3/AWS environment.
fn fetch(args: &[&str], env: &[(&str, &str)]) -> (i32, Vec<u8>, String) {
    let mut cmd = Command::new(netkit_tests::bin("netkit"));
    cmd.arg("fetch").args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("S3_")
            || k.starts_with("AWS_")
            || k.ends_with("_proxy")
            || k.ends_with("_PROXY")
        {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let (code, out, err) = run_bounded(&mut cmd, b"", LIMIT);
    (code, out, err.trim().to_owned())
}

fn url(key: &str) -> String {
    format!("s3://{BUCKET}/{key}")
}

/// PUT from `-d` and `--data-file`, GET, HEAD, DELETE, keys with spaces,
/// `+` and non-ASCII (encoded once: the server stores the key as written),
/// both variable families, and what the server says to a wrong secret.
#[test]
fn object_operations_against_s3s_fs() {
    let Some(s3) = S3::start() else { return };
    let env = [
        ("S3_ACCESS_KEY_ID", "AK"),
        ("S3_SECRET_ACCESS_KEY", "SK"),
        ("S3_ENDPOINT", s3.endpoint.as_str()),
        ("S3_REGION", "us-east-1"),
    ];
    // PUT (the default method with a body), then GET it back.
    let key = "dir/a b+c ünï.txt";
    let (code, _, err) = fetch(&["-d", "hello s3", &url(key)], &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(s3.object(key)).unwrap(),
        b"hello s3",
        "stored under the key as written"
    );
    let (code, out, err) = fetch(&["--fail", &url(key)], &env);
    assert_eq!((code, out.as_slice()), (0, &b"hello s3"[..]), "{err}");

    // A binary body from a file, through the AWS_ names and the SDKs' endpoint
    // variable, without a region (signed for `auto`).
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = s3.dir.path().join("upload.bin");
    std::fs::write(&file, &data).unwrap();
    let aws = [
        ("AWS_ACCESS_KEY_ID", "AK"),
        ("AWS_SECRET_ACCESS_KEY", "SK"),
        ("AWS_ENDPOINT_URL", s3.endpoint.as_str()),
    ];
    let (code, _, err) = fetch(
        &[
            "-X",
            "PUT",
            "--data-file",
            file.to_str().unwrap(),
            &url("bin/data.bin"),
        ],
        &aws,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(s3.object("bin/data.bin")).unwrap(), data);
    let (code, out, err) = fetch(&["--fail", &url("bin/data.bin")], &aws);
    assert_eq!(code, 0, "{err}");
    assert!(out == data, "GET returned {} bytes", out.len());

    // HEAD: the head, no body.
    let (code, out, err) = fetch(&["-i", "-X", "HEAD", &url(key)], &env);
    assert_eq!(code, 0, "{err}");
    let head = String::from_utf8_lossy(&out);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 8"),
        "{head}"
    );
    assert!(head.ends_with("\r\n\r\n"), "{head:?}");

    // A wrong secret: the server refuses the signature (an HTTP answer: exit
    // 0, or 22 with --fail), and the object stays.
    let wrong = [
        ("S3_ACCESS_KEY_ID", "AK"),
        ("S3_SECRET_ACCESS_KEY", "not-the-secret"),
        ("S3_ENDPOINT", s3.endpoint.as_str()),
    ];
    let (code, out, _) = fetch(&["-i", "-X", "DELETE", &url(key)], &wrong);
    assert_eq!(code, 0);
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 403"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(fetch(&["--fail", "-X", "DELETE", &url(key)], &wrong).0, 22);
    assert!(s3.object(key).exists());

    // DELETE, then GET is a 404.
    let (code, _, err) = fetch(&["--fail", "-X", "DELETE", &url(key)], &env);
    assert_eq!(code, 0, "{err}");
    assert!(!Path::new(&s3.object(key)).exists());
    let (code, _, err) = fetch(&["--fail", &url(key)], &env);
    assert_eq!(code, 22, "{err}");
}

/// What is refused before any request: no credentials, another method, a
/// URL without a key (each `netkit: error: s3: ...`, exit 1).
#[test]
fn s3_errors_before_any_request() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (&["s3://bucket/key"], &[], "s3: no credentials"),
        (
            &["s3://bucket/key"],
            &[("S3_ACCESS_KEY_ID", "AK")],
            "s3: no credentials",
        ),
        (
            &["-X", "POST", "s3://bucket/key"],
            &[("S3_ACCESS_KEY_ID", "AK"), ("S3_SECRET_ACCESS_KEY", "SK")],
            "s3: unsupported method POST",
        ),
        (
            &["s3://bucket"],
            &[("S3_ACCESS_KEY_ID", "AK"), ("S3_SECRET_ACCESS_KEY", "SK")],
            "s3: invalid URL",
        ),
    ];
    for (args, env, want) in cases {
        let (code, out, err) = fetch(args, env);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(out.is_empty());
        assert!(
            err.starts_with(&format!("netkit: error: {want}")),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
