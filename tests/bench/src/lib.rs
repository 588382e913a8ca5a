//! Shared helpers of netkit's end-to-end TCP benchmark (`cargo xtask bench tcp`).
//!
//! Three binaries live beside this library:
//!
//! - `bench-server --kind KIND --port 0`: a pure echo server (netkit's blocking loop,
//!   netkit's smol driver, tokio current-thread and multi-thread, std threads);
//! - `bench-load`: a single-threaded epoll load generator (echo, bulk, idle);
//! - `bench-tcp`: the runner that pins, alternates and compares them (and Bun).
//!
//! Everything here is Linux-only: `/proc`, `epoll` and `sched_setaffinity`.

pub mod proc;

use std::fs;
use std::io;
use std::time::Duration;

/// Raises `RLIMIT_NOFILE`'s soft limit to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(lim.rlim_cur)
}

/// Kernel clock ticks per second (the unit of `utime`/`stime` in `/proc/PID/stat`).
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// `utime + stime` of a whole process (all its threads), in clock ticks.
pub fn proc_cpu_ticks(pid: u32) -> io::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_cpu_ticks(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad /proc/PID/stat"))
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name (field 2)
/// is in parentheses and may contain spaces, so fields are counted after the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A process's CPU time (`utime + stime`) as a duration.
pub fn proc_cpu_time(pid: u32) -> io::Result<Duration> {
    let ticks = proc_cpu_ticks(pid)?;
    Ok(Duration::from_secs_f64(ticks as f64 / clk_tck() as f64))
}

/// Machine-wide CPU time from the `cpu` line of `/proc/stat`, in clock ticks:
/// `(busy, steal)` where busy is user + nice + system + irq + softirq (guest time
/// is included in user) and steal is time the hypervisor gave to someone else.
pub fn machine_cpu_ticks() -> io::Result<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat")?;
    parse_machine_cpu_ticks(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad /proc/stat"))
}

/// `(busy, steal)` from the text of `/proc/stat`; see [`machine_cpu_ticks`].
pub fn parse_machine_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    Some((get(0) + get(1) + get(2) + get(5) + get(6), get(7)))
}

/// `VmRSS` of a process from `/proc/PID/status`, in KiB.
pub fn proc_rss_kib(pid: u32) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_field(&status, "VmRSS:")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))
}

/// Number of threads of a process from `/proc/PID/status`.
pub fn proc_threads(pid: u32) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_field(&status, "Threads:")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Threads"))
}

/// The first number after `field` in a `/proc/PID/status` text.
pub fn parse_status_field(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// CPU time (user + system) used by the calling process so far.
pub fn self_cpu_time() -> Duration {
    // SAFETY: getrusage writes only into the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The CPUs the calling process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity writes only into the zeroed set we pass.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// A CPU set holding exactly `cpu`, for [`set_affinity`].
pub fn cpu_set_of(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only touch the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        set
    }
}

/// Pins the calling thread (and, before `exec`, the whole future process) to `set`.
/// Async-signal-safe: a single syscall, usable in `pre_exec`.
pub fn set_affinity(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: sched_setaffinity only reads the set.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to SIGKILL the calling process when its parent dies, so a
/// killed runner leaves no servers behind. Async-signal-safe.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes plain integers.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Modulus of the byte pattern the load generator sends (a prime, so the pattern
/// does not line up with power-of-two chunk sizes).
pub const PATTERN_MOD: usize = 251;

/// `len` bytes of the pattern, starting at stream position 0: byte `i` is `i % 251`.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % PATTERN_MOD) as u8).collect()
}

/// The median of `xs` (mean of the middle two for an even count); `None` if empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_name() {
        let s = "1234 (a b) c) S 1 1 1 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 3 0 100 1000 50";
        assert_eq!(parse_stat_cpu_ticks(s), Some(22));
    }

    #[test]
    fn status_fields() {
        let s = "Name:\tx\nVmRSS:\t  1234 kB\nThreads:\t3\n";
        assert_eq!(parse_status_field(s, "VmRSS:"), Some(1234));
        assert_eq!(parse_status_field(s, "Threads:"), Some(3));
    }

    #[test]
    fn proc_stat_cpu_line() {
        let s = "cpu  10 1 5 100 2 3 4 7 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(parse_machine_cpu_ticks(s), Some((23, 7)));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn own_stat_parses() {
        assert!(proc_cpu_ticks(std::process::id()).is_ok());
        assert!(proc_rss_kib(std::process::id()).unwrap() > 0);
    }
}

/// criterion's median (ns) for `group/id` under `dir` (`TARGET/criterion`).
pub fn criterion_median(dir: &std::path::Path, group: &str, id: &str) -> Option<f64> {
    let text = fs::read_to_string(dir.join(group).join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// `a / b` as `1.23x`, or `-` when either is missing.
pub fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// A child process's cost: wall time, CPU (user + system) and peak RSS.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// From spawn to exit.
    pub wall: Duration,
    /// User plus system time.
    pub cpu: Duration,
    /// Peak resident set, KiB.
    pub max_rss_kib: u64,
}

/// Runs `cmd` to its end (killed after `limit`) and measures it with
/// `wait4`; an error if it fails.
pub fn run_measured(cmd: &mut std::process::Command, limit: Duration) -> Result<Cost, String> {
    use std::os::unix::process::ExitStatusExt;
    let start = std::time::Instant::now();
    let child = cmd.spawn().map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            // SAFETY: kill only sends a signal to our own child's pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut status = 0;
    // SAFETY: wait4 writes only into the status and the zeroed rusage we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::wait4(pid, &mut status, 0, &mut ru);
        ru
    };
    let wall = start.elapsed();
    let _ = tx.send(());
    let _ = watchdog.join();
    // The child was reaped by wait4: forget it without waiting again.
    std::mem::forget(child);
    let st = std::process::ExitStatus::from_raw(status);
    if !st.success() {
        return Err(format!("{cmd:?} failed: {st}"));
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Cost {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss as u64,
    })
}
