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
//! Counters hash into a fixed number of slots of a few entries each, so a
//! flood of distinct client IPs or apps cannot grow memory: a full slot
//! drops an expired entry first, else the one whose window ends soonest.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::shared_store::SharedStore;

pub const SLOTS: u64 = 16_384;
pub const PER_SLOT: usize = 16;
const ENTRY: usize = 24;
const CAS_RETRIES: usize = 32;

/// The dimensions of the seed, named as in the debug headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Api,
    User,
    App,
    Ip,
    /// The gateway-wide default limit of an API without a policy.
    ApiAllEnv,
}

impl Dimension {
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
    /// `remain:9,limit:10,time:10 second`, the seed's debug header value.
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
}

/// Counts one request against every counter; admits it only if it fits
/// under all of them, and otherwise takes back what it counted.
pub fn admit(store: &dyn SharedStore, now_ms: u64, counters: &[Counter]) -> Decision {
    let mut tallies = Vec::with_capacity(counters.len());
    for (i, c) in counters.iter().enumerate() {
        let Some(count) = bump(store, c, now_ms, 1) else {
            undo(store, &counters[..i], now_ms);
            return Decision::Busy;
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

fn hash_with(key: &str, salt: u8) -> u64 {
    let mut h = DefaultHasher::new();
    salt.hash(&mut h);
    key.hash(&mut h);
    h.finish()
}

/// Adds `delta` to the counter's current window; the new count, or `None`
/// if the store stayed contended.
fn bump(store: &dyn SharedStore, c: &Counter, now_ms: u64, delta: i64) -> Option<u64> {
    let slot = format!("pylon.rate.{}", hash_with(&c.key, 0) % SLOTS);
    let fingerprint = hash_with(&c.key, 1);
    let window_end = (now_ms / c.window_ms + 1) * c.window_ms;
    for _ in 0..CAS_RETRIES {
        let (data, cas) = store.get(&slot);
        // (fingerprint, end of the window counted, count)
        let mut entries: Vec<(u64, u64, u64)> = data
            .unwrap_or_default()
            .chunks_exact(ENTRY)
            .map(|e| {
                let word =
                    |i: usize| u64::from_le_bytes(e[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
                (word(0), word(1), word(2))
            })
            .collect();
        let count = match entries.iter_mut().find(|e| e.0 == fingerprint) {
            Some(e) => {
                if e.1 != window_end {
                    *e = (fingerprint, window_end, 0);
                }
                e.2 = e.2.saturating_add_signed(delta);
                e.2
            }
            None => {
                let count = 0u64.saturating_add_signed(delta);
                entries.push((fingerprint, window_end, count));
                count
            }
        };
        if entries.len() > PER_SLOT {
            let victim = (0..entries.len())
                .filter(|i| entries[*i].0 != fingerprint)
                .min_by_key(|i| entries[*i].1)
                .expect("a full slot holds other entries");
            entries.swap_remove(victim);
        }
        let mut value = Vec::with_capacity(entries.len() * ENTRY);
        for (fp, end, n) in &entries {
            value.extend_from_slice(&fp.to_le_bytes());
            value.extend_from_slice(&end.to_le_bytes());
            value.extend_from_slice(&n.to_le_bytes());
        }
        if store.set(&slot, &value, cas) {
            return Some(count);
        }
    }
    None
}

/// Creates every slot up front, so each later update is a compare-and-swap.
pub fn prepare(store: &dyn SharedStore) {
    for slot in 0..SLOTS {
        let key = format!("pylon.rate.{slot}");
        if store.get(&key).0.is_none() {
            store.set(&key, &[], None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_store::tests::Memory;

    fn counter(dimension: Dimension, key: &str, limit: u64, window_ms: u64) -> Counter {
        Counter {
            dimension,
            key: key.into(),
            limit,
            window_ms,
            label: "1 second".into(),
        }
    }

    fn admitted(d: &Decision) -> bool {
        matches!(d, Decision::Admit(_))
    }

    #[test]
    fn admits_exactly_the_limit_per_window_and_resets() {
        let m = Memory::default();
        let c = [counter(Dimension::Api, "api", 3, 1000)];
        let results: Vec<bool> = (0..5).map(|_| admitted(&admit(&m, 1000, &c))).collect();
        assert_eq!(results, [true, true, true, false, false]);
        assert!(!admitted(&admit(&m, 1999, &c)), "same window");
        assert!(admitted(&admit(&m, 2000, &c)), "next window");
    }

    #[test]
    fn tallies_count_down_for_the_debug_headers() {
        let m = Memory::default();
        let c = [counter(Dimension::Api, "api", 10, 10_000)];
        let Decision::Admit(t) = admit(&m, 0, &c) else {
            panic!()
        };
        assert_eq!(t[0].header_value(), "remain:9,limit:10,time:1 second");
    }

    #[test]
    fn a_refusal_in_one_dimension_takes_back_the_others() {
        let m = Memory::default();
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

    #[test]
    fn memory_stays_bounded_under_many_keys() {
        let m = Memory::default();
        for i in 0..100_000 {
            admit(
                &m,
                0,
                &[counter(Dimension::Ip, &format!("ip:{i}"), 5, 1000)],
            );
        }
        let data = m.data.borrow();
        assert!(data.len() as u64 <= SLOTS);
        assert!(data.values().all(|(v, _)| v.len() <= PER_SLOT * ENTRY));
    }

    #[test]
    fn contention_is_retried_then_refused() {
        let m = Memory::default();
        let c = [counter(Dimension::Api, "api", 5, 1000)];
        m.conflicts.set(5);
        assert!(admitted(&admit(&m, 0, &c)));
        m.conflicts.set(CAS_RETRIES);
        assert_eq!(admit(&m, 0, &c), Decision::Busy);
    }
}
