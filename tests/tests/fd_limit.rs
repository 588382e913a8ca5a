//! A server at its descriptor limit (EMFILE): both drivers, in a process of
//! their own under `ulimit -n`, neither spin on the readable listener nor
//! drop the clients waiting in the accept queue; they accept them as soon as a
//! connection closes (the accept gate of netkit-socket).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use netkit_tests::peer::Peer;
use netkit_tests::servers::Driver;
use netkit_tests::{bin, parse_listening};

const LIMIT: Duration = Duration::from_secs(20);

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn echo_once(c: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    c.write_all(msg).unwrap();
    let mut buf = vec![0; msg.len()];
    c.read_exact(&mut buf).unwrap();
    buf
}

fn at_the_fd_limit(d: Driver) {
    let which = match d {
        Driver::Blocking => "blocking",
        Driver::Smol => "smol",
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "ulimit -n 64 && exec {} {which}",
        bin("netkit-echo").display()
    ));
    let srv = Peer::spawn("netkit-echo", cmd).expect("spawn");
    let line = srv
        .next_line(LIMIT)
        .unwrap_or_else(|| panic!("no first line: {}", srv.stderr()));
    let addr = parse_listening(&line).expect("listening line");
    // Fill every descriptor the server has: each accepted connection echoes.
    let mut open = Vec::new();
    loop {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        c.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        match c.read(&mut b) {
            Ok(1) => open.push(c),
            // Not accepted: the server is at its limit; this one waits in the queue.
            _ => {
                c.set_read_timeout(Some(LIMIT)).unwrap();
                open.push(c);
                break;
            }
        }
        assert!(open.len() < 200, "no descriptor limit reached");
    }
    let waiting = open.pop().unwrap();
    // At the limit, the listener stays readable: the server must not spin.
    let before = cpu_ticks(srv.pid());
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(srv.pid()) - before;
    assert!(
        spent < 20,
        "{which}: {spent} ticks of CPU in 1 s at the fd limit"
    );
    // A connection closes: the waiting client is accepted and served.
    drop(open.pop());
    let mut waiting = waiting;
    let mut b = [0u8; 1];
    waiting
        .read_exact(&mut b)
        .expect("the queued client is served");
    assert_eq!(&b, b"x");
    assert_eq!(
        echo_once(&mut waiting, b"after the limit"),
        b"after the limit"
    );
    // The others still work.
    assert_eq!(echo_once(&mut open[0], b"still"), b"still");
}

netkit_tests::both_drivers!(at_the_fd_limit);
