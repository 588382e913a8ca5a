//! DNS messages on hickory-proto: building a query (with EDNS0 and a 1232-byte
//! buffer) and reading a response into node's record shapes, checked against
//! the query it answers.
//!
//! Reading a response decides three things: whether it answers *our* query at
//! all (same ID, a response, exactly our question; anything else is ignored,
//! so a spoofed or stray datagram cannot end a query), whether it was
//! truncated (ask again over TCP), and what it says: records, following the
//! CNAME chain from the question's name (at most 16 links; records off the
//! chain are ignored), or a negative answer with its RFC 2308 TTL.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record as HRecord, RecordType};

use crate::Error;

/// The UDP payload size advertised with EDNS0 (the DNS flag day 2020 value:
/// no fragmentation on any path).
pub const EDNS_PAYLOAD: u16 = 1232;

/// The most CNAME links followed from the question's name.
pub const MAX_CNAME_CHAIN: usize = 16;

/// The longest name, in presentation form without the trailing dot.
pub const MAX_NAME: usize = 253;

/// The record types netkit asks for (node's `resolve` types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rtype {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// A canonical name.
    Cname,
    /// Mail exchangers.
    Mx,
    /// Name servers.
    Ns,
    /// A pointer (reverse lookups).
    Ptr,
    /// The zone's start of authority.
    Soa,
    /// Services.
    Srv,
    /// Text.
    Txt,
    /// Certification authority authorization.
    Caa,
    /// Naming authority pointers.
    Naptr,
    /// Every record of the name.
    Any,
}

impl Rtype {
    /// Every type, in CLI.md's order.
    pub const ALL: [Self; 12] = [
        Self::A,
        Self::Aaaa,
        Self::Cname,
        Self::Mx,
        Self::Ns,
        Self::Ptr,
        Self::Soa,
        Self::Srv,
        Self::Txt,
        Self::Caa,
        Self::Naptr,
        Self::Any,
    ];

    /// The type named like `A`, `aaaa`, `MX` (case-insensitive).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// `A`, `AAAA`, `MX`...
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Ns => "NS",
            Self::Ptr => "PTR",
            Self::Soa => "SOA",
            Self::Srv => "SRV",
            Self::Txt => "TXT",
            Self::Caa => "CAA",
            Self::Naptr => "NAPTR",
            Self::Any => "ANY",
        }
    }

    /// node's name for the operation (`queryA`, `queryAaaa`, `queryMx`...).
    #[must_use]
    pub fn op(self) -> &'static str {
        match self {
            Self::A => "queryA",
            Self::Aaaa => "queryAaaa",
            Self::Cname => "queryCname",
            Self::Mx => "queryMx",
            Self::Ns => "queryNs",
            Self::Ptr => "queryPtr",
            Self::Soa => "querySoa",
            Self::Srv => "querySrv",
            Self::Txt => "queryTxt",
            Self::Caa => "queryCaa",
            Self::Naptr => "queryNaptr",
            Self::Any => "queryAny",
        }
    }

    fn hickory(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
            Self::Cname => RecordType::CNAME,
            Self::Mx => RecordType::MX,
            Self::Ns => RecordType::NS,
            Self::Ptr => RecordType::PTR,
            Self::Soa => RecordType::SOA,
            Self::Srv => RecordType::SRV,
            Self::Txt => RecordType::TXT,
            Self::Caa => RecordType::CAA,
            Self::Naptr => RecordType::NAPTR,
            Self::Any => RecordType::ANY,
        }
    }
}

impl fmt::Display for Rtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A zone's start of authority (node's `resolveSoa` shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    /// The primary name server.
    pub nsname: String,
    /// The zone administrator's mailbox, as a name.
    pub hostmaster: String,
    /// The zone's serial number.
    pub serial: u32,
    /// Seconds between secondary refreshes.
    pub refresh: u32,
    /// Seconds between retries of a failed refresh.
    pub retry: u32,
    /// Seconds after which a secondary stops answering.
    pub expire: u32,
    /// The negative-caching TTL (RFC 2308).
    pub minttl: u32,
}

