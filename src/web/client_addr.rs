//! The client's address: the TCP peer, unless the peer is a trusted reverse
//! proxy (`CALLVAULT_TRUSTED_PROXIES`), in which case the rightmost address
//! in `X-Forwarded-For` (or, without it, `Forwarded`) that is not itself a
//! trusted proxy. Anything to the left of that address was written by the
//! client and is never believed.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

/// Hops examined at most, from the right: a proxy chain is never this long.
const MAX_HOPS: usize = 32;

/// The reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

#[derive(Debug, thiserror::Error)]
#[error("CALLVAULT_TRUSTED_PROXIES: {0:?} is not an IP address or CIDR block (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)")]
pub struct TrustedProxiesError(String);

impl FromStr for TrustedProxies {
    type Err = TrustedProxiesError;

    /// A comma- or space-separated list of addresses and CIDR blocks.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(|t| {
                IpNet::from_str(t)
                    .map(|n| n.trunc())
                    .or_else(|_| IpAddr::from_str(t).map(|a| IpNet::from(canonical(a))))
                    .map_err(|_| TrustedProxiesError(t.chars().take(60).collect()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

fn canonical(a: IpAddr) -> IpAddr {
    a.to_canonical()
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        let a = canonical(a);
        self.0.iter().any(|n| n.contains(&a))
    }

    /// The client address of a request that arrived from `peer`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let xff: Vec<&str> = header_items(headers, "x-forwarded-for").collect();
        let hops: Vec<&str> = if xff.is_empty() {
            header_items(headers, "forwarded")
                .filter_map(forwarded_for)
                .collect()
        } else {
            xff
        };
        let mut client = peer;
        for hop in hops.iter().rev().take(MAX_HOPS) {
            match parse_hop(hop) {
                Some(a) if self.contains(a) => client = a,
                Some(a) => return a,
                // Unreadable: nothing to its left can be told from the client's own text.
                None => return client,
            }
        }
        client
    }
}

/// Every comma-separated item of every instance of the header, in order.
fn header_items<'a>(headers: &'a HeaderMap, name: &'static str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .flat_map(|v| v.to_str().ok().into_iter().flat_map(|v| v.split(',')))
        .map(str::trim)
}

/// The `for=` parameter of one `Forwarded` element (RFC 7239).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
    })
}

/// `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`, `[2001:db8::1]:443`, quoted
/// or not; anything else (`unknown`, obfuscated ids, garbage) is None.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if hop.len() > 64 {
        return None;
    }
    let ip = if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        IpAddr::V6(inside.parse().ok()?)
    } else if let Ok(a) = hop.parse::<IpAddr>() {
        a
    } else {
        let (host, port) = hop.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(host.parse().ok()?)
    };
    Some(canonical(ip))
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies() -> TrustedProxies {
        "10.0.0.0/8, 192.0.2.7 fd00::/8".parse().unwrap()
    }

    #[test]
    fn addresses_and_blocks_parse_and_anything_else_is_refused() {
        let p = proxies();
        assert!(p.contains(ip("10.1.2.3")));
        assert!(p.contains(ip("192.0.2.7")));
        assert!(!p.contains(ip("192.0.2.8")));
        assert!(p.contains(ip("fd00::1")));
        assert!(p.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped IPv6");
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        for bad in [
            "10.0.0.0/33",
            "10.0.0",
            "proxy.internal",
            "10.0.0.1/8/8",
            "*",
            "::1/129",
        ] {
            let e = bad.parse::<TrustedProxies>().unwrap_err().to_string();
            assert!(e.contains("CALLVAULT_TRUSTED_PROXIES"), "{e}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.10"),
        ]);
        assert_eq!(proxies().client(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies();
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.1, 10.0.0.2")]);
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("198.51.100.1"));
        let split = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(p.client(ip("10.0.0.1"), &split), ip("198.51.100.1"));
        let fwd = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.1",
        )]);
        assert_eq!(p.client(ip("10.0.0.1"), &fwd), ip("2001:db8:cafe::17"));
        // No header at all: the proxy itself.
        assert_eq!(p.client(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
    }

    #[test]
    fn hostile_forwarding_headers_never_yield_an_address_the_proxy_did_not_write() {
        let p = proxies();
        let peer = ip("10.0.0.1");
        let many = vec!["6.6.6.6"; 5000].join(",") + ",198.51.100.1";
        let cases: Vec<(String, &str)> = vec![
            (many, "198.51.100.1"),
            ("198.51.100.1, <script>".into(), "10.0.0.1"),
            ("6.6.6.6, garbage, 198.51.100.1".into(), "198.51.100.1"),
            ("6.6.6.6, 10.0.0.9, unknown".into(), "10.0.0.1"),
            ("6.6.6.6, [2001:db8::1]:443".into(), "2001:db8::1"),
            ("6.6.6.6, 2001:db8::2".into(), "2001:db8::2"),
            ("6.6.6.6, ::ffff:198.51.100.3".into(), "198.51.100.3"),
            ("6.6.6.6, 198.51.100.4:8080".into(), "198.51.100.4"),
            ("6.6.6.6, [2001:db8::1]x".into(), "10.0.0.1"),
            ("6.6.6.6, fe80::1%eth0".into(), "10.0.0.1"),
            ("6.6.6.6, 999.1.1.1".into(), "10.0.0.1"),
            ("6.6.6.6,,".into(), "10.0.0.1"),
            (format!("6.6.6.6, {}", "1".repeat(10_000)), "10.0.0.1"),
        ];
        for (xff, want) in cases {
            let h = headers(&[("x-forwarded-for", &xff)]);
            assert_eq!(
                p.client(peer, &h),
                ip(want),
                "{}",
                &xff[..xff.len().min(80)]
            );
        }
        // Every hop trusted: the leftmost examined is the best known.
        let h = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(p.client(peer, &h), ip("10.0.0.3"));
    }
}
