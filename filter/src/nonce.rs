//! Replay protection for `X-Ca-Nonce`: a nonce is accepted once within the
//! signature window, across every Envoy worker, in bounded memory.
//!
//! Nonces live in one region of a slot table (`slot_table.rs`) in the
//! host's shared data, picked by a keyed hash of AppKey and nonce. A live
//! nonce is never forgotten to make room: when its slot is full, a new nonce
//! is refused (`Verdict::Full`) until entries expire, so a flood cannot
//! reopen a replay. Memory: `SLOTS × PER_SLOT` (262,144) live nonces for the
//! whole gateway within the window, created once at start whatever the
//! number of apps. Only requests whose signature verified record a nonce,
//! so only an app holding its secret can fill the table, and its throttling
//! limits bound how fast.

use crate::slot_table::{self, Change, Entry, Outcome, Part, Region};

/// Slots for every app's nonces together.
pub const SLOTS: u32 = 16_384;
const TABLE: &str = "pylon.nonce";

pub use crate::shared_store::SharedStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fresh,
    Replayed,
    /// The store kept changing under us: refuse rather than risk a replay.
    Busy,
    /// The slot for this nonce is full of live nonces: refused.
    Full,
}

const REGION: Region = Region {
    table: TABLE,
    part: Part::Nonces,
    slots: SLOTS,
};

/// Creates every slot up front, so that each later update is a
/// compare-and-swap: two workers can never both create a slot's first entry.
pub fn prepare(store: &dyn SharedStore) {
    slot_table::prepare(store, &REGION);
}

/// Records `nonce_key` (AppKey + nonce) as used until `now_ms + window_ms`.
pub fn check_and_record(
    store: &dyn SharedStore,
    nonce_key: &str,
    now_ms: u64,
    window_ms: u64,
) -> Verdict {
    let outcome = slot_table::update(store, &REGION, nonce_key, now_ms, |seen| match seen {
        Some(_) => (Change::Keep, Verdict::Replayed),
        None => (
            Change::Set(Entry {
                end: now_ms + window_ms,
                value: 0,
            }),
            Verdict::Fresh,
        ),
    });
    match outcome {
        Outcome::Done(v) => v,
        Outcome::Full => Verdict::Full,
        Outcome::Busy => Verdict::Busy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::shared_store::tests::Memory;
    use crate::slot_table::tests::keyed;
    use crate::slot_table::{CAS_RETRIES, ENTRY, PER_SLOT};

    fn memory() -> Memory {
        let m = Memory::default();
        keyed(&m);
        m
    }

    #[test]
    fn a_nonce_is_accepted_once_within_the_window() {
        let m = memory();
        let check = |key, now| check_and_record(&m, key, now, 500);
        assert_eq!(check("key:n1", 1000), Verdict::Fresh);
        assert_eq!(check("key:n1", 1400), Verdict::Replayed);
        assert_eq!(check("key:n2", 1400), Verdict::Fresh);
        assert_eq!(check("other:n1", 1400), Verdict::Fresh, "scoped by AppKey");
        assert_eq!(check("key:n1", 1501), Verdict::Fresh, "expired");
    }

    #[test]
    fn prepare_creates_every_slot_once() {
        let m = memory();
        let before = m.data.borrow().len();
        prepare(&m);
        assert_eq!(m.data.borrow().len() - before, SLOTS as usize);
        check_and_record(&m, "k:x", 1, 10);
        prepare(&m);
        assert_eq!(
            check_and_record(&m, "k:x", 2, 10),
            Verdict::Replayed,
            "prepare keeps entries"
        );
    }

    #[test]
    fn a_flood_never_forgets_a_live_nonce() {
        let m = memory();
        let window = 1_000_000;
        assert_eq!(check_and_record(&m, "k:first", 0, window), Verdict::Fresh);
        // More nonces than the region holds: the overflow is refused, not
        // stored by forgetting others.
        let total = SLOTS as usize * PER_SLOT + 5_000;
        let mut full = 0;
        for i in 0..total {
            match check_and_record(&m, &format!("k:{i}"), 1, window) {
                Verdict::Fresh => {}
                Verdict::Full => full += 1,
                v => panic!("{v:?}"),
            }
        }
        assert!(full >= 5_000, "{full}");
        assert_eq!(
            check_and_record(&m, "k:first", 2, window),
            Verdict::Replayed
        );
        for i in 0..total {
            let v = check_and_record(&m, &format!("k:{i}"), 3, window);
            assert!(matches!(v, Verdict::Replayed | Verdict::Full), "{v:?}");
        }
        // Memory stays bounded.
        assert!(m
            .data
            .borrow()
            .values()
            .all(|(v, _)| v.len() <= PER_SLOT * ENTRY));
        // Once the window has passed, the slots take nonces again.
        assert_eq!(
            check_and_record(&m, "k:late", window + 2, window),
            Verdict::Fresh
        );
    }

    #[test]
    fn retries_on_conflicting_writers_and_gives_up_closed() {
        let m = memory();
        m.conflicts.set(3);
        assert_eq!(check_and_record(&m, "k:a", 1, 10), Verdict::Fresh);
        assert_eq!(check_and_record(&m, "k:a", 2, 10), Verdict::Replayed);
        m.conflicts.set(CAS_RETRIES);
        assert_eq!(check_and_record(&m, "k:b", 2, 10), Verdict::Busy);
    }
}