/// One record's data, in node's shapes (names without the trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A canonical name.
    Cname(String),
    /// A mail exchanger.
    Mx {
        /// Lower is preferred.
        priority: u16,
        /// The exchanger's name.
        exchange: String,
    },
    /// A name server.
    Ns(String),
    /// A pointer.
    Ptr(String),
    /// A start of authority.
    Soa(Soa),
    /// A service location.
    Srv {
        /// Lower is preferred.
        priority: u16,
        /// Relative weight among equal priorities.
        weight: u16,
        /// The port.
        port: u16,
        /// The target host.
        name: String,
    },
    /// A text record: its character strings.
    Txt(Vec<String>),
    /// A CAA record: `critical` is the flags byte (128 when critical).
    Caa {
        /// The flags byte.
        critical: u8,
        /// The property (`issue`, `issuewild`, `iodef`...).
        tag: String,
        /// The property's value.
        value: String,
    },
    /// A NAPTR record.
    Naptr {
        /// Flags.
        flags: String,
        /// Service.
        service: String,
        /// The rewrite expression.
        regexp: String,
        /// The replacement name.
        replacement: String,
        /// Order.
        order: u16,
        /// Preference.
        preference: u16,
    },
}

impl RecordData {
    /// The record type of this data.
    #[must_use]
    pub fn rtype(&self) -> Rtype {
        match self {
            Self::A(_) => Rtype::A,
            Self::Aaaa(_) => Rtype::Aaaa,
            Self::Cname(_) => Rtype::Cname,
            Self::Mx { .. } => Rtype::Mx,
            Self::Ns(_) => Rtype::Ns,
            Self::Ptr(_) => Rtype::Ptr,
            Self::Soa(_) => Rtype::Soa,
            Self::Srv { .. } => Rtype::Srv,
            Self::Txt(_) => Rtype::Txt,
            Self::Caa { .. } => Rtype::Caa,
            Self::Naptr { .. } => Rtype::Naptr,
        }
    }
}

/// One record with its TTL (seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Seconds it may be cached.
    pub ttl: u32,
    /// The data.
    pub data: RecordData,
}

/// A positive answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The records, in the order the server gave them.
    pub records: Vec<Record>,
    /// The smallest TTL of the records and of the CNAME links followed.
    pub ttl: u32,
    /// The canonical name the records belong to, when CNAMEs were followed.
    pub canonical: Option<String>,
}

/// What a received message means for the query it claims to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not an answer to this query (another ID or question, not a response,
    /// undecodable): ignore it and keep waiting. The reason is for logs.
    Ignore(&'static str),
    /// The answer was truncated: ask the same server again over TCP.
    Truncated,
    /// The server's answer: records, or an error (with the TTL a negative
    /// answer may be cached for, from the zone's SOA; 0 when none came).
    Answer(Result<Answer, (Error, u32)>),
}

/// A name in presentation form without the trailing dot, lowercased.
fn show(n: &Name) -> String {
    let mut s = n.to_ascii();
    if s.len() > 1 && s.ends_with('.') {
        s.pop();
    }
    s.make_ascii_lowercase();
    s
}

/// Checks and converts a name to ask for: at most 253 bytes, labels of 1 to
/// 63 bytes (an empty name is refused; one trailing dot is allowed).
pub fn parse_name(name: &str) -> Result<Name, Error> {
    let bad = |problem: &str| Error::BadName {
        name: name.to_string(),
        problem: problem.to_string(),
    };
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err(bad("empty name"));
    }
    if bare.len() > MAX_NAME {
        return Err(bad("longer than 253 bytes"));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(bad("empty label"));
        }
        if label.len() > 63 {
            return Err(bad("a label longer than 63 bytes"));
        }
    }
    let mut n = Name::from_ascii(bare).map_err(|e| bad(&e.to_string()))?;
    n.set_fqdn(true);
    Ok(n)
}

