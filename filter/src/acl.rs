//! Access control policies: allow or deny by client IP (addresses, CIDR
//! blocks, `a-b` ranges; IPv4 and IPv6) or by account name.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::plan::{AclAction, AclKind, AclPlan};
use crate::response::GatewayError;

/// Seed: at most 100 entries per policy.
pub const MAX_ENTRIES: usize = 100;

/// An inclusive address range within one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    v6: bool,
    start: u128,
    end: u128,
}

fn key(ip: IpAddr) -> (bool, u128) {
    // An IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`) is that IPv4 address, here
    // as in throttling.
    match ip.to_canonical() {
        IpAddr::V4(v4) => (false, u32::from(v4) as u128),
        IpAddr::V6(v6) => (true, u128::from(v6)),
    }
}

impl IpRange {
    /// `203.0.113.7`, `10.0.0.0/8`, `192.168.1.10-192.168.1.20`, `2001:db8::/32`.
    pub fn parse(entry: &str) -> Result<IpRange, String> {
        let entry = entry.trim();
        let bad = || format!("`{entry}` is not an IP address, CIDR block or `a-b` range");
        if let Some((a, b)) = entry.split_once('-') {
            let (fa, sa) = key(a.trim().parse().map_err(|_| bad())?);
            let (fb, sb) = key(b.trim().parse().map_err(|_| bad())?);
            if fa != fb || sa > sb {
                return Err(format!(
                    "`{entry}`: the range must go up within one address family"
                ));
            }
            return Ok(IpRange {
                v6: fa,
                start: sa,
                end: sb,
            });
        }
        if let Some((addr, len)) = entry.split_once('/') {
            let (v6, base) = key(addr.parse().map_err(|_| bad())?);
            let bits = if v6 { 128 } else { 32 };
            let len: u32 = len.parse().ok().filter(|l| *l <= bits).ok_or_else(bad)?;
            let host_bits = bits - len;
            let mask = if host_bits == 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            return Ok(IpRange {
                v6,
                start: base & !mask,
                end: base | mask,
            });
        }
        let (v6, k) = key(entry.parse().map_err(|_| bad())?);
        Ok(IpRange {
            v6,
            start: k,
            end: k,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v6, k) = key(ip);
        v6 == self.v6 && (self.start..=self.end).contains(&k)
    }
}

#[derive(Debug)]
enum Entries {
    Ip(Vec<IpRange>),
    Account(HashSet<String>),
}

/// One compiled policy.
#[derive(Debug)]
pub struct Acl {
    allow: bool,
    entries: Entries,
}

impl Acl {
    pub fn from_plan(p: &AclPlan) -> Result<Acl, String> {
        let entries = match p.kind {
            AclKind::Ip => Entries::Ip(
                p.values
                    .iter()
                    .map(|v| IpRange::parse(v))
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("acl {}: {e}", p.name))?,
            ),
            AclKind::Account => Entries::Account(p.values.iter().cloned().collect()),
        };
        Ok(Acl {
            allow: p.action == AclAction::Allow,
            entries,
        })
    }

    pub fn is_ip(&self) -> bool {
        matches!(self.entries, Entries::Ip(_))
    }

    /// `None` when the policy lets the caller through, else the gateway error.
    /// `ip` is the client address (`None` if unknown: an IP allow-list then
    /// refuses); `account` the authenticated account, if any.
    pub fn check(&self, ip: Option<IpAddr>, account: Option<&str>) -> Option<GatewayError> {
        let (listed, error) = match &self.entries {
            Entries::Ip(ranges) => (
                ip.is_some_and(|ip| ranges.iter().any(|r| r.contains(ip))),
                GatewayError::IP_DENIED,
            ),
            Entries::Account(names) => (
                account.is_some_and(|a| names.contains(a)),
                GatewayError::ACCOUNT_DENIED,
            ),
        };
        (listed != self.allow).then_some(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn single_cidr_and_range_entries() {
        let one = IpRange::parse("203.0.113.7").unwrap();
        assert!(one.contains(ip("203.0.113.7")) && !one.contains(ip("203.0.113.8")));
        let cidr = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(cidr.contains(ip("10.255.1.2")) && !cidr.contains(ip("11.0.0.0")));
        let range = IpRange::parse("192.168.1.10-192.168.1.20").unwrap();
        assert!(range.contains(ip("192.168.1.10")) && range.contains(ip("192.168.1.20")));
        assert!(!range.contains(ip("192.168.1.21")) && !range.contains(ip("192.168.1.9")));
        let all4 = IpRange::parse("0.0.0.0/0").unwrap();
        assert!(all4.contains(ip("1.2.3.4")) && !all4.contains(ip("::1")));
    }

    #[test]
    fn ipv6_and_mapped_ipv4() {
        let net = IpRange::parse("2001:db8::/32").unwrap();
        assert!(net.contains(ip("2001:db8:1::5")) && !net.contains(ip("2001:db9::1")));
        let range = IpRange::parse("2001:db8::1-2001:db8::ff").unwrap();
        assert!(range.contains(ip("2001:db8::80")) && !range.contains(ip("2001:db8::100")));
        let all6 = IpRange::parse("::/0").unwrap();
        assert!(all6.contains(ip("fe80::1")));
        let v4 = IpRange::parse("127.0.0.1").unwrap();
        assert!(
            v4.contains(ip("::ffff:127.0.0.1")),
            "a mapped peer is its IPv4 address"
        );
    }

    #[test]
    fn rejects_bad_entries() {
        for bad in [
            "10.0.0.0/33",
            "1.2.3",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-::1",
            "abc",
            "::/129",
        ] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }

    fn acl(kind: AclKind, action: AclAction, values: &[&str]) -> Acl {
        Acl::from_plan(&AclPlan {
            name: "p".into(),
            kind,
            action,
            values: values.iter().map(|v| v.to_string()).collect(),
        })
        .unwrap()
    }

    #[test]
    fn allow_and_deny_lists() {
        let allow = acl(AclKind::Ip, AclAction::Allow, &["10.0.0.0/8"]);
        assert_eq!(allow.check(Some(ip("10.1.1.1")), None), None);
        assert_eq!(
            allow.check(Some(ip("8.8.8.8")), None),
            Some(GatewayError::IP_DENIED)
        );
        assert_eq!(allow.check(None, None), Some(GatewayError::IP_DENIED));
        let deny = acl(AclKind::Ip, AclAction::Deny, &["10.0.0.0/8"]);
        assert_eq!(
            deny.check(Some(ip("10.1.1.1")), None),
            Some(GatewayError::IP_DENIED)
        );
        assert_eq!(deny.check(Some(ip("8.8.8.8")), None), None);
        let accounts = acl(AclKind::Account, AclAction::Allow, &["tenant-a"]);
        assert_eq!(accounts.check(None, Some("tenant-a")), None);
        assert_eq!(
            accounts.check(None, Some("tenant-b")),
            Some(GatewayError::ACCOUNT_DENIED)
        );
        assert_eq!(
            accounts.check(None, None),
            Some(GatewayError::ACCOUNT_DENIED)
        );
        let blocked = acl(AclKind::Account, AclAction::Deny, &["tenant-b"]);
        assert_eq!(blocked.check(None, None), None);
        assert_eq!(
            blocked.check(None, Some("tenant-b")),
            Some(GatewayError::ACCOUNT_DENIED)
        );
    }
}
