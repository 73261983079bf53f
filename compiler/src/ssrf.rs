//! Backend addresses a gateway must not forward to unless told to (SSRF):
//! link-local addresses and cloud metadata services, unspecified addresses,
//! and the gateway's own admin address, whose `/config_dump` shows every
//! secret. Ordinary loopback backends (a sidecar's application) stay allowed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The field that lifts the internal-address refusal for one backend.
pub const OPT_OUT: &str = "allow_internal_address";

/// Host names of cloud metadata services (they resolve to link-local or
/// provider-internal addresses); compared without case.
pub const METADATA_NAMES: [&str; 5] = [
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Metadata service addresses outside the link-local ranges: Alibaba
/// Cloud's (100.100.100.200) and AWS's IPv6 one (fd00:ec2::254).
const METADATA_IPS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Names that resolve to loopback without DNS (RFC 6761 `localhost` and its
/// subdomains; Debian's `/etc/hosts` IPv6 names).
fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "ip6-localhost"
        || host == "ip6-loopback"
}

/// Where Envoy's admin interface listens.
#[derive(Debug, Clone, Copy)]
pub struct Admin {
    pub ip: IpAddr,
    pub port: u16,
}

/// Checks a parsed backend `host` (lower case, IPv6 without brackets) and
/// `port`. The spelling check always applies; the internal-address one
/// unless the backend sets `allow_internal_address: true`.
pub fn check(host: &str, port: u16, allow_internal: bool, admin: &Admin) -> Result<(), String> {
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => numeric_ipv4(host)?,
    };
    if allow_internal {
        return Ok(());
    }
    let why = match ip {
        Some(ip) => refused_ip(ip, port, admin),
        None => refused_name(host, port, admin),
    };
    match why {
        Some(why) => Err(format!(
            "{why}; set `{OPT_OUT}: true` on this backend if it is really meant"
        )),
        None => Ok(()),
    }
}

/// A host name made only of numbers (`2852039166`, `0xa9.0xfe.0xa9.0xfe`,
/// `0251.0376.0251.0376`, `127.1`) is an IPv4 address to `inet_aton` and URL
/// parsers, so it would slip past the address checks: refused, whatever it
/// is. `Ok(None)` for a genuine host name.
fn numeric_ipv4(host: &str) -> Result<Option<IpAddr>, String> {
    let last = host.rsplit('.').next().unwrap_or("");
    let numeric = |l: &str| {
        let hex = l.strip_prefix("0x").or_else(|| l.strip_prefix("0X"));
        match hex {
            Some(h) => h.bytes().all(|b| b.is_ascii_hexdigit()),
            None => !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()),
        }
    };
    if !numeric(last) {
        return Ok(None);
    }
    // The WHATWG URL parser, as the `url` crate implements it, says which
    // address the spelling stands for.
    let meant = match url::Host::parse(host) {
        Ok(url::Host::Ipv4(ip)) => format!(" (it means {ip})"),
        _ => String::new(),
    };
    Err(format!(
        "a numeric IPv4 spelling{meant}; write IPv4 addresses as four decimal numbers, or use a host name"
    ))
}

fn refused_ip(written: IpAddr, port: u16, admin: &Admin) -> Option<String> {
    let ip = canonical(written);
    let reaches = if ip == written {
        String::new()
    } else {
        format!("it reaches {ip}, ")
    };
    if ip.is_unspecified() || matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 0) {
        return Some(format!(
            "{reaches}an unspecified address (it reaches the gateway host itself)"
        ));
    }
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    };
    if link_local || METADATA_IPS.contains(&ip) {
        return Some(format!(
            "{reaches}a link-local or cloud metadata address (instance credentials live there)"
        ));
    }
    let admin_ip = canonical(admin.ip);
    let admin_local = admin_ip.is_loopback() || admin_ip.is_unspecified();
    if port == admin.port && (ip == admin_ip || (ip.is_loopback() && admin_local)) {
        return Some(format!("{reaches}{ADMIN_REFUSAL}"));
    }
    None
}

fn refused_name(host: &str, port: u16, admin: &Admin) -> Option<String> {
    if METADATA_NAMES.contains(&host) {
        return Some("a cloud metadata service name".into());
    }
    let admin_ip = canonical(admin.ip);
    if port == admin.port
        && is_loopback_name(host)
        && (admin_ip.is_loopback() || admin_ip.is_unspecified())
    {
        return Some(ADMIN_REFUSAL.into());
    }
    None
}

const ADMIN_REFUSAL: &str = "the gateway's admin address (its /config_dump shows every secret)";

/// An IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible (`::a.b.c.d`) IPv6
/// address as the IPv4 address it reaches.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if !v6.is_loopback() && !v6.is_unspecified() => match v6.to_ipv4() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        _ => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: Admin = Admin {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 9901,
    };

    fn refused(host: &str, port: u16) -> bool {
        check(host, port, false, &ADMIN).is_err()
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        for (host, port) in [
            ("169.254.169.254", 80),
            ("169.254.0.1", 8080),
            ("fe80::1", 80),
            ("febf::1", 80),
            ("::ffff:169.254.169.254", 80),
            ("::ffff:a9fe:a9fe", 80),
            ("0.0.0.0", 80),
            ("0.1.2.3", 80),
            ("::", 80),
            ("::ffff:0.0.0.0", 80),
            ("100.100.100.200", 80),
            ("fd00:ec2::254", 80),
            ("metadata.google.internal", 80),
            ("metadata", 80),
            ("instance-data", 80),
            ("127.0.0.1", 9901),
            ("127.0.0.2", 9901),
            ("::1", 9901),
            ("::ffff:127.0.0.1", 9901),
            ("localhost", 9901),
            ("a.localhost", 9901),
        ] {
            assert!(refused(host, port), "{host}:{port}");
            assert!(check(host, port, true, &ADMIN).is_ok(), "{host}:{port}");
        }
    }

    #[test]
    fn numeric_ipv4_spellings_are_refused_even_when_allowed() {
        for host in [
            "2852039166",
            "0xa9.0xfe.0xa9.0xfe",
            "0251.0376.0251.0376",
            "169.254.43518",
            "127.1",
            "0x7f000001",
        ] {
            let e = check(host, 80, true, &ADMIN).unwrap_err();
            assert!(e.contains("numeric IPv4"), "{host}: {e}");
        }
        assert!(check("2852039166", 80, false, &ADMIN)
            .unwrap_err()
            .contains("169.254.169.254"));
    }

    #[test]
    fn ordinary_backends_stay_allowed() {
        for (host, port) in [
            ("127.0.0.1", 8081),
            ("::1", 9000),
            ("localhost", 8080),
            ("10.0.0.5", 9901),
            ("api.example.com", 443),
            ("v2.example.com", 80),
            ("169.253.0.1", 80),
            ("fec0::1", 80),
            ("x0a.example", 80),
        ] {
            assert!(check(host, port, false, &ADMIN).is_ok(), "{host}:{port}");
        }
        // Admin on another address: only that address and port are refused.
        let admin = Admin {
            ip: "10.0.0.9".parse().unwrap(),
            port: 9901,
        };
        assert!(check("127.0.0.1", 9901, false, &admin).is_ok());
        assert!(check("10.0.0.9", 9901, false, &admin).is_err());
        // Admin on every address: loopback reaches it too.
        let admin = Admin {
            ip: "0.0.0.0".parse().unwrap(),
            port: 9901,
        };
        assert!(check("127.0.0.1", 9901, false, &admin).is_err());
        assert!(check("localhost", 9901, false, &admin).is_err());
    }
}
