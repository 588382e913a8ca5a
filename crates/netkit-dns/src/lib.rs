//! DNS for netkit, sans-IO: messages on hickory-proto ([`message`]), the query
//! engine ([`resolver`]: UDP with ID, question and source checked, retries
//! across servers, TCP for truncated answers), the cache with Bun's semantics
//! and counters ([`cache`]), and the whole resolver with request coalescing
//! and a getaddrinfo-style lookup ([`client::Dns`]); resolv.conf and hosts-file
//! parsing ([`resolv_conf`], [`hosts`]).
//!
//! Like every crate in `crates/`, it never touches a socket, a clock, the file
//! system or a random number source: the driver sends what it is told to,
//! hands in what arrives with the time, picks query IDs and source ports at
//! random, and reads the files and hands their text in.
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
pub mod client;
mod error;
pub mod hosts;
pub mod message;
pub mod resolv_conf;
pub mod resolver;
pub mod reverse;

pub use client::{Dns, DnsConfig, Event, Family, RequestId};
pub use error::Error;
pub use message::{Answer, Record, RecordData, Rtype, Soa};
pub use resolv_conf::ResolvConf;
pub use reverse::{ptr_names, reverse_error, reverse_name};
