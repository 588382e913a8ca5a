//! `netkit dns`: node's `dns.promises` on the blocking loop's resolver, with
//! node's JSON shapes and error codes (shared/CLI.md).

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use clap::{Args, Subcommand};
use netkit_blocking::EventLoop;
use netkit_dns::{Answer, Family, RecordData, Rtype};
use netkit_sys::Resolver;
use netkit_sys::resolve::{DnsSettings, HostsFile, parse_server};

use crate::Failure;

#[derive(Debug, Args)]
pub(crate) struct DnsArgs {
    #[command(subcommand)]
    cmd: DnsCmd,
    /// Ask this server (repeatable) instead of the resolv.conf name servers;
    /// port 53 by default.
    #[arg(long = "server", value_name = "IP[:PORT]", value_parser = server_arg, global = true)]
    servers: Vec<SocketAddr>,
    /// Per-try timeout, in milliseconds.
    #[arg(long, value_name = "MS", global = true)]
    timeout: Option<u64>,
    /// Tries per server.
    #[arg(long, value_name = "N", global = true)]
    tries: Option<u8>,
}

#[derive(Debug, Subcommand)]
enum DnsCmd {
    /// IPv4 addresses of NAME (`["192.0.2.10"]`).
    Resolve4 {
        /// The name.
        name: String,
        /// Give each address with its TTL.
        #[arg(long)]
        ttl: bool,
    },
    /// IPv6 addresses of NAME.
    Resolve6 {
        /// The name.
        name: String,
        /// Give each address with its TTL.
        #[arg(long)]
        ttl: bool,
    },
    /// Records of NAME of TYPE (A by default).
    Resolve {
        /// The name.
        name: String,
        /// A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT, CAA, NAPTR or ANY.
        #[arg(value_name = "TYPE", value_parser = type_arg, default_value = "A")]
        rtype: Rtype,
    },
    /// Names of an IP address (PTR).
    Reverse {
        /// The address.
        ip: String,
    },
    /// An address of NAME as getaddrinfo finds it (hosts file, then DNS).
    Lookup {
        /// The name.
        name: String,
        /// Every address, not just the first.
        #[arg(long)]
        all: bool,
        /// Only IPv4 (4) or IPv6 (6).
        #[arg(long, value_parser = family_arg)]
        family: Option<Family>,
    },
}

/// `IP[:PORT]` for `--server` / `--dns-server`.
pub(crate) fn server_arg(s: &str) -> Result<SocketAddr, String> {
    parse_server(s).ok_or_else(|| format!("not an IP address with an optional port: {s:?}"))
}

fn type_arg(s: &str) -> Result<Rtype, String> {
    Rtype::parse(s).ok_or_else(|| {
        format!("unknown record type {s:?} (A AAAA CNAME MX NS PTR SOA SRV TXT CAA NAPTR ANY)")
    })
}

fn family_arg(s: &str) -> Result<Family, String> {
    match s {
        "4" => Ok(Family::V4),
        "6" => Ok(Family::V6),
        _ => Err("4 or 6".into()),
    }
}

/// The resolver the environment configures, with these overrides.
pub(crate) fn resolver(
    servers: &[SocketAddr],
    timeout: Option<Duration>,
    tries: Option<u8>,
) -> Resolver {
    let mut settings = DnsSettings::from_env();
    if !servers.is_empty() {
        settings.servers = Some(servers.to_vec());
    }
    if let Some(t) = timeout {
        settings.resolv_conf.timeout = t;
    }
    if let Some(n) = tries {
        settings.resolv_conf.attempts = n.max(1);
    }
    Resolver::new(HostsFile::from_env(), settings)
}

/// A JSON string.
fn js(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(","))
}

/// One record in node's shape for `resolve*` of its own type; with `typed`,
/// as `resolveAny` gives it (a `type` key first).
fn shape(data: &RecordData, ttl: u32, typed: bool) -> String {
    let ty = |fields: String| {
        if typed {
            format!("{{\"type\":{},{fields}}}", js(data.rtype().as_str()))
        } else {
            format!("{{{fields}}}")
        }
    };
    match data {
        RecordData::A(ip) if typed => {
            ty(format!("\"address\":{},\"ttl\":{ttl}", js(&ip.to_string())))
        }
        RecordData::Aaaa(ip) if typed => {
            ty(format!("\"address\":{},\"ttl\":{ttl}", js(&ip.to_string())))
        }
        RecordData::A(ip) => js(&ip.to_string()),
        RecordData::Aaaa(ip) => js(&ip.to_string()),
        RecordData::Cname(n) | RecordData::Ns(n) | RecordData::Ptr(n) => {
            if typed {
                ty(format!("\"value\":{}", js(n)))
            } else {
                js(n)
            }
        }
        RecordData::Mx { priority, exchange } => ty(format!(
            "\"exchange\":{},\"priority\":{priority}",
            js(exchange)
        )),
        RecordData::Txt(chunks) => {
            let arr = list(chunks.iter().map(|c| js(c)));
            if typed {
                ty(format!("\"entries\":{arr}"))
            } else {
                arr
            }
        }
        RecordData::Srv {
            priority,
            weight,
            port,
            name,
        } => ty(format!(
            "\"name\":{},\"port\":{port},\"priority\":{priority},\"weight\":{weight}",
            js(name)
        )),
        RecordData::Soa(s) => ty(format!(
            "\"nsname\":{},\"hostmaster\":{},\"serial\":{},\"refresh\":{},\"retry\":{},\"expire\":{},\"minttl\":{}",
            js(&s.nsname),
            js(&s.hostmaster),
            s.serial,
            s.refresh,
            s.retry,
            s.expire,
            s.minttl
        )),
        RecordData::Caa {
            critical,
            tag,
            value,
        } => ty(format!("\"critical\":{critical},{}:{}", js(tag), js(value))),
        RecordData::Naptr {
            flags,
            service,
            regexp,
            replacement,
            order,
            preference,
        } => ty(format!(
            "\"flags\":{},\"service\":{},\"regexp\":{},\"replacement\":{},\"order\":{order},\"preference\":{preference}",
            js(flags),
            js(service),
            js(regexp),
            js(replacement)
        )),
        _ => "null".into(),
    }
}

