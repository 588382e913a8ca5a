//! node's `dns.reverse(ip)`: the PTR name of an address, the names its
//! answer holds, and the error as node words it (`getHostByAddr IP`).

use std::net::IpAddr;

use crate::{Answer, Error, RecordData};

/// The PTR name of `ip`: `4.3.2.1.in-addr.arpa`, or 32 nibbles then
/// `ip6.arpa` for IPv6.
#[must_use]
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                for nibble in [b & 0xf, b >> 4] {
                    s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    s.push('.');
                }
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// The host names of a PTR answer, in its order.
#[must_use]
pub fn ptr_names(answer: &Answer) -> Vec<String> {
    answer
        .records
        .iter()
        .filter_map(|r| match &r.data {
            RecordData::Ptr(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// A PTR query's error as `reverse(ip)` reports it: the operation is
/// `getHostByAddr` and the name the address asked about.
#[must_use]
pub fn reverse_error(e: Error, ip: IpAddr) -> Error {
    e.renamed("getHostByAddr", &ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_errors() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0."), "{v6}");
        assert!(v6.ends_with("8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
        assert_eq!(v6.split('.').count(), 34);
        let e = Error::NotFound {
            op: "queryPtr".into(),
            name: "99.2.0.192.in-addr.arpa".into(),
        };
        assert_eq!(
            reverse_error(e, "192.0.2.99".parse().unwrap()).to_string(),
            "ENOTFOUND: getHostByAddr 192.0.2.99"
        );
    }
}
