//! Reading the document: an object that remembers which keys were used, so
//! every key is either mapped or reported (`Obj::finish`).

use std::collections::BTreeSet;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::openapi::escape;
use crate::openapi::report::{Level, Reports};

/// Keys kept as documentation only: reported as notes.
const DOC_KEYS: &[&str] = &[
    "summary",
    "tags",
    "externalDocs",
    "responses",
    "produces",
    "consumes",
    "deprecated",
    "example",
    "examples",
    "format",
    "definitions",
    "x-apigateway-request-type",
    "x-apigateway-result-normal-sample",
    "x-apigateway-result-failure-sample",
    "x-apigateway-sample",
    "x-apigateway-content-type",
    "x-aliyun-apigateway-api-market-enable",
    "requestBody",
    "contact",
    "license",
    "termsOfService",
    "version",
    "xml",
    "title",
    "schemas",
    "requestBodies",
    "headers",
    "securitySchemes",
    "bodyFormat",
    "postBodyDescription",
];

/// An object being read: remembers which keys were used.
pub(super) struct Obj<'a> {
    pub(super) map: Option<&'a Map<String, Value>>,
    pub(super) ptr: String,
    pub(super) used: BTreeSet<&'static str>,
}

impl<'a> Obj<'a> {
    pub(super) fn new(v: Option<&'a Value>, ptr: String) -> Obj<'a> {
        Obj {
            map: v.and_then(Value::as_object),
            ptr,
            used: BTreeSet::new(),
        }
    }
    pub(super) fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.insert(key);
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }
    pub(super) fn str(&mut self, key: &'static str) -> Option<String> {
        self.get(key).map(text)
    }
    /// A scalar parsed as `T` (`5000` and `"5000"` alike); `None` if it does not parse.
    pub(super) fn num<T: FromStr>(&mut self, key: &'static str) -> Option<T> {
        self.get(key).and_then(|v| text(v).parse().ok())
    }
    /// A structured value read as `T` (the `x-pylon-*` facts `pylon export`
    /// writes); `None` if it does not fit, so the caller keeps what the
    /// vendor's fields said.
    pub(super) fn json<T: DeserializeOwned>(&mut self, key: &'static str) -> Option<T> {
        self.get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
    /// A boolean; `false` when absent or not a boolean.
    pub(super) fn flag(&mut self, key: &'static str) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(false)
    }
    /// The elements of the list at `key`, each with its pointer.
    pub(super) fn items(&mut self, key: &'static str) -> Vec<(String, &'a Value)> {
        let at = self.at(key);
        self.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, v)| (format!("{at}/{i}"), v))
            .collect()
    }
    pub(super) fn at(&self, key: &str) -> String {
        format!("{}/{}", self.ptr, escape(key))
    }
    /// Reports that `key`, read, is not honoured as written.
    pub(super) fn unsupported(&self, r: &mut Reports, key: &str, message: impl Into<String>) {
        r.push(Level::Unsupported, &self.at(key), message);
    }
    /// Reports every key not used.
    pub(super) fn finish(self, r: &mut Reports) {
        let Some(map) = self.map else { return };
        for (k, v) in map {
            if self.used.contains(k.as_str()) {
                continue;
            }
            let at = format!("{}/{}", self.ptr, escape(k));
            if DOC_KEYS.contains(&k.as_str()) || (k == "description" && v.is_string()) {
                r.push(Level::Note, &at, "kept as documentation only");
            } else if k == "x-apigateway-orchestrations" && v.as_array().is_some_and(Vec::is_empty)
            {
                // An empty list says nothing.
            } else {
                r.push(Level::Unsupported, &at, "not supported by Pylon; ignored");
            }
        }
    }
}

/// A scalar as text (`5000` and `"5000"` alike).
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