/// The wire form of a query for `name` (see [`parse_name`]) and `rtype`, with
/// this ID, recursion desired, and EDNS0 advertising [`EDNS_PAYLOAD`].
pub fn encode_query(id: u16, name: &str, rtype: Rtype) -> Result<Vec<u8>, Error> {
    let qname = parse_name(name)?;
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    let mut q = Query::query(qname, rtype.hickory());
    q.set_query_class(DNSClass::IN);
    m.add_query(q);
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    m.set_edns(edns);
    m.to_vec().map_err(|e| Error::BadName {
        name: name.to_string(),
        problem: e.to_string(),
    })
}

/// Converts one record's data; `None` for types netkit does not surface.
fn convert(data: &RData) -> Option<RecordData> {
    Some(match data {
        RData::A(a) => RecordData::A(a.0),
        RData::AAAA(a) => RecordData::Aaaa(a.0),
        RData::CNAME(n) => RecordData::Cname(show(&n.0)),
        RData::NS(n) => RecordData::Ns(show(&n.0)),
        RData::PTR(n) => RecordData::Ptr(show(&n.0)),
        RData::MX(mx) => RecordData::Mx {
            priority: mx.preference,
            exchange: show(&mx.exchange),
        },
        RData::SOA(s) => RecordData::Soa(Soa {
            nsname: show(&s.mname),
            hostmaster: show(&s.rname),
            serial: s.serial,
            refresh: s.refresh as u32,
            retry: s.retry as u32,
            expire: s.expire as u32,
            minttl: s.minimum,
        }),
        RData::SRV(s) => RecordData::Srv {
            priority: s.priority,
            weight: s.weight,
            port: s.port,
            name: show(&s.target),
        },
        RData::TXT(t) => RecordData::Txt(
            t.txt_data
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect(),
        ),
        RData::CAA(c) => RecordData::Caa {
            critical: (u8::from(c.issuer_critical) << 7) | c.reserved_flags,
            tag: c.tag.clone(),
            value: String::from_utf8_lossy(&c.value).into_owned(),
        },
        RData::NAPTR(n) => RecordData::Naptr {
            flags: String::from_utf8_lossy(&n.flags).into_owned(),
            service: String::from_utf8_lossy(&n.services).into_owned(),
            regexp: String::from_utf8_lossy(&n.regexp).into_owned(),
            replacement: show(&n.replacement),
            order: n.order,
            preference: n.preference,
        },
        _ => return None,
    })
}

/// The negative-caching TTL of a negative answer: the SOA in the authority
/// section, min(its TTL, its MINIMUM) (RFC 2308 section 5); 0 without one.
fn negative_ttl(m: &Message) -> u32 {
    m.authorities
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(s) => Some(r.ttl.min(s.minimum)),
            _ => None,
        })
        .unwrap_or(0)
}

/// Reads `bytes` as the response to the query `id` / `name` / `rtype` (as
/// sent by [`encode_query`]). Never panics, whatever the bytes.
#[must_use]
pub fn read_response(bytes: &[u8], id: u16, name: &str, rtype: Rtype) -> Verdict {
    if bytes.len() < 12 || u16::from_be_bytes([bytes[0], bytes[1]]) != id {
        return Verdict::Ignore("another ID");
    }
    let Ok(m) = Message::from_vec(bytes) else {
        return Verdict::Ignore("undecodable");
    };
    if m.metadata.message_type != MessageType::Response {
        return Verdict::Ignore("not a response");
    }
    if m.metadata.op_code != OpCode::Query {
        return Verdict::Ignore("another opcode");
    }
    let Ok(qname) = parse_name(name) else {
        return Verdict::Ignore("bad query name");
    };
    // `Name`'s equality ignores ASCII case (both are absolute here).
    let ours = m.queries.len() == 1
        && *m.queries[0].name() == qname
        && m.queries[0].query_type() == rtype.hickory()
        && m.queries[0].query_class() == DNSClass::IN;
    if !ours {
        return Verdict::Ignore("another question");
    }
    if m.metadata.truncation {
        return Verdict::Truncated;
    }
    let op = || rtype.op().to_string();
    let name_s = || name.strip_suffix('.').unwrap_or(name).to_string();
    let fail = |e: fn(String, String) -> Error| {
        Verdict::Answer(Err((e(op(), name_s()), negative_ttl(&m))))
    };
    match m.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return fail(|op, name| Error::NotFound { op, name }),
        ResponseCode::ServFail => return fail(|op, name| Error::ServFail { op, name }),
        ResponseCode::Refused => return fail(|op, name| Error::Refused { op, name }),
        ResponseCode::FormErr => return fail(|op, name| Error::FormErr { op, name }),
        ResponseCode::NotImp => return fail(|op, name| Error::NotImp { op, name }),
        _ => {
            return Verdict::Answer(Err((
                Error::BadResponse {
                    op: op(),
                    name: name_s(),
                    problem: format!("response code {}", m.metadata.response_code),
                },
                0,
            )));
        }
    }
    match follow_chain(&m.answers, &qname, rtype) {
        Some(answer) => Verdict::Answer(Ok(answer)),
        None => Verdict::Answer(Err((
            Error::NoData {
                op: op(),
                name: name_s(),
            },
            negative_ttl(&m),
        ))),
    }
}