/// node's output for `resolve(name, rtype)`: a list, except SOA (one object).
fn render(answer: &Answer, rtype: Rtype) -> String {
    if rtype == Rtype::Soa {
        if let Some(r) = answer.records.first() {
            return shape(&r.data, r.ttl, false);
        }
    }
    list(
        answer
            .records
            .iter()
            .map(|r| shape(&r.data, r.ttl, rtype == Rtype::Any)),
    )
}

fn family_of(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() { 4 } else { 6 }
}

pub(crate) fn run(args: DnsArgs) -> Result<ExitCode, Failure> {
    let mut lp = EventLoop::new()?;
    *lp.resolver() = resolver(
        &args.servers,
        args.timeout.map(Duration::from_millis),
        args.tries,
    );
    let out: Rc<RefCell<Option<Result<String, String>>>> = Rc::default();
    let put = {
        let out = out.clone();
        move |r: Result<String, String>| *out.borrow_mut() = Some(r)
    };
    match args.cmd {
        DnsCmd::Resolve4 { name, ttl } => addresses(&mut lp, &name, Rtype::A, ttl, put),
        DnsCmd::Resolve6 { name, ttl } => addresses(&mut lp, &name, Rtype::Aaaa, ttl, put),
        DnsCmd::Resolve { name, rtype } => {
            lp.resolve(&name, rtype, move |_, r| {
                put(r.map(|a| render(&a, rtype)).map_err(|e| e.to_string()));
            });
        }
        DnsCmd::Reverse { ip } => {
            let Some(addr) = netkit_sys::resolve::parse_ip(&ip) else {
                return Err(Failure(format!(
                    "EINVAL: getHostByAddr {ip}: not an IP address"
                )));
            };
            lp.reverse(addr, move |_, r| {
                put(r
                    .map(|names| list(names.iter().map(|n| js(n))))
                    .map_err(|e| e.to_string()));
            });
        }
        DnsCmd::Lookup { name, all, family } => {
            let host = name.clone();
            lp.lookup(&host, family.unwrap_or(Family::Any), move |_, r| {
                put(r.map_err(|e| e.to_string()).and_then(|addrs| {
                    let one = |ip: &IpAddr| {
                        format!(
                            "{{\"address\":{},\"family\":{}}}",
                            js(&ip.to_string()),
                            family_of(ip)
                        )
                    };
                    if all {
                        Ok(list(addrs.iter().map(one)))
                    } else {
                        addrs
                            .first()
                            .map(one)
                            .ok_or_else(|| format!("ENOTFOUND: getaddrinfo {name}"))
                    }
                }));
            });
        }
    }
    lp.run()?;
    let result = out.borrow_mut().take();
    match result {
        Some(Ok(json)) => {
            println!("{json}");
            Ok(ExitCode::SUCCESS)
        }
        Some(Err(e)) => Err(Failure(e)),
        None => Err(Failure("ETIMEOUT: no answer".into())),
    }
}

/// `resolve4` / `resolve6`: addresses, or `{address, family, ttl}` objects.
fn addresses(
    lp: &mut EventLoop,
    name: &str,
    rtype: Rtype,
    with_ttl: bool,
    put: impl FnOnce(Result<String, String>) + 'static,
) {
    lp.resolve(name, rtype, move |_, r| {
        put(r
            .map(|a| {
                list(a.records.iter().filter_map(|rec| {
                    let ip = match rec.data {
                        RecordData::A(ip) => IpAddr::V4(ip),
                        RecordData::Aaaa(ip) => IpAddr::V6(ip),
                        _ => return None,
                    };
                    Some(if with_ttl {
                        format!(
                            "{{\"address\":{},\"family\":{},\"ttl\":{}}}",
                            js(&ip.to_string()),
                            family_of(&ip),
                            rec.ttl
                        )
                    } else {
                        js(&ip.to_string())
                    })
                }))
            })
            .map_err(|e| e.to_string()));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_and_json() {
        assert_eq!(
            netkit_dns::reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        assert!(
            netkit_dns::reverse_name("2001:db8::1".parse().unwrap()).starts_with("1.0.0.0.0.0.0.0")
        );
        assert!(
            netkit_dns::reverse_name("2001:db8::1".parse().unwrap())
                .ends_with("8.b.d.0.1.0.0.2.ip6.arpa")
        );
        assert_eq!(js("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        let caa = RecordData::Caa {
            critical: 0,
            tag: "issue".into(),
            value: "ca.example".into(),
        };
        assert_eq!(
            shape(&caa, 1, false),
            "{\"critical\":0,\"issue\":\"ca.example\"}"
        );
        let mx = RecordData::Mx {
            priority: 10,
            exchange: "mail.test".into(),
        };
        assert_eq!(
            shape(&mx, 1, false),
            "{\"exchange\":\"mail.test\",\"priority\":10}"
        );
        assert_eq!(
            shape(&mx, 1, true),
            "{\"type\":\"MX\",\"exchange\":\"mail.test\",\"priority\":10}"
        );
    }
}
