//! The audit trail (Huawei user guide chapter 7, auditing management
//! operations): every compile, publish, rollback and offline appends one
//! JSON line to `.pylon/audit.jsonl` next to the definitions — when, who,
//! what it was (and its note), and which APIs it added, changed or removed
//! in each environment. `pylon audit` prints it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::defs::Defs;
use crate::release_store::{Record, Store};

/// Per environment, each API (`group/name`) and what it is there: a
/// release's version number, or a fingerprint of a compiled definition.
pub type State = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvChange {
    pub environment: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339, UTC.
    pub at: String,
    pub by: String,
    /// `compile`, `publish`, `rollback` or `offline`.
    pub action: String,
    #[serde(default)]
    pub note: String,
    /// What the command reported.
    #[serde(default)]
    pub detail: String,
    pub changes: Vec<EnvChange>,
}

/// The `.pylon` directory of the definitions (the release store's parent).
fn dir(defs: &[PathBuf]) -> PathBuf {
    let store = Store::for_defs(defs.first().map_or(Path::new("."), PathBuf::as_path));
    store
        .root()
        .parent()
        .map_or_else(|| PathBuf::from(".pylon"), Path::to_path_buf)
}

const LOG: &str = "audit.jsonl";
/// What the last compile saw, to tell what the next one changes.
const COMPILED: &str = "compiled-state.json";

/// The releases' state: each API's current version per environment.
pub fn state_of_records(records: &[Record]) -> State {
    let mut state = State::new();
    for r in records {
        if let Some(v) = r.current {
            state
                .entry(r.environment.clone())
                .or_default()
                .insert(format!("{}/{}", r.group, r.api), format!("v{v}"));
        }
    }
    state
}