/// The records of the answer section that answer `qname`/`rtype`, following
/// CNAMEs from `qname` (bounded); `None` when there are none.
fn follow_chain(answers: &[HRecord], qname: &Name, rtype: Rtype) -> Option<Answer> {
    let mut current = qname;
    let mut ttl = u32::MAX;
    let mut canonical = None;
    for _ in 0..=MAX_CNAME_CHAIN {
        // `Name`'s equality ignores ASCII case; answer names are absolute.
        let owned = |r: &&HRecord| r.name == *current && r.dns_class == DNSClass::IN;
        let records: Vec<Record> = answers
            .iter()
            .filter(owned)
            .filter(|r| rtype == Rtype::Any || r.record_type() == rtype.hickory())
            .filter_map(|r| convert(&r.data).map(|data| Record { ttl: r.ttl, data }))
            .collect();
        if !records.is_empty() {
            let min = records.iter().map(|r| r.ttl).min().unwrap_or(0);
            return Some(Answer {
                records,
                ttl: ttl.min(min),
                canonical: canonical.map(show),
            });
        }
        // No record of the type: a CNAME for the current name leads on.
        let (next, next_ttl) = answers.iter().filter(owned).find_map(|r| match &r.data {
            RData::CNAME(c) => Some((&c.0, r.ttl)),
            _ => None,
        })?;
        ttl = ttl.min(next_ttl);
        current = next;
        canonical = Some(current);
    }
    None
}

/// A name normalized for lookups: lower case, no trailing dot. Borrowed
/// when the name already is (the common case), else lowered on the stack.
// Lives on the stack for one call; boxing the buffer would put an
// allocation on the hot path this exists to keep free of them.
#[allow(clippy::large_enum_variant)]
pub(crate) enum NameKey<'a> {
    /// The name as given (its trailing dot cut).
    Ready(&'a str),
    /// A lowered copy.
    Lowered { buf: [u8; MAX_NAME + 2], len: usize },
}

