//! Environments (the Huawei user guide's "environments", Alibaba's
//! "stages"): the plan lists them once, and every per-stage table of the
//! core is indexed by a stage's position in that list.

use std::collections::HashMap;

use crate::router::MAX_STAGES;

/// Stage name → index, and back.
#[derive(Debug, Default)]
pub struct StageIndex {
    by_name: HashMap<String, u16>,
    names: Vec<String>,
}

impl StageIndex {
    /// Indexes the plan's environments. Per-stage tables are sized by the
    /// count: a repeated name would leave an index past their end.
    pub fn new(names: &[String]) -> Result<StageIndex, String> {
        if names.len() > MAX_STAGES {
            return Err(format!("more than {MAX_STAGES} environments"));
        }
        let mut by_name = HashMap::with_capacity(names.len());
        for (i, s) in names.iter().enumerate() {
            if by_name.insert(s.clone(), i as u16).is_some() {
                return Err(format!("environment {s} is listed twice"));
            }
        }
        Ok(StageIndex {
            by_name,
            names: names.to_vec(),
        })
    }

    /// The index of a stage a request asks for, if it exists.
    pub fn get(&self, name: &str) -> Option<u16> {
        self.by_name.get(name).copied()
    }

    /// The index of a stage the plan names (an error when it does not exist).
    pub fn index(&self, name: &str) -> Result<u16, String> {
        self.get(name)
            .ok_or_else(|| format!("unknown stage {name}"))
    }

    pub fn name(&self, index: u16) -> &str {
        &self.names[index as usize]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// A table with one empty entry per stage.
    pub fn table<T>(&self, empty: impl Fn() -> T) -> Vec<T> {
        (0..self.len()).map(|_| empty()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_names_both_ways_and_refuses_repeats() {
        let stages = StageIndex::new(&["RELEASE".into(), "TEST".into()]).unwrap();
        assert_eq!(stages.get("TEST"), Some(1));
        assert_eq!(stages.name(1), "TEST");
        assert!(stages.index("DEV").unwrap_err().contains("DEV"));
        let twice = StageIndex::new(&["RELEASE".into(), "RELEASE".into()]);
        assert!(twice.unwrap_err().contains("twice"));
    }
}
