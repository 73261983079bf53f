//! Rate counting, exact across all Envoy workers.
//!
//! Window: fixed, aligned to the Unix epoch (`now / window`). Each window of
//! a policy admits at most its limit, counted in Envoy's shared data with
//! compare-and-swap, so two workers can never both take the last slot. A
//! fixed window is exact within each window and costs one counter per key;
//! a sliding log would need a timestamp per admitted request, and token
//! buckets or sliding estimates let more than the limit through in some
//! window. The price of fixed windows: a burst straddling a boundary can see
//! up to twice the limit within one window's length.
//!
//! Counters live in a slot table (`slot_table.rs`): the counters of the
//! plan (API limits, the default limit, apps, users) in one region, each
//! policy's client-address counters in a region of their own, slots picked
//! by a keyed hash. No live counter is ever dropped to make room: a request
//! whose new counter finds its slot full is refused (`Decision::Full`), so
//! a flood of addresses can neither reset another counter nor admit beyond
//! a limit.

use std::fmt;
use std::net::IpAddr;
use std::rc::Rc;

use sha2::{Digest, Sha256};

use crate::plan::ThrottlePlan;
use crate::shared_store::SharedStore;
use crate::slot_table::{self, Change, Entry, FixedKey, Memo, Outcome, Part, Region};

/// Slots for the counters of the plan: 65,536 live counters at most.
pub const PLAN_SLOTS: u32 = 4096;
/// Slots for one policy's client addresses: 32,768 live addresses per
/// window at most.
pub const POLICY_SLOTS: u32 = 2048;
const TABLE: &str = "pylon.rate";

/// The dimensions of the Huawei user guide (§5.3), named as in the debug headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Api,
    User,
    App,
    Ip,
    /// The gateway-wide default limit of an API without a policy.
    ApiAllEnv,
}

impl Dimension {
    /// The limit's name as a metric label (Huawei user guide §5.3: API,
    /// user, app, source IP limits; `default` for an API without a policy).
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Api => "api",
            Dimension::User => "user",
            Dimension::App => "app",
            Dimension::Ip => "ip",
            Dimension::ApiAllEnv => "default",
        }
    }

    pub fn header(self) -> &'static str {
        match self {
            Dimension::Api => "x-apig-ratelimit-api",
            Dimension::User => "x-apig-ratelimit-user",
            Dimension::App => "x-apig-ratelimit-app",
            Dimension::Ip => "x-apig-ratelimit-ip",
            Dimension::ApiAllEnv => "x-apig-ratelimit-api-allenv",
        }
    }
}

/// Bytes of a scope's SHA-256 kept to name it in client-address keys.
const SCOPE_DIGEST: usize = 20;

/// What the counters of one API in one stage share. It depends only on the
/// plan, so it is built once at plan load (`Gateway::from_plan`) and
/// requests format none of it.
#[derive(Debug)]
pub struct Scope {
    /// `{policy}|{api}@{stage}`, or `{policy}|*` for a shared policy
    /// (Huawei user guide §5.3); `default|{api}` without a policy.
    text: Box<str>,
    /// The API's own counter (the API limit or the default limit), its
    /// keyed hash remembered.
    api: FixedKey,
    api_limit: u64,
    window_ms: u64,
    /// `10 second`, for the debug header.
    label: Rc<str>,
    /// The bound policy's index: its client addresses' region.
    policy: u32,
    /// SHA-256 of `text`, cut short: names the scope in client-address
    /// keys, which must stay short to hash cheaply (`Key::Address`).
    digest: [u8; SCOPE_DIGEST],
    /// The last client address counted here: a caller on a kept-alive
    /// connection sends its requests to one worker, one after another.
    last_address: Memo<IpAddr>,
}

impl Scope {
    /// `bound` is the throttling policy bound to the API in the stage (its
    /// index in the plan, and the policy); without one, the gateway-wide
    /// default per API. `api` is `group/api`, `stage` the stage's name.
    pub fn new(
        bound: Option<(u32, &ThrottlePlan)>,
        default_limit: u64,
        api: &str,
        stage: &str,
    ) -> Scope {
        let (text, api_key, api_limit, window_ms, label, policy) = match bound {
            None => {
                let text = format!("default|{api}");
                (text.clone(), text, default_limit, 1000, "1 second", 0)
            }
            Some((policy, t)) => {
                // A shared policy counts all its APIs together; a basic one
                // per API and environment (Huawei user guide §5.3).
                let text = if t.shared {
                    format!("{}|*", t.name)
                } else {
                    format!("{}|{api}@{stage}", t.name)
                };
                let api_key = format!("{text}|api");
                (text, api_key, t.api_limit, t.window_ms, &*t.label, policy)
            }
        };
        let mut digest = [0; SCOPE_DIGEST];
        digest.copy_from_slice(&Sha256::digest(text.as_bytes())[..SCOPE_DIGEST]);
        Scope {
            text: text.into_boxed_str(),
            api: FixedKey::new(api_key),
            api_limit,
            window_ms,
            label: label.into(),
            policy,
            digest,
            last_address: Memo::new(),
        }
    }

