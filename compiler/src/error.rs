//! Located definition errors: `file:line:column: object.field: message`,
//! the shape editors and CI annotate.
//!
//! Checks name an error by object (`api 'get-item'`) and field path
//! (`backend.http.address`); serde gives a line only for schema errors. So
//! before errors are printed, `locate` finds the rest in the file's text:
//! the object's entry (its `name:` in its section) and, inside that entry,
//! each key of the field path in turn. Where the text does not say (a flow
//! list, a missing key), the nearest line found stands.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefError {
    pub file: PathBuf,
    /// `api 'get-item'`, `group 'shop'`, ...; empty for file-level errors.
    pub object: String,
    /// Dotted field path inside the object, e.g. `backend.http.address`.
    pub field: String,
    pub message: String,
    /// 1-based line and column in `file`, once known.
    pub at: Option<(usize, usize)>,
}

impl DefError {
    pub fn new(file: &Path, object: &str, field: &str, message: impl Into<String>) -> DefError {
        DefError {
            file: file.to_path_buf(),
            object: object.to_string(),
            field: field.to_string(),
            message: message.into(),
            at: None,
        }
    }

    pub fn file(file: &Path, message: impl Into<String>) -> DefError {
        DefError::new(file, "", "", message)
    }

    pub fn at(mut self, line: usize, column: usize) -> DefError {
        self.at = Some((line, column));
        self
    }

    /// The same facts for machines (`--format json`); unknown parts are null.
    pub fn to_json(&self) -> serde_json::Value {
        let part = |s: &str| (!s.is_empty()).then(|| s.to_string());
        serde_json::json!({
            "file": self.file.display().to_string(),
            "line": self.at.map(|(l, _)| l),
            "column": self.at.map(|(_, c)| c),
            "object": part(&self.object),
            "field": part(&self.field),
            "message": self.message,
        })
    }
}

impl fmt::Display for DefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.at {
            write!(f, ":{line}:{column}")?;
        }
        match (self.object.is_empty(), self.field.is_empty()) {
            (false, false) => write!(f, ": {}.{}", self.object, self.field)?,
            (false, true) => write!(f, ": {}", self.object)?,
            (true, false) => write!(f, ": {}", self.field)?,
            (true, true) => {}
        }
        write!(f, ": {}", self.message)
    }
}

/// Fills in the line and column of every error that names an object, from
/// the text of its file (each file read once).
pub fn locate(errors: &mut [DefError]) {
    let mut texts: HashMap<PathBuf, Option<String>> = HashMap::new();
    for e in errors
        .iter_mut()
        .filter(|e| e.at.is_none() && !e.object.is_empty())
    {
        let text = texts
            .entry(e.file.clone())
            .or_insert_with(|| std::fs::read_to_string(&e.file).ok());
        if let Some(text) = text {
            e.at = find(text, &e.object, &e.field);
        }
    }
}

/// Each top-level list of the definitions and the kind of object it holds
/// (`apis` holds `api 'name'`).
const SECTIONS: [(&str, &str); 7] = [
    ("apis", "api"),
    ("groups", "group"),
    ("environments", "environment"),
    ("apps", "app"),
    ("accounts", "account"),
    ("acls", "acl"),
    ("throttles", "throttle"),
];

/// The kind of object a section lists (`apis` → `api`); other keys name
/// themselves (`gateway`).
pub fn kind_of(section: &str) -> &str {
    SECTIONS
        .iter()
        .find(|(s, _)| *s == section)
        .map_or(section, |(_, k)| k)
}

/// The section each kind of object is listed under.
fn section(kind: &str) -> &str {
    SECTIONS
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or(kind, |(s, _)| s)
}

