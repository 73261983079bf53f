//! Alibaba Cloud API Gateway's `X-Ca-Signature`, as its SDKs sign.
//!
//! ```text
//! METHOD \n Accept \n Content-MD5 \n Content-Type \n Date \n
//! name:value \n ...            (the X-Ca-Signature-Headers, sorted)
//! path?key=value&key2...       (query + form parameters, sorted; `key` alone when empty)
//! Signature = base64(HMAC-SHA256 or HMAC-SHA1(AppSecret, that))
//! ```

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use percent_encoding::percent_decode_str;
use sha1::Sha1;
use sha2::Sha256;

/// The timestamp window (Alibaba API Gateway: a signed request is valid for 15 minutes).
pub const MAX_SKEW_MS: u64 = 15 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha256,
    HmacSha1,
}

impl Algorithm {
    /// `X-Ca-Signature-Method`; absent means HmacSHA256.
    pub fn parse(value: Option<&str>) -> Option<Algorithm> {
        match value {
            None | Some("HmacSHA256") => Some(Algorithm::HmacSha256),
            Some("HmacSHA1") => Some(Algorithm::HmacSha1),
            Some(_) => None,
        }
    }
}

/// Headers every signature covers, one fixed line each, in this order.
pub const FIXED_LINES: [&str; 4] = ["accept", "content-md5", "content-type", "date"];

/// Headers that have fixed lines and never appear in the signed block.
const FIXED: [&str; 6] = [
    "x-ca-signature",
    "x-ca-signature-headers",
    "accept",
    "content-md5",
    "content-type",
    "date",
];

/// How SDKs differ in rendering parameters; a verifier tries each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamStyle {
    /// `+` in the query is a space (form decoding) or a literal `+`.
    pub plus_is_space: bool,
    /// A repeated key signs as `k=v1,v2` (Node SDK) or with its first value.
    pub join_repeats: bool,
}

/// Decoded `key=value` pairs of a query or form body, in order.
pub fn parse_params(raw: &str, plus_is_space: bool) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let s = if plus_is_space {
            s.replace('+', " ")
        } else {
            s.to_string()
        };
        percent_decode_str(&s).decode_utf8_lossy().into_owned()
    };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Whether every key and value of a query or form body is UTF-8 once
/// decoded. `parse_params` reads other bytes as U+FFFD, so two different
/// values (`%D6%D0` and `%B9%FA`, GBK text) would sign alike.
pub fn params_are_utf8(raw: &str) -> bool {
    raw.split(['&', '='])
        .all(|part| percent_decode_str(part).decode_utf8().is_ok())
}

/// `path` plus sorted parameters; form values win over query values.
pub fn path_and_params(
    path: &str,
    query: &[(String, String)],
    form: &[(String, String)],
    join_repeats: bool,
) -> String {
    let mut merged: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (k, v) in query {
        merged.entry(k).or_default().push(v);
    }
    for (k, _) in form {
        merged.remove(k.as_str());
    }
    for (k, v) in form {
        merged.entry(k).or_default().push(v);
    }
    let mut out = String::with_capacity(path.len() + 64);
    out.push_str(path);
    for (i, (k, values)) in merged.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        let value = if join_repeats {
            values.join(",")
        } else {
            values[0].to_string()
        };
        if !value.is_empty() {
            out.push('=');
            out.push_str(&value);
        }
    }
    out
}

