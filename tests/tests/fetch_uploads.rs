//! Request bodies streamed as they are sent (`Upload`: a file or a reader),
//! on both drivers and the CLI, against nginx's WebDAV PUT (the body lands
//! on disk, compared byte for byte): Content-Length for files, chunked for
//! readers, TLS, a 307 that resends a file from its first byte and refuses
//! to resend a reader, and a reader that is read only as the connection
//! takes its bytes.

use std::io::{Read, Write};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netkit_fetch::{ClientConfig, Request, Url};
use netkit_smol::Runtime;
use netkit_tests::bin;
use netkit_tests::http::Nginx;
use netkit_tests::peer::{TempDir, run_bounded};
use netkit_tests::pki::Pki;

const LIMIT: Duration = Duration::from_secs(60);

fn config(pki: &Pki) -> ClientConfig {
    netkit_tests::http::client_config(pki)
}

fn put(url: &str) -> Request {
    Request::new("PUT", Url::parse(url).unwrap())
}

/// `len` bytes no two runs of 251 alike.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn stored(ng: &Nginx, name: &str) -> Vec<u8> {
    std::fs::read(ng.root.join("upload").join(name))
        .unwrap_or_else(|e| panic!("upload/{name} not stored: {e}"))
}

#[test]
fn uploads_reach_nginx_whole_on_both_drivers() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let dir = TempDir::new("nk-upload").unwrap();
    let body = payload(3 << 20);
    let file = dir.path().join("body.bin");
    std::fs::write(&file, &body).unwrap();
    let http = |name: &str| format!("http://{}/upload/{name}", ng.http);
    let https = |name: &str| format!("https://localhost:{}/upload/{name}", ng.https.port());

    use netkit_blocking::fetch::{Upload, fetch_upload};
    let r = fetch_upload(
        config(&pki),
        put(&http("b-file.bin")),
        Upload::file(&file).unwrap(),
    )
    .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text());
    let r = fetch_upload(
        config(&pki),
        put(&http("b-reader.bin")),
        Upload::reader(std::io::Cursor::new(body.clone()), None),
    )
    .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text());
    let r = fetch_upload(
        config(&pki),
        put(&https("b-tls.bin")),
        Upload::file(&file).unwrap(),
    )
    .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text());

    let client = Runtime::new().http_client(config(&pki));
    smol::block_on(async {
        use netkit_smol::fetch::Upload;
        let r = client
            .fetch_upload(put(&http("s-file.bin")), Upload::file(&file).await.unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = client
            .fetch_upload(
                put(&https("s-reader.bin")),
                Upload::reader(futures_lite::io::Cursor::new(body.clone()), None),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    });
    for name in [
        "b-file.bin",
        "b-reader.bin",
        "b-tls.bin",
        "s-file.bin",
        "s-reader.bin",
    ] {
        assert!(stored(&ng, name) == body, "upload/{name} differs");
    }
    // Files went with Content-Length, readers chunked: nginx logged each
    // PUT once, with 201. It writes a line after the response has gone, so
    // the last one may still be on its way: wait for it, bounded.
    let puts = || {
        ng.log()
            .iter()
            .filter(|l| l.contains(" PUT /upload/") && l.ends_with(" 201"))
            .count()
    };
    let end = std::time::Instant::now() + LIMIT;
    while puts() < 5 && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(puts(), 5, "{:?}", ng.log());
}

#[test]
fn a_307_resends_a_file_and_refuses_to_resend_a_reader() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let dir = TempDir::new("nk-upload").unwrap();
    let body = payload(200_000);
    let file = dir.path().join("body.bin");
    std::fs::write(&file, &body).unwrap();
    let url = format!("http://{}/put-redirect", ng.http);

    use netkit_blocking::fetch::{Upload, fetch_upload};
    let r = fetch_upload(config(&pki), put(&url), Upload::file(&file).unwrap()).unwrap();
    assert_eq!(r.status(), 201);
    assert!(stored(&ng, "redirected.bin") == body);
    let e = fetch_upload(
        config(&pki),
        put(&url),
        Upload::reader(std::io::Cursor::new(body.clone()), None),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("http: request body: a 307 redirect must send the body again"),
        "{e}"
    );

    // The CLI streams --data-file, and follows the 307 with it too.
    std::fs::remove_file(ng.root.join("upload/redirected.bin")).unwrap();
    let mut cmd = Command::new(bin("netkit"));
    cmd.args(["fetch", "-X", "PUT", "--data-file"])
        .arg(&file)
        .arg(&url);
    let (code, _, err) = run_bounded(&mut cmd, b"", LIMIT);
    assert_eq!(code, 0, "{err}");
    assert!(stored(&ng, "redirected.bin") == body);
}

