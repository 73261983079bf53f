//! Percent-encoding and decoding of path and query values (Huawei user
//! guide §5.2.1): decoding never panics, and what the gateway encodes into
//! a backend path or query decodes back to the value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon_filter::params::Query;
use pylon_filter::percent::{decode_path, decode_query, push_encoded, PATH, QUERY};

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
    let q = Query::parse(s);
    for (_, k, _) in &q.pairs {
        let _ = Query::key_is(k, "q");
    }
});