/// The string to sign. `header` looks a header up by lower-case name;
/// `signed_names` are the X-Ca-Signature-Headers as the caller spelled them.
pub fn string_to_sign<'h>(
    method: &str,
    header: impl Fn(&str) -> Option<&'h str>,
    signed_names: &[&str],
    path_and_params: &str,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(&method.to_ascii_uppercase());
    out.push('\n');
    for fixed in FIXED_LINES {
        out.push_str(header(fixed).unwrap_or(""));
        out.push('\n');
    }
    let mut names: Vec<&str> = signed_names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty() && !FIXED.contains(&n.to_ascii_lowercase().as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        out.push_str(name);
        out.push(':');
        out.push_str(header(&name.to_ascii_lowercase()).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(path_and_params);
    out
}

pub fn sign(alg: Algorithm, secret: &[u8], string_to_sign: &str) -> String {
    let tag = match alg {
        Algorithm::HmacSha256 => keyed::<Hmac<Sha256>>(secret, string_to_sign)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::HmacSha1 => keyed::<Hmac<Sha1>>(secret, string_to_sign)
            .finalize()
            .into_bytes()
            .to_vec(),
    };
    BASE64.encode(tag)
}

/// Constant-time check of a base64 signature.
pub fn verify(alg: Algorithm, secret: &[u8], string_to_sign: &str, signature_b64: &str) -> bool {
    verify_keyed(
        alg,
        secret,
        &crate::huawei_sign::key(secret),
        string_to_sign,
        signature_b64,
    )
}

/// `verify` with the secret's HMAC-SHA256 key made beforehand
/// (`huawei_sign::key`: the default algorithm, keyed once per app).
pub fn verify_keyed(
    alg: Algorithm,
    secret: &[u8],
    sha256: &Hmac<Sha256>,
    string_to_sign: &str,
    signature_b64: &str,
) -> bool {
    let Ok(sig) = BASE64.decode(signature_b64.trim()) else {
        return false;
    };
    match alg {
        Algorithm::HmacSha256 => {
            let mut m = sha256.clone();
            m.update(string_to_sign.as_bytes());
            m.verify_slice(&sig).is_ok()
        }
        Algorithm::HmacSha1 => keyed::<Hmac<Sha1>>(secret, string_to_sign)
            .verify_slice(&sig)
            .is_ok(),
    }
}

fn keyed<M: Mac + hmac::digest::KeyInit>(secret: &[u8], msg: &str) -> M {
    let mut m =
        <M as hmac::digest::KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(msg.as_bytes());
    m
}

/// `Content-MD5` of a body: base64 of its MD5.
pub fn content_md5(body: &[u8]) -> String {
    BASE64.encode(Md5::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Reference vector V1 (Higress hmac-auth test `Sign`).
    #[test]
    fn vector_v1() {
        let h = [
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("x-ca-key", "appKey"),
            ("x-ca-nonce", "787dd0c2-7bd8-41cd-9c19-62c05ea524a2"),
            ("x-ca-timestamp", "1646365291734"),
        ];
        let sts = string_to_sign(
            "GET",
            lookup(&h),
            &["x-ca-key", "x-ca-nonce", "x-ca-timestamp"],
            "/Third/Tools/checkSign",
        );
        assert_eq!(
            sts,
            "GET\napplication/json\n\napplication/json\n\nx-ca-key:appKey\nx-ca-nonce:787dd0c2-7bd8-41cd-9c19-62c05ea524a2\nx-ca-timestamp:1646365291734\n/Third/Tools/checkSign"
        );
        let sig = "EdJSFAMOWyXZOpXhevZnjuS0ZafnwnCqaSk5hz+tXo8=";
        assert_eq!(sign(Algorithm::HmacSha256, b"appSecret", &sts), sig);
        assert!(verify(Algorithm::HmacSha256, b"appSecret", &sts, sig));
        assert!(!verify(Algorithm::HmacSha256, b"appSecreT", &sts, sig));
        assert!(!verify(Algorithm::HmacSha256, b"appSecret", &sts, "%%%"));
    }

    /// V2: no signed headers at all.
    #[test]
    fn vector_v2() {
        let h = [("accept", "application/json")];
        let sts = string_to_sign("GET", lookup(&h), &[], "/Third/Tools/checkSign");
        assert_eq!(
            sign(Algorithm::HmacSha256, b"appSecret", &sts),
            "ZpJhkHdtjLTJiR6CJWHL8ikLtPB2z6CoztG21wG3PT4="
        );
    }

    /// V3: form body parameters join the signed path.
    #[test]
    fn vector_v3_form_body() {
        let h = [
            ("accept", "application/json"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-ca-key", "appKey"),
            ("x-ca-nonce", "ca5a6753-b76c-4fff-a9d9-e5bb643e8cdf"),
            ("x-ca-timestamp", "1646646682418"),
        ];
        let form = parse_params("nickname=nickname&photo=photo&room_id=6893&uuid=uuid", true);
        let pp = path_and_params("/Third/User/getNyAccessToken", &[], &form, true);
        let sts = string_to_sign(
            "POST",
            lookup(&h),
            &["x-ca-key", "x-ca-nonce", "x-ca-timestamp"],
            &pp,
        );
        assert_eq!(
            sign(Algorithm::HmacSha256, b"appSecret", &sts),
            "gmf9xq0hc95Hmt+7G+OocS009ka3v1v0rvfshKzYc3w="
        );
    }

    /// V4: Date and X-Ca-Signature-Method are signed as given.
    #[test]
    fn vector_v4_date() {
        let h = [
            ("accept", "application/json; charset=utf-8"),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("date", "Wed, 09 May 2018 13:30:29 GMT+00:00"),
            ("x-ca-key", "203753385"),
            ("x-ca-nonce", "c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44"),
            ("x-ca-signature-method", "HmacSHA256"),
            ("x-ca-timestamp", "1525872629832"),
        ];
        let form = parse_params("username=xiaoming&password=123456789", true);
        let query = parse_params("param1=test", true);
        let pp = path_and_params("/http2test/test", &query, &form, true);
        assert_eq!(
            pp,
            "/http2test/test?param1=test&password=123456789&username=xiaoming"
        );
        let names = [
            "x-ca-key",
            "x-ca-nonce",
            "x-ca-signature-method",
            "x-ca-timestamp",
        ];
        let sts = string_to_sign("POST", lookup(&h), &names, &pp);
        assert_eq!(
            sign(Algorithm::HmacSha256, b"123456", &sts),
            "FJbhmAFYz9zfl1FrThxzxBt79BvaHQIzy8Wpctn+xXE="
        );
    }

    /// V5 (Node SDK): form body with an empty value, and X-Ca-Stage signed.
    #[test]
    fn vector_v5_form_with_empty_value() {
        let h = [
            ("accept", "application/json; charset=utf-8"),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("x-ca-key", "203753385"),
            ("x-ca-nonce", "c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44"),
            ("x-ca-stage", "RELEASE"),
            ("x-ca-timestamp", "1525872629832"),
        ];
        let form = parse_params("username=xiaoming&password=123456789&empty=", true);
        let query = parse_params("param1=test", true);
        let pp = path_and_params("/http2test/test", &query, &form, true);
        assert_eq!(
            pp,
            "/http2test/test?empty&param1=test&password=123456789&username=xiaoming"
        );
        let names = ["x-ca-key", "x-ca-nonce", "x-ca-stage", "x-ca-timestamp"];
        let sts = string_to_sign("POST", lookup(&h), &names, &pp);
        assert_eq!(
            sign(Algorithm::HmacSha256, b"appSecretExample", &sts),
            "/fo4u070iE2pIGGu31cKhvPAgdtuL42zmYMoOLisdeQ="
        );
    }

    /// V6 (Node SDK): empty value signs as the bare key; HmacSHA1 variant.
    #[test]
    fn vector_v6_empty_value_and_sha1() {
        let h = [
            ("accept", "application/json"),
            ("x-ca-key", "203753385"),
            ("x-ca-nonce", "c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44"),
            ("x-ca-stage", "RELEASE"),
            ("x-ca-timestamp", "1525872629832"),
        ];
        let pp = path_and_params("/demo/get", &parse_params("b=2&a=1&c=", true), &[], true);
        assert_eq!(pp, "/demo/get?a=1&b=2&c");
        let names = ["x-ca-key", "x-ca-nonce", "x-ca-stage", "x-ca-timestamp"];
        let sts = string_to_sign("GET", lookup(&h), &names, &pp);
        assert_eq!(
            sign(Algorithm::HmacSha256, b"appSecretExample", &sts),
            "2y5eovP2jJo3V7ID3Gl7I+uf8eiDK1zwJUuqfo5tL14="
        );
        assert_eq!(
            sign(Algorithm::HmacSha1, b"appSecretExample", &sts),
            "dM3J/vDdem3nV1IPBCJDNmvTg5Y="
        );
    }

    #[test]
    fn repeated_keys_and_mixed_case_names() {
        let q = parse_params("a=1&a=2&b=x+y", true);
        assert_eq!(path_and_params("/p", &q, &[], true), "/p?a=1,2&b=x y");
        assert_eq!(path_and_params("/p", &q, &[], false), "/p?a=1&b=x y");
        let form = p(&[("b", "body")]);
        assert_eq!(path_and_params("/p", &q, &form, false), "/p?a=1&b=body");
        let h = [("x-ca-key", "k"), ("x-ca-stage", "TEST")];
        let sts = string_to_sign(
            "GET",
            lookup(&h),
            &["X-Ca-Stage", "X-Ca-Key", "Accept"],
            "/p",
        );
        assert_eq!(sts, "GET\n\n\n\n\nX-Ca-Key:k\nX-Ca-Stage:TEST\n/p");
    }

    #[test]
    fn parameters_that_would_sign_alike_are_not_utf8() {
        assert!(params_are_utf8("a=%E4%B8%AD&b=x+y&c"));
        assert_eq!(
            parse_params("a=%D6%D0", true),
            parse_params("a=%B9%FA", true)
        );
        assert!(!params_are_utf8("a=%D6%D0"));
        assert!(!params_are_utf8("%FF=1"));
    }

    #[test]
    fn content_md5_is_base64_md5() {
        assert_eq!(content_md5(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(content_md5(b"{\"a\":1}"), "u2y1xo30ZSlByvZSo2by2A==");
    }
}
