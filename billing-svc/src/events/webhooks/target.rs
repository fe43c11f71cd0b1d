//! Where a webhook may be sent. A URL must be `http` or `https` with a host; unless private targets are
//! allowed (`WEBHOOK_ALLOW_PRIVATE_TARGETS`, for local development and tests), every address the host
//! resolves to must be public: no loopback, private, link-local, unique-local, unspecified, multicast or
//! documentation range, so that a customer cannot make billing-svc call into the operator's network. The
//! address checked is the one connected to (the resolution is pinned for the request), and redirects are
//! never followed.

use std::net::{IpAddr, SocketAddr};

use crate::error::BillingError;

const MAX_URL_CHARS: usize = 2048;

/// A checked target: the URL and the addresses to connect to.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: reqwest::Url,
    pub host: String,
    pub addresses: Vec<SocketAddr>,
}

/// Checks the form of a webhook URL.
pub fn parse(url: &str) -> Result<reqwest::Url, BillingError> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(BillingError::invalid(
            "url",
            format!("must be at most {MAX_URL_CHARS} characters"),
        ));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|error| BillingError::invalid("url", format!("is not a URL: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(BillingError::invalid("url", "must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(BillingError::invalid("url", "needs a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(BillingError::invalid("url", "must not carry credentials"));
    }
    Ok(parsed)
}

/// Resolves the URL's host and refuses private addresses unless allowed.
pub async fn resolve(url: &str, allow_private: bool) -> Result<Target, BillingError> {
    let url = parse(url)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
        .await
        .map_err(|error| {
            BillingError::invalid("url", format!("the host does not resolve: {error}"))
        })?
        .collect();
    if addresses.is_empty() {
        return Err(BillingError::invalid("url", "the host does not resolve"));
    }
    if !allow_private
        && let Some(address) = addresses.iter().find(|address| !is_public(address.ip()))
    {
        return Err(BillingError::invalid(
            "url",
            format!(
                "resolves to a private or reserved address ({})",
                address.ip()
            ),
        ));
    }
    Ok(Target {
        url,
        host,
        addresses,
    })
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
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
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(
                !is_public(private.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))),
                "{private}"
            );
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(
                is_public(public.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))),
                "{public}"
            );
        }
    }

    #[tokio::test]
    async fn loopback_targets_are_refused_unless_allowed() {
        assert!(resolve("http://127.0.0.1:9/hook", false).await.is_err());
        assert!(resolve("http://localhost:9/hook", false).await.is_err());
        assert!(resolve("http://127.0.0.1:9/hook", true).await.is_ok());
        assert!(parse("ftp://example.com").is_err());
        assert!(parse("http://user:pass@example.com").is_err());
        assert!(parse("not a url").is_err());
    }
}
