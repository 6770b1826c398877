//! The client's address behind a reverse proxy. A proxy the operator names with
//! `--trusted-proxy CIDR` is believed about the address it forwards (`X-Forwarded-For` or
//! `Forwarded: for=`); anyone else's forwarding headers are ignored, since anyone can write them.
//!
//! Each header is read from the right: the last entry is what the nearest proxy saw, and
//! entries stay believable as long as they name trusted proxies. The first entry that is not a
//! trusted proxy is the client (entries left of it were written by the client itself). When a
//! request carries both headers and they disagree, one of them came from the client through a
//! proxy that only appends to the other; there is no telling which, so the proxy's own address
//! counts: every such request shares one budget and none chooses its own.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The proxies whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From `CIDR` or plain address strings (`10.0.0.0/8`, `192.0.2.7`, `fd00::/8`); the error
    /// names the one that does not read.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<TrustedProxies, String> {
        items
            .iter()
            .map(|item| {
                let item = item.as_ref().trim();
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!("{item:?} is not an address or CIDR range (e.g. 10.0.0.0/8)")
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request that came from `peer` with these `X-Forwarded-For`
    /// and `Forwarded` header values (every header of the name, in order; a value that is not
    /// text counts as an entry that does not read).
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        x_forwarded_for: impl IntoIterator<Item = &'a str>,
        forwarded: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let from_xff = self.nearest_untrusted(peer, header_entries(x_forwarded_for));
        let from_forwarded = self.nearest_untrusted(peer, forwarded_for(forwarded));
        match (from_xff, from_forwarded) {
            (Some(a), Some(b)) if a != b => peer,
            (Some(client), _) | (None, Some(client)) => client,
            (None, None) => peer,
        }
    }

    /// Walks `entries` (nearest last) from the right; `None` when there are none.
    fn nearest_untrusted(&self, peer: IpAddr, entries: Vec<Option<IpAddr>>) -> Option<IpAddr> {
        if entries.is_empty() {
            return None;
        }
        let mut last_trusted = peer;
        for entry in entries.into_iter().rev() {
            match entry {
                // Something the client wrote, or an obfuscated hop: the last address a trusted
                // proxy vouched for is the best there is.
                None => return Some(last_trusted),
                Some(ip) if self.contains(ip) => last_trusted = ip,
                Some(ip) => return Some(ip),
            }
        }
        Some(last_trusted)
    }
}

/// The comma-separated entries of every header value, in order.
fn header_entries<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Option<IpAddr>> {
    values
        .into_iter()
        .flat_map(|text| text.split(',').map(|entry| parse_node(entry.trim())))
        .collect()
}

/// The `for=` of each element of every `Forwarded` header value (RFC 7239), in order.
fn forwarded_for<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Option<IpAddr>> {
    values
        .into_iter()
        .flat_map(|text| {
            text.split(',').map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// An address as proxies write it: `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`. `unknown` and obfuscated names are `None`.
fn parse_node(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|addr| addr.ip()))
        .or_else(|_| {
            text.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .ok_or(())
                .and_then(|inner| inner.parse::<IpAddr>().map_err(|_| ()))
        })
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Header lines as (name, value); the client address `proxies` finds behind `peer`.
    fn client(proxies: &TrustedProxies, peer: IpAddr, headers: &[(&str, &str)]) -> IpAddr {
        let values = |wanted: &str| {
            headers
                .iter()
                .filter(move |(name, _)| name.eq_ignore_ascii_case(wanted))
                .map(|(_, value)| *value)
                .collect::<Vec<_>>()
        };
        proxies.client(peer, values("x-forwarded-for"), values("forwarded"))
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.1", "fd00::/8"]).unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let h: &[(&str, &str)] = &[
            ("x-forwarded-for", "198.51.100.9"),
            ("forwarded", "for=1.2.3.4"),
        ];
        assert_eq!(client(&proxies(), ip("203.0.113.5"), h), ip("203.0.113.5"));
        assert_eq!(
            client(&TrustedProxies::default(), ip("10.0.0.2"), h),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn a_trusted_proxy_is_believed_from_the_right() {
        let p = proxies();
        let peer = ip("10.0.0.2");
        // The client wrote a fake entry first; the proxy appended what it saw.
        let h: &[(&str, &str)] = &[("x-forwarded-for", "6.6.6.6, 198.51.100.9")];
        assert_eq!(client(&p, peer, h), ip("198.51.100.9"));
        // Two proxies in a row, the second also trusted.
        let h: &[(&str, &str)] = &[("x-forwarded-for", "198.51.100.9, 10.1.2.3")];
        assert_eq!(client(&p, peer, h), ip("198.51.100.9"));
        // Several headers read as one list.
        let h: &[(&str, &str)] = &[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.9"),
        ];
        assert_eq!(client(&p, peer, h), ip("198.51.100.9"));
        // No header: the proxy itself.
        assert_eq!(client(&p, peer, &[]), peer);
        // Garbage next to the proxy: the proxy.
        let h: &[(&str, &str)] = &[("x-forwarded-for", "198.51.100.9, nonsense")];
        assert_eq!(client(&p, peer, h), peer);
        // Only trusted entries: the farthest of them.
        let h: &[(&str, &str)] = &[("x-forwarded-for", "10.9.9.9, 10.1.2.3")];
        assert_eq!(client(&p, peer, h), ip("10.9.9.9"));
    }

    #[test]
    fn forwarded_is_read_like_rfc_7239_writes_it() {
        let p = proxies();
        let peer = ip("192.0.2.1");
        let h: &[(&str, &str)] = &[(
            "forwarded",
            r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.2"#,
        )];
        assert_eq!(client(&p, peer, h), ip("2001:db8:cafe::17"));
        let h: &[(&str, &str)] = &[("forwarded", "For=198.51.100.9:1234")];
        assert_eq!(client(&p, peer, h), ip("198.51.100.9"));
        let h: &[(&str, &str)] = &[("forwarded", "for=unknown")];
        assert_eq!(client(&p, peer, h), peer);
    }

    #[test]
    fn headers_that_disagree_count_as_the_proxy() {
        let p = proxies();
        let peer = ip("10.0.0.2");
        let agree: &[(&str, &str)] = &[
            ("x-forwarded-for", "198.51.100.9"),
            ("forwarded", "for=198.51.100.9"),
        ];
        assert_eq!(client(&p, peer, agree), ip("198.51.100.9"));
        let disagree: &[(&str, &str)] = &[
            ("x-forwarded-for", "198.51.100.9"),
            ("forwarded", "for=203.0.113.1"),
        ];
        assert_eq!(client(&p, peer, disagree), peer);
    }

    #[test]
    fn mapped_addresses_and_bad_ranges() {
        let p = proxies();
        let h: &[(&str, &str)] = &[("x-forwarded-for", "::ffff:198.51.100.9")];
        assert_eq!(client(&p, ip("::ffff:10.0.0.2"), h), ip("198.51.100.9"));
        let err = TrustedProxies::parse(&["10.0.0.0/33"]).unwrap_err();
        assert!(err.contains("\"10.0.0.0/33\""), "{err}");
        assert_eq!(
            TrustedProxies::parse(&["10.1.2.3/8"]).unwrap(),
            TrustedProxies::parse(&["10.0.0.0/8"]).unwrap()
        );
    }
}