    /// `{scope}|{kind}:{name}`: an account's or app's counter.
    fn who(&self, kind: &str, name: &str) -> Key {
        let mut key = String::with_capacity(self.text.len() + kind.len() + name.len() + 2);
        key.push_str(&self.text);
        key.push('|');
        key.push_str(kind);
        key.push(':');
        key.push_str(name);
        Key::Text(key)
    }
}

/// Identifies what a counter counts (policy, API, caller). Two keys are
/// equal when they name the same counter (their text, as `Display` shows
/// it).
#[derive(Debug, Clone)]
pub enum Key {
    /// The scope's API counter, `{scope}|api` or `default|{api}`.
    Api(Rc<Scope>),
    /// Keys from the plan (`{scope}|user:{account}`, `{scope}|app:{app}`),
    /// hashed as text and remembered by `slot_table::locate`; and a client
    /// address that does not parse (`{scope}|ip:{text}`).
    Text(String),
    /// A client address (`{scope}|ip:{address}`), canonical (IPv4-mapped
    /// counts as IPv4). Hashed in a short binary form, see `Key::locate`.
    Address(Rc<Scope>, IpAddr),
}

impl Key {
    /// Slot index and fingerprint in the counter's region.
    fn locate(&self, region: &Region) -> Option<(u32, u64)> {
        match self {
            Key::Api(scope) => scope.api.locate(region),
            Key::Text(text) => slot_table::locate(region, text),
            Key::Address(scope, addr) => scope.last_address.locate(region, *addr, || {
                let (msg, len) = address_message(scope, *addr);
                slot_table::locate_bytes(region, &msg[..len])
            }),
        }
    }
}

/// What a client-address key hashes: 0xff, the scope's digest, the family,
/// the address. At most 38 bytes, so one HMAC-SHA256 of two compressions
/// (the text form, `{scope}|ip:{address}`, took three). 0xff never occurs
/// in UTF-8, so no text key of the region (an address that did not parse)
/// hashes the same message; the fixed-size digest keeps scope and address
/// apart. The policy's region already prefixes the message.
fn address_message(scope: &Scope, addr: IpAddr) -> ([u8; 2 + SCOPE_DIGEST + 16], usize) {
    let mut msg = [0u8; 2 + SCOPE_DIGEST + 16];
    msg[0] = 0xff;
    msg[1..=SCOPE_DIGEST].copy_from_slice(&scope.digest);
    let at = 1 + SCOPE_DIGEST;
    let len = match addr {
        IpAddr::V4(a) => {
            msg[at] = 4;
            msg[at + 1..at + 5].copy_from_slice(&a.octets());
            at + 5
        }
        IpAddr::V6(a) => {
            msg[at] = 6;
            msg[at + 1..at + 17].copy_from_slice(&a.octets());
            at + 17
        }
    };
    (msg, len)
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Api(scope) => f.write_str(scope.api.as_str()),
            Key::Text(text) => f.write_str(text),
            Key::Address(scope, addr) => write!(f, "{}|ip:{addr}", scope.text),
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Key {}

impl PartialEq<&str> for Key {
    // Tests and fuzzing compare keys; requests never do.
    #[allow(clippy::cmp_owned)]
    fn eq(&self, other: &&str) -> bool {
        self.to_string() == *other
    }
}

impl From<&str> for Key {
    fn from(text: &str) -> Key {
        Key::Text(text.into())
    }
}

/// One counter a request must fit under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub dimension: Dimension,
    /// Identifies what is counted (policy, API, caller).
    pub key: Key,
    pub limit: u64,
    pub window_ms: u64,
    /// `10 second`, for the debug header.
    pub label: Rc<str>,
    /// Where the counter lives: `Part::Plan` when the plan bounds its keys,
    /// `Part::Policy(n)` when a caller chooses them (client addresses).
    pub part: Part,
}