/// The definitions' state: each API in the environments its `publish:`
/// lists, fingerprinted by its definition.
pub fn state_of_defs(defs: &Defs) -> State {
    let mut state = State::new();
    for a in &defs.apis {
        let print = hex(&Sha256::digest(format!("{:?}", a.def).as_bytes())[..8]);
        for env in &a.def.publish {
            state
                .entry(env.clone())
                .or_default()
                .insert(format!("{}/{}", a.def.group, a.def.name), print.clone());
        }
    }
    state
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What changed from `before` to `after`, per environment (environments
/// with no change left out).
pub fn diff(before: &State, after: &State) -> Vec<EnvChange> {
    let empty = BTreeMap::new();
    let mut envs: Vec<&String> = before.keys().chain(after.keys()).collect();
    envs.sort();
    envs.dedup();
    envs.into_iter()
        .map(|env| {
            let (b, a) = (
                before.get(env).unwrap_or(&empty),
                after.get(env).unwrap_or(&empty),
            );
            EnvChange {
                environment: env.clone(),
                added: a.keys().filter(|k| !b.contains_key(*k)).cloned().collect(),
                changed: a
                    .iter()
                    .filter(|(k, v)| b.get(*k).is_some_and(|old| old != *v))
                    .map(|(k, _)| k.clone())
                    .collect(),
                removed: b.keys().filter(|k| !a.contains_key(*k)).cloned().collect(),
            }
        })
        .filter(|c| !(c.added.is_empty() && c.changed.is_empty() && c.removed.is_empty()))
        .collect()
}

/// Appends one entry to the trail.
pub fn record(
    defs: &[PathBuf],
    action: &str,
    note: &str,
    detail: &str,
    changes: Vec<EnvChange>,
) -> Result<(), String> {
    let dir = dir(defs);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let entry = Entry {
        at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        by: crate::publish::publisher(),
        action: action.into(),
        note: note.into(),
        detail: detail.into(),
        changes,
    };
    let line = serde_json::to_string(&entry).expect("an entry serializes") + "\n";
    let path = dir.join(LOG);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Records a compile: what it changed since the last compile of the same
/// definitions.
pub fn record_compile(
    defs_paths: &[PathBuf],
    defs: &Defs,
    note: &str,
    detail: &str,
) -> Result<(), String> {
    let file = dir(defs_paths).join(COMPILED);
    let before: State = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let after = state_of_defs(defs);
    record(defs_paths, "compile", note, detail, diff(&before, &after))?;
    let bytes = serde_json::to_vec_pretty(&after).expect("a state serializes");
    crate::files::write_atomically(&file, &bytes).map_err(|e| format!("{}: {e}", file.display()))
}

/// `pylon audit`: the trail, oldest first, optionally for one environment
/// or one API (`NAME` or `GROUP/NAME`).
pub fn show(defs: &[PathBuf], env: Option<&str>, api: Option<&str>) -> Result<String, String> {
    let path = dir(defs).join(LOG);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let names = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter(|n| api.is_none_or(|a| *n == a || n.rsplit('/').next() == Some(a)))
            .cloned()
            .collect()
    };
    let mut lines = vec![format!(
        "{:<20} {:<8} {:<12} {:<12} {:<40} NOTE",
        "AT", "ACTION", "BY", "ENVIRONMENT", "CHANGES"
    )];
    for (n, line) in text.lines().enumerate() {
        let e: Entry = serde_json::from_str(line)
            .map_err(|err| format!("{}:{}: {err}", path.display(), n + 1))?;
        let mut shown = false;
        for c in &e.changes {
            if env.is_some_and(|x| x != c.environment) {
                continue;
            }
            let parts: Vec<String> = [("+", &c.added), ("~", &c.changed), ("-", &c.removed)]
                .iter()
                .flat_map(|(mark, list)| names(list).into_iter().map(move |n| format!("{mark}{n}")))
                .collect();
            if parts.is_empty() {
                continue;
            }
            shown = true;
            lines.push(format!(
                "{:<20} {:<8} {:<12} {:<12} {:<40} {}",
                e.at,
                e.action,
                e.by,
                c.environment,
                parts.join(" "),
                e.note
            ));
        }
        if !shown && env.is_none() && api.is_none() {
            lines.push(format!(
                "{:<20} {:<8} {:<12} {:<12} {:<40} {}",
                e.at, e.action, e.by, "-", "(no change)", e.note
            ));
        }
    }
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(entries: &[(&str, &str, &str)]) -> State {
        let mut s = State::new();
        for (env, api, v) in entries {
            s.entry(env.to_string())
                .or_default()
                .insert(api.to_string(), v.to_string());
        }
        s
    }

    #[test]
    fn diff_tells_added_changed_and_removed_apart_per_environment() {
        let before = state(&[
            ("RELEASE", "g/a", "v1"),
            ("RELEASE", "g/b", "v1"),
            ("TEST", "g/a", "v1"),
        ]);
        let after = state(&[
            ("RELEASE", "g/a", "v2"),
            ("RELEASE", "g/c", "v1"),
            ("TEST", "g/a", "v1"),
        ]);
        let d = diff(&before, &after);
        assert_eq!(
            d,
            [EnvChange {
                environment: "RELEASE".into(),
                added: vec!["g/c".into()],
                changed: vec!["g/a".into()],
                removed: vec!["g/b".into()],
            }]
        );
        assert!(diff(&after, &after).is_empty());
    }

    #[test]
    fn records_and_shows_entries_filtered_by_environment_and_api() {
        let dir = std::env::temp_dir().join(format!("pylon-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let defs = vec![dir.clone()];
        let changes = diff(
            &State::new(),
            &state(&[("RELEASE", "g/a", "v1"), ("TEST", "g/b", "v1")]),
        );
        record(&defs, "publish", "first cut", "", changes).unwrap();
        record(&defs, "compile", "", "", vec![]).unwrap();
        let all = show(&defs, None, None).unwrap();
        assert!(all.contains("+g/a") && all.contains("+g/b") && all.contains("first cut"));
        assert!(all.contains("(no change)"));
        let test_only = show(&defs, Some("TEST"), None).unwrap();
        assert!(test_only.contains("+g/b") && !test_only.contains("+g/a"));
        let a_only = show(&defs, None, Some("a")).unwrap();
        assert!(a_only.contains("+g/a") && !a_only.contains("g/b"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
