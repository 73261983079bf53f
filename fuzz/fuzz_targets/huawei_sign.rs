//! Huawei `SDK-HMAC-SHA256` (Huawei user guide, APP authentication): the
//! Authorization and X-Sdk-Date parsers, the canonical request over the
//! request's method, path, query and signed headers, and verification of
//! the signature it carries; what a client signs, the gateway verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon_filter::huawei_sign::{
    canonical_request, parse_authorization, parse_sdk_date, sha256_hex, sign, string_to_sign,
    verify, Plus, Signed,
};
use pylon_fuzz::{FuzzRequest, CREDENTIALS};

fuzz_target!(|data: &[u8]| {
    let Some(req) = FuzzRequest::parse(data) else {
        return;
    };
    let head = req.head();
    let date = head.get("x-sdk-date").unwrap_or("");
    let _ = parse_sdk_date(date);
    let authorization = head.get("authorization").unwrap_or("");
    let parsed = parse_authorization(authorization);
    let names: Vec<&str> = match &parsed {
        Some(Ok(auth)) => {
            assert!(!auth.access.is_empty() && !auth.signature.is_empty());
            auth.signed_headers.clone()
        }
        _ => head.names().filter(|n| !n.starts_with(':')).collect(),
    };
    let lookup = |name: &str| {
        if name == "host" {
            vec![head.authority()]
        } else {
            head.all(name)
        }
    };
    let (path, query) = head.path().split_once('?').unwrap_or((head.path(), ""));
    let hash = match head.get("x-sdk-content-sha256") {
        Some(h) => h.to_string(),
        None => sha256_hex(&req.body),
    };
    let plus = if req.flags & 1 == 0 {
        Plus::Literal
    } else {
        Plus::Space
    };
    let signed = Signed {
        method: head.method(),
        path,
        query,
        signed_headers: &names,
        payload_hash: &hash,
    };
    let canonical = canonical_request(&signed, lookup, plus);
    let sts = string_to_sign(date, &canonical);
    let secret = CREDENTIALS[req.flags as usize % CREDENTIALS.len()]
        .1
        .as_bytes();
    if let Some(Ok(auth)) = &parsed {
        let _ = verify(secret, &sts, auth.signature);
    }
    // One input in four: hashing dominates the cost of an execution.
    if req.flags & 0x30 == 0 {
        assert!(verify(secret, &sts, &sign(secret, &sts)));
    }
});
