//! Outbound HTTP, through `ureq`: one blocking client for every request this
//! service makes (webhooks, Slack, the SMS gateway, files fetched from URLs).
//! No redirects are followed: a receiver that moved must be reconfigured, not
//! chased, and a fetch cannot be bounced to an address it may not reach.

use std::net::IpAddr;
use std::time::Duration;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// Every request: one time limit for all of it, statuses as answers, no redirects, no proxy.
fn config(timeout: Duration) -> Config {
    Config::builder().timeout_global(Some(timeout)).http_status_as_error(false).max_redirects(0).proxy(None).build()
}

/// POSTs `body` as JSON with `headers`; `Ok` for a 2xx answer, else why not.
pub fn post_json(url: &str, headers: &[(String, String)], body: &[u8], timeout: Duration) -> Result<(), String> {
    let mut request = config(timeout).new_agent().post(url).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.send(body).map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) { Ok(()) } else { Err(format!("HTTP {status}")) }
}

/// Whether `ip` is on the public internet: not loopback, private, link-local,
/// shared (CGNAT), unspecified, multicast, documentation or unique-local.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Resolves as the default resolver does, then refuses a host with any
/// non-public address: the address checked is the address connected to.
#[derive(Debug, Default)]
struct PublicOnly(DefaultResolver);

impl Resolver for PublicOnly {
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.0.resolve(uri, config, timeout)?;
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(ureq::Error::BadUri(format!("{} is not a public address", bad.ip())));
        }
        Ok(addrs)
    }
}

/// What a fetch may do.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    pub timeout: Duration,
    pub max_bytes: usize,
    /// Loopback and private addresses too (tests, closed networks).
    pub allow_private: bool,
}

/// GETs `url` (http only in this build: no TLS client): the body of a 200
/// answer within the limits, else why not, in words for the client.
pub fn fetch(url: &str, limits: FetchLimits) -> Result<Vec<u8>, String> {
    let uri: Uri = url.parse().map_err(|_| "not a valid URL".to_string())?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err("https URLs cannot be fetched by this build (no TLS client)".into()),
        _ => return Err("only http URLs can be fetched".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    let config = config(limits.timeout);
    let agent = if limits.allow_private {
        ureq::Agent::with_parts(config, DefaultConnector::default(), DefaultResolver::default())
    } else {
        ureq::Agent::with_parts(config, DefaultConnector::default(), PublicOnly::default())
    };
    let mut response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::BadUri(why) => why,
        ureq::Error::Timeout(_) => format!("no answer within {} s", limits.timeout.as_secs_f32()),
        other => other.to_string(),
    })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(format!("the server answered HTTP {status}"));
    }
    let max = limits.max_bytes as u64;
    response.body_mut().with_config().limit(max).read_to_vec().map_err(|e| match e {
        ureq::Error::BodyExceedsLimit(_) => format!("the file is larger than {} bytes", limits.max_bytes),
        ureq::Error::Timeout(_) => format!("not received within {} s", limits.timeout.as_secs_f32()),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["8.8.8.8", "151.101.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn a_loopback_url_is_refused_unless_allowed() {
        let limits = FetchLimits { timeout: Duration::from_secs(2), max_bytes: 10, allow_private: false };
        let why = fetch("http://127.0.0.1:9/x", limits).expect_err("refused");
        assert!(why.contains("not a public address"), "{why}");
        assert!(fetch("ftp://example.com/x", limits).expect_err("scheme").contains("only http"));
        assert!(fetch("https://example.com/x", limits).expect_err("tls").contains("https"));
    }
}
