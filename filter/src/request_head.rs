//! The request headers the gateway reads, picked out of the header list in
//! one pass: the adapter fetches all headers with a single host call instead
//! of one call per header (each call crosses the Wasm boundary twice).

/// What the gateway needs from a request's headers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// `:path` as received, query included.
    pub path: String,
    pub authority: String,
    /// `X-Stage`, if sent.
    pub stage: Option<String>,
    /// Envoy's `x-request-id` for this request.
    pub request_id: String,
    /// `X-Apig-Mode: debug`.
    pub debug: bool,
    pub content_length: Option<u64>,
    /// The client sent the gateway's internal routing header.
    pub has_internal_header: bool,
}

impl RequestHead {
    /// `internal_header` is the routing header clients may not send.
    pub fn from_headers(headers: Vec<(String, String)>, internal_header: &str) -> RequestHead {
        let mut head = RequestHead::default();
        for (name, value) in headers {
            // Envoy hands header names over lower-cased.
            match name.as_str() {
                ":method" => head.method = value,
                ":path" => head.path = value,
                ":authority" => head.authority = value,
                "x-stage" => head.stage = Some(value),
                "x-request-id" => head.request_id = value,
                "x-apig-mode" => head.debug = value.eq_ignore_ascii_case("debug"),
                "content-length" => head.content_length = value.trim().parse().ok(),
                n if n == internal_header => head.has_internal_header = true,
                _ => {}
            }
        }
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn picks_the_headers_the_gateway_uses() {
        let head = RequestHead::from_headers(
            h(&[
                (":method", "POST"),
                (":path", "/a?b=1"),
                (":authority", "api.example.com"),
                ("x-stage", "TEST"),
                ("x-request-id", "rid"),
                ("x-apig-mode", "DEBUG"),
                ("content-length", "12"),
                ("x-other", "ignored"),
            ]),
            "x-pylon-cluster",
        );
        assert_eq!(
            head,
            RequestHead {
                method: "POST".into(),
                path: "/a?b=1".into(),
                authority: "api.example.com".into(),
                stage: Some("TEST".into()),
                request_id: "rid".into(),
                debug: true,
                content_length: Some(12),
                has_internal_header: false,
            }
        );
    }

    #[test]
    fn notices_the_internal_header_and_bad_lengths() {
        let head = RequestHead::from_headers(
            h(&[
                ("x-pylon-cluster", "x"),
                ("content-length", "nope"),
                ("x-apig-mode", "verbose"),
            ]),
            "x-pylon-cluster",
        );
        assert!(head.has_internal_header);
        assert_eq!(head.content_length, None);
        assert!(!head.debug);
        assert_eq!(head.stage, None);
    }
}
