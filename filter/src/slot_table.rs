//! Bounded hash tables in the host's shared data, used by the rate counters
//! (`throttle.rs`) and the replay guard (`nonce.rs`).
//!
//! A table is split into regions; a region is a fixed number of slots (one
//! shared-data key each, all created at start so every later change is a
//! compare-and-swap), and a slot holds at most `PER_SLOT` entries. Three
//! rules keep callers from changing each other's entries:
//!
//! - **Keyed hashing.** Slot and fingerprint come from HMAC-SHA256 under a
//!   per-deployment random secret that every worker reads from shared data,
//!   so nobody outside can compute which keys share a slot.
//! - **Regions.** Keys a caller can choose (client addresses, nonces) live
//!   in their own region per throttling policy or app, apart from the
//!   counters of the plan (API limits, the default limit), so a flood of
//!   chosen keys only ever meets keys of the same policy or app.
//! - **No eviction of live entries.** Only expired entries are dropped. A
//!   slot full of live entries refuses a new key (`Outcome::Full`): the
//!   request is refused rather than counted nowhere or let through, and the
//!   adapter logs it (`full_warning`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::shared_store::SharedStore;

pub const PER_SLOT: usize = 16;
/// Fingerprint, end of life (ms since the epoch), value; little-endian.
pub const ENTRY: usize = 24;
pub const CAS_RETRIES: usize = 32;
/// Where the deployment's secret lives in shared data.
pub const SECRET_KEY: &str = "pylon.secret";
pub const SECRET_LEN: usize = 32;
/// At most one warning per worker this often while tables are full.
const WARN_EVERY_MS: u64 = 10_000;

/// Per table, each plan key's keyed hash.
type PlanHashes = HashMap<&'static str, HashMap<Box<str>, [u64; 2]>>;

thread_local! {
    // One VM is one thread; the secret is installed in `on_configure`.
    static KEYED: RefCell<Option<Hmac<Sha256>>> = const { RefCell::new(None) };
    // The keyed hash of each plan key met so far, per table: plan keys are
    // few and fixed, and every request counts one or more of them (the
    // default limit at least); in Wasm one HMAC-SHA256 costs about as much
    // as five host calls (docs/BENCHMARKS.md, levers).
    static PLAN_HASHES: RefCell<PlanHashes> = RefCell::new(HashMap::new());
    // Which secret is in use (changes with it): what a `Memo` remembers is
    // only good for the secret it was computed under.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    // Refusals for a full slot since the last warning, and when that was.
    static FULL: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Which part of a table a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Keys from the plan only (API limits, the default limit, apps, users).
    Plan,
    /// Keys chosen by callers of throttling policy `n` (client addresses).
    Policy(u32),
    /// Keys chosen by signing callers (nonces, each prefixed by its AppKey).
    Nonces,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Plan => f.write_str("plan"),
            Part::Policy(n) => write!(f, "policy{n}"),
            Part::Nonces => f.write_str("nonces"),
        }
    }
}

/// A region: `slots` shared-data keys named `{table}.{part}.{i}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub table: &'static str,
    pub part: Part,
    pub slots: u32,
}

/// A live entry: `end` is when it stops counting (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub end: u64,
    pub value: u64,
}

pub enum Change {
    Keep,
    Set(Entry),
    Remove,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    Done(T),
    /// The key's slot is full of live entries of other keys: nothing stored.
    Full,
    /// The store kept changing under us, or no secret is installed.
    Busy,
}

/// Adopts the deployment's secret: the one in shared data, or `candidate`
/// (fresh random bytes) if there is none yet. Every worker ends with the
/// same secret: only the worker whose compare-and-swap fills the empty
/// placeholder writes one.
pub fn install_secret(store: &dyn SharedStore, candidate: &[u8; SECRET_LEN]) -> Result<(), String> {
    for _ in 0..CAS_RETRIES {
        match store.get(SECRET_KEY) {
            (Some(v), _) if v.len() == SECRET_LEN => {
                use_secret(&v);
                return Ok(());
            }
            // Envoy answers an empty value as no value, with its token.
            (_, Some(cas)) => {
                if store.set(SECRET_KEY, candidate, Some(cas)) {
                    use_secret(candidate);
                    return Ok(());
                }
            }
            // Absent: create an empty placeholder; the loop then fills it
            // by compare-and-swap (a plain set on an absent key cannot be
            // made conditional).
            (_, None) => {
                store.set(SECRET_KEY, &[], None);
            }
        }
    }
    Err("could not read or store the slot table secret".into())
}

