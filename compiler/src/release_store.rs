//! The release store: what is published where, as plain JSON files next to
//! the definitions (`DEFS/.pylon/releases/<ENV>/<group>/<api>.json`), so a
//! publication can be reviewed and committed like any other change.
//!
//! One record per API and environment holds that API's publications there:
//! each version is a snapshot of the API's definition as it was published,
//! with its note, time and publisher; `current` names the version callers
//! get, or is empty when the API is offline. As in the product (Huawei user
//! guide §5.2.5), re-publishing makes a new current version, the last 10
//! versions per API and environment are kept, and any kept version can be
//! made current again; taking an API offline (§5.2.6) keeps its history.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::files::write_atomically;

/// Versions kept per API and environment (Huawei user guide §5.2.5).
pub const KEPT_VERSIONS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub group: String,
    pub api: String,
    pub environment: String,
    /// The version callers get; `None`: offline in this environment.
    pub current: Option<u64>,
    /// Oldest first.
    pub versions: Vec<Version>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// Counts up per API and environment; never reused.
    pub version: u64,
    pub note: String,
    /// RFC 3339, UTC.
    pub published_at: String,
    /// `$PYLON_PUBLISHER`, else the user name, if known.
    pub published_by: String,
    /// The API's definition as published (its `publish:` list left out:
    /// the record's environment is where it is published).
    pub definition: Value,
}

impl Record {
    pub fn new(group: &str, api: &str, environment: &str) -> Record {
        Record {
            group: group.to_string(),
            api: api.to_string(),
            environment: environment.to_string(),
            current: None,
            versions: Vec::new(),
        }
    }

    /// Adds a publication and makes it current; the oldest versions beyond
    /// `KEPT_VERSIONS` are dropped. Returns the new version's number.
    pub fn publish(&mut self, mut version: Version) -> u64 {
        version.version = self.versions.last().map_or(1, |v| v.version + 1);
        let number = version.version;
        self.versions.push(version);
        let excess = self.versions.len().saturating_sub(KEPT_VERSIONS);
        self.versions.drain(..excess);
        self.current = Some(number);
        number
    }

    /// Makes a kept version current again.
    pub fn rollback(&mut self, to: u64) -> Result<(), String> {
        if !self.versions.iter().any(|v| v.version == to) {
            let kept: Vec<String> = self
                .versions
                .iter()
                .map(|v| v.version.to_string())
                .collect();
            return Err(format!(
                "api '{}' has no version {to} in '{}' (kept: {})",
                self.api,
                self.environment,
                kept.join(", ")
            ));
        }
        self.current = Some(to);
        Ok(())
    }

    pub fn current_version(&self) -> Option<&Version> {
        let n = self.current?;
        self.versions.iter().find(|v| v.version == n)
    }
}

/// The store of one definitions directory.
pub struct Store {
    root: PathBuf,
}

/// Names become path components: only what every Pylon name allows.
fn safe_component(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Store {
    /// The store next to `defs`: inside it when it is a directory, else
    /// next to the file.
    pub fn for_defs(defs: &Path) -> Store {
        let base = if defs.is_dir() {
            defs.to_path_buf()
        } else {
            defs.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        };
        Store {
            root: base.join(".pylon").join("releases"),
        }
    }

    /// The store's directory (`.pylon/releases`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Holds the store's lock until dropped: two commands at once would
    /// each read the store, and the second would undo the first's change
    /// in the store and in the live files.
    pub fn lock(&self) -> Result<std::fs::File, String> {
        std::fs::create_dir_all(&self.root).map_err(|e| format!("{}: {e}", self.root.display()))?;
        let path = self.root.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.lock()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(file)
    }

    pub fn path(&self, environment: &str, group: &str, api: &str) -> Result<PathBuf, String> {
        for name in [environment, group, api] {
            if !safe_component(name) {
                return Err(format!(
                    "`{name}` is not a valid environment, group or API name"
                ));
            }
        }
        Ok(self
            .root
            .join(environment)
            .join(group)
            .join(format!("{api}.json")))
    }

    /// Every record, sorted by environment, group and API.
    pub fn load_all(&self) -> Result<Vec<(PathBuf, Record)>, String> {
        let mut out = Vec::new();
        for env in sorted_dirs(&self.root)? {
            for group in sorted_dirs(&env)? {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&group)
                    .map_err(|e| format!("{}: {e}", group.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect();
                files.sort();
                for file in files {
                    let record = read(&file)?;
                    out.push((file, record));
                }
            }
        }
        Ok(out)
    }

    /// Writes records (each atomically).
    pub fn save(&self, records: &[Record]) -> Result<(), String> {
        for r in records {
            let path = self.path(&r.environment, &r.group, &r.api)?;
            let dir = path.parent().expect("a record has a directory");
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let text = serde_json::to_string_pretty(r).expect("records serialize") + "\n";
            write_atomically(&path, text.as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }
}

fn read(file: &Path) -> Result<Record, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", file.display()))
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(note: &str) -> Version {
        Version {
            version: 0,
            note: note.into(),
            published_at: "2026-08-20T16:49:11Z".into(),
            published_by: "ci".into(),
            definition: serde_json::json!({"name": "get-item", "path": note}),
        }
    }

    #[test]
    fn keeps_exactly_the_last_ten_versions_and_never_reuses_a_number() {
        let mut r = Record::new("shop", "get-item", "RELEASE");
        for i in 1..=12 {
            assert_eq!(r.publish(version(&format!("n{i}"))), i);
        }
        let kept: Vec<u64> = r.versions.iter().map(|v| v.version).collect();
        assert_eq!(kept, (3..=12).collect::<Vec<_>>());
        assert_eq!(r.current, Some(12));
        assert_eq!(r.current_version().unwrap().note, "n12");
    }

    #[test]
    fn rollback_makes_a_kept_version_current_and_refuses_a_dropped_one() {
        let mut r = Record::new("shop", "get-item", "RELEASE");
        for i in 1..=11 {
            r.publish(version(&format!("n{i}")));
        }
        assert!(r.rollback(1).unwrap_err().contains("no version 1"));
        assert_eq!(r.current, Some(11));
        r.rollback(2).unwrap();
        assert_eq!(r.current_version().unwrap().note, "n2");
        // Publishing after a rollback counts on from the newest version.
        assert_eq!(r.publish(version("n12")), 12);
    }

    #[test]
    fn records_round_trip_through_files_in_a_reviewable_layout() {
        let dir = std::env::temp_dir().join(format!("pylon-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::for_defs(&dir);
        let mut a = Record::new("shop", "get-item", "RELEASE");
        a.publish(version("first"));
        let mut b = Record::new("shop", "get-item", "TEST");
        b.publish(version("second"));
        b.current = None;
        store.save(&[a.clone(), b.clone()]).unwrap();
        assert!(dir
            .join(".pylon/releases/RELEASE/shop/get-item.json")
            .is_file());
        let loaded: Vec<Record> = store
            .load_all()
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(loaded, vec![a, b]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_that_would_leave_the_store_are_refused() {
        let store = Store::for_defs(Path::new("defs"));
        assert!(store.path("RELEASE", "shop", "../x").is_err());
        assert!(store.path("..", "shop", "x").is_err());
        assert!(store.path("RELEASE", "shop", "get-item").is_ok());
    }
}
