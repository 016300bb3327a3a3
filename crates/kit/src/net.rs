//! Who the client is, network-wise: its address, taking `X-Forwarded-For` only from proxies
//! this deployment trusts (`PMS_TRUSTED_PROXIES`), so nobody can pick their own address to slip
//! past a per-address limit.

use std::{
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::{HeaderMap, request::Parts},
};

use crate::config::{self, ConfigError};

/// A network: an address and a prefix length (`10.0.0.0/8`, `::1/128`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, ip) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(base) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(base) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) =
            text.trim().split_once('/').map_or((text.trim(), None), |(a, p)| (a, Some(p)));
        let base: IpAddr = address.parse().map_err(|_| format!("`{address}` is not an IP address"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`/{p}` is not a prefix length"))?,
            None => max,
        };
        Ok(Self { base, prefix })
    }
}

/// The proxies whose `X-Forwarded-For` entries are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// `PMS_TRUSTED_PROXIES`: comma-separated addresses or networks; default loopback only
    /// (`pms up`, where the gateway reaches the services over loopback). Behind a load balancer
    /// or on Kubernetes, list the networks the balancer and the gateway connect from.
    pub fn from_env() -> Result<Self, ConfigError> {
        let spec = config::var("PMS_TRUSTED_PROXIES").unwrap_or_else(|| "127.0.0.0/8,::1".into());
        Self::parse(&spec)
            .map_err(|reason| ConfigError::Invalid { name: "PMS_TRUSTED_PROXIES".into(), reason })
    }

    pub fn parse(spec: &str) -> Result<Self, String> {
        spec.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Network::from_str)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(ip))
    }

    /// The client's address: the connection's peer, unless the peer is a trusted proxy; then
    /// the rightmost `X-Forwarded-For` entry that is not a trusted proxy (each proxy appends
    /// the address it was reached from, so entries left of an untrusted one prove nothing).
    pub fn client(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let entries: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Ok(ip) = entry.parse::<IpAddr>() else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }
}

/// A header's text without control characters, at most `max` characters; `None` when absent,
/// not text, or empty.
pub fn header_text(headers: &HeaderMap, name: &str, max: usize) -> Option<String> {
    let text: String =
        headers.get(name)?.to_str().ok()?.chars().filter(|c| !c.is_control()).take(max).collect();
    (!text.is_empty()).then_some(text)
}

/// Where a request came from, as trails record it: the client's address, as
/// [`TrustedProxies::client`] decides it (none when the connection has no peer, in tests that
/// call a router directly), and its `User-Agent` (at most 256 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub address: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Origin {
    pub fn of(parts: &Parts, trusted: &TrustedProxies) -> Self {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Self {
            address: trusted.client(&parts.headers, peer),
            user_agent: header_text(&parts.headers, "user-agent", 256),
        }
    }
}

/// The request's [`Origin`] as an extractor, with the address as text (`unknown` without a
/// peer).
pub struct ClientAddress(pub String, pub Option<String>);

impl<S> FromRequestParts<S> for ClientAddress
where
    TrustedProxies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let origin = Origin::of(parts, &TrustedProxies::from_ref(state));
        let address = origin.address.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        Ok(ClientAddress(address, origin.user_agent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().expect("value"));
        headers
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse("127.0.0.0/8, 10.0.0.0/8").expect("valid");
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        // An untrusted peer's claim is ignored.
        assert_eq!(trusted.client(&headers("1.2.3.4"), ip("203.0.113.9")), ip("203.0.113.9"));
        // Through the gateway (loopback) and a balancer (10.x): the client before them.
        assert_eq!(trusted.client(&headers("198.51.100.7, 10.1.2.3"), ip("127.0.0.1")), ip("198.51.100.7"));
        // A client that forges an entry is found at its own address, right of the forgery.
        assert_eq!(trusted.client(&headers("1.1.1.1, 198.51.100.7"), ip("127.0.0.1")), ip("198.51.100.7"));
        assert_eq!(trusted.client(&HeaderMap::new(), ip("127.0.0.1")), ip("127.0.0.1"));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("not-an-ip").is_err());
        let v6 = TrustedProxies::parse("fd00::/8").expect("valid");
        assert!(v6.trusts("fd12::1".parse().expect("ip")) && !v6.trusts("fe80::1".parse().expect("ip")));
    }
}
