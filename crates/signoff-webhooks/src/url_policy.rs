//! Which callback URLs Signoff may POST to: http(s) only, and no private, loopback, link-local or other
//! special-purpose targets unless allowed.
//!
//! [`CallbackUrlPolicy::check`] looks at the URL alone: the scheme, and the host when it is an IP literal or a
//! `localhost` name. A DNS name can point anywhere and can change between the check and the delivery, so
//! [`crate::deliver`] resolves the host itself at delivery time, refuses if any address is not public, and connects
//! only to the addresses it checked.
//!
//! Which addresses are public is decided by two tables, one per address family, that follow the IANA IPv4 and IPv6
//! Special-Purpose Address Registries: every range they list as not globally reachable is refused, and so is
//! multicast. See [`is_public_ip`].

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
    /// The URL's host is an IP literal that is not public. It names the address the caller wrote.
    #[error("callback_url points to a private or special-purpose address ({0}); {ALLOW_PRIVATE_HINT}")]
    PrivateAddress(IpAddr),
    #[error("callback_url points to a local host name ({0}); {ALLOW_PRIVATE_HINT}")]
    LocalHostname(String),
    /// A host name resolved (at delivery) to an address that is not public. The address is left out on purpose:
    /// the text reaches the agent, which must not learn what internal names resolve to.
    #[error("callback_url host {host} resolves to a private or special-purpose address; {ALLOW_PRIVATE_HINT}")]
    ResolvesToPrivateAddress { host: String },
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

/// How [`is_public_ip`] treats the addresses of one special-purpose range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Not globally reachable: refused.
    Refused,
    /// Globally reachable, although it lies inside a refused range (an exception the registry lists).
    Global,
    /// Carries an IPv4 address in its last 32 bits (IPv4-mapped, NAT64): that address is checked instead.
    Ipv4InLast32Bits,
    /// 6to4: carries an IPv4 address in bits 16 to 47, which is checked instead.
    Ipv4After16Bits,
}

use Reach::{Global, Ipv4After16Bits, Ipv4InLast32Bits, Refused};

/// One address range of the tables, with its name (as the registry gives it) and RFC.
#[derive(Debug, Clone, Copy)]
struct SpecialRange {
    network: IpAddr,
    prefix_len: u8,
    name: &'static str,
    reach: Reach,
}

impl SpecialRange {
    fn contains(&self, ip: IpAddr) -> bool {
        let (bits, width) = as_bits(ip);
        let (network, _) = as_bits(self.network);
        let mask = u128::MAX.checked_shl(width - u32::from(self.prefix_len)).unwrap_or(0);
        (bits ^ network) & mask == 0
    }
}

const fn v4(network: [u8; 4], prefix_len: u8, name: &'static str, reach: Reach) -> SpecialRange {
    let [a, b, c, d] = network;
    SpecialRange { network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix_len, name, reach }
}

const fn v6(network: [u16; 8], prefix_len: u8, name: &'static str, reach: Reach) -> SpecialRange {
    let [a, b, c, d, e, f, g, h] = network;
    SpecialRange { network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)), prefix_len, name, reach }
}

/// The IPv4 ranges that are refused, and the globally reachable exceptions inside them.
///
/// Every entry of the IANA IPv4 Special-Purpose Address Registry that is not globally reachable, plus multicast
/// (224.0.0.0/4, from the multicast registry). 192.88.99.0/24 (the deprecated 6to4 relay anycast) is refused whole.
/// The most specific entry that contains an address decides.
const IPV4_SPECIAL: &[SpecialRange] = &[
    v4([0, 0, 0, 0], 8, "\"this network\" (RFC 791)", Refused),
    v4([0, 0, 0, 0], 32, "\"this host on this network\" (RFC 1122)", Refused),
    v4([10, 0, 0, 0], 8, "private-use (RFC 1918)", Refused),
    v4([100, 64, 0, 0], 10, "shared address space (RFC 6598)", Refused),
    v4([127, 0, 0, 0], 8, "loopback (RFC 1122)", Refused),
    v4([169, 254, 0, 0], 16, "link-local (RFC 3927)", Refused),
    v4([172, 16, 0, 0], 12, "private-use (RFC 1918)", Refused),
    v4([192, 0, 0, 0], 24, "IETF protocol assignments (RFC 6890)", Refused),
    v4([192, 0, 0, 0], 29, "IPv4 service continuity prefix (RFC 7335)", Refused),
    v4([192, 0, 0, 8], 32, "IPv4 dummy address (RFC 7600)", Refused),
    v4([192, 0, 0, 9], 32, "Port Control Protocol anycast (RFC 7723)", Global),
    v4([192, 0, 0, 10], 32, "TURN anycast (RFC 8155)", Global),
    v4([192, 0, 0, 170], 32, "NAT64/DNS64 discovery (RFC 8880)", Refused),
    v4([192, 0, 0, 171], 32, "NAT64/DNS64 discovery (RFC 8880)", Refused),
    v4([192, 0, 2, 0], 24, "documentation, TEST-NET-1 (RFC 5737)", Refused),
    v4([192, 88, 99, 0], 24, "deprecated 6to4 relay anycast (RFC 7526)", Refused),
    v4([192, 168, 0, 0], 16, "private-use (RFC 1918)", Refused),
    v4([198, 18, 0, 0], 15, "benchmarking (RFC 2544)", Refused),
    v4([198, 51, 100, 0], 24, "documentation, TEST-NET-2 (RFC 5737)", Refused),
    v4([203, 0, 113, 0], 24, "documentation, TEST-NET-3 (RFC 5737)", Refused),
    v4([224, 0, 0, 0], 4, "multicast (RFC 5771)", Refused),
    v4([240, 0, 0, 0], 4, "reserved (RFC 1112)", Refused),
    v4([255, 255, 255, 255], 32, "limited broadcast (RFC 919)", Refused),
];