/// Where a counter stands after a request was counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub dimension: Dimension,
    pub remain: u64,
    pub limit: u64,
    pub label: Rc<str>,
}

impl Tally {
    /// `remain:9,limit:10,time:10 second`, the Huawei user guide's debug header value.
    pub fn header_value(&self) -> String {
        format!(
            "remain:{},limit:{},time:{}",
            self.remain, self.limit, self.label
        )
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Admit(Vec<Tally>),
    /// Over the limit of the last tally's dimension.
    Throttle(Vec<Tally>),
    /// The store kept changing under us: refused rather than miscounted.
    Busy,
    /// A counter's slot is full of live counters: refused, never counted
    /// elsewhere (see `slot_table::full_warning`).
    Full,
}

/// The counters a request to an API must fit under, given who is calling,
/// built from scratch (`Gateway` builds each API's `Scope` once and calls
/// `scope_counters`). `bound`, `api` and `stage` as in `Scope::new`.
pub fn counters(
    bound: Option<(u32, &ThrottlePlan)>,
    default_limit: u64,
    api: &str,
    stage: &str,
    app: Option<&str>,
    account: Option<&str>,
    ip: Option<&str>,
) -> Vec<Counter> {
    let scope = Rc::new(Scope::new(bound, default_limit, api, stage));
    scope_counters(&scope, bound.map(|(_, t)| t), app, account, ip)
}

/// The counters of `scope` a request must fit under; `t` is the policy the
/// scope was built for (`None` for the default limit).
pub fn scope_counters(
    scope: &Rc<Scope>,
    t: Option<&ThrottlePlan>,
    app: Option<&str>,
    account: Option<&str>,
    ip: Option<&str>,
) -> Vec<Counter> {
    let counter = |dimension, key, limit| Counter {
        dimension,
        key,
        limit,
        window_ms: scope.window_ms,
        label: scope.label.clone(),
        // Callers choose their addresses, not apps or accounts (those
        // come from the plan): addresses get the policy's own region.
        part: if dimension == Dimension::Ip {
            Part::Policy(scope.policy)
        } else {
            Part::Plan
        },
    };
    let api = Key::Api(scope.clone());
    let Some(t) = t else {
        return vec![counter(Dimension::ApiAllEnv, api, scope.api_limit)];
    };
    let mut out = Vec::with_capacity(4);
    out.push(counter(Dimension::Api, api, scope.api_limit));
    if let Some(account) = account {
        let limit = t.special_users.get(account).copied().or(t.user_limit);
        out.extend(limit.map(|l| counter(Dimension::User, scope.who("user", account), l)));
    }
    if let Some(app) = app {
        let limit = t.special_apps.get(app).copied().or(t.app_limit);
        out.extend(limit.map(|l| counter(Dimension::App, scope.who("app", app), l)));
    }
    if let (Some(ip), Some(l)) = (ip, t.ip_limit) {
        // `::ffff:a.b.c.d` is the client a.b.c.d, as for IP policies.
        let key = match ip.parse::<IpAddr>() {
            Ok(addr) => Key::Address(scope.clone(), addr.to_canonical()),
            Err(_) => scope.who("ip", ip),
        };
        out.push(counter(Dimension::Ip, key, l));
    }
    out
}

/// Counts one request against every counter; admits it only if it fits
/// under all of them, and otherwise takes back what it counted.
pub fn admit(store: &dyn SharedStore, now_ms: u64, counters: &[Counter]) -> Decision {
    let mut tallies = Vec::with_capacity(counters.len());
    for (i, c) in counters.iter().enumerate() {
        let count = match bump(store, c, now_ms, 1) {
            Outcome::Done(count) => count,
            refused => {
                undo(store, &counters[..i], now_ms);
                return match refused {
                    Outcome::Full => Decision::Full,
                    _ => Decision::Busy,
                };
            }
        };
        tallies.push(Tally {
            dimension: c.dimension,
            remain: c.limit.saturating_sub(count),
            limit: c.limit,
            label: c.label.clone(),
        });
        if count > c.limit {
            undo(store, &counters[..=i], now_ms);
            return Decision::Throttle(tallies);
        }
    }
    Decision::Admit(tallies)
}

fn undo(store: &dyn SharedStore, counters: &[Counter], now_ms: u64) {
    for c in counters {
        bump(store, c, now_ms, -1);
    }
}

fn region(part: Part) -> Region {
    Region {
        table: TABLE,
        part,
        slots: match part {
            Part::Policy(_) => POLICY_SLOTS,
            _ => PLAN_SLOTS,
        },
    }
}

/// Adds `delta` to the counter's current window; the new count.
fn bump(store: &dyn SharedStore, c: &Counter, now_ms: u64, delta: i64) -> Outcome<u64> {
    let window_end = (now_ms / c.window_ms + 1) * c.window_ms;
    let region = region(c.part);
    let located = c.key.locate(&region);
    slot_table::update_at(store, &region, located, now_ms, |entry| {
        let count = match entry {
            Some(e) if e.end == window_end => e.value,
            _ => 0,
        }
        .saturating_add_signed(delta);
        let change = if count == 0 {
            // Nothing counted (a refusal taken back): the room is free again.
            Change::Remove
        } else {
            Change::Set(Entry {
                end: window_end,
                value: count,
            })
        };
        (change, count)
    })
}

/// Creates every slot up front, so each later update is a compare-and-swap:
/// the plan's region, and a region for each throttling policy that limits
/// client addresses (the only caller-chosen keys).
pub fn prepare(store: &dyn SharedStore, policies: &[ThrottlePlan]) {
    slot_table::prepare(store, &region(Part::Plan));
    for (n, p) in policies.iter().enumerate() {
        if p.ip_limit.is_some() {
            slot_table::prepare(store, &region(Part::Policy(n as u32)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_store::tests::Memory;
    use crate::slot_table::tests::keyed;
    use crate::slot_table::{CAS_RETRIES, ENTRY, PER_SLOT};

    const DAY: u64 = 86_400_000;

    #[test]
    fn counter_keys_follow_the_policy_scope_and_special_limits() {
        let mut t = ThrottlePlan {
            name: "std".into(),
            window_ms: 1000,
            label: "1 second".into(),
            api_limit: 10,
            user_limit: Some(8),
            app_limit: Some(5),
            ip_limit: Some(3),
            shared: false,
            special_apps: [("vip".to_string(), 9)].into(),
            special_users: Default::default(),
        };
        let keys = |t: &ThrottlePlan, app| {
            counters(
                Some((2, t)),
                200,
                "shop/items",
                "TEST",
                app,
                Some("u1"),
                Some("::ffff:10.0.0.1"),
            )
            .into_iter()
            .map(|c| (c.key, c.limit, c.part))
            .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(&t, Some("vip")),
            [
                ("std|shop/items@TEST|api".into(), 10, Part::Plan),
                ("std|shop/items@TEST|user:u1".into(), 8, Part::Plan),
                ("std|shop/items@TEST|app:vip".into(), 9, Part::Plan),
                ("std|shop/items@TEST|ip:10.0.0.1".into(), 3, Part::Policy(2)),
            ]
        );
        // A shared policy counts all its APIs, in every environment, together.
        t.shared = true;
        assert_eq!(keys(&t, None)[0].0, "std|*|api");
        let default = counters(None, 200, "shop/items", "TEST", None, None, None);
        assert_eq!(default[0].key, "default|shop/items");
        assert_eq!(
            (default[0].limit, default[0].dimension),
            (200, Dimension::ApiAllEnv)
        );
    }

    /// A scope of policy 2 for `api` in TEST, as the gateway builds it.
    fn scope(t: &ThrottlePlan, api: &str) -> Rc<Scope> {
        Rc::new(Scope::new(Some((2, t)), 200, api, "TEST"))
    }

    fn ip_policy() -> ThrottlePlan {
        ThrottlePlan {
            name: "std".into(),
            window_ms: 1000,
            label: "1 second".into(),
            api_limit: 10,
            user_limit: None,
            app_limit: None,
            ip_limit: Some(3),
            shared: false,
            special_apps: Default::default(),
            special_users: Default::default(),
        }
    }

    #[test]
    fn an_address_key_hashes_in_one_block_and_apart_from_other_scopes() {
        keyed(&Memory::default());
        let t = ip_policy();
        let (a, b) = (scope(&t, "shop/a"), scope(&t, "shop/b"));
        let policy2 = region(Part::Policy(2));
        let at = |s: &Rc<Scope>, ip: &str| {
            let c = scope_counters(s, Some(&t), None, None, Some(ip));
            assert_eq!(c[1].part, Part::Policy(2));
            c[1].key.locate(&policy2).unwrap()
        };
        let v6 = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff";
        for ip in ["198.51.100.7", v6] {
            assert_ne!(at(&a, ip), at(&b, ip), "APIs of a basic policy apart");
            // The same text hashed as a text key (how an unparsable
            // address is counted) lands elsewhere.
            let text = Key::Text(format!("std|shop/a@TEST|ip:{ip}"));
            assert_ne!(at(&a, ip), text.locate(&policy2).unwrap());
        }
        assert_ne!(at(&a, "10.0.0.1"), at(&a, "10.0.0.2"));
        assert_eq!(at(&a, "::ffff:10.0.0.1"), at(&a, "10.0.0.1"));
        // Region prefix (`{table}\0`, part tag, policy) plus the longest
        // message fits the 55 bytes SHA-256 pads into one block.
        let (_, len) = address_message(&a, v6.parse().unwrap());
        assert!(TABLE.len() + 2 + 4 + len <= 55, "{len}");
        // Another policy's region hashes the same address elsewhere.
        let other = Key::Address(a.clone(), "10.0.0.1".parse().unwrap());
        assert_ne!(
            other.locate(&policy2),
            other.locate(&region(Part::Policy(3)))
        );
    }

    #[test]
    fn counters_of_a_scope_are_the_counters_built_from_scratch() {
        keyed(&Memory::default());
        let t = ThrottlePlan {
            user_limit: Some(8),
            app_limit: Some(5),
            ..ip_policy()
        };
        let s = scope(&t, "shop/items");
        for ip in ["10.0.0.1", "::ffff:10.0.0.1", "not an address"] {
            let precomputed = scope_counters(&s, Some(&t), Some("a"), Some("u"), Some(ip));
            let fresh = counters(
                Some((2, &t)),
                200,
                "shop/items",
                "TEST",
                Some("a"),
                Some("u"),
                Some(ip),
            );
            assert_eq!(precomputed, fresh);
            // ... and count in the same slots.
            for (p, f) in precomputed.iter().zip(&fresh) {
                let r = region(p.part);
                assert_eq!(p.key.locate(&r), f.key.locate(&r));
            }
        }
        assert_eq!(
            counters(
                Some((2, &t)),
                200,
                "shop/items",
                "TEST",
                None,
                None,
                Some("junk")
            )[1]
            .key,
            "std|shop/items@TEST|ip:junk"
        );
    }

    fn memory() -> Memory {
        let m = Memory::default();
        keyed(&m);
        m
    }

    fn counter(dimension: Dimension, key: &str, limit: u64, window_ms: u64) -> Counter {
        Counter {
            dimension,
            key: key.into(),
            limit,
            window_ms,
            label: "1 second".into(),
            part: if dimension == Dimension::Ip {
                Part::Policy(0)
            } else {
                Part::Plan
            },
        }
    }

    fn admitted(d: &Decision) -> bool {
        matches!(d, Decision::Admit(_))
    }

    #[test]
    fn admits_exactly_the_limit_per_window_and_resets() {
        let m = memory();
        let c = [counter(Dimension::Api, "api", 3, 1000)];
        let results: Vec<bool> = (0..5).map(|_| admitted(&admit(&m, 1000, &c))).collect();
        assert_eq!(results, [true, true, true, false, false]);
        assert!(!admitted(&admit(&m, 1999, &c)), "same window");
        assert!(admitted(&admit(&m, 2000, &c)), "next window");
    }

    #[test]
    fn tallies_count_down_for_the_debug_headers() {
        let m = memory();
        let c = [counter(Dimension::Api, "api", 10, 10_000)];
        let Decision::Admit(t) = admit(&m, 0, &c) else {
            panic!()
        };
        assert_eq!(t[0].header_value(), "remain:9,limit:10,time:1 second");
    }

    #[test]
    fn a_refusal_in_one_dimension_takes_back_the_others() {
        let m = memory();
        let api = counter(Dimension::Api, "api", 10, 1000);
        let ip_a = counter(Dimension::Ip, "ip:a", 1, 1000);
        let ip_b = counter(Dimension::Ip, "ip:b", 1, 1000);
        assert!(admitted(&admit(&m, 0, &[api.clone(), ip_a.clone()])));
        for _ in 0..5 {
            let Decision::Throttle(t) = admit(&m, 0, &[api.clone(), ip_a.clone()]) else {
                panic!()
            };
            assert_eq!(t.last().unwrap().dimension, Dimension::Ip);
        }
        // The five refused requests did not use up the API's limit.
        let Decision::Admit(t) = admit(&m, 0, &[api, ip_b]) else {
            panic!()
        };
        assert_eq!(t[0].remain, 8);
    }

    /// Sends one request per address, each under a day-long IP limit.
    fn flood(m: &Memory, policy: u32, addresses: usize, now_ms: u64) -> usize {
        let mut full = 0;
        for i in 0..addresses {
            let mut c = counter(Dimension::Ip, &format!("p|ip:10.{i}"), 5, DAY);
            c.part = Part::Policy(policy);
            match admit(m, now_ms, &[c]) {
                Decision::Admit(_) => {}
                Decision::Full => full += 1,
                d => panic!("{d:?}"),
            }
        }
        full
    }

    #[test]
    fn many_addresses_cannot_reset_another_counter() {
        let m = memory();
        let api = [counter(Dimension::Api, "a|api", 20, 10_000)];
        let mut other = counter(Dimension::Ip, "b|ip:192.0.2.1", 3, DAY);
        other.part = Part::Policy(1);
        for _ in 0..20 {
            assert!(admitted(&admit(&m, 0, &api)));
        }
        for _ in 0..3 {
            assert!(admitted(&admit(&m, 0, std::slice::from_ref(&other))));
        }
        // More addresses than policy 0's region holds, in the same window.
        let capacity = POLICY_SLOTS as usize * PER_SLOT;
        assert!(flood(&m, 0, capacity + 2_000, 1) >= 2_000);
        assert!(
            !admitted(&admit(&m, 2, &api)),
            "the API counter kept its count"
        );
        assert!(!admitted(&admit(&m, 2, &[other])), "so did policy 1's");
        assert!(m
            .data
            .borrow()
            .values()
            .all(|(v, _)| v.len() <= PER_SLOT * ENTRY));
    }

    #[test]
    fn a_full_region_refuses_new_addresses_and_never_over_admits() {
        let m = memory();
        let capacity = POLICY_SLOTS as usize * PER_SLOT;
        flood(&m, 0, capacity + 2_000, 0);
        // Every address, stored or not, is admitted at most its limit.
        let api = counter(Dimension::Api, "a|api", 1_000_000, DAY);
        let mut refused_full = 0;
        for i in 0..capacity + 2_000 {
            let mut ip = counter(Dimension::Ip, &format!("p|ip:10.{i}"), 1, DAY);
            ip.part = Part::Policy(0);
            match admit(&m, 1, &[api.clone(), ip]) {
                Decision::Admit(_) => panic!("address {i} admitted twice"),
                Decision::Throttle(_) => {}
                Decision::Full => refused_full += 1,
                Decision::Busy => panic!(),
            }
        }
        assert!(refused_full >= 2_000);
        // Refusals were taken back from the API counter.
        let Decision::Admit(t) = admit(&m, 1, &[api]) else {
            panic!()
        };
        assert_eq!(t[0].remain, 1_000_000 - 1);
        // A new window has room again.
        assert_eq!(flood(&m, 0, 10, DAY), 0);
    }

    #[test]
    fn contention_is_retried_exactly_then_refused() {
        let m = memory();
        let c = [counter(Dimension::Api, "api", 5, 1000)];
        let results: Vec<bool> = (0..8)
            .map(|_| {
                m.conflicts.set(5);
                admitted(&admit(&m, 0, &c))
            })
            .collect();
        assert_eq!(results, [true, true, true, true, true, false, false, false]);
        m.conflicts.set(CAS_RETRIES);
        assert_eq!(admit(&m, 0, &c), Decision::Busy);
    }

    #[test]
    fn prepare_creates_the_plan_region_and_one_per_ip_limiting_policy() {
        let m = memory();
        let before = m.data.borrow().len();
        let policy = |ip_limit| ThrottlePlan {
            name: "p".into(),
            window_ms: 1000,
            label: "1 second".into(),
            api_limit: 10,
            user_limit: None,
            app_limit: None,
            ip_limit,
            shared: false,
            special_apps: Default::default(),
            special_users: Default::default(),
        };
        prepare(&m, &[policy(Some(1)), policy(None), policy(Some(2))]);
        assert_eq!(
            m.data.borrow().len() - before,
            (PLAN_SLOTS + 2 * POLICY_SLOTS) as usize
        );
    }
}