/// Where `object` (`kind 'name'`, or a bare section such as `gateway`) and
/// then `field` are in `text`: 1-based line and column.
fn find(text: &str, object: &str, field: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let (kind, name) = match object.split_once(" '") {
        Some((k, n)) => (k, Some(n.trim_end_matches('\''))),
        None => (object, None),
    };
    let sect = section(kind);
    let top = lines
        .iter()
        .position(|l| l.strip_prefix(sect).is_some_and(|r| r.starts_with(':')));
    let from = top.unwrap_or(0);
    // The section ends at the next top-level key.
    let end = (from + 1..lines.len())
        .find(|&i| starts_top_level_key(lines[i]))
        .unwrap_or(lines.len());
    let (mut line, mut col) = match name {
        Some(name) => (from..end).find_map(|i| name_key(lines[i], name).map(|c| (i, c)))?,
        None => (top?, 0),
    };
    // The entry ends where the next entry of the section (or the section) does.
    let entry_indent = entry_indent(&lines, line, from);
    let entry_end = (line + 1..end)
        .find(|&i| {
            let l = lines[i];
            let indent = l.len() - l.trim_start().len();
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with('#') && indent <= entry_indent && t.starts_with('-')
        })
        .unwrap_or(end);
    for key in field.split('.').map(|k| k.split('[').next().unwrap_or(k)) {
        if key.is_empty() {
            continue;
        }
        let found = (line..entry_end).find_map(|i| {
            let start = if i == line { col } else { 0 };
            key_at(lines[i], key, start).map(|c| (i, c))
        });
        match found {
            Some(at) => (line, col) = at,
            None => break,
        }
    }
    Some((line + 1, col + 1))
}

fn starts_top_level_key(l: &str) -> bool {
    let first = l.chars().next();
    first.is_some_and(|c| c.is_ascii_alphabetic()) && l.contains(':')
}

/// The indentation of the `-` that starts the entry holding `line`.
fn entry_indent(lines: &[&str], line: usize, from: usize) -> usize {
    for i in (from..=line).rev() {
        let t = lines[i].trim_start();
        if t.starts_with('-') {
            return lines[i].len() - t.len();
        }
    }
    0
}

/// The column of a `name: <name>` key on the line, if its value is `name`.
fn name_key(l: &str, name: &str) -> Option<usize> {
    let mut start = 0;
    while let Some(c) = key_at(l, "name", start) {
        let value = l[c + "name:".len()..].trim_start();
        let value = value
            .split([',', '}', '#'])
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(['"', '\'']);
        if value == name {
            return Some(c);
        }
        start = c + 1;
    }
    None
}

/// The column of `key:` on the line at or after `start`, as a whole key
/// (after the line's start, a space, `{`, `,` or `-`).
fn key_at(l: &str, key: &str, start: usize) -> Option<usize> {
    let pattern = format!("{key}:");
    let mut from = start;
    while let Some(off) = l.get(from..)?.find(&pattern) {
        let c = from + off;
        let before = l[..c].chars().next_back();
        if before.is_none_or(|b| matches!(b, ' ' | '{' | ',' | '-' | '"' | '\'')) {
            let before_quote = if matches!(before, Some('"' | '\'')) {
                c - 1
            } else {
                c
            };
            return Some(before_quote);
        }
        from = c + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
groups:
  - name: shop
    default: true
apis:
  - name: list
    group: shop
    backend:
      http: {address: \"10.0.0.1:80\", path: /a}
  - group: shop
    name: get-item
    backend:
      http:
        address: 169.254.169.254
        path: /b
  - {name: flow, group: shop, method: GET, publish: [TEST]}
apps:
  - name: list
    key: k
";

    #[test]
    fn finds_objects_then_their_fields() {
        assert_eq!(find(TEXT, "group 'shop'", ""), Some((2, 5)));
        assert_eq!(find(TEXT, "api 'list'", ""), Some((5, 5)));
        // The same name in another section is another object.
        assert_eq!(find(TEXT, "app 'list'", "key"), Some((18, 5)));
        assert_eq!(
            find(TEXT, "api 'get-item'", "backend.http.address"),
            Some((13, 9))
        );
        assert_eq!(
            find(TEXT, "api 'list'", "backend.http.address"),
            Some((8, 14))
        );
        assert_eq!(find(TEXT, "api 'flow'", "publish[0]"), Some((15, 44)));
        // A key the entry lacks: the nearest line found.
        assert_eq!(find(TEXT, "api 'list'", "backend.tls"), Some((7, 5)));
        assert_eq!(find(TEXT, "api 'nope'", ""), None);
    }

    #[test]
    fn prints_file_line_column_object_field() {
        let e = DefError::new(Path::new("d/apis.yaml"), "api 'x'", "backend.path", "bad").at(3, 7);
        assert_eq!(e.to_string(), "d/apis.yaml:3:7: api 'x'.backend.path: bad");
        let e = DefError::file(Path::new("d/apis.yaml"), "not YAML");
        assert_eq!(e.to_string(), "d/apis.yaml: not YAML");
    }
}
