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

use std::net::IpAddr;

use crate::plan::ThrottlePlan;
use crate::shared_store::SharedStore;
use crate::slot_table::{self, Change, Entry, Outcome, Part, Region};

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

/// One counter a request must fit under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub dimension: Dimension,
    /// Identifies what is counted (policy, API, caller).
    pub key: String,
    pub limit: u64,
    pub window_ms: u64,
    /// `10 second`, for the debug header.
    pub label: String,
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
    pub label: String,
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

/// The counters a request to an API must fit under, given who is calling.
/// `bound` is the throttling policy bound to the API in the request's
/// stage (its index in the plan, and the policy); without one, the
/// gateway-wide default per API. `api` is `group/api`, `stage` the stage's
/// name.
pub fn counters(
    bound: Option<(u32, &ThrottlePlan)>,
    default_limit: u64,
    api: &str,
    stage: &str,
    app: Option<&str>,
    account: Option<&str>,
    ip: Option<&str>,
) -> Vec<Counter> {
    let Some((policy, t)) = bound else {
        return vec![Counter {
            dimension: Dimension::ApiAllEnv,
            key: format!("default|{api}"),
            limit: default_limit,
            window_ms: 1000,
            label: "1 second".into(),
            part: Part::Plan,
        }];
    };
    // A shared policy counts all its APIs together; a basic one per API
    // and environment (Huawei user guide §5.3).
    let scope = if t.shared {
        format!("{}|*", t.name)
    } else {
        format!("{}|{api}@{stage}", t.name)
    };
    let counter = |dimension, who: &str, limit| Counter {
        dimension,
        key: format!("{scope}|{who}"),
        limit,
        window_ms: t.window_ms,
        label: t.label.clone(),
        // Callers choose their addresses, not apps or accounts (those
        // come from the plan): addresses get the policy's own region.
        part: if dimension == Dimension::Ip {
            Part::Policy(policy)
        } else {
            Part::Plan
        },
    };
    let mut out = vec![counter(Dimension::Api, "api", t.api_limit)];
    if let Some(account) = account {
        let limit = t.special_users.get(account).copied().or(t.user_limit);
        out.extend(limit.map(|l| counter(Dimension::User, &format!("user:{account}"), l)));
    }
    if let Some(app) = app {
        let limit = t.special_apps.get(app).copied().or(t.app_limit);
        out.extend(limit.map(|l| counter(Dimension::App, &format!("app:{app}"), l)));
    }
    if let (Some(ip), Some(l)) = (ip, t.ip_limit) {
        // `::ffff:a.b.c.d` is the client a.b.c.d, as for IP policies.
        let who = match ip.parse::<IpAddr>() {
            Ok(addr) => format!("ip:{}", addr.to_canonical()),
            Err(_) => format!("ip:{ip}"),
        };
        out.push(counter(Dimension::Ip, &who, l));
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
    slot_table::update(store, &region(c.part), &c.key, now_ms, |entry| {
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
