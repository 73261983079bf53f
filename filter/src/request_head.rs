//! The request's headers as one list, fetched with a single host call
//! instead of one call per header (each call crosses the Wasm boundary
//! twice). Lookups scan the short list; nothing is copied.

/// A request's headers, names lower-case as Envoy hands them over.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestHead {
    headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn new(headers: Vec<(String, String)>) -> RequestHead {
        RequestHead { headers }
    }

    /// For tests: a head from `(name, value)` pairs.
    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> RequestHead {
        RequestHead::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The first value of a header.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn all<'a>(&'a self, name: &str) -> Vec<&'a str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every header name, in order (repeated names repeat).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|(k, _)| k.as_str())
    }

    /// Every header as `(name, value)`, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The headers with `changes` applied in order: each removes every
    /// header of its name, then adds its value if it has one. For replacing
    /// the whole map in one host call.
    pub fn rewritten<'a>(
        &'a self,
        changes: &[(&'a str, Option<&'a str>)],
    ) -> Vec<(&'a str, &'a str)> {
        let mut out: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (name, value) in changes {
            out.retain(|(k, _)| k != name);
            if let Some(v) = value {
                out.push((name, v));
            }
        }
        out
    }

    pub fn method(&self) -> &str {
        self.get(":method").unwrap_or("")
    }

    /// `:path` as received, query included.
    pub fn path(&self) -> &str {
        self.get(":path").unwrap_or("")
    }

    pub fn authority(&self) -> &str {
        self.get(":authority").unwrap_or("")
    }

    /// `X-Stage`, if sent.
    pub fn stage(&self) -> Option<&str> {
        self.get("x-stage")
    }

    /// Envoy's `x-request-id` for this request.
    pub fn request_id(&self) -> &str {
        self.get("x-request-id").unwrap_or("")
    }

    /// `X-Apig-Mode: debug`.
    pub fn debug(&self) -> bool {
        self.get("x-apig-mode")
            .is_some_and(|m| m.eq_ignore_ascii_case("debug"))
    }

    pub fn content_length(&self) -> Option<u64> {
        self.get("content-length")?.trim().parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&str, &str)]) -> RequestHead {
        RequestHead::from_pairs(pairs)
    }

    #[test]
    fn reads_the_headers_the_gateway_uses() {
        let h = head(&[
            (":method", "POST"),
            (":path", "/a?b=1"),
            (":authority", "api.example.com"),
            ("x-stage", "TEST"),
            ("x-request-id", "rid"),
            ("x-apig-mode", "DEBUG"),
            ("content-length", "12"),
            ("accept", "a"),
            ("accept", "b"),
        ]);
        assert_eq!(
            (
                h.method(),
                h.path(),
                h.authority(),
                h.stage(),
                h.request_id()
            ),
            ("POST", "/a?b=1", "api.example.com", Some("TEST"), "rid")
        );
        assert!(h.debug());
        assert_eq!(h.content_length(), Some(12));
        assert_eq!(h.all("accept"), vec!["a", "b"]);
    }

    #[test]
    fn rewritten_applies_changes_in_order() {
        let h = head(&[(":path", "/a"), ("x-a", "1"), ("x-a", "2"), ("x-b", "b")]);
        let out = h.rewritten(&[
            (":path", Some("/b")),
            ("x-a", None),
            ("x-c", Some("c")),
            ("x-b", None),
            ("x-b", Some("B")),
        ]);
        assert_eq!(out, vec![(":path", "/b"), ("x-c", "c"), ("x-b", "B")]);
    }

    #[test]
    fn missing_and_malformed_values() {
        let h = head(&[("content-length", "nope"), ("x-apig-mode", "verbose")]);
        assert_eq!(h.content_length(), None);
        assert!(!h.debug());
        assert_eq!((h.stage(), h.method()), (None, ""));
    }
}
