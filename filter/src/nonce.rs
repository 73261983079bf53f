//! Replay protection for `X-Ca-Nonce`: a nonce is accepted once within the
//! signature window, across every Envoy worker, in bounded memory.
//!
//! Nonces live in a slot table (`slot_table.rs`) in the host's shared data:
//! each app has a region of its own, so one app's nonces never crowd out
//! another's, and slots are picked by a keyed hash. A live nonce is never
//! forgotten to make room: when its slot is full, a new nonce is refused
//! (`Verdict::Full`) until entries expire, so a flood cannot reopen a
//! replay. Memory: `APP_SLOTS × PER_SLOT` nonces per app.

use crate::slot_table::{self, Change, Entry, Outcome, Part, Region};

/// Slots per app: 32,768 live nonces per app within the window.
pub const APP_SLOTS: u32 = 2048;
const TABLE: &str = "pylon.nonce";

pub use crate::shared_store::SharedStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fresh,
    Replayed,
    /// The store kept changing under us: refuse rather than risk a replay.
    Busy,
    /// The app's slot for this nonce is full of live nonces: refused.
    Full,
}

fn region(app_id: &str) -> Region<'_> {
    Region {
        table: TABLE,
        part: Part::App(app_id),
        slots: APP_SLOTS,
    }
}

/// Creates every slot of each app's region up front, so that each later
/// update is a compare-and-swap: two workers can never both create a slot's
/// first entry.
pub fn prepare<'a>(store: &dyn SharedStore, app_ids: impl IntoIterator<Item = &'a str>) {
    for id in app_ids {
        slot_table::prepare(store, &region(id));
    }
}

/// Records `nonce_key` (app key + nonce) of the app `app_id` as used until
/// `now_ms + window_ms`.
pub fn check_and_record(
    store: &dyn SharedStore,
    app_id: &str,
    nonce_key: &str,
    now_ms: u64,
    window_ms: u64,
) -> Verdict {
    let outcome = slot_table::update(
        store,
        &region(app_id),
        nonce_key,
        now_ms,
        |seen| match seen {
            Some(_) => (Change::Keep, Verdict::Replayed),
            None => (
                Change::Set(Entry {
                    end: now_ms + window_ms,
                    value: 0,
                }),
                Verdict::Fresh,
            ),
        },
    );
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
        let check = |key, now| check_and_record(&m, "app", key, now, 500);
        assert_eq!(check("key:n1", 1000), Verdict::Fresh);
        assert_eq!(check("key:n1", 1400), Verdict::Replayed);
        assert_eq!(check("key:n2", 1400), Verdict::Fresh);
        assert_eq!(check("other:n1", 1400), Verdict::Fresh, "scoped by app");
        assert_eq!(check("key:n1", 1501), Verdict::Fresh, "expired");
    }

    #[test]
    fn prepare_creates_every_slot_once() {
        let m = memory();
        let before = m.data.borrow().len();
        prepare(&m, ["a", "b"]);
        assert_eq!(m.data.borrow().len() - before, 2 * APP_SLOTS as usize);
        check_and_record(&m, "a", "k:x", 1, 10);
        prepare(&m, ["a", "b"]);
        assert_eq!(
            check_and_record(&m, "a", "k:x", 2, 10),
            Verdict::Replayed,
            "prepare keeps entries"
        );
    }

    #[test]
    fn a_flood_never_forgets_a_live_nonce() {
        let m = memory();
        let window = 1_000_000;
        assert_eq!(
            check_and_record(&m, "app", "k:first", 0, window),
            Verdict::Fresh
        );
        // More nonces than the region holds: the overflow is refused, not
        // stored by forgetting others.
        let total = APP_SLOTS as usize * PER_SLOT + 5_000;
        let mut full = 0;
        for i in 0..total {
            match check_and_record(&m, "app", &format!("k:{i}"), 1, window) {
                Verdict::Fresh => {}
                Verdict::Full => full += 1,
                v => panic!("{v:?}"),
            }
        }
        assert!(full >= 5_000, "{full}");
        assert_eq!(
            check_and_record(&m, "app", "k:first", 2, window),
            Verdict::Replayed
        );
        for i in 0..total {
            let v = check_and_record(&m, "app", &format!("k:{i}"), 3, window);
            assert!(matches!(v, Verdict::Replayed | Verdict::Full), "{v:?}");
        }
        // Memory stays bounded, and another app still has all its room.
        assert!(m
            .data
            .borrow()
            .values()
            .all(|(v, _)| v.len() <= PER_SLOT * ENTRY));
        assert_eq!(
            check_and_record(&m, "other", "k:0", 3, window),
            Verdict::Fresh
        );
        // Once the window has passed, the slots take nonces again.
        assert_eq!(
            check_and_record(&m, "app", "k:late", window + 2, window),
            Verdict::Fresh
        );
    }

    #[test]
    fn retries_on_conflicting_writers_and_gives_up_closed() {
        let m = memory();
        m.conflicts.set(3);
        assert_eq!(check_and_record(&m, "app", "k:a", 1, 10), Verdict::Fresh);
        assert_eq!(check_and_record(&m, "app", "k:a", 2, 10), Verdict::Replayed);
        m.conflicts.set(CAS_RETRIES);
        assert_eq!(check_and_record(&m, "app", "k:b", 2, 10), Verdict::Busy);
    }
}
