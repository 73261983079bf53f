//! Cross-origin access (Huawei user guide §5.2.2). A CORS API's answers carry
//! `Access-Control-Allow-Origin: *` unless the backend sent its own; an
//! OPTIONS API with CORS on answers browsers' preflight requests.

use crate::plan::{ApiPlan, BackendPlan, Method};

pub const ALLOW_ORIGIN: &str = "access-control-allow-origin";

/// The Huawei user guide's preflight answer, header for header.
pub const PREFLIGHT: [(&str, &str); 5] = [
    (ALLOW_ORIGIN, "*"),
    (
        "access-control-allow-headers",
        "X-Stage,X-Sdk-Date,X-Sdk-Nonce,X-Proxy-Signed-Headers,X-Sdk-Content-Sha256,X-Forwarded-For,Authorization,Content-Type,Accept,Accept-Ranges,Cache-Control,Range",
    ),
    (
        "access-control-expose-headers",
        "X-Request-Id,X-Apig-Latency,X-Apig-Upstream-Latency,X-Apig-RateLimit-Api,X-Apig-RateLimit-User,X-Apig-RateLimit-App,X-Apig-RateLimit-Ip,X-Apig-RateLimit-Api-Allenv",
    ),
    (
        "access-control-allow-methods",
        "GET,POST,PUT,DELETE,HEAD,OPTIONS,PATCH",
    ),
    ("access-control-max-age", "172800"),
];

/// An OPTIONS API with CORS on whose backends are all mocks: the gateway
/// answers its preflights itself, for anyone. (With an HTTP backend it
/// stays an ordinary API: its authentication is not waived.)
pub fn is_preflight_api(a: &ApiPlan) -> bool {
    let all_mock = a
        .stages
        .values()
        .chain(a.policies.iter().flat_map(|p| p.stages.values()))
        .all(|b| matches!(b, BackendPlan::Mock(_)));
    a.cors && a.method == Method::Options && all_mock
}

/// Adds the CORS headers to a CORS API's mock answer, keeping any the mock
/// defines itself.
pub fn add_to_mock(headers: &mut Vec<(String, String)>, preflight: bool) {
    let wanted: &[(&str, &str)] = if preflight {
        &PREFLIGHT
    } else {
        &PREFLIGHT[..1]
    };
    for (name, value) in wanted {
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            headers.push((name.to_string(), value.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_answers_keep_their_own_cors_headers() {
        let mut h = vec![(
            "Access-Control-Allow-Origin".to_string(),
            "https://a.example".to_string(),
        )];
        add_to_mock(&mut h, true);
        assert_eq!(h.len(), 5);
        assert_eq!(h[0].1, "https://a.example");
        assert!(h.contains(&("access-control-max-age".into(), "172800".into())));
        let mut simple = Vec::new();
        add_to_mock(&mut simple, false);
        assert_eq!(simple, vec![(ALLOW_ORIGIN.to_string(), "*".to_string())]);
    }
}
