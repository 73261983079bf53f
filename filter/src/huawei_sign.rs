//! Huawei APIG's `SDK-HMAC-SHA256` APP signature, as the vendor SDKs sign.
//!
//! ```text
//! CanonicalRequest = METHOD \n URI/ \n sorted-query \n name:value\n... \n signed;names \n hex(sha256(body))
//! StringToSign     = SDK-HMAC-SHA256 \n X-Sdk-Date \n hex(sha256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(AppSecret, StringToSign))
//! ```

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// SHA-256 of the empty body.
pub const EMPTY_BODY_HASH: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `X-Sdk-Content-Sha256` value of a signature that leaves the body out.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The signature's clock window (Huawei user guide: 15 minutes either way).
pub const MAX_SKEW_SECS: u64 = 15 * 60;

/// Everything but `A-Z a-z 0-9 - _ . ~` is percent-encoded (upper-case hex).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The parsed `Authorization: SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

/// `None` if the value is not an `SDK-HMAC-SHA256` authorization at all;
/// `Some(Err)` if it is one but malformed.
pub fn parse_authorization(value: &str) -> Option<Result<Authorization<'_>, &'static str>> {
    let rest = value.trim().strip_prefix(ALGORITHM)?;
    Some(parse_fields(rest))
}

fn parse_fields(rest: &str) -> Result<Authorization<'_>, &'static str> {
    let (mut access, mut signed, mut signature) = (None, None, None);
    for field in rest.split(',') {
        match field.trim().split_once('=') {
            Some(("Access", v)) => access = Some(v.trim()),
            Some(("SignedHeaders", v)) => signed = Some(v.trim()),
            Some(("Signature", v)) => signature = Some(v.trim()),
            _ => return Err("malformed Authorization header"),
        }
    }
    match (access, signed, signature) {
        (Some(a), Some(s), Some(sig)) if !a.is_empty() && !s.is_empty() && !sig.is_empty() => {
            Ok(Authorization {
                access: a,
                signed_headers: s.split(';').collect(),
                signature: sig,
            })
        }
        _ => Err("Authorization needs Access, SignedHeaders and Signature"),
    }
}

/// What the canonical request is built from.
pub struct Signed<'a> {
    pub method: &'a str,
    /// Path as sent, without the query.
    pub path: &'a str,
    /// Query as sent, without `?`.
    pub query: &'a str,
    pub signed_headers: &'a [&'a str],
    pub payload_hash: &'a str,
}

/// SDKs disagree on `+` in a query (literal or space); both are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    Literal,
    Space,
}

/// `header` gives the values of one header by lower-case name (`host` is
/// the request authority).
pub fn canonical_request<'h>(
    req: &Signed,
    header: impl Fn(&str) -> Vec<&'h str>,
    plus: Plus,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(&req.method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(&canonical_query(req.query, plus));
    out.push('\n');
    for name in req.signed_headers {
        let mut values: Vec<&str> = header(name).into_iter().map(str::trim).collect();
        values.sort_unstable();
        if values.is_empty() {
            values.push("");
        }
        for v in values {
            out.push_str(name);
            out.push(':');
            out.push_str(v);
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(&req.signed_headers.join(";"));
    out.push('\n');
    out.push_str(req.payload_hash);
    out
}

/// Decode, split on `/`, encode each segment, and end with `/`.
fn canonical_uri(path: &str) -> String {
    let decoded: Vec<u8> = percent_decode_str(path).collect();
    let mut out = String::with_capacity(path.len() + 8);
    for (i, segment) in decoded.split(|b| *b == b'/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(percent_encode(segment, ENCODE));
    }
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn canonical_query(query: &str, plus: Plus) -> String {
    let decode = |s: &str| -> Vec<u8> {
        match plus {
            Plus::Literal => percent_decode_str(s).collect(),
            Plus::Space => percent_decode_str(&s.replace('+', " ")).collect(),
        }
    };
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 16);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(percent_encode(k, ENCODE));
        out.push('=');
        out.extend(percent_encode(v, ENCODE));
    }
    out
}

/// SHA-256 of the empty body, the payload hash of most signed requests
/// (GET, DELETE): one SHA-256 block saved per such request.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub fn sha256_hex(data: &[u8]) -> String {
    if data.is_empty() {
        return EMPTY_SHA256.to_string();
    }
    hex(&Sha256::digest(data))
}

pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The signature a client with `secret` would send (used by `pylon call`).
pub fn sign(secret: &[u8], string_to_sign: &str) -> String {
    hex(&mac(secret, string_to_sign).finalize().into_bytes())
}

/// Constant-time check of a hex signature.
pub fn verify(secret: &[u8], string_to_sign: &str, signature_hex: &str) -> bool {
    verify_keyed(&key(secret), string_to_sign, signature_hex)
}

/// `verify` with the secret's HMAC key made beforehand (`key`).
pub fn verify_keyed(key: &Hmac<Sha256>, string_to_sign: &str, signature_hex: &str) -> bool {
    match unhex(signature_hex) {
        Some(sig) => {
            let mut m = key.clone();
            m.update(string_to_sign.as_bytes());
            m.verify_slice(&sig).is_ok()
        }
        None => false,
    }
}

/// A secret's HMAC-SHA256 key. Keying hashes the padded secret twice (two
/// SHA-256 blocks of a signature check's five or so), so apps are keyed
/// once, when the plan is loaded, and each request clones the key.
pub fn key(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length")
}

fn mac(secret: &[u8], msg: &str) -> Hmac<Sha256> {
    let mut m = key(secret);
    m.update(msg.as_bytes());
    m
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `20191111T093443Z` → seconds since the Unix epoch.
pub fn parse_sdk_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d)? * 86_400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Vec<&'a str> + 'a {
        move |name| {
            pairs
                .iter()
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| *v)
                .collect()
        }
    }

    /// The empty body's hash is a constant, and a key made once checks
    /// as a key made per request does.
    #[test]
    fn the_empty_body_hash_and_a_reused_key_are_what_hashing_gives() {
        assert_eq!(EMPTY_SHA256, hex(&Sha256::digest(b"")));
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
        let sig = sign(b"secret", "sts");
        let k = key(b"secret");
        assert!(verify_keyed(&k, "sts", &sig) && verify_keyed(&k, "sts", &sig));
        assert!(!verify_keyed(&k, "sts2", &sig));
        assert!(!verify_keyed(&key(b"secreT"), "sts", &sig));
    }

    /// Reference vector V2 (IAM signing guide, same algorithm), complete.
    #[test]
    fn vector_v2_iam_guide() {
        let h = [
            ("content-type", "application/json"),
            ("host", "service.region.example.com"),
            ("x-sdk-date", "20191115T033655Z"),
        ];
        let lookup = headers(&h);
        let req = Signed {
            method: "GET",
            path: "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
            query: "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0",
            signed_headers: &["content-type", "host", "x-sdk-date"],
            payload_hash: EMPTY_BODY_HASH,
        };
        let cr = canonical_request(&req, &lookup, Plus::Literal);
        assert_eq!(
            sha256_hex(cr.as_bytes()),
            "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
        );
        let sts = string_to_sign("20191115T033655Z", &cr);
        let secret = b"MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc";
        let expected = "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe";
        assert_eq!(sign(secret, &sts), expected);
        assert!(verify(secret, &sts, expected));
        assert!(!verify(b"wrong", &sts, expected));
        assert!(!verify(secret, &sts, &expected.replace('7', "8")));
        assert!(!verify(secret, &sts, "not-hex"));
    }

    /// Reference vector V1 (APIG doc): canonical request hash of `GET /app1?b=2&a=1`.
    #[test]
    fn vector_v1_apig_doc_canonical_request() {
        let host = "c967a237-cd6c-470e-906f-a8655461897e.apigw.exampleRegion.com";
        let h = [("host", host), ("x-sdk-date", "20191111T093443Z")];
        let lookup = headers(&h);
        let req = Signed {
            method: "GET",
            path: "/app1",
            query: "b=2&a=1",
            signed_headers: &["host", "x-sdk-date"],
            payload_hash: EMPTY_BODY_HASH,
        };
        let cr = canonical_request(&req, &lookup, Plus::Literal);
        assert!(cr.starts_with("GET\n/app1/\na=1&b=2\nhost:"));
        assert_eq!(
            sha256_hex(cr.as_bytes()),
            "af71c5a7ef45310b8dc05ab15f7da50189ffa81a95cc284379ebaa5eb61155c0"
        );
    }

    /// Reference vector V3: encoding of spaces, `+`, `/`, repeated keys, empty values, body hash.
    #[test]
    fn vector_v3_encoding_rules() {
        let h = [
            ("content-type", "application/json"),
            ("host", "api.example.com"),
            ("x-sdk-date", "20240101T000000Z"),
        ];
        let lookup = headers(&h);
        let body_hash = sha256_hex(br#"{"k":"v"}"#);
        let req = Signed {
            method: "POST",
            path: "/app1/a%20b",
            query: "b=2&a=1&a=0&c=&q%20w=x%2By%2Fz",
            signed_headers: &["content-type", "host", "x-sdk-date"],
            payload_hash: &body_hash,
        };
        let cr = canonical_request(&req, &lookup, Plus::Literal);
        assert!(cr.starts_with("POST\n/app1/a%20b/\na=0&a=1&b=2&c=&q%20w=x%2By%2Fz\n"));
        let sts = string_to_sign("20240101T000000Z", &cr);
        assert_eq!(
            sign(b"testSecret", &sts),
            "7d2e5d6563616103049c1dcbfee2d212cc4750ad714c0f5482efb88059646177"
        );
    }

    /// V3, second part: `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` replaces the body hash.
    #[test]
    fn vector_v3_unsigned_payload() {
        let h = [
            ("host", "api.example.com"),
            ("x-sdk-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-sdk-date", "20240101T000000Z"),
        ];
        let lookup = headers(&h);
        let req = Signed {
            method: "GET",
            path: "/v1/items",
            query: "",
            signed_headers: &["host", "x-sdk-content-sha256", "x-sdk-date"],
            payload_hash: "UNSIGNED-PAYLOAD",
        };
        let sts = string_to_sign(
            "20240101T000000Z",
            &canonical_request(&req, &lookup, Plus::Literal),
        );
        assert_eq!(
            sign(b"testSecret", &sts),
            "42c5ddb24f9458f37f893eceb78dfcf63ba713bd52f1dc06e36904f41bcf6a39"
        );
    }

    #[test]
    fn plus_may_mean_space() {
        assert_eq!(canonical_query("a=x+y", Plus::Literal), "a=x%2By");
        assert_eq!(canonical_query("a=x+y", Plus::Space), "a=x%20y");
        assert_eq!(
            canonical_query("flag&b=%E4%B8%AD", Plus::Literal),
            "b=%E4%B8%AD&flag="
        );
    }

    #[test]
    fn parses_authorization() {
        let v = "SDK-HMAC-SHA256 Access=key1, SignedHeaders=host;x-sdk-date, Signature=ab12";
        let a = parse_authorization(v).unwrap().unwrap();
        assert_eq!(a.access, "key1");
        assert_eq!(a.signed_headers, vec!["host", "x-sdk-date"]);
        assert_eq!(a.signature, "ab12");
        assert!(parse_authorization("Basic abc").is_none());
        assert!(parse_authorization("SDK-HMAC-SHA256 Access=k")
            .unwrap()
            .is_err());
        assert!(parse_authorization("SDK-HMAC-SHA256 junk")
            .unwrap()
            .is_err());
    }

    #[test]
    fn parses_sdk_dates() {
        assert_eq!(parse_sdk_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_sdk_date("20191111T093443Z"), Some(1_573_464_883));
        assert_eq!(parse_sdk_date("20240229T235959Z"), Some(1_709_251_199));
        for bad in [
            "2019-11-11T09:34:43Z",
            "20191311T093443Z",
            "20191111T253443Z",
            "20191111093443Z",
        ] {
            assert_eq!(parse_sdk_date(bad), None, "{bad}");
        }
    }
}
