//! Trusted proxy headers (`WSGITrustedProxyHeaders`, `WSGITrustedProxies`):
//! which headers a front-end proxy may use to tell the app the real client
//! address, host, port, script name and scheme, and the rule that protects
//! against spoofing: for every category with a trusted header, every header
//! of that category is removed from the environ except the one applied, and
//! all of them when the peer is not a trusted proxy.
use std::borrow::Cow;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Client,
    Host,
    Server,
    Port,
    ScriptName,
    Scheme,
}

/// Every header a proxy may use, its category, and its environ key.
const HEADERS: [(&str, Category, &str); 15] = [
    ("X-Forwarded-For", Category::Client, "HTTP_X_FORWARDED_FOR"),
    ("X-Client-IP", Category::Client, "HTTP_X_CLIENT_IP"),
    ("X-Real-IP", Category::Client, "HTTP_X_REAL_IP"),
    ("X-Forwarded-Host", Category::Host, "HTTP_X_FORWARDED_HOST"),
    ("X-Host", Category::Host, "HTTP_X_HOST"),
    ("X-Forwarded-Server", Category::Server, "HTTP_X_FORWARDED_SERVER"),
    ("X-Forwarded-Port", Category::Port, "HTTP_X_FORWARDED_PORT"),
    ("X-Script-Name", Category::ScriptName, "HTTP_X_SCRIPT_NAME"),
    ("X-Forwarded-Script-Name", Category::ScriptName, "HTTP_X_FORWARDED_SCRIPT_NAME"),
    ("X-Forwarded-Proto", Category::Scheme, "HTTP_X_FORWARDED_PROTO"),
    ("X-Forwarded-Scheme", Category::Scheme, "HTTP_X_FORWARDED_SCHEME"),
    ("X-Scheme", Category::Scheme, "HTTP_X_SCHEME"),
    ("X-Forwarded-HTTPS", Category::Scheme, "HTTP_X_FORWARDED_HTTPS"),
    ("X-Forwarded-SSL", Category::Scheme, "HTTP_X_FORWARDED_SSL"),
    ("X-HTTPS", Category::Scheme, "HTTP_X_HTTPS"),
];
/// Scheme headers carrying On/Off rather than a scheme name.
const FLAG_HEADERS: [&str; 3] = ["HTTP_X_FORWARDED_HTTPS", "HTTP_X_FORWARDED_SSL", "HTTP_X_HTTPS"];

fn all_headers() -> impl Iterator<Item = (&'static str, Category, &'static str)> {
    HEADERS.iter().copied()
}

/// A `WSGITrustedProxyHeaders` name: the environ key it stands for.
pub fn parse_header(name: &str) -> Result<&'static str, String> {
    all_headers().find(|(h, _, _)| h.eq_ignore_ascii_case(name)).map(|(_, _, key)| key).ok_or_else(|| {
        let known: Vec<&str> = all_headers().map(|(h, _, _)| h).collect();
        format!("WSGITrustedProxyHeaders: '{name}' is not a proxy header mod_wsgi-rs knows; use one of {}", known.join(", "))
    })
}

fn category_of(key: &str) -> Option<Category> {
    all_headers().find(|(_, _, k)| *k == key).map(|(_, c, _)| c)
}

/// An address or network a proxy may connect from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address they carry.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// A `WSGITrustedProxies` entry: an IP address or a CIDR network.
pub fn parse_network(value: &str) -> Result<Network, String> {
    let bad = || format!("WSGITrustedProxies: '{value}' is not an IP address or network (such as 10.0.0.0/8)");
    let (addr, prefix) = match value.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
        None => (value, None),
    };
    let addr = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    if prefix > max {
        return Err(bad());
    }
    Ok(Network { addr, prefix })
}

impl Network {
    pub fn contains(&self, addr: &str) -> bool {
        let Ok(addr) = addr.trim().parse::<IpAddr>().map(canonical) else { return false };
        // Both as 128-bit numbers, an IPv4 address in the top 32 bits.
        let (net, addr) = match (self.addr, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)) << 96, u128::from(u32::from(a)) << 96),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a)),
            _ => return false,
        };
        let shift = 128 - u32::from(self.prefix);
        shift == 128 || net >> shift == addr >> shift
    }
}

/// Whether any network in `proxies` holds `addr`.
pub fn is_trusted(proxies: &[Network], addr: &str) -> bool {
    proxies.iter().any(|n| n.contains(addr))
}

type Vars<'a> = Vec<(Cow<'a, str>, Cow<'a, [u8]>)>;

fn get<'v>(vars: &'v Vars<'_>, key: &str) -> Option<&'v [u8]> {
    vars.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
}

fn set(vars: &mut Vars<'_>, key: &'static str, value: Vec<u8>) {
    vars.retain(|(k, _)| k != key);
    vars.push((Cow::Borrowed(key), Cow::Owned(value)));
}

fn remove(vars: &mut Vars<'_>, key: &str) {
    vars.retain(|(k, _)| k != key);
}

