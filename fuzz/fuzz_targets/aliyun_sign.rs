//! Alibaba `X-Ca-Signature` (Alibaba quick start, signature
//! authentication): the signature method, query and form parameters, the
//! string to sign over `X-Ca-Signature-Headers`, verification of the
//! base64 signature the request carries, Content-MD5; what a client signs,
//! the gateway verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon_filter::aliyun_sign::{
    content_md5, parse_params, path_and_params, sign, string_to_sign, verify, Algorithm,
};
use pylon_fuzz::{FuzzRequest, CREDENTIALS};

fuzz_target!(|data: &[u8]| {
    let Some(req) = FuzzRequest::parse(data) else {
        return;
    };
    let head = req.head();
    let alg = Algorithm::parse(head.get("x-ca-signature-method")).unwrap_or(Algorithm::HmacSha256);
    let (path, query) = head.path().split_once('?').unwrap_or((head.path(), ""));
    let plus_is_space = req.flags & 1 != 0;
    let query = parse_params(query, plus_is_space);
    let form = parse_params(&String::from_utf8_lossy(&req.body), true);
    let pp = path_and_params(path, &query, &form, req.flags & 2 != 0);
    let names: Vec<&str> = head
        .get("x-ca-signature-headers")
        .unwrap_or("")
        .split(',')
        .collect();
    let sts = string_to_sign(head.method(), |n| head.get(n), &names, &pp);
    let secret = CREDENTIALS[req.flags as usize % 2].1.as_bytes();
    if let Some(signature) = head.get("x-ca-signature") {
        let _ = verify(alg, secret, &sts, signature);
    }
    // One input in four: hashing dominates the cost of an execution.
    if req.flags & 0x30 == 0 {
        assert!(verify(alg, secret, &sts, &sign(alg, secret, &sts)));
    }
    let _ = content_md5(&req.body);
});
