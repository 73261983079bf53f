//! The host's shared key-value data, as the core needs it: one store per
//! Envoy process, seen by every worker, updated with compare-and-swap. The
//! replay guard and the rate counters live here.

pub trait SharedStore {
    /// The value and its compare-and-swap token.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Stores `value` if the key is still at `cas`; `false` on a CAS mismatch.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

#[cfg(test)]
pub mod tests {
    use super::SharedStore;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    /// An in-memory stand-in for the host's shared data, with CAS.
    #[derive(Default)]
    pub struct Memory {
        pub data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        /// Makes the next N sets fail as if another worker wrote first.
        pub conflicts: Cell<usize>,
    }

    impl SharedStore for Memory {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            match self.data.borrow().get(key) {
                // As Envoy does: an empty value reads as none, with its token.
                Some((v, cas)) if v.is_empty() => (None, Some(*cas)),
                Some((v, cas)) => (Some(v.clone()), Some(*cas)),
                None => (None, None),
            }
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            if self.conflicts.get() > 0 {
                self.conflicts.set(self.conflicts.get() - 1);
                return false;
            }
            let mut data = self.data.borrow_mut();
            let current = data.get(key).map(|(_, c)| *c);
            if cas.is_some() && cas != current {
                return false;
            }
            let next = current.unwrap_or(0) + 1;
            data.insert(key.to_string(), (value.to_vec(), next));
            true
        }
    }
}