fn use_secret(secret: &[u8]) {
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    KEYED.with(|k| *k.borrow_mut() = Some(mac));
    PLAN_HASHES.with(|c| c.borrow_mut().clear());
    GENERATION.with(|g| g.set(g.get() + 1));
}

/// Where one key (the last one asked for) lives in one region, remembered
/// while the secret stays: a slot index and fingerprint cost one keyed hash.
#[derive(Debug)]
pub struct Memo<K: Copy> {
    last: Cell<Option<Remembered<K>>>,
}

/// Secret generation, region, key, slot index and fingerprint.
type Remembered<K> = (u64, Region, K, (u32, u64));

impl<K: Copy + PartialEq> Memo<K> {
    pub fn new() -> Memo<K> {
        Memo {
            last: Cell::new(None),
        }
    }

    /// `key`'s slot and fingerprint in `region`: remembered if `key` was
    /// the last asked for under this secret, else `locate()`'s.
    pub fn locate(
        &self,
        region: &Region,
        key: K,
        locate: impl FnOnce() -> Option<(u32, u64)>,
    ) -> Option<(u32, u64)> {
        let generation = GENERATION.with(Cell::get);
        match self.last.get() {
            Some((g, r, k, spot)) if g == generation && r == *region && k == key => Some(spot),
            _ => {
                let spot = locate()?;
                self.last.set(Some((generation, *region, key, spot)));
                Some(spot)
            }
        }
    }
}

impl<K: Copy + PartialEq> Default for Memo<K> {
    fn default() -> Memo<K> {
        Memo::new()
    }
}

/// A key the plan fixes (an API's own counter), built once at plan load:
/// its keyed hash is remembered in it, so counting it costs no hashing and
/// no lookup. It hashes exactly as the same text given to `locate`.
#[derive(Debug)]
pub struct FixedKey {
    text: Box<str>,
    memo: Memo<()>,
}

