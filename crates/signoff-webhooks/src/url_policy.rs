//! Which callback URLs Signoff may POST to: http(s) only, and no private, loopback or link-local targets unless allowed.
//!
//! [`CallbackUrlPolicy::check`] looks at the URL alone: the scheme, and the host when it is an IP literal or a
//! `localhost` name. A DNS name can point anywhere and can change between the check and the delivery, so
//! [`crate::deliver`] resolves the host itself at delivery time, refuses if any address is not public, and connects
//! only to the addresses it checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// The hint appended to every refusal of a non-public target.
const ALLOW_PRIVATE_HINT: &str =
    "set callbacks.allow_private = true or SIGNOFF_ALLOW_PRIVATE_CALLBACKS=true to allow it for development";

/// Where callbacks may go. The default refuses private and local targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallbackUrlPolicy {
    /// Allow loopback, private, link-local and other non-public targets (for development and tests).
    pub allow_private: bool,
}

/// Why a callback URL (or, at delivery time, its resolved address) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackUrlError {
    #[error("callback_url is not a valid URL: {0}")]
    Invalid(#[from] url::ParseError),
    #[error("callback_url must use http or https, not {0}")]
    UnsupportedScheme(String),
    #[error("callback_url must have a host")]
    MissingHost,
    #[error("callback_url points to a private or loopback address ({0}); {ALLOW_PRIVATE_HINT}")]
    PrivateAddress(IpAddr),
    #[error("callback_url points to a local host name ({0}); {ALLOW_PRIVATE_HINT}")]
    LocalHostname(String),
    #[error("callback_url host {host} resolves to a private or loopback address ({address}); {ALLOW_PRIVATE_HINT}")]
    ResolvesToPrivateAddress { host: String, address: IpAddr },
}

impl CallbackUrlPolicy {
    /// A policy that allows only public targets.
    pub const PUBLIC_ONLY: Self = Self { allow_private: false };

    /// Parses and checks a callback URL; see the module docs for what is refused.
    pub fn check(&self, callback_url: &str) -> Result<Url, CallbackUrlError> {
        let url = Url::parse(callback_url)?;
        self.check_url(&url)?;
        Ok(url)
    }

    /// Checks an already parsed URL (the URL itself only: DNS names are resolved and checked at delivery).
    pub fn check_url(&self, url: &Url) -> Result<(), CallbackUrlError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CallbackUrlError::UnsupportedScheme(url.scheme().to_owned()));
        }
        let host = url.host().ok_or(CallbackUrlError::MissingHost)?;
        if self.allow_private {
            return Ok(());
        }
        match host {
            Host::Domain(name) if is_localhost_name(name) => Err(CallbackUrlError::LocalHostname(name.to_owned())),
            Host::Domain(_) => Ok(()),
            Host::Ipv4(ip) => self.check_ip(IpAddr::V4(ip)),
            Host::Ipv6(ip) => self.check_ip(IpAddr::V6(ip)),
        }
    }

    /// Checks one address (a literal host, or one a host name resolved to).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), CallbackUrlError> {
        if self.allow_private || is_public_ip(ip) { Ok(()) } else { Err(CallbackUrlError::PrivateAddress(ip)) }
    }
}

/// `localhost` and any name under `.localhost` (RFC 6761), with or without a trailing dot, in any case.
fn is_localhost_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether an address may be called back when private targets are not allowed.
///
/// Refused IPv4: 0.0.0.0/8 (unspecified, "this network"), 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16, 172.16/12,
/// 192.168/16, 224/4 (multicast) and 240/4 (reserved, including 255.255.255.255 broadcast).
/// Refused IPv6: `::`, `::1`, fe80::/10 (link-local), fec0::/10 (old site-local), fc00::/7 (unique-local),
/// ff00::/8 (multicast), and IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`) and NAT64
/// (`64:ff9b::a.b.c.d`) forms of refused IPv4 addresses.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_ipv4(v4),
        IpAddr::V6(v6) => is_public_ipv6(v6),
    }
}

fn is_public_ipv4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    let refused = a == 0
        || a == 10
        || (a == 100 && (64..=127).contains(&b))
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 168)
        || a >= 224;
    !refused
}