impl<'a> NameKey<'a> {
    /// `None` for a name too long to be valid.
    pub(crate) fn new(name: &'a str) -> Option<Self> {
        let bare = name.strip_suffix('.').unwrap_or(name);
        if bare.len() > MAX_NAME + 1 {
            return None;
        }
        if !bare.bytes().any(|b| b.is_ascii_uppercase()) {
            return Some(Self::Ready(bare));
        }
        let mut buf = [0; MAX_NAME + 2];
        for (d, s) in buf.iter_mut().zip(bare.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        Some(Self::Lowered {
            buf,
            len: bare.len(),
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Ready(s) => s,
            // Lowering ASCII bytes keeps UTF-8 valid.
            Self::Lowered { buf, len } => std::str::from_utf8(&buf[..*len]).unwrap_or(""),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME, MX, SOA, TXT};
    use proptest::prelude::*;

    /// A response to `query` with these answers and authorities.
    pub(crate) fn response(
        query: &[u8],
        rcode: ResponseCode,
        answers: Vec<HRecord>,
        authorities: Vec<HRecord>,
    ) -> Vec<u8> {
        let q = Message::from_vec(query).unwrap();
        let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.recursion_available = true;
        m.add_queries(q.queries.clone());
        m.add_answers(answers);
        m.add_authorities(authorities);
        m.to_vec().unwrap()
    }

    pub(crate) fn rec(name: &str, ttl: u32, data: RData) -> HRecord {
        HRecord::from_rdata(Name::from_ascii(name).unwrap(), ttl, data)
    }

    pub(crate) fn soa(zone: &str, ttl: u32, minimum: u32) -> HRecord {
        rec(
            zone,
            ttl,
            RData::SOA(SOA::new(
                Name::from_ascii("ns.test.").unwrap(),
                Name::from_ascii("admin.test.").unwrap(),
                7,
                3600,
                600,
                86400,
                minimum,
            )),
        )
    }

    #[test]
    fn a_query_and_its_answer() {
        let q = encode_query(0x4242, "www.Example.test", Rtype::A).unwrap();
        let parsed = Message::from_vec(&q).unwrap();
        assert!(parsed.metadata.recursion_desired);
        assert_eq!(parsed.max_payload(), EDNS_PAYLOAD);
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![
                rec("www.example.test.", 300, RData::A(A::new(192, 0, 2, 10))),
                rec("www.example.test.", 200, RData::A(A::new(192, 0, 2, 11))),
                // Off the chain: ignored.
                rec("evil.test.", 1, RData::A(A::new(6, 6, 6, 6))),
            ],
            vec![],
        );
        let v = read_response(&r, 0x4242, "www.Example.test", Rtype::A);
        let Verdict::Answer(Ok(a)) = v else {
            panic!("{v:?}")
        };
        assert_eq!(a.ttl, 200);
        assert_eq!(
            a.records.iter().map(|r| &r.data).collect::<Vec<_>>(),
            [
                &RecordData::A(Ipv4Addr::new(192, 0, 2, 10)),
                &RecordData::A(Ipv4Addr::new(192, 0, 2, 11))
            ]
        );
    }

    #[test]
    fn cnames_are_followed_and_bounded() {
        let q = encode_query(1, "alias.test", Rtype::Mx).unwrap();
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![
                rec(
                    "alias.test.",
                    60,
                    RData::CNAME(CNAME(Name::from_ascii("mid.test.").unwrap())),
                ),
                rec(
                    "mid.test.",
                    30,
                    RData::CNAME(CNAME(Name::from_ascii("real.test.").unwrap())),
                ),
                rec(
                    "real.test.",
                    900,
                    RData::MX(MX::new(10, Name::from_ascii("Mail.real.test.").unwrap())),
                ),
            ],
            vec![],
        );
        let Verdict::Answer(Ok(a)) = read_response(&r, 1, "alias.test", Rtype::Mx) else {
            panic!()
        };
        assert_eq!(a.ttl, 30, "the chain's smallest TTL");
        assert_eq!(a.canonical.as_deref(), Some("real.test"));
        assert_eq!(
            a.records[0].data,
            RecordData::Mx {
                priority: 10,
                exchange: "mail.real.test".into()
            }
        );
        // A loop of CNAMEs ends as NODATA, not a hang.
        let q = encode_query(2, "loop.test", Rtype::A).unwrap();
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![
                rec(
                    "loop.test.",
                    60,
                    RData::CNAME(CNAME(Name::from_ascii("pool.test.").unwrap())),
                ),
                rec(
                    "pool.test.",
                    60,
                    RData::CNAME(CNAME(Name::from_ascii("loop.test.").unwrap())),
                ),
            ],
            vec![],
        );
        let v = read_response(&r, 2, "loop.test", Rtype::A);
        assert!(
            matches!(v, Verdict::Answer(Err((Error::NoData { .. }, _)))),
            "{v:?}"
        );
    }