/// The IPv6 ranges that are refused, the globally reachable exceptions inside them, and the ranges that embed an
/// IPv4 address (checked against [`IPV4_SPECIAL`]).
///
/// Every entry of the IANA IPv6 Special-Purpose Address Registry that is not globally reachable, plus multicast
/// (ff00::/8), the deprecated site-local fec0::/10 (RFC 3879) and IPv4-compatible ::/96 (deprecated by RFC 4291).
/// Teredo (2001::/32) and the old ORCHID prefix (2001:10::/28) are not listed as globally reachable, so they stay
/// refused with the rest of 2001::/23. The most specific entry that contains an address decides.
const IPV6_SPECIAL: &[SpecialRange] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified (RFC 4291)", Refused),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback (RFC 4291)", Refused),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96, "IPv4-compatible, deprecated (RFC 4291)", Refused),
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, "IPv4-mapped (RFC 4291)", Ipv4InLast32Bits),
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, "IPv4/IPv6 translation, NAT64 (RFC 6052)", Ipv4InLast32Bits),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "local-use IPv4/IPv6 translation (RFC 8215)", Refused),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (RFC 6666)", Refused),
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, "dummy IPv6 prefix (RFC 9780)", Refused),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, "IETF protocol assignments (RFC 2928)", Refused),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "Teredo (RFC 4380)", Refused),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, "Port Control Protocol anycast (RFC 7723)", Global),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, "TURN anycast (RFC 8155)", Global),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, "DNS-SD service registration protocol anycast (RFC 9665)", Global),
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, "benchmarking (RFC 5180)", Refused),
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, "AMT (RFC 7450)", Global),
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, "AS112-v6 (RFC 7535)", Global),
    v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, "deprecated ORCHID (RFC 4843)", Refused),
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, "ORCHIDv2 (RFC 7343)", Global),
    v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28, "drone remote ID entity tags (RFC 9374)", Global),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "documentation (RFC 3849)", Refused),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, "6to4 (RFC 3056)", Ipv4After16Bits),
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation (RFC 9637)", Refused),
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "segment routing SIDs (RFC 9602)", Refused),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local (RFC 4193)", Refused),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local unicast (RFC 4291)", Refused),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "deprecated site-local (RFC 3879)", Refused),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast (RFC 4291)", Refused),
];

/// An address as an integer, and its width in bits.
fn as_bits(ip: IpAddr) -> (u128, u32) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// The most specific range of the tables that contains `ip`, if any does.
fn special_range(ip: IpAddr) -> Option<&'static SpecialRange> {
    let table = if ip.is_ipv4() { IPV4_SPECIAL } else { IPV6_SPECIAL };
    table.iter().filter(|range| range.contains(ip)).max_by_key(|range| range.prefix_len)
}

/// Whether an address may be called back when private targets are not allowed.
///
/// An address is refused when the most specific special-purpose range that contains it is not globally reachable,
/// per the IANA IPv4 and IPv6 Special-Purpose Address Registries, or is multicast. IPv4-mapped
/// (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::/48`) addresses are judged by the IPv4
/// address they carry. Any other address is public.
pub fn is_public_ip(ip: IpAddr) -> bool {
    refused_range(ip).is_none()
}