/// Rewrites the environ for the trusted headers `trusted` (environ keys,
/// in configuration order) given the proxies allowed to send them (`None`:
/// any peer).
pub fn apply(vars: &mut Vars<'_>, trusted: &[&'static str], proxies: Option<&[Network]>) {
    if trusted.is_empty() {
        return;
    }
    let peer = get(vars, "REMOTE_ADDR").map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    let peer_trusted = proxies.is_none_or(|p| is_trusted(p, &peer));
    for category in [Category::Client, Category::Host, Category::Server, Category::Port, Category::ScriptName, Category::Scheme] {
        let listed: Vec<&str> = trusted.iter().copied().filter(|k| category_of(k) == Some(category)).collect();
        if listed.is_empty() {
            continue;
        }
        // As in mod_wsgi, the last listed header present wins.
        let applied = if peer_trusted { listed.iter().rev().copied().find(|k| apply_one(vars, k, category, proxies)) } else { None };
        for (_, c, key) in all_headers() {
            if c == category && Some(key) != applied {
                remove(vars, key);
            }
        }
    }
}

/// Applies one header if present and usable; true if it was.
fn apply_one(vars: &mut Vars<'_>, key: &'static str, category: Category, proxies: Option<&[Network]>) -> bool {
    let Some(value) = get(vars, key).map(|v| String::from_utf8_lossy(v).trim().to_string()) else { return false };
    match category {
        Category::Client if key == "HTTP_X_FORWARDED_FOR" => {
            let hops: Vec<&str> = value.split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
            if hops.is_empty() {
                return false;
            }
            let client = match proxies {
                // The first hop, counting back from us, not sent by a trusted proxy.
                Some(p) => hops.iter().rposition(|h| !is_trusted(p, h)).unwrap_or(0),
                None => 0,
            };
            set(vars, "REMOTE_ADDR", hops[client].as_bytes().to_vec());
            // Only a walk past trusted proxies rewrites the list itself.
            if proxies.is_some() {
                set(vars, key, hops[client..].join(", ").into_bytes());
            }
        }
        _ if value.is_empty() => return false,
        Category::Client => set(vars, "REMOTE_ADDR", value.into_bytes()),
        Category::Host => set(vars, "HTTP_HOST", value.into_bytes()),
        Category::Server => set(vars, "SERVER_NAME", value.into_bytes()),
        Category::Port => set(vars, "SERVER_PORT", value.into_bytes()),
        Category::ScriptName => {
            set(vars, "SCRIPT_NAME", value.clone().into_bytes());
            set(vars, "mod_wsgi.mount_point", value.into_bytes());
        }
        Category::Scheme => {
            let lower = value.to_ascii_lowercase();
            let https = if FLAG_HEADERS.contains(&key) {
                match lower.as_str() {
                    "on" | "true" | "1" => true,
                    "off" | "false" | "0" => false,
                    _ => return false,
                }
            } else {
                match lower.as_str() {
                    "https" => true,
                    "http" => false,
                    _ => return false,
                }
            };
            // The app sees the scheme only as wsgi.url_scheme (no HTTPS), as in mod_wsgi 6.
            set(vars, "wsgi.url_scheme", if https { b"https".to_vec() } else { b"http".to_vec() });
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&'static str, &'static str)]) -> Vars<'static> {
        pairs.iter().map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(v.as_bytes()))).collect()
    }

    fn value(v: &Vars<'_>, key: &str) -> Option<String> {
        get(v, key).map(|b| String::from_utf8_lossy(b).into_owned())
    }

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|n| parse_network(n).unwrap()).collect()
    }

    #[test]
    fn header_names() {
        assert_eq!(parse_header("x-forwarded-for"), Ok("HTTP_X_FORWARDED_FOR"));
        assert_eq!(parse_header("X-HTTPS"), Ok("HTTP_X_HTTPS"));
        assert!(parse_header("X-Bogus").unwrap_err().contains("WSGITrustedProxyHeaders"));
    }

    #[test]
    fn networks() {
        let n = nets(&["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"]);
        assert!(is_trusted(&n, "10.1.2.3"));
        assert!(is_trusted(&n, "127.0.0.1"));
        assert!(is_trusted(&n, "::ffff:127.0.0.1"));
        assert!(!is_trusted(&n, "127.0.0.2"));
        assert!(!is_trusted(&n, "11.0.0.1"));
        assert!(is_trusted(&n, "2001:db8::1"));
        assert!(!is_trusted(&n, "2001:db9::1"));
        assert!(!is_trusted(&n, "not-an-ip"));
        assert!(is_trusted(&nets(&["0.0.0.0/0"]), "8.8.8.8"));
        for bad in ["10.0.0.0/33", "300.1.1.1", "abc", "10.0.0.0/x"] {
            assert!(parse_network(bad).unwrap_err().contains("WSGITrustedProxies"), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_without_proxy_list_takes_first_non_empty() {
        let mut v = vars(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", ", ,1.2.3.4, 5.6.7.8"), ("HTTP_X_REAL_IP", "9.9.9.9")]);
        apply(&mut v, &["HTTP_X_FORWARDED_FOR"], None);
        assert_eq!(value(&v, "REMOTE_ADDR").as_deref(), Some("1.2.3.4"));
        assert_eq!(value(&v, "HTTP_X_FORWARDED_FOR").as_deref(), Some(", ,1.2.3.4, 5.6.7.8"), "left as sent");
        assert_eq!(value(&v, "HTTP_X_REAL_IP"), None, "synonyms of an applied category are removed");
    }

    #[test]
    fn forwarded_for_walks_back_over_trusted_proxies() {
        let proxies = nets(&["127.0.0.1", "10.0.0.0/8"]);
        let mut v = vars(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", "9.9.9.9, 1.2.3.4, 10.0.0.5")]);
        apply(&mut v, &["HTTP_X_FORWARDED_FOR"], Some(&proxies));
        assert_eq!(value(&v, "REMOTE_ADDR").as_deref(), Some("1.2.3.4"));
        assert_eq!(value(&v, "HTTP_X_FORWARDED_FOR").as_deref(), Some("1.2.3.4, 10.0.0.5"));
        let mut all = vars(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", "10.0.0.1,,10.0.0.2")]);
        apply(&mut all, &["HTTP_X_FORWARDED_FOR"], Some(&proxies));
        assert_eq!(value(&all, "REMOTE_ADDR").as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn untrusted_peer_loses_every_header_of_listed_categories() {
        let proxies = nets(&["10.1.2.3"]);
        let mut v = vars(&[
            ("REMOTE_ADDR", "127.0.0.1"),
            ("HTTP_X_FORWARDED_FOR", "1.2.3.4"),
            ("HTTP_X_CLIENT_IP", "5.5.5.5"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("HTTP_X_FORWARDED_HOST", "evil.example"),
            ("wsgi.url_scheme", "http"),
        ]);
        apply(&mut v, &["HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO"], Some(&proxies));
        assert_eq!(value(&v, "REMOTE_ADDR").as_deref(), Some("127.0.0.1"));
        assert_eq!(value(&v, "HTTP_X_FORWARDED_FOR"), None);
        assert_eq!(value(&v, "HTTP_X_CLIENT_IP"), None);
        assert_eq!(value(&v, "HTTP_X_FORWARDED_PROTO"), None);
        assert_eq!(value(&v, "wsgi.url_scheme").as_deref(), Some("http"));
        assert_eq!(value(&v, "HTTP_X_FORWARDED_HOST").as_deref(), Some("evil.example"), "unlisted categories pass through");
    }

    #[test]
    fn other_categories() {
        let mut v = vars(&[
            ("REMOTE_ADDR", "127.0.0.1"),
            ("HTTP_X_HOST", "front.example"),
            ("HTTP_X_FORWARDED_SERVER", "front"),
            ("HTTP_X_FORWARDED_PORT", "8443"),
            ("HTTP_X_SCRIPT_NAME", "/mount"),
            ("HTTP_X_FORWARDED_SSL", "on"),
            ("SCRIPT_NAME", ""),
            ("wsgi.url_scheme", "http"),
        ]);
        let trusted = ["HTTP_X_HOST", "HTTP_X_FORWARDED_SERVER", "HTTP_X_FORWARDED_PORT", "HTTP_X_SCRIPT_NAME", "HTTP_X_FORWARDED_SSL"];
        apply(&mut v, &trusted, None);
        assert_eq!(value(&v, "HTTP_HOST").as_deref(), Some("front.example"));
        assert_eq!(value(&v, "SERVER_NAME").as_deref(), Some("front"));
        assert_eq!(value(&v, "SERVER_PORT").as_deref(), Some("8443"));
        assert_eq!(value(&v, "SCRIPT_NAME").as_deref(), Some("/mount"));
        assert_eq!(value(&v, "mod_wsgi.mount_point").as_deref(), Some("/mount"));
        assert_eq!(value(&v, "wsgi.url_scheme").as_deref(), Some("https"));
        assert_eq!(value(&v, "HTTPS"), None);
        assert_eq!(value(&v, "HTTP_X_HOST").as_deref(), Some("front.example"), "the applied header stays");
    }

    #[test]
    fn last_listed_header_present_wins() {
        let mut v = vars(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", "1.1.1.1"), ("HTTP_X_REAL_IP", "3.3.3.3")]);
        apply(&mut v, &["HTTP_X_FORWARDED_FOR", "HTTP_X_CLIENT_IP", "HTTP_X_REAL_IP"], None);
        assert_eq!(value(&v, "REMOTE_ADDR").as_deref(), Some("3.3.3.3"));
        assert_eq!(value(&v, "HTTP_X_FORWARDED_FOR"), None);
    }

    #[test]
    fn trusted_scheme_beats_the_connection() {
        let mut v = vars(&[("REMOTE_ADDR", "127.0.0.1"), ("wsgi.url_scheme", "https"), ("HTTP_X_FORWARDED_PROTO", "http")]);
        apply(&mut v, &["HTTP_X_FORWARDED_PROTO"], None);
        assert_eq!(value(&v, "wsgi.url_scheme").as_deref(), Some("http"));
    }
}
