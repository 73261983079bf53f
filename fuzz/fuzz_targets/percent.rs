//! Percent-encoding and decoding of path and query values (Huawei user
//! guide §5.2.1): decoding never panics, and what the gateway encodes into
//! a backend path or query decodes back to the value. The routing path
//! (request_path.rs) keeps its invariant: it begins with `/`, has no `.` or
//! `..` segment and no empty inner segment, and normalising it again
//! changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon_filter::params::Query;
use pylon_filter::percent::{decode_path, decode_query, push_encoded, PATH, QUERY};
use pylon_filter::request_path::normalize_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = decode_path(s);
    let _ = decode_query(s);
    let mut path = String::new();
    push_encoded(&mut path, s, PATH);
    assert!(!path.contains(['/', '?', '#']), "{path:?}");
    assert_eq!(decode_path(&path).as_deref(), Some(s));
    let mut query = String::new();
    push_encoded(&mut query, s, QUERY);
    assert!(!query.contains(['&', '=', '#', '+']), "{query:?}");
    assert_eq!(decode_query(&query).as_deref(), Some(s));
    if let Ok(routed) = normalize_target(s) {
        let path = routed.split('?').next().unwrap_or("");
        assert!(path.starts_with('/'), "{routed:?}");
        let inner = &path[1..path.len().max(1)];
        let inner = inner.strip_suffix('/').unwrap_or(inner);
        assert!(
            inner.is_empty() || inner.split('/').all(|seg| !matches!(seg, "" | "." | "..")),
            "{routed:?}"
        );
        assert_eq!(normalize_target(&routed).as_deref(), Ok(routed.as_ref()), "{s:?}");
    }
    let q = Query::parse(s);
    for (_, k, _) in &q.pairs {
        let _ = Query::key_is(k, "q");
    }
});
