//! Replay protection for `X-Ca-Nonce`: a nonce is accepted once within the
//! signature window, across every Envoy worker, in bounded memory.
//!
//! The store is the host's shared key-value data (one per Envoy process,
//! shared by all workers, updated with compare-and-swap). Nonces hash into a
//! fixed number of slots; each slot holds at most `PER_SLOT` fingerprints
//! with their expiry, so memory is bounded by `SLOTS × PER_SLOT × 16` bytes
//! however many distinct nonces arrive. A full slot drops its oldest entry.

use std::hash::{DefaultHasher, Hash, Hasher};

pub const SLOTS: u64 = 16_384;
pub const PER_SLOT: usize = 16;
const ENTRY: usize = 16;
const CAS_RETRIES: usize = 16;

pub use crate::shared_store::SharedStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fresh,
    Replayed,
    /// The store kept changing under us: refuse rather than risk a replay.
    Busy,
}

fn hash_with(key: &str, salt: u8) -> u64 {
    let mut h = DefaultHasher::new();
    salt.hash(&mut h);
    key.hash(&mut h);
    h.finish()
}

/// Creates every slot up front, so that each later update is a
/// compare-and-swap: two workers can never both create a slot's first entry.
pub fn prepare(store: &dyn SharedStore) {
    for slot in 0..SLOTS {
        let key = format!("pylon.nonce.{slot}");
        if store.get(&key).0.is_none() {
            store.set(&key, &[], None);
        }
    }
}

/// Records `nonce_key` (app key + nonce) as used until `now_ms + window_ms`.
pub fn check_and_record(
    store: &dyn SharedStore,
    nonce_key: &str,
    now_ms: u64,
    window_ms: u64,
) -> Verdict {
    let slot = format!("pylon.nonce.{}", hash_with(nonce_key, 0) % SLOTS);
    let fingerprint = hash_with(nonce_key, 1);
    for _ in 0..CAS_RETRIES {
        let (data, cas) = store.get(&slot);
        let mut entries: Vec<(u64, u64)> = data
            .unwrap_or_default()
            .chunks_exact(ENTRY)
            .map(|c| {
                let fp = u64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
                let expires = u64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
                (fp, expires)
            })
            .filter(|(_, expires)| *expires > now_ms)
            .collect();
        if entries.iter().any(|(fp, _)| *fp == fingerprint) {
            return Verdict::Replayed;
        }
        entries.push((fingerprint, now_ms + window_ms));
        if entries.len() > PER_SLOT {
            let oldest = (0..entries.len())
                .min_by_key(|i| entries[*i].1)
                .expect("not empty");
            entries.swap_remove(oldest);
        }
        let mut value = Vec::with_capacity(entries.len() * ENTRY);
        for (fp, expires) in &entries {
            value.extend_from_slice(&fp.to_le_bytes());
            value.extend_from_slice(&expires.to_le_bytes());
        }
        if store.set(&slot, &value, cas) {
            return Verdict::Fresh;
        }
    }
    Verdict::Busy
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::shared_store::tests::Memory;

    #[test]
    fn a_nonce_is_accepted_once_within_the_window() {
        let m = Memory::default();
        assert_eq!(check_and_record(&m, "key:n1", 1000, 500), Verdict::Fresh);
        assert_eq!(check_and_record(&m, "key:n1", 1400, 500), Verdict::Replayed);
        assert_eq!(check_and_record(&m, "key:n2", 1400, 500), Verdict::Fresh);
        assert_eq!(
            check_and_record(&m, "other:n1", 1400, 500),
            Verdict::Fresh,
            "scoped by app"
        );
        assert_eq!(
            check_and_record(&m, "key:n1", 1501, 500),
            Verdict::Fresh,
            "expired"
        );
    }

    #[test]
    fn prepare_creates_every_slot_once() {
        let m = Memory::default();
        prepare(&m);
        assert_eq!(m.data.borrow().len() as u64, SLOTS);
        check_and_record(&m, "k:x", 1, 10);
        prepare(&m);
        assert_eq!(
            check_and_record(&m, "k:x", 2, 10),
            Verdict::Replayed,
            "prepare keeps entries"
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let m = Memory::default();
        for i in 0..50_000 {
            assert_eq!(
                check_and_record(&m, &format!("k:{i}"), 1000, 1_000_000),
                Verdict::Fresh
            );
        }
        let data = m.data.borrow();
        assert!(data.len() as u64 <= SLOTS);
        assert!(data.values().all(|(v, _)| v.len() <= PER_SLOT * ENTRY));
    }

    #[test]
    fn retries_on_conflicting_writers_and_gives_up_closed() {
        let m = Memory::default();
        m.conflicts.set(3);
        assert_eq!(check_and_record(&m, "k:a", 1, 10), Verdict::Fresh);
        assert_eq!(check_and_record(&m, "k:a", 2, 10), Verdict::Replayed);
        m.conflicts.set(CAS_RETRIES);
        assert_eq!(check_and_record(&m, "k:b", 2, 10), Verdict::Busy);
    }
}
