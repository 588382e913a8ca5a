//! DNS for netkit, sans-IO.
//!
//! Today this crate holds the hosts-file parser that the drivers use to resolve
//! `localhost` and other names listed in `/etc/hosts`; the DNS issue adds the
//! message codec, the resolver state machine and the cache. Like every crate in
//! `crates/`, it never touches the file system: the caller reads the file and
//! hands the text in.
//!
//! # Examples
//!
//! ```
//! use netkit_dns::hosts::Hosts;
//!
//! let hosts = Hosts::parse("127.0.0.1 localhost\n::1 localhost ip6-localhost # v6\n");
//! let addrs: Vec<String> = hosts.lookup("LOCALHOST.").map(|a| a.to_string()).collect();
//! assert_eq!(addrs, ["127.0.0.1", "::1"]);
//! ```

pub mod cache;
mod error;
pub mod hosts;
pub mod message;
pub mod resolv_conf;
pub mod resolver;

pub use error::Error;
pub use message::{Answer, Record, RecordData, Rtype, Soa};
pub use resolv_conf::ResolvConf;
