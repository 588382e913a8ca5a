//! The crate's error type: node's DNS error codes, each with the query it
//! concerns.

/// Why a DNS query failed, named with node's codes (`ENOTFOUND`, `ENODATA`...).
/// `Display` is `CODE: OPERATION NAME` (`ENOTFOUND: queryA nx.test`), the text
/// the CLI prints after `netkit: error: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The name does not exist (NXDOMAIN).
    #[error("ENOTFOUND: {op} {name}")]
    NotFound {
        /// The operation (`queryA`, `queryMx`, `getaddrinfo`...).
        op: String,
        /// The name asked for.
        name: String,
    },
    /// The name exists but has no records of the type asked for.
    #[error("ENODATA: {op} {name}")]
    NoData {
        /// The operation.
        op: String,
        /// The name asked for.
        name: String,
    },
    /// Every server answered SERVFAIL.
    #[error("ESERVFAIL: {op} {name}")]
    ServFail {
        /// The operation.
        op: String,
        /// The name asked for.
        name: String,
    },
    /// Every server refused the query.
    #[error("EREFUSED: {op} {name}")]
    Refused {
        /// The operation.
        op: String,
        /// The name asked for.
        name: String,
    },
    /// No answer came within the tries and timeouts configured.
    #[error("ETIMEOUT: {op} {name}")]
    Timeout {
        /// The operation.
        op: String,
        /// The name asked for.
        name: String,
    },
    /// Every server refused the connection (ICMP port unreachable, or TCP RST).
    #[error("ECONNREFUSED: {op} {name}")]
    ConnRefused {
        /// The operation.
        op: String,
        /// The name asked for.
        name: String,
    },
    /// A server answered FORMERR: it could not read our query.
    #[error("EFORMERR: {op} {name}")]
    FormErr {
        /// The operation.
        op: String,
        /// The name asked for.
        name: String,
    },
    /// A server answered NOTIMP.
    #[error("ENOTIMP: {op} {name}")]
    NotImp {
        /// The operation.
        op: String,
        /// The name asked for.
        name: String,
    },
    /// The response could not be read, or broke the protocol.
    #[error("EBADRESP: {op} {name}: {problem}")]
    BadResponse {
        /// The operation.
        op: String,
        /// The name asked for.
        name: String,
        /// What was wrong with it.
        problem: String,
    },
    /// The name is not a valid domain name (a label over 63 bytes, a name over
    /// 253, an empty label).
    #[error("EBADNAME: {name}: {problem}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Not an IP address where one is required (`reverse`).
    #[error("EINVAL: {0}")]
    Invalid(String),
    /// No name server is configured.
    #[error("ECONNREFUSED: no name server configured")]
    NoServers,
}

impl Error {
    /// The same error reported for another operation and name (a lookup's
    /// parts become `getaddrinfo NAME`, a PTR query `getHostByAddr IP`).
    #[must_use]
    pub fn renamed(self, new_op: &str, new_name: &str) -> Self {
        let (op, name) = (new_op.to_owned(), new_name.to_owned());
        match self {
            Self::NotFound { .. } => Self::NotFound { op, name },
            Self::NoData { .. } => Self::NoData { op, name },
            Self::ServFail { .. } => Self::ServFail { op, name },
            Self::Refused { .. } => Self::Refused { op, name },
            Self::Timeout { .. } => Self::Timeout { op, name },
            Self::ConnRefused { .. } => Self::ConnRefused { op, name },
            Self::FormErr { .. } => Self::FormErr { op, name },
            Self::NotImp { .. } => Self::NotImp { op, name },
            Self::BadResponse { problem, .. } => Self::BadResponse { op, name, problem },
            other @ (Self::BadName { .. } | Self::Invalid(_) | Self::NoServers) => other,
        }
    }

    /// node's error code (`ENOTFOUND`...).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "ENOTFOUND",
            Self::NoData { .. } => "ENODATA",
            Self::ServFail { .. } => "ESERVFAIL",
            Self::Refused { .. } => "EREFUSED",
            Self::Timeout { .. } => "ETIMEOUT",
            Self::ConnRefused { .. } | Self::NoServers => "ECONNREFUSED",
            Self::FormErr { .. } => "EFORMERR",
            Self::NotImp { .. } => "ENOTIMP",
            Self::BadResponse { .. } => "EBADRESP",
            Self::BadName { .. } => "EBADNAME",
            Self::Invalid(_) => "EINVAL",
        }
    }

    /// Whether asking another server (or asking again) may give a better
    /// answer: SERVFAIL, REFUSED, a timeout, a refused connection, a bad
    /// response. NXDOMAIN and NODATA are answers.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::ServFail { .. }
                | Self::Refused { .. }
                | Self::Timeout { .. }
                | Self::ConnRefused { .. }
                | Self::BadResponse { .. }
                | Self::FormErr { .. }
                | Self::NotImp { .. }
        )
    }
}
