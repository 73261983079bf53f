//! The product's request-size limits (Huawei user guide §1.5 and the error
//! table of §6.3.3): a URI over 32 KiB is answered 414, one header over
//! 32 KiB or all headers together over 128 KiB are answered 494, both with
//! `APIG.0201`. Envoy's own header limit sits just above these (the compiler
//! sets it), so these checks decide, and what Envoy refuses beyond them is
//! mapped to the same 494.

use crate::request_head::RequestHead;
use crate::response::GatewayError;

/// The longest request URI (path and query), in bytes.
pub const MAX_URI_BYTES: usize = 32 * 1024;
/// The largest single header (name and value), in bytes.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// The largest sum of all headers (names and values), in bytes.
pub const MAX_HEADERS_BYTES: usize = 128 * 1024;

/// The error a request's head breaks, if any. The URI is `:path`; the
/// other pseudo-headers (`:method`, `:authority`, …) count as headers.
pub fn check(head: &RequestHead) -> Option<GatewayError> {
    let mut total = 0usize;
    for (name, value) in head.raw() {
        if name == ":path" {
            if value.len() > MAX_URI_BYTES {
                return Some(GatewayError::URI_TOO_LARGE);
            }
            continue;
        }
        let size = name.len() + value.len();
        if size > MAX_HEADER_BYTES {
            return Some(GatewayError::HEADERS_TOO_LARGE);
        }
        total += size;
    }
    (total > MAX_HEADERS_BYTES).then_some(GatewayError::HEADERS_TOO_LARGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(path: &str, headers: &[(&str, String)]) -> RequestHead {
        let mut pairs = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), "example.com".to_string()),
        ];
        pairs.extend(headers.iter().map(|(k, v)| (k.to_string(), v.clone())));
        RequestHead::new(pairs)
    }

    #[test]
    fn values_that_are_not_utf8_count_too() {
        let head = RequestHead::from_bytes(vec![
            (":path".into(), b"/".to_vec()),
            ("x-bin".into(), vec![0xff; MAX_HEADER_BYTES]),
        ]);
        let err = check(&head).unwrap();
        assert_eq!((err.status, err.code), (494, "APIG.0201"));
    }

    #[test]
    fn uri_up_to_32_kib_passes_and_longer_is_414() {
        let at_limit = format!("/a?q={}", "x".repeat(MAX_URI_BYTES - 5));
        assert_eq!(at_limit.len(), MAX_URI_BYTES);
        assert_eq!(check(&head(&at_limit, &[])), None);
        let over = format!("{at_limit}y");
        let err = check(&head(&over, &[])).unwrap();
        assert_eq!((err.status, err.code), (414, "APIG.0201"));
    }

    #[test]
    fn one_header_over_32_kib_is_494() {
        let fits = "v".repeat(MAX_HEADER_BYTES - "x-big".len());
        assert_eq!(check(&head("/", &[("x-big", fits.clone())])), None);
        let err = check(&head("/", &[("x-big", format!("{fits}v"))])).unwrap();
        assert_eq!((err.status, err.code), (494, "APIG.0201"));
    }

    #[test]
    fn headers_up_to_128_kib_in_total_pass_and_more_is_494() {
        // Four headers of 25 KiB each: 100 KiB in total passes.
        let quarter: Vec<(&str, String)> = ["x-a", "x-b", "x-c", "x-d"]
            .iter()
            .map(|n| (*n, "v".repeat(25 * 1024)))
            .collect();
        assert_eq!(check(&head("/", &quarter)), None);
        // Five headers of 30 KiB each: none too large, 150 KiB in total.
        let many: Vec<(&str, String)> = ["x-a", "x-b", "x-c", "x-d", "x-e"]
            .iter()
            .map(|n| (*n, "v".repeat(30 * 1024)))
            .collect();
        let err = check(&head("/", &many)).unwrap();
        assert_eq!((err.status, err.code), (494, "APIG.0201"));
    }

    #[test]
    fn a_long_uri_does_not_count_as_a_header() {
        let path = format!("/{}", "p".repeat(MAX_URI_BYTES - 1));
        let headers = [("x-a", "v".repeat(30 * 1024))];
        assert_eq!(check(&head(&path, &headers)), None);
    }
}