/// The name of the range that makes `ip` not public, such as `"documentation, TEST-NET-1 (RFC 5737)"`, or `None`
/// if it is public. For an address that carries an IPv4 address, the range of that IPv4 address.
///
/// Meant for logs read by operators: error texts shown to agents must not describe resolved addresses.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    let range = special_range(ip)?;
    let (bits, _) = as_bits(ip);
    // Each cast keeps the low 32 bits, which after the shift are the embedded IPv4 address.
    match range.reach {
        Refused => Some(range.name),
        Global => None,
        Ipv4InLast32Bits => refused_range(IpAddr::V4(Ipv4Addr::from(bits as u32))),
        Ipv4After16Bits => refused_range(IpAddr::V4(Ipv4Addr::from((bits >> 80) as u32))),
    }
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

    /// The URL form of an address: IPv6 in brackets.
    fn url_of(ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) => format!("http://{v4}/"),
            IpAddr::V6(v6) => format!("http://[{v6}]/"),
        }
    }

    /// Asserts that the first, a middle and the last address of `cidr` are refused, as URL hosts and as resolved
    /// addresses.
    fn assert_range_refused(cidr: &str) {
        let (network, prefix_len) = cidr.split_once('/').unwrap();
        let (bits, width) = as_bits(network.parse().unwrap());
        let host_bits = width - prefix_len.parse::<u32>().unwrap();
        let host_mask = if host_bits == 0 { 0 } else { u128::MAX >> (128 - host_bits) };
        assert_eq!(bits & host_mask, 0, "{cidr} has host bits set");
        let middle = if host_bits == 0 { 0 } else { 1 << (host_bits - 1) };
        for bits in [bits, bits | middle, bits | host_mask] {
            let ip = if width == 32 {
                IpAddr::V4(Ipv4Addr::from(u32::try_from(bits).unwrap()))
            } else {
                IpAddr::V6(Ipv6Addr::from(bits))
            };
            assert!(refused_range(ip).is_some(), "{ip} in {cidr} passed");
            assert_eq!(STRICT.check_ip(ip), Err(CallbackUrlError::PrivateAddress(ip)), "{ip} in {cidr}");
            assert_eq!(refused_address(&url_of(ip)), ip, "{ip} in {cidr}");
        }
    }

    /// One test per refused range, each named after it.
    macro_rules! refuses_ranges {
        ($($test:ident: $cidr:literal,)*) => {$(
            #[test]
            fn $test() {
                assert_range_refused($cidr);
            }
        )*};
    }

    refuses_ranges! {
        refuses_0_0_0_0_slash_8_this_network: "0.0.0.0/8",
        refuses_100_64_0_0_slash_10_shared_address_space: "100.64.0.0/10",
        refuses_192_0_0_0_slash_24_ietf_protocol_assignments: "192.0.0.0/24",
        refuses_192_0_0_0_slash_29_ipv4_service_continuity: "192.0.0.0/29",
        refuses_192_0_0_8_slash_32_ipv4_dummy_address: "192.0.0.8/32",
        refuses_192_0_0_170_slash_32_nat64_discovery: "192.0.0.170/32",
        refuses_192_0_0_171_slash_32_nat64_discovery: "192.0.0.171/32",
        refuses_192_0_2_0_slash_24_test_net_1: "192.0.2.0/24",
        refuses_192_88_99_0_slash_24_6to4_relay_anycast: "192.88.99.0/24",
        refuses_198_18_0_0_slash_15_benchmarking: "198.18.0.0/15",
        refuses_198_51_100_0_slash_24_test_net_2: "198.51.100.0/24",
        refuses_203_0_113_0_slash_24_test_net_3: "203.0.113.0/24",
        refuses_224_0_0_0_slash_4_multicast: "224.0.0.0/4",
        refuses_240_0_0_0_slash_4_reserved: "240.0.0.0/4",
        refuses_255_255_255_255_slash_32_limited_broadcast: "255.255.255.255/32",
        refuses_ipv6_unspecified_slash_128: "::/128",
        refuses_ipv6_loopback_slash_128: "::1/128",
        refuses_ipv4_compatible_slash_96: "::/96",
        refuses_64_ff9b_1_slash_48_local_use_translation: "64:ff9b:1::/48",
        refuses_100_slash_64_discard_only: "100::/64",
        refuses_100_0_0_1_slash_64_dummy_prefix: "100:0:0:1::/64",
        refuses_2001_slash_23_ietf_protocol_assignments: "2001::/23",
        refuses_2001_slash_32_teredo: "2001::/32",
        refuses_2001_2_slash_48_benchmarking: "2001:2::/48",
        refuses_2001_10_slash_28_deprecated_orchid: "2001:10::/28",
        refuses_2001_db8_slash_32_documentation: "2001:db8::/32",
        refuses_3fff_slash_20_documentation: "3fff::/20",
        refuses_5f00_slash_16_srv6_sids: "5f00::/16",
        refuses_fc00_slash_7_unique_local: "fc00::/7",
        refuses_fe80_slash_10_link_local: "fe80::/10",
        refuses_fec0_slash_10_site_local: "fec0::/10",
        refuses_ff00_slash_8_multicast: "ff00::/8",
    }

    #[test]
    fn judges_2002_slash_16_6to4_by_its_embedded_ipv4() {
        for refused in ["2002:7f00:1::", "2002:a00:1::1", "2002:c000:201::", "2002:c612:1::", "2002:ffff:ffff::"] {
            assert_eq!(refused_address(&format!("http://[{refused}]/")), refused.parse::<IpAddr>().unwrap());
        }
        STRICT.check("http://[2002:808:808::1]/").unwrap();
        assert_eq!(refused_range("2002:c000:201::".parse().unwrap()), Some("documentation, TEST-NET-1 (RFC 5737)"));
    }

    #[test]
    fn judges_64_ff9b_slash_96_nat64_by_its_embedded_ipv4() {
        for refused in ["64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::c633:6401", "64:ff9b::c000:1"] {
            assert_eq!(refused_address(&format!("http://[{refused}]/")), refused.parse::<IpAddr>().unwrap());
        }
        STRICT.check("http://[64:ff9b::808:808]/").unwrap();
        assert_eq!(refused_range("64:ff9b::7f00:1".parse().unwrap()), Some("loopback (RFC 1122)"));
    }

    #[test]
    fn judges_ffff_slash_96_ipv4_mapped_by_its_embedded_ipv4() {
        for refused in ["::ffff:192.0.0.1", "::ffff:198.18.0.1", "::ffff:203.0.113.9", "::ffff:240.0.0.1"] {
            assert_eq!(refused_address(&format!("http://[{refused}]/")), refused.parse::<IpAddr>().unwrap());
        }
        STRICT.check("http://[::ffff:1.1.1.1]/").unwrap();
        assert_eq!(refused_range("::ffff:198.18.0.1".parse().unwrap()), Some("benchmarking (RFC 2544)"));
    }

    #[test]
    fn accepts_the_globally_reachable_exceptions_inside_refused_ranges() {
        for ip in [
            "192.0.0.9",
            "192.0.0.10",
            "2001:1::1",
            "2001:1::2",
            "2001:1::3",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "2001:30::1",
        ] {
            STRICT.check(&url_of(ip.parse().unwrap())).unwrap_or_else(|e| panic!("{ip}: {e}"));
        }
        for ip in ["192.0.0.8", "192.0.0.11", "2001:1::4", "2001:4:113::1"] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn accepts_ordinary_public_addresses_next_to_refused_ranges() {
        for ip in [
            "1.1.1.1",
            "9.9.9.9",
            "100.63.255.255",
            "192.0.1.1",
            "192.0.3.0",
            "192.88.98.255",
            "192.88.100.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:830::200e",
            "2001:200::1",
            "2001:db7:ffff::1",
            "2001:db9::1",
            "2003::1",
            "2620:4f:8000::1",
            "3fff:1000::1",
            "5eff:ffff::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_public_ip(ip), "{ip}");
            STRICT.check(&url_of(ip)).unwrap_or_else(|e| panic!("{ip}: {e}"));
        }
    }

    #[test]
    fn every_table_entry_is_a_well_formed_range_listed_once() {
        for (table, width) in [(IPV4_SPECIAL, 32), (IPV6_SPECIAL, 128)] {
            for (i, range) in table.iter().enumerate() {
                let (bits, range_width) = as_bits(range.network);
                assert_eq!(range_width, width, "{} is in the wrong table", range.name);
                let host_bits = width - u32::from(range.prefix_len);
                let host_mask = if host_bits == 0 { 0 } else { u128::MAX >> (128 - host_bits) };
                assert_eq!(bits & host_mask, 0, "{}/{} has host bits set", range.network, range.prefix_len);
                assert!(
                    table[..i]
                        .iter()
                        .all(|other| (other.network, other.prefix_len) != (range.network, range.prefix_len)),
                    "{}/{} is listed twice",
                    range.network,
                    range.prefix_len
                );
            }
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
            "callback_url points to a private or special-purpose address (127.0.0.1); set callbacks.allow_private = true \
             or SIGNOFF_ALLOW_PRIVATE_CALLBACKS=true to allow it for development"
        );
        let message = STRICT.check("http://localhost/").unwrap_err().to_string();
        assert!(message.contains("local host name (localhost)") && message.contains("allow_private"), "{message}");
        let message = STRICT.check("gopher://x/").unwrap_err().to_string();
        assert_eq!(message, "callback_url must use http or https, not gopher");
    }
}