/// A reader that counts what was taken from it: 64 MiB of a pattern.
struct Counting {
    taken: Arc<AtomicUsize>,
    left: usize,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(self.fill(buf))
    }
}

impl futures_lite::AsyncRead for Counting {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(self.get_mut().fill(buf)))
    }
}

impl Counting {
    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.left);
        let at = self.taken.load(Ordering::SeqCst);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = ((at + i) % 251) as u8;
        }
        self.left -= n;
        self.taken.fetch_add(n, Ordering::SeqCst);
        n
    }
}

/// A server that reads a request head, waits for `go`, then reads and
/// checks a `total`-byte pattern body and answers `ok`; returns the bytes
/// it read.
fn patient_sink(
    total: usize,
) -> (
    String,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<usize>,
) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sink", l.local_addr().unwrap());
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            c.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(
            head.contains(&format!("Content-Length: {total}\r\n")),
            "{head}"
        );
        wait.recv().unwrap();
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        while got < total {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "EOF after {got} bytes");
            for (i, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, ((got + i) % 251) as u8, "byte {}", got + i);
            }
            got += n;
        }
        c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
        got
    });
    (url, go, server)
}

/// While the server reads nothing, the upload is read no further than the
/// machine's window and the kernel's socket buffers; once the server reads,
/// every byte arrives, in order.
#[test]
fn an_upload_is_read_only_as_the_connection_takes_it() {
    const TOTAL: usize = 64 << 20;
    let (url, go, server) = patient_sink(TOTAL);
    let taken = Arc::new(AtomicUsize::new(0));
    let reader = Counting {
        taken: taken.clone(),
        left: TOTAL,
    };
    let pki = Pki::new();
    let cfg = config(&pki);
    let client = std::thread::spawn(move || {
        use netkit_blocking::fetch::{Upload, fetch_upload};
        fetch_upload(cfg, put(&url), Upload::reader(reader, Some(TOTAL as u64)))
    });
    // Nobody reads: only the window and the socket buffers can fill.
    assert_held_back(&taken);
    go.send(()).unwrap();
    assert_eq!(server.join().unwrap(), TOTAL);
    let r = client.join().unwrap().unwrap();
    assert_eq!((r.status(), r.text().as_str()), (200, "ok"));
    assert_eq!(taken.load(Ordering::SeqCst), TOTAL);
}

/// Checks what the upload has read once it started (waited for, bounded,
/// so a slow machine does not fail it) and then had half a second to run
/// on while nobody reads: something, and no more than the window and the
/// socket buffers hold.
fn assert_held_back(taken: &AtomicUsize) {
    let end = std::time::Instant::now() + LIMIT;
    while taken.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(500));
    let held = taken.load(Ordering::SeqCst);
    assert!(held > 0, "the upload never started");
    assert!(
        held < 24 << 20,
        "{held} bytes read while the server read none"
    );
}

/// The same bound on smol: the upload future reads only while the
/// connection task has taken what it wrote.
#[test]
fn a_smol_upload_is_read_only_as_the_connection_takes_it() {
    const TOTAL: usize = 64 << 20;
    let (url, go, server) = patient_sink(TOTAL);
    let taken = Arc::new(AtomicUsize::new(0));
    let reader = Counting {
        taken: taken.clone(),
        left: TOTAL,
    };
    let pki = Pki::new();
    let client = Runtime::new().http_client(config(&pki));
    let t = taken.clone();
    let watcher = std::thread::spawn(move || {
        assert_held_back(&t);
        go.send(()).unwrap();
    });
    let r = smol::block_on(async {
        use netkit_smol::fetch::Upload;
        let r = client
            .fetch_upload(put(&url), Upload::reader(reader, Some(TOTAL as u64)))
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    });
    // The watcher's assertions fail the test through its join.
    watcher.join().unwrap();
    assert_eq!(server.join().unwrap(), TOTAL);
    assert_eq!(r, (200, "ok".to_owned()));
    assert_eq!(taken.load(Ordering::SeqCst), TOTAL);
}