impl FixedKey {
    pub fn new(text: String) -> FixedKey {
        FixedKey {
            text: text.into_boxed_str(),
            memo: Memo::new(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Slot index and fingerprint in `region` (see `locate`).
    pub fn locate(&self, region: &Region) -> Option<(u32, u64)> {
        self.memo.locate(region, (), || {
            Some(spot(region, keyed_hash(region, self.text.as_bytes())?))
        })
    }
}

/// Bounds the cache of plan keys' hashes: far above any plan's counters
/// (APIs, apps and accounts), so only a runaway would reach it.
const PLAN_HASHES_MAX: usize = 1 << 16;

/// Slot index within the region and fingerprint of `key`: one keyed hash
/// (remembered for plan keys).
pub fn locate(region: &Region, key: &str) -> Option<(u32, u64)> {
    let words = match region.part {
        Part::Plan => PLAN_HASHES.with(|c| {
            let mut cache = c.borrow_mut();
            let table = cache.entry(region.table).or_default();
            if let Some(words) = table.get(key) {
                return Some(*words);
            }
            let words = keyed_hash(region, key.as_bytes())?;
            if table.len() < PLAN_HASHES_MAX {
                table.insert(key.into(), words);
            }
            Some(words)
        })?,
        _ => keyed_hash(region, key.as_bytes())?,
    };
    Some(spot(region, words))
}

/// Slot index and fingerprint of a key the caller encodes as bytes, never
/// remembered. The caller keeps its encodings apart from the text keys of
/// the same region. Under the rate table's policy prefix (16 bytes) a key of
/// at most 39 bytes costs two SHA-256 compressions (one inner block, one
/// outer), the least an HMAC costs once its key is absorbed.
pub fn locate_bytes(region: &Region, key: &[u8]) -> Option<(u32, u64)> {
    Some(spot(region, keyed_hash(region, key)?))
}

fn spot(region: &Region, words: [u64; 2]) -> (u32, u64) {
    ((words[0] % u64::from(region.slots)) as u32, words[1])
}

fn keyed_hash(region: &Region, key: impl AsRef<[u8]>) -> Option<[u64; 2]> {
    KEYED.with(|k| {
        let mut mac = k.borrow().clone()?;
        mac.update(region.table.as_bytes());
        mac.update(&[0]);
        match region.part {
            Part::Plan => mac.update(&[0]),
            Part::Policy(n) => {
                mac.update(&[1]);
                mac.update(&n.to_le_bytes());
            }
            Part::Nonces => mac.update(&[2]),
        }
        mac.update(key.as_ref());
        let out = mac.finalize().into_bytes();
        let word = |i: usize| u64::from_le_bytes(out[i..i + 8].try_into().expect("8 bytes"));
        Some([word(0), word(8)])
    })
}

/// Creates every slot of the region that does not exist yet.
pub fn prepare(store: &dyn SharedStore, region: &Region) {
    for i in 0..region.slots {
        let key = slot_name(region, i);
        // Only a missing key (no token): an empty slot reads as no value,
        // and overwriting it could undo another worker's first entry.
        if store.get(&key).1.is_none() {
            store.set(&key, &[], None);
        }
    }
}

/// Reads the live entry of `key` (if any), asks `f` what to do with it, and
/// stores the change by compare-and-swap, dropping expired entries.
pub fn update<T>(
    store: &dyn SharedStore,
    region: &Region,
    key: &str,
    now_ms: u64,
    f: impl FnMut(Option<Entry>) -> (Change, T),
) -> Outcome<T> {
    update_at(store, region, locate(region, key), now_ms, f)
}

/// `update` for a key already located (`locate`, `FixedKey::locate`,
/// `locate_bytes`); `None` (no secret) is `Outcome::Busy`.
pub fn update_at<T>(
    store: &dyn SharedStore,
    region: &Region,
    located: Option<(u32, u64)>,
    now_ms: u64,
    mut f: impl FnMut(Option<Entry>) -> (Change, T),
) -> Outcome<T> {
    let Some((index, fingerprint)) = located else {
        return Outcome::Busy;
    };
    let slot = slot_name(region, index);
    for _ in 0..CAS_RETRIES {
        let (data, cas) = store.get(&slot);
        // Edited in place (each counted request changes one slot per
        // counter): expired entries are forgotten here, live ones keep
        // their order.
        let mut value = data.unwrap_or_default();
        let mut live = 0;
        let mut at = None;
        for i in 0..value.len() / ENTRY {
            if word(&value, i, 1) <= now_ms {
                continue;
            }
            value.copy_within(i * ENTRY..(i + 1) * ENTRY, live * ENTRY);
            if at.is_none() && word(&value, live, 0) == fingerprint {
                at = Some(live);
            }
            live += 1;
        }
        value.truncate(live * ENTRY);
        let current = at.map(|i| Entry {
            end: word(&value, i, 1),
            value: word(&value, i, 2),
        });
        let (change, result) = f(current);
        match (change, at) {
            (Change::Keep, _) | (Change::Remove, None) => return Outcome::Done(result),
            (Change::Set(e), Some(i)) => put_entry(&mut value, i, fingerprint, e),
            (Change::Set(e), None) => {
                if live >= PER_SLOT {
                    note_full();
                    return Outcome::Full;
                }
                value.resize((live + 1) * ENTRY, 0);
                put_entry(&mut value, live, fingerprint, e);
            }
            (Change::Remove, Some(i)) => {
                // The last entry takes its place.
                value.copy_within((live - 1) * ENTRY..live * ENTRY, i * ENTRY);
                value.truncate((live - 1) * ENTRY);
            }
        }
        if store.set(&slot, &value, cas) {
            return Outcome::Done(result);
        }
    }
    Outcome::Busy
}

/// Word `w` (fingerprint, end, value) of entry `i` of a slot's value.
fn word(value: &[u8], i: usize, w: usize) -> u64 {
    let at = i * ENTRY + w * 8;
    u64::from_le_bytes(value[at..at + 8].try_into().expect("8 bytes"))
}

fn put_entry(value: &mut [u8], i: usize, fingerprint: u64, e: Entry) {
    let entry = &mut value[i * ENTRY..(i + 1) * ENTRY];
    entry[..8].copy_from_slice(&fingerprint.to_le_bytes());
    entry[8..16].copy_from_slice(&e.end.to_le_bytes());
    entry[16..].copy_from_slice(&e.value.to_le_bytes());
}

/// `{table}.{part}.{index}`, built without the formatting machinery: every
/// counted request names one slot per counter.
fn slot_name(region: &Region, index: u32) -> String {
    let mut name = String::with_capacity(region.table.len() + 24);
    name.push_str(region.table);
    name.push('.');
    match region.part {
        Part::Plan => name.push_str("plan"),
        Part::Policy(n) => {
            name.push_str("policy");
            push_decimal(&mut name, n);
        }
        Part::Nonces => name.push_str("nonces"),
    }
    name.push('.');
    push_decimal(&mut name, index);
    name
}

fn push_decimal(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

fn note_full() {
    FULL.with(|f| {
        let (count, last) = f.get();
        f.set((count + 1, last));
    });
}

/// A warning for the log after refusals for a full slot: at most one per
/// `WARN_EVERY_MS` per worker, with the number refused since the last one.
pub fn full_warning(now_ms: u64) -> Option<String> {
    FULL.with(|f| {
        let (count, last) = f.get();
        if count == 0 || (last != 0 && now_ms < last.saturating_add(WARN_EVERY_MS)) {
            return None;
        }
        f.set((0, now_ms));
        Some(format!(
            "pylon: {count} request(s) refused: a rate counter or nonce slot is full of live entries"
        ))
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::shared_store::tests::Memory;

    /// Installs a fixed secret for this test thread.
    pub fn keyed(m: &Memory) {
        install_secret(m, &[7; SECRET_LEN]).unwrap();
    }

    const REGION: Region = Region {
        table: "t",
        part: Part::Plan,
        slots: 1,
    };

    fn put(m: &Memory, region: &Region, key: &str, end: u64) -> Outcome<()> {
        update(m, region, key, 0, |_| {
            (Change::Set(Entry { end, value: 1 }), ())
        })
    }

    #[test]
    fn every_worker_adopts_the_first_secret() {
        let m = Memory::default();
        install_secret(&m, &[1; SECRET_LEN]).unwrap();
        install_secret(&m, &[2; SECRET_LEN]).unwrap();
        assert_eq!(m.get(SECRET_KEY).0.unwrap(), vec![1; SECRET_LEN]);
        // An empty placeholder left by a racing worker is filled once.
        let m = Memory::default();
        m.set(SECRET_KEY, &[], None);
        install_secret(&m, &[3; SECRET_LEN]).unwrap();
        assert_eq!(m.get(SECRET_KEY).0.unwrap(), vec![3; SECRET_LEN]);
    }

    #[test]
    fn no_secret_fails_closed() {
        std::thread::spawn(|| {
            let m = Memory::default();
            assert_eq!(put(&m, &REGION, "k", 10), Outcome::Busy);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn slots_depend_on_the_secret() {
        let m = Memory::default();
        let region = Region {
            slots: 1 << 20,
            ..REGION
        };
        install_secret(&m, &[1; SECRET_LEN]).unwrap();
        let a: Vec<_> = (0..8).map(|i| locate(&region, &format!("k{i}"))).collect();
        use_secret(&[2; SECRET_LEN]);
        let b: Vec<_> = (0..8).map(|i| locate(&region, &format!("k{i}"))).collect();
        assert_ne!(a, b);
    }

    /// A secret installed, and a region wide enough that distinct keys
    /// land in distinct slots.
    fn keyed_wide_region() -> Region {
        keyed(&Memory::default());
        Region {
            slots: 1 << 20,
            ..REGION
        }
    }

    #[test]
    fn remembered_plan_hashes_are_the_keyed_hash_of_their_table() {
        let region = keyed_wide_region();
        let other = Region {
            table: "u",
            ..region
        };
        for _ in 0..2 {
            for r in [&region, &other] {
                let fresh = keyed_hash(r, "k").unwrap();
                let want = ((fresh[0] % u64::from(r.slots)) as u32, fresh[1]);
                assert_eq!(locate(r, "k"), Some(want));
            }
        }
        assert_ne!(locate(&region, "k"), locate(&other, "k"));
    }

    #[test]
    fn a_fixed_key_hashes_as_its_text_under_the_current_secret() {
        let region = keyed_wide_region();
        let other = Region {
            part: Part::Policy(1),
            ..region
        };
        let k = FixedKey::new("std|shop/items@TEST|api".into());
        for r in [&region, &other, &region] {
            assert_eq!(k.locate(r), locate(r, k.as_str()));
        }
        let before = k.locate(&region);
        use_secret(&[9; SECRET_LEN]);
        assert_ne!(k.locate(&region), before, "forgotten with the secret");
        assert_eq!(k.locate(&region), locate(&region, k.as_str()));
    }

    #[test]
    fn a_memo_answers_only_for_its_last_key_region_and_secret() {
        let m = Memory::default();
        keyed(&m);
        let memo = Memo::new();
        let computed = Cell::new(0);
        let at = |r: &Region, key: u8| {
            memo.locate(r, key, || {
                computed.set(computed.get() + 1);
                locate_bytes(r, &[key])
            })
        };
        let other = Region {
            part: Part::Policy(1),
            ..REGION
        };
        let first = at(&REGION, 1);
        assert_eq!(at(&REGION, 1), first);
        assert_eq!(computed.get(), 1, "remembered");
        assert_eq!(at(&REGION, 2), locate_bytes(&REGION, &[2]));
        assert_eq!(at(&other, 2), locate_bytes(&other, &[2]));
        assert_eq!(at(&REGION, 1), first);
        assert_eq!(computed.get(), 4);
        use_secret(&[9; SECRET_LEN]);
        assert_eq!(at(&REGION, 1), locate_bytes(&REGION, &[1]));
        assert_eq!(computed.get(), 5, "forgotten with the secret");
    }

    #[test]
    fn slot_names_are_table_part_index() {
        for (part, i) in [
            (Part::Plan, 0),
            (Part::Plan, 4095),
            (Part::Policy(12), 10),
            (Part::Nonces, 9),
            (Part::Policy(u32::MAX), u32::MAX),
        ] {
            let r = Region { part, ..REGION };
            assert_eq!(slot_name(&r, i), format!("t.{part}.{i}"));
        }
    }

    #[test]
    fn a_full_slot_refuses_new_keys_and_keeps_live_ones() {
        let m = Memory::default();
        keyed(&m);
        for i in 0..PER_SLOT {
            assert_eq!(put(&m, &REGION, &format!("k{i}"), 100), Outcome::Done(()));
        }
        assert_eq!(put(&m, &REGION, "new", 100), Outcome::Full);
        assert!(full_warning(1).is_some(), "logged");
        assert!(full_warning(2).is_none(), "rate-limited");
        // Every live key is still there.
        for i in 0..PER_SLOT {
            let seen = update(&m, &REGION, &format!("k{i}"), 0, |e| (Change::Keep, e));
            assert_eq!(seen, Outcome::Done(Some(Entry { end: 100, value: 1 })));
        }
        // Expired entries make room.
        let late = update(&m, &REGION, "new", 100, |_| {
            (Change::Set(Entry { end: 200, value: 1 }), ())
        });
        assert_eq!(late, Outcome::Done(()));
    }

    #[test]
    fn regions_are_apart() {
        let m = Memory::default();
        keyed(&m);
        let other = Region {
            part: Part::Policy(3),
            ..REGION
        };
        for i in 0..PER_SLOT {
            put(&m, &other, &format!("k{i}"), 100);
        }
        assert_eq!(put(&m, &REGION, "mine", 100), Outcome::Done(()));
        assert_eq!(put(&m, &other, "more", 100), Outcome::Full);
    }
}