    #[test]
    fn negative_answers_carry_the_soa_ttl() {
        let q = encode_query(3, "nx.test", Rtype::A).unwrap();
        let r = response(
            &q,
            ResponseCode::NXDomain,
            vec![],
            vec![soa("test.", 3600, 120)],
        );
        assert_eq!(
            read_response(&r, 3, "nx.test", Rtype::A),
            Verdict::Answer(Err((
                Error::NotFound {
                    op: "queryA".into(),
                    name: "nx.test".into()
                },
                120
            )))
        );
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![],
            vec![soa("test.", 60, 300)],
        );
        let v = read_response(&r, 3, "nx.test", Rtype::A);
        assert_eq!(
            v,
            Verdict::Answer(Err((
                Error::NoData {
                    op: "queryA".into(),
                    name: "nx.test".into()
                },
                60
            )))
        );
        for (rc, code) in [
            (ResponseCode::ServFail, "ESERVFAIL"),
            (ResponseCode::Refused, "EREFUSED"),
            (ResponseCode::FormErr, "EFORMERR"),
            (ResponseCode::NotImp, "ENOTIMP"),
            (ResponseCode::YXDomain, "EBADRESP"),
        ] {
            let r = response(&q, rc, vec![], vec![]);
            let Verdict::Answer(Err((e, _))) = read_response(&r, 3, "nx.test", Rtype::A) else {
                panic!()
            };
            assert_eq!(e.code(), code);
        }
    }

    /// A response to `q` (flags: a response) with `ancount` claimed and
    /// `answer` as the bytes after the question.
    fn crafted(q: &[u8], ancount: u16, answer: &[u8]) -> Vec<u8> {
        let mut r = q.to_vec();
        r[2] |= 0x80;
        r[6..8].copy_from_slice(&ancount.to_be_bytes());
        // The query's EDNS0 record is not repeated: no additional records.
        r[10..12].copy_from_slice(&0u16.to_be_bytes());
        let question_end = 12 + "a.test".len() + 2 + 4;
        r.truncate(question_end);
        r.extend_from_slice(answer);
        r
    }

    /// Hostile encodings, each rejected as undecodable (never a panic, a
    /// hang, or an allocation sized by what the message claims).
    #[test]
    fn hostile_names_and_counts_are_refused() {
        let q = encode_query(9, "a.test", Rtype::A).unwrap();
        let rest = [0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]; // A IN ttl rdata
        let here = (12 + "a.test".len() + 2 + 4) as u16;
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        // A compression pointer to itself, and two pointing at each other.
        let mut a = vec![0xC0 | (here >> 8) as u8, here as u8];
        a.extend_from_slice(&rest);
        cases.push(("a pointer to itself", crafted(&q, 1, &a)));
        let mut a = vec![0xC0 | ((here + 2) >> 8) as u8, (here + 2) as u8];
        a.extend_from_slice(&[0xC0 | (here >> 8) as u8, here as u8]);
        a.extend_from_slice(&rest);
        cases.push(("two pointers in a loop", crafted(&q, 1, &a)));
        // A pointer past the end of the message.
        let mut a = vec![0xFF, 0xFF];
        a.extend_from_slice(&rest);
        cases.push(("a pointer past the end", crafted(&q, 1, &a)));
        // A name of 320 bytes (five 63-byte labels): over 255.
        let mut a = Vec::new();
        for _ in 0..5 {
            a.push(63);
            a.extend_from_slice(&[b'x'; 63]);
        }
        a.push(0);
        a.extend_from_slice(&rest);
        cases.push(("a name over 255 bytes", crafted(&q, 1, &a)));
        // A label length of 64 (the reserved 01 label type).
        let mut a = vec![64];
        a.extend_from_slice(&[b'x'; 64]);
        a.push(0);
        a.extend_from_slice(&rest);
        cases.push(("a label over 63 bytes", crafted(&q, 1, &a)));
        // 65,535 answers claimed, one present.
        let mut a = vec![0xC0, 12];
        a.extend_from_slice(&rest);
        cases.push(("counts beyond the message", crafted(&q, u16::MAX, &a)));
        // A record cut inside its data.
        let mut a = vec![0xC0, 12];
        a.extend_from_slice(&rest[..rest.len() - 2]);
        cases.push(("a truncated record", crafted(&q, 1, &a)));
        // An rdlength past the end.
        let mut a = vec![0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0xFF, 0xFF, 1, 2];
        a.truncate(a.len());
        cases.push(("an rdlength past the end", crafted(&q, 1, &a)));
        for (what, bytes) in &cases {
            assert_eq!(
                read_response(bytes, 9, "a.test", Rtype::A),
                Verdict::Ignore("undecodable"),
                "{what}"
            );
        }
        // The same frame with a sound answer is taken: the cases fail for
        // the reason they name, not for the frame.
        let mut a = vec![0xC0, 12];
        a.extend_from_slice(&rest);
        assert!(matches!(
            read_response(&crafted(&q, 1, &a), 9, "a.test", Rtype::A),
            Verdict::Answer(Ok(_))
        ));
    }

    #[test]
    fn what_is_not_ours_is_ignored() {
        let q = encode_query(9, "a.test", Rtype::A).unwrap();
        let good = response(
            &q,
            ResponseCode::NoError,
            vec![rec("a.test.", 1, RData::A(A::new(1, 2, 3, 4)))],
            vec![],
        );
        assert!(matches!(
            read_response(&good, 9, "A.TEST.", Rtype::A),
            Verdict::Answer(Ok(_))
        ));
        assert_eq!(
            read_response(&good, 10, "a.test", Rtype::A),
            Verdict::Ignore("another ID")
        );
        assert_eq!(
            read_response(&good, 9, "b.test", Rtype::A),
            Verdict::Ignore("another question")
        );
        assert_eq!(
            read_response(&good, 9, "a.test", Rtype::Aaaa),
            Verdict::Ignore("another question")
        );
        assert_eq!(
            read_response(&q, 9, "a.test", Rtype::A),
            Verdict::Ignore("not a response")
        );
        assert_eq!(
            read_response(&good[..20], 9, "a.test", Rtype::A),
            Verdict::Ignore("undecodable")
        );
        // Truncated.
        let mut tc = good.clone();
        tc[2] |= 0x02;
        assert_eq!(
            read_response(&tc, 9, "a.test", Rtype::A),
            Verdict::Truncated
        );
    }

    #[test]
    fn txt_chunks_and_bad_names() {
        let q = encode_query(5, "t.test", Rtype::Txt).unwrap();
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![rec(
                "t.test.",
                5,
                RData::TXT(TXT::new(vec!["one".into(), "two".into()])),
            )],
            vec![],
        );
        let Verdict::Answer(Ok(a)) = read_response(&r, 5, "t.test", Rtype::Txt) else {
            panic!()
        };
        assert_eq!(
            a.records[0].data,
            RecordData::Txt(vec!["one".into(), "two".into()])
        );
        let long_label = format!("{}.test", "x".repeat(64));
        assert_eq!(
            encode_query(1, &long_label, Rtype::A).unwrap_err().code(),
            "EBADNAME"
        );
        let long_name = vec!["abcdefghi"; 30].join(".");
        assert_eq!(
            encode_query(1, &long_name, Rtype::A).unwrap_err().code(),
            "EBADNAME"
        );
        assert_eq!(
            encode_query(1, "a..b", Rtype::A).unwrap_err().code(),
            "EBADNAME"
        );
        assert_eq!(
            encode_query(1, "", Rtype::A).unwrap_err().code(),
            "EBADNAME"
        );
        assert_eq!(Rtype::parse("aaaa"), Some(Rtype::Aaaa));
        assert_eq!(Rtype::parse("bogus"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Any mutation of a real response never panics (and allocates no
        /// more than the message can hold).
        #[test]
        fn mutated_responses_never_panic(
            edits in proptest::collection::vec((0usize..400, any::<u8>()), 0..12),
            cut in 0usize..400,
        ) {
            let q = encode_query(7, "m.test", Rtype::Mx).unwrap();
            let mut r = response(
                &q,
                ResponseCode::NoError,
                vec![
                    rec("m.test.", 60, RData::CNAME(CNAME(Name::from_ascii("n.test.").unwrap()))),
                    rec("n.test.", 60, RData::MX(MX::new(5, Name::from_ascii("mx.n.test.").unwrap()))),
                ],
                vec![soa("test.", 60, 60)],
            );
            for (i, b) in edits {
                if let Some(x) = r.get_mut(i) {
                    *x = b;
                }
            }
            r.truncate(cut.max(2));
            let _ = read_response(&r, 7, "m.test", Rtype::Mx);
        }
    }
}
