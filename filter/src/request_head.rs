//! The request's headers as one list, fetched with a single host call
//! instead of one call per header (each call crosses the Wasm boundary
//! twice). Lookups scan the short list; nothing is copied.
//!
//! Values arrive as bytes. HTTP allows any octet but CTLs in a field value,
//! so a value need not be UTF-8; such a value is kept as bytes ("opaque"):
//! - it is forwarded to the backend untouched;
//! - the gateway never reads it as text: `get` and `all` skip it, and the
//!   places that must not treat it as absent ask `is_opaque` (a signed
//!   header fails the signature, a declared header parameter is refused).

/// What this gateway's Envoy appends to `Via` (see `gateway_hops`).
pub const VIA: &str = "pylon";

/// More passes than this through Pylon gateways is a loop (the products
/// answer APIG.0612 beyond 10 levels of nesting).
pub const MAX_HOPS: usize = 10;

/// A header value: text, or the bytes of a value that is not UTF-8.
type Value = Result<String, Vec<u8>>;

/// A request's headers, names lower-case as Envoy hands them over.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestHead {
    headers: Vec<(String, Value)>,
}

impl RequestHead {
    /// The headers as the host hands them over. Valid UTF-8 (nearly every
    /// value) becomes text without a copy.
    pub fn from_bytes(headers: Vec<(String, Vec<u8>)>) -> RequestHead {
        let headers = headers
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).map_err(|e| e.into_bytes())))
            .collect();
        RequestHead { headers }
    }

    /// A head from text values (tests, tools and fuzzers).
    pub fn new(headers: Vec<(String, String)>) -> RequestHead {
        let headers = headers.into_iter().map(|(k, v)| (k, Ok(v))).collect();
        RequestHead { headers }
    }

    /// For tests: a head from `(name, value)` pairs.
    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> RequestHead {
        RequestHead::from_bytes(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// The first value of a header, if it is text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref().ok())
    }

    /// Every text value of a header, in order.
    pub fn all<'a>(&'a self, name: &str) -> Vec<&'a str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .filter_map(|(_, v)| v.as_deref().ok())
            .collect()
    }

    /// Whether some value of the header is not UTF-8.
    pub fn is_opaque(&self, name: &str) -> bool {
        self.headers.iter().any(|(k, v)| k == name && v.is_err())
    }

    /// Whether the header is sent more than once (text or not).
    pub fn repeated(&self, name: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .nth(1)
            .is_some()
    }

    /// Every header name, in order (repeated names repeat).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|(k, _)| k.as_str())
    }

    /// Every header as bytes, in order: for limits that count bytes.
    pub fn raw(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(k, v)| (k.as_str(), bytes(v)))
    }

    /// The headers with `changes` applied in order: each removes every
    /// header of its name, then adds its value if it has one. For replacing
    /// the whole map in one host call; opaque values pass through as bytes.
    pub fn rewritten<'a>(
        &'a self,
        changes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Vec<(&'a str, &'a [u8])> {
        let mut out: Vec<(&str, &[u8])> = self.raw().collect();
        for (name, value) in changes {
            out.retain(|(k, _)| *k != name);
            if let Some(v) = value {
                out.push((name, v.as_bytes()));
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

    /// Whether `X-Stage` and `X-Ca-Stage` together name one environment at
    /// most. Two names (repeated, or the two headers differing) would let
    /// an unsigned one steer a request whose signature covers the other.
    pub fn stage_is_single(&self) -> bool {
        let mut values = self
            .headers
            .iter()
            .filter(|(k, _)| k == "x-stage" || k == "x-ca-stage")
            .map(|(_, v)| v);
        match values.next() {
            None => true,
            Some(first) => first.is_ok() && values.all(|v| v == first),
        }
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

    /// How many Pylon gateways this request has passed, this one included:
    /// Envoy appends `Via: pylon` on each pass (the bootstrap sets `via`).
    pub fn gateway_hops(&self) -> usize {
        // Every request carries a Via (Envoy adds one): no list collected.
        self.headers
            .iter()
            .filter(|(k, _)| k == "via")
            .filter_map(|(_, v)| v.as_deref().ok())
            .flat_map(|v| v.split(','))
            .filter(|hop| hop.trim() == VIA)
            .count()
    }

    pub fn content_length(&self) -> Option<u64> {
        self.get("content-length")?.trim().parse().ok()
    }
}

fn bytes(v: &Value) -> &[u8] {
    match v {
        Ok(text) => text.as_bytes(),
        Err(raw) => raw,
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
        assert!(h.repeated("accept") && !h.repeated("x-stage") && !h.repeated("x-absent"));
    }

    #[test]
    fn rewritten_applies_changes_in_order() {
        let h = head(&[(":path", "/a"), ("x-a", "1"), ("x-a", "2"), ("x-b", "b")]);
        let out = h.rewritten([
            (":path", Some("/b")),
            ("x-a", None),
            ("x-c", Some("c")),
            ("x-b", None),
            ("x-b", Some("B")),
        ]);
        let expected: Vec<(&str, &[u8])> = vec![(":path", b"/b"), ("x-c", b"c"), ("x-b", b"B")];
        assert_eq!(out, expected);
    }

    #[test]
    fn one_environment_at_most() {
        let single = |pairs: &[(&str, &str)]| head(pairs).stage_is_single();
        assert!(single(&[]));
        assert!(single(&[("x-stage", "TEST")]));
        assert!(single(&[("x-stage", "TEST"), ("x-ca-stage", "TEST")]));
        assert!(!single(&[("x-ca-stage", "RELEASE"), ("x-stage", "TEST")]));
        assert!(!single(&[("x-stage", "TEST"), ("x-stage", "RELEASE")]));
        let opaque = RequestHead::from_bytes(vec![("x-stage".into(), b"\xff".to_vec())]);
        assert!(!opaque.stage_is_single());
    }

    #[test]
    fn missing_and_malformed_values() {
        let h = head(&[("content-length", "nope"), ("x-apig-mode", "verbose")]);
        assert_eq!(h.content_length(), None);
        assert!(!h.debug());
        assert_eq!((h.stage(), h.method()), (None, ""));
    }

    #[test]
    fn a_value_that_is_not_utf8_is_kept_as_bytes_and_never_read_as_text() {
        let h = RequestHead::from_bytes(vec![
            (":path".into(), b"/a".to_vec()),
            ("x-junk".into(), b"\xff\xfe".to_vec()),
            ("x-mixed".into(), b"ok".to_vec()),
            ("x-mixed".into(), b"\xc3".to_vec()),
        ]);
        assert_eq!(h.get("x-junk"), None);
        assert!(h.is_opaque("x-junk") && h.is_opaque("x-mixed"));
        assert!(!h.is_opaque(":path") && !h.is_opaque("x-absent"));
        assert_eq!(h.all("x-mixed"), vec!["ok"]);
        // Forwarded byte for byte when the map is replaced.
        let out = h.rewritten([(":path", Some("/b"))]);
        assert!(out.contains(&("x-junk", b"\xff\xfe".as_slice())));
        assert!(out.contains(&("x-mixed", b"\xc3".as_slice())));
    }

    #[test]
    fn counts_passes_through_pylon_gateways() {
        assert_eq!(head(&[]).gateway_hops(), 0);
        let h = head(&[
            ("via", "1.1 cdn, pylon"),
            ("via", " pylon ,pylonx"),
            ("via", "pylon"),
        ]);
        assert_eq!(h.gateway_hops(), 3);
    }
}
