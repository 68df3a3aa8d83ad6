//! The accepted form of a `callback_url`, as one regular expression shared with the OpenAPI document.
//!
//! The form is a strict subset of what URL parsers accept, chosen so that every URL of this form parses the same
//! way everywhere (RFC 3986 and the WHATWG URL standard alike): `http` or `https` in lower case, a host name (whose
//! last label starts with a letter), a dotted IPv4 address or a bracketed IPv6 address, an optional port from 0 to
//! 65535, then an optional path and query of URI characters (percent-encoding allowed). No user info, fragment,
//! spaces or non-ASCII characters. Whether the host may be private or loopback is decided later, by the server's
//! callback policy.

use regex::Regex;
use std::sync::LazyLock;

/// The longest accepted `callback_url`, in characters (all ASCII, so also in bytes).
pub const CALLBACK_URL_MAX_LEN: usize = 2048;

/// One decimal IPv4 octet, 0 to 255, without leading zeros.
macro_rules! octet {
    () => {
        "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    };
}

/// A dotted IPv4 address.
macro_rules! ipv4 {
    () => {
        concat!(octet!(), "(\\.", octet!(), "){3}")
    };
}

/// One IPv6 group of 1 to 4 hex digits.
macro_rules! h16 {
    () => {
        "[0-9A-Fa-f]{1,4}"
    };
}

/// The last 32 bits of an IPv6 address: two groups, or an IPv4 address.
macro_rules! ls32 {
    () => {
        concat!("(", h16!(), ":", h16!(), "|", ipv4!(), ")")
    };
}

/// The accepted form, anchored at both ends. The same text is the `pattern` of `callback_url` in
/// `docs/openapi.json`; it uses only syntax that means the same in ECMA-262, Python and Rust regular expressions.
pub const CALLBACK_URL_PATTERN: &str = concat!(
    "^https?://(",
    // a host name whose last label starts with a letter
    "([A-Za-z0-9]+(-[A-Za-z0-9]+)*\\.)*[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*",
    "|",
    ipv4!(),
    // a bracketed IPv6 address (RFC 3986 `IPv6address`)
    "|\\[(",
    "(",
    h16!(),
    ":){6}",
    ls32!(),
    "|::(",
    h16!(),
    ":){5}",
    ls32!(),
    "|(",
    h16!(),
    ")?::(",
    h16!(),
    ":){4}",
    ls32!(),
    "|((",
    h16!(),
    ":){0,1}",
    h16!(),
    ")?::(",
    h16!(),
    ":){3}",
    ls32!(),
    "|((",
    h16!(),
    ":){0,2}",
    h16!(),
    ")?::(",
    h16!(),
    ":){2}",
    ls32!(),
    "|((",
    h16!(),
    ":){0,3}",
    h16!(),
    ")?::",
    h16!(),
    ":",
    ls32!(),
    "|((",
    h16!(),
    ":){0,4}",
    h16!(),
    ")?::",
    ls32!(),
    "|((",
    h16!(),
    ":){0,5}",
    h16!(),
    ")?::",
    h16!(),
    "|((",
    h16!(),
    ":){0,6}",
    h16!(),
    ")?::",
    ")\\])",
    // a port, 0 to 65535
    "(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?",
    // a path, then a query
    "(/([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})*)*",
    "(\\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$",
);

static CALLBACK_URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(CALLBACK_URL_PATTERN).expect("the callback URL pattern compiles"));

/// Whether `url` has the accepted form and length (see the module docs).
pub fn is_valid_callback_url(url: &str) -> bool {
    url.len() <= CALLBACK_URL_MAX_LEN && CALLBACK_URL.is_match(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_addresses_ports_paths_and_queries() {
        for url in [
            "https://agent.example.com/callbacks/signoff",
            "http://agent.example.com:8080/cb?x=1&y=%20z",
            "http://localhost/hook",
            "http://127.0.0.1:9/hook",
            "https://8.8.8.8/cb",
            "https://[2001:4860:4860::8888]/cb",
            "http://[::1]/x",
            "http://[::]:65535",
            "http://[::ffff:8.8.8.8]/",
            "http://[1:2:3:4:5:6:7:8]/",
            "http://a-b.c9/",
            "http://1.example",
            "http://h/a/../b/./c?/?",
            "http://x.y.z/%41%2F~!$&'()*+,;=:@-._?q=a/b?c",
            &format!("https://{}.example/", "a".repeat(100)),
        ] {
            assert!(is_valid_callback_url(url), "{url}");
            let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(parsed.host().is_some(), "{url}");
        }
    }

    #[test]
    fn refuses_what_parsers_disagree_on_or_refuse() {
        for url in [
            "http://",
            "http:///path",
            "HTTP://example.com/",
            "ftp://example.com/",
            "http://example.com:65536/",
            "http://example.com:/",
            "http://user:pass@example.com/",
            "http://example.com/#frag",
            "http://example.com/a b",
            "http://example.com ",
            "http://example.com\n",
            "http://exa\tmple.com/",
            "http://1.2.3.256/",
            "http://01.2.3.4/",
            "http://example.1/",
            "http://a..b/",
            "http://xn--a/",
            "http://ex\u{e4}mple.com/",
            "http://[::1::2]/",
            "http://[1:2:3:4:5:6:7:8:9]/",
            "http://example.com/%zz",
            "http://example.com\\path",
        ] {
            assert!(!is_valid_callback_url(url), "{url:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(CALLBACK_URL_MAX_LEN));
        assert!(!is_valid_callback_url(&long));
    }
}