fn is_public_ipv6(ip: Ipv6Addr) -> bool {
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    let segments = ip.segments();
    let first = segments[0];
    let refused_prefix = (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
        || (first & 0xfe00) == 0xfc00 // unique-local fc00::/7
        || (first & 0xff00) == 0xff00; // multicast ff00::/8
    if refused_prefix {
        return false;
    }
    if let Some(v4) = embedded_ipv4(ip) {
        return is_public_ipv4(v4);
    }
    true
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible or NAT64 well-known-prefix IPv6 address.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let low = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    let ipv4_compatible = s[..6].iter().all(|&segment| segment == 0);
    let nat64 = s[0] == 0x0064 && s[1] == 0xff9b && s[2..6].iter().all(|&segment| segment == 0);
    (ipv4_compatible || nat64).then_some(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: CallbackUrlPolicy = CallbackUrlPolicy { allow_private: false };
    const LAX: CallbackUrlPolicy = CallbackUrlPolicy { allow_private: true };

    fn refused_address(url: &str) -> IpAddr {
        match STRICT.check(url) {
            Err(CallbackUrlError::PrivateAddress(ip)) => ip,
            other => panic!("{url}: expected a private-address refusal, got {other:?}"),
        }
    }

    #[test]
    fn accepts_public_http_and_https_urls() {
        for url in [
            "https://agent.example.com/callbacks/signoff",
            "http://agent.example.com:8080/cb?x=1",
            "https://8.8.8.8/cb",
            "https://[2001:4860:4860::8888]/cb",
            "http://100.63.255.255/",
            "http://100.128.0.1/",
            "http://172.15.255.255/",
            "http://172.32.0.1/",
            "http://169.253.1.1/",
            "http://192.169.0.1/",
            "http://11.0.0.1/",
            "http://223.255.255.255/",
            "http://[::ffff:8.8.8.8]/",
            "http://[64:ff9b::808:808]/",
            "https://localhost.example.com/",
            "https://mylocalhost/",
        ] {
            STRICT.check(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }

    #[test]
    fn refuses_every_private_ipv4_range() {
        for (url, expected) in [
            ("http://127.0.0.1:8080/", "127.0.0.1"),
            ("http://127.255.255.254/", "127.255.255.254"),
            ("http://10.0.0.1/", "10.0.0.1"),
            ("http://10.255.255.255/", "10.255.255.255"),
            ("http://172.16.0.1/", "172.16.0.1"),
            ("http://172.31.255.255/", "172.31.255.255"),
            ("http://192.168.0.1/", "192.168.0.1"),
            ("http://192.168.255.255/", "192.168.255.255"),
            ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("http://100.64.0.1/", "100.64.0.1"),
            ("http://100.127.255.255/", "100.127.255.255"),
            ("http://0.0.0.0/", "0.0.0.0"),
            ("http://0.1.2.3/", "0.1.2.3"),
            ("http://255.255.255.255/", "255.255.255.255"),
            ("http://224.0.0.1/", "224.0.0.1"),
            ("http://240.0.0.1/", "240.0.0.1"),
        ] {
            assert_eq!(refused_address(url), expected.parse::<IpAddr>().unwrap(), "{url}");
        }
    }

    #[test]
    fn refuses_unusual_spellings_of_loopback() {
        for url in ["http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/"] {
            assert_eq!(refused_address(url), IpAddr::V4(Ipv4Addr::LOCALHOST), "{url}");
        }
    }

    #[test]
    fn refuses_every_private_ipv6_range() {
        for (url, expected) in [
            ("http://[::1]:9000/", "::1"),
            ("http://[::]/", "::"),
            ("http://[fe80::1]/", "fe80::1"),
            ("http://[febf:ffff::1]/", "febf:ffff::1"),
            ("http://[fec0::1]/", "fec0::1"),
            ("http://[fc00::1]/", "fc00::1"),
            ("http://[fd12:3456:789a::1]/", "fd12:3456:789a::1"),
            ("http://[ff02::1]/", "ff02::1"),
            ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
            ("http://[::ffff:10.1.2.3]/", "::ffff:10.1.2.3"),
            ("http://[::ffff:172.16.0.1]/", "::ffff:172.16.0.1"),
            ("http://[::ffff:192.168.1.1]/", "::ffff:192.168.1.1"),
            ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254"),
            ("http://[::ffff:100.64.0.1]/", "::ffff:100.64.0.1"),
            ("http://[::ffff:0.0.0.0]/", "::ffff:0.0.0.0"),
            ("http://[::ffff:255.255.255.255]/", "::ffff:255.255.255.255"),
            ("http://[::127.0.0.1]/", "::127.0.0.1"),
            ("http://[64:ff9b::a00:1]/", "64:ff9b::a00:1"),
        ] {
            assert_eq!(refused_address(url), expected.parse::<IpAddr>().unwrap(), "{url}");
        }
    }

    #[test]
    fn refuses_localhost_names() {
        for url in [
            "http://localhost/",
            "http://LOCALHOST:3000/",
            "http://localhost./",
            "http://api.localhost/",
            "http://deep.api.localhost./x",
        ] {
            assert!(matches!(STRICT.check(url), Err(CallbackUrlError::LocalHostname(_))), "{url}");
        }
    }

    #[test]
    fn refuses_other_schemes_and_hostless_urls() {
        for (url, scheme) in
            [("ftp://example.com/", "ftp"), ("file:///etc/passwd", "file"), ("javascript:alert(1)", "javascript")]
        {
            assert_eq!(STRICT.check(url), Err(CallbackUrlError::UnsupportedScheme(scheme.into())), "{url}");
            assert_eq!(LAX.check(url), Err(CallbackUrlError::UnsupportedScheme(scheme.into())), "{url}");
        }
        assert!(matches!(STRICT.check("not a url"), Err(CallbackUrlError::Invalid(_))));
        assert!(matches!(STRICT.check("http://"), Err(CallbackUrlError::Invalid(_))));
        assert!(matches!(STRICT.check("/relative/path"), Err(CallbackUrlError::Invalid(_))));
    }

    #[test]
    fn allow_private_accepts_local_targets() {
        for url in ["http://127.0.0.1:8080/cb", "http://localhost:3000/", "http://[::1]/", "http://10.0.0.5/"] {
            LAX.check(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        LAX.check_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
    }

    #[test]
    fn error_messages_explain_how_to_allow_private_targets() {
        let message = STRICT.check("http://127.0.0.1/").unwrap_err().to_string();
        assert_eq!(
            message,
            "callback_url points to a private or loopback address (127.0.0.1); set callbacks.allow_private = true \
             or SIGNOFF_ALLOW_PRIVATE_CALLBACKS=true to allow it for development"
        );
        let message = STRICT.check("http://localhost/").unwrap_err().to_string();
        assert!(message.contains("local host name (localhost)") && message.contains("allow_private"), "{message}");
        let message = STRICT.check("gopher://x/").unwrap_err().to_string();
        assert_eq!(message, "callback_url must use http or https, not gopher");
    }
}
