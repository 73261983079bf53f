//! APP authentication: which app a request comes from, proven by its
//! signature. Secrets never leave this module: errors say what failed, not
//! with which secret, and the canonical request is echoed only in debug mode.

use std::borrow::Cow;
use std::collections::HashMap;

use hmac::Hmac;
use sha2::{Digest, Sha256};

use crate::aliyun_sign;
use crate::huawei_sign::{self, Plus, Signed};
use crate::plan::{AccountPlan, AppCodeMode, AppPlan};
use crate::request_head::RequestHead;
use crate::response::GatewayError;

pub struct App {
    pub id: String,
    pub name: String,
    secret: Vec<u8>,
    /// The secret's HMAC-SHA256 key, made at load (`huawei_sign::key`).
    sha256: Hmac<Sha256>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// All apps, by AppKey.
#[derive(Debug, Default)]
pub struct Apps {
    apps: Vec<App>,
    by_key: HashMap<String, u32>,
    by_name: HashMap<String, u32>,
    /// AppCodes by their SHA-256: the lookup never compares the code itself,
    /// so its timing tells nothing about a stored code.
    by_code: HashMap<[u8; 32], u32>,
}

/// What an API accepts, and how the request arrived.
#[derive(Debug, Clone, Copy)]
pub struct AuthPolicy {
    pub allow_hmac_sha1: bool,
    pub app_code: AppCodeMode,
    /// The caller's connection is HTTPS.
    pub https: bool,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub app: u32,
    /// `app key:nonce` when the request carried `X-Ca-Nonce`: it must not
    /// have been seen before within the window.
    pub nonce_key: Option<String>,
}

/// Why a request was refused; `detail` is safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    pub error: GatewayError,
    pub detail: String,
}

impl AuthFailure {
    fn new(error: GatewayError, detail: impl Into<String>) -> AuthFailure {
        AuthFailure {
            error,
            detail: detail.into(),
        }
    }
}

impl Apps {
    pub fn from_plan(plans: &[AppPlan]) -> Result<Apps, String> {
        let mut apps = Apps::default();
        for (i, p) in plans.iter().enumerate() {
            if apps.by_key.insert(p.key.clone(), i as u32).is_some() {
                return Err(format!("app {}: AppKey used twice", p.name));
            }
            apps.by_name.insert(p.name.clone(), i as u32);
            for code in &p.codes {
                if apps.by_code.insert(code_digest(code), i as u32).is_some() {
                    return Err(format!("app {}: AppCode used twice", p.name));
                }
            }
            apps.apps.push(App {
                id: p.id.clone(),
                name: p.name.clone(),
                secret: p.secret.as_bytes().to_vec(),
                sha256: huawei_sign::key(p.secret.as_bytes()),
            });
        }
        Ok(apps)
    }

    /// Accounts verify like apps (AK = key, SK = secret), Huawei scheme only.
    pub fn from_accounts(plans: &[AccountPlan]) -> Result<Apps, String> {
        let as_apps: Vec<AppPlan> = plans
            .iter()
            .map(|a| AppPlan {
                id: a.id.clone(),
                name: a.name.clone(),
                key: a.ak.clone(),
                secret: a.sk.clone(),
                codes: Vec::new(),
            })
            .collect();
        Apps::from_plan(&as_apps)
    }

    /// Identifies the account behind an IAM-auth request (AK/SK signature).
    pub fn authenticate_account(
        &self,
        head: &RequestHead,
        body: &[u8],
        now_ms: u64,
    ) -> Result<u32, AuthFailure> {
        let as_iam = |mut f: AuthFailure| {
            f.error = if f.error == GatewayError::AUTH_HEADER_MISSING {
                GatewayError::IAM_HEADER_MISSING
            } else {
                GatewayError::IAM_AUTH_FAILURE
            };
            f
        };
        single_credentials(head).map_err(as_iam)?;
        let authorization = head.get("authorization").unwrap_or("");
        match huawei_sign::parse_authorization(authorization) {
            Some(parsed) => self
                .verify_huawei(head, parsed, body, now_ms / 1000)
                .map_err(as_iam),
            None => Err(as_iam(AuthFailure::new(
                GatewayError::AUTH_HEADER_MISSING,
                "",
            ))),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    pub fn get(&self, app: u32) -> &App {
        &self.apps[app as usize]
    }

    pub fn by_name(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// The app a signed request claims to come from, before its signature
    /// is checked: a request whose signature covers its body is dispatched
    /// before the body is in, and is refused later if the claim does not
    /// hold. The key is read from the credentials `authenticate` will check,
    /// in its order, so a stray `X-Ca-Key` beside a Huawei signature claims
    /// nothing.
    pub fn claimed(&self, head: &RequestHead) -> Option<u32> {
        let key = match head.get("x-ca-signature") {
            Some(_) => head.get("x-ca-key")?,
            None => self.claimed_access(head)?,
        };
        self.by_key.get(key).copied()
    }

    /// The account an IAM request claims (accounts sign the Huawei way only).
    pub fn claimed_account(&self, head: &RequestHead) -> Option<u32> {
        self.by_key.get(self.claimed_access(head)?).copied()
    }

    fn claimed_access<'h>(&self, head: &'h RequestHead) -> Option<&'h str> {
        Some(
            huawei_sign::parse_authorization(head.get("authorization")?)?
                .ok()?
                .access,
        )
    }

    /// Identifies the caller of an APP-auth API from whichever signature the
    /// request carries. `body` is the whole request body.
    pub fn authenticate(
        &self,
        head: &RequestHead,
        body: &[u8],
        now_ms: u64,
        policy: AuthPolicy,
    ) -> Result<Caller, AuthFailure> {
        single_credentials(head)?;
        if let Some(signature) = head.get("x-ca-signature") {
            return self.verify_aliyun(head, signature, body, now_ms, policy.allow_hmac_sha1);
        }
        let authorization = head.get("authorization").unwrap_or("");
        if let Some(parsed) = huawei_sign::parse_authorization(authorization) {
            return self
                .verify_huawei(head, parsed, body, now_ms / 1000)
                .map(|app| Caller {
                    app,
                    nonce_key: None,
                });
        }
        match app_code(head) {
            Some(code) => self.verify_code(code, policy),
            None => Err(AuthFailure::new(GatewayError::AUTH_HEADER_MISSING, "")),
        }
    }

    fn verify_code(&self, code: &str, policy: AuthPolicy) -> Result<Caller, AuthFailure> {
        let fail = |detail: &str| AuthFailure::new(GatewayError::AUTH_FAILURE, detail);
        match policy.app_code {
            AppCodeMode::Disabled => {
                return Err(fail("AppCode authentication is not enabled for this API"))
            }
            AppCodeMode::Https if !policy.https => {
                return Err(fail("AppCode is only accepted over HTTPS"))
            }
            _ => {}
        }
        match self.by_code.get(&code_digest(code)) {
            Some(&app) => Ok(Caller {
                app,
                nonce_key: None,
            }),
            None => Err(fail("Invalid AppCode")),
        }
    }

    fn verify_aliyun(
        &self,
        head: &RequestHead,
        signature: &str,
        body: &[u8],
        now_ms: u64,
        allow_sha1: bool,
    ) -> Result<Caller, AuthFailure> {
        let fail = |detail: &str| AuthFailure::new(GatewayError::AUTH_FAILURE, detail);
        let key = head.get("x-ca-key").ok_or_else(|| fail("Invalid AppKey"))?;
        let app = *self.by_key.get(key).ok_or_else(|| fail("Invalid AppKey"))?;
        let alg = aliyun_sign::Algorithm::parse(head.get("x-ca-signature-method"))
            .ok_or_else(|| fail("Invalid Signature Method"))?;
        if alg == aliyun_sign::Algorithm::HmacSha1 && !allow_sha1 {
            return Err(fail("HmacSHA1 is not allowed for this API"));
        }
        if let Some(ts) = head.get("x-ca-timestamp") {
            let ts: u64 = ts.trim().parse().map_err(|_| fail("Invalid Timestamp"))?;
            if now_ms.abs_diff(ts) > aliyun_sign::MAX_SKEW_MS {
                return Err(fail("Timestamp Expired"));
            }
        }
        if let Some(md5) = head.get("content-md5") {
            if body.is_empty() || aliyun_sign::content_md5(body) != md5.trim() {
                return Err(fail("Invalid Content-MD5"));
            }
        }
        let (path, query) = head.path().split_once('?').unwrap_or((head.path(), ""));
        let is_form = head
            .get("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        // Parameters are signed as text: bytes that are not UTF-8 would be
        // read as U+FFFD, and another value would verify in their place.
        let form_text = if is_form {
            std::str::from_utf8(body).ok()
        } else {
            Some("")
        };
        let utf8 = aliyun_sign::params_are_utf8;
        let Some(form_text) = form_text.filter(|f| utf8(f) && utf8(query)) else {
            return Err(fail("a query or form parameter is not valid UTF-8"));
        };
        let form = aliyun_sign::parse_params(form_text, true);
        // Form values replace the query's of the same name in the string
        // to sign (as the SDKs merge them), so such a query value would
        // reach the backend unsigned.
        if !form.is_empty() {
            for plus_is_space in [true, false] {
                let query = aliyun_sign::parse_params(query, plus_is_space);
                if let Some((k, _)) = query.iter().find(|(k, _)| form.iter().any(|(f, _)| f == k)) {
                    return Err(fail(&format!(
                        "parameter {k} is in both the query and the form body"
                    )));
                }
            }
        }
        let names: Vec<&str> = head
            .get("x-ca-signature-headers")
            .unwrap_or("")
            .split(',')
            .collect();
        let signed = names.iter().map(|n| n.trim().to_ascii_lowercase());
        let fixed = aliyun_sign::FIXED_LINES.iter().map(|n| n.to_string());
        let mut signed = signed.chain(fixed);
        if let Some(bad) = signed.find(|n| head.is_opaque(n) || head.repeated(n)) {
            // One value is signed (the first); the backend would see every
            // one, so a second value would ride on another's signature.
            return Err(fail(&if head.repeated(&bad) {
                format!("signed header {bad} is sent more than once")
            } else {
                "a signed header is not valid UTF-8".to_string()
            }));
        }
        let lookup = |name: &str| head.get(name);
        let App { secret, sha256, .. } = &self.apps[app as usize];
        let mut first = None;
        // SDKs differ on `+` in a query: try each reading. A repeated key
        // is read only as the Node SDK signs it (`k=v1,v2`): a reading of
        // its first value alone would let anyone append `&k=other` to a
        // signed request, unsigned, and the backend would see it.
        for plus_is_space in [true, false] {
            let query = aliyun_sign::parse_params(query, plus_is_space);
            let pp = aliyun_sign::path_and_params(path, &query, &form, true);
            let sts = aliyun_sign::string_to_sign(head.method(), lookup, &names, &pp);
            if aliyun_sign::verify_keyed(alg, secret, sha256, &sts, signature) {
                let nonce_key = head.get("x-ca-nonce").map(|n| format!("{key}:{n}"));
                return Ok(Caller { app, nonce_key });
            }
            first.get_or_insert(sts);
        }
        let debug = head.debug()
            || head
                .get("x-ca-request-mode")
                .is_some_and(|m| m.eq_ignore_ascii_case("debug"));
        // The string to sign holds no secret; `#` for line breaks, as the
        // vendor does (header values cannot carry them).
        let detail = if debug {
            format!(
                "Invalid Signature, Server StringToSign:{}",
                first.unwrap_or_default().replace('\n', "#")
            )
        } else {
            "Invalid Signature".to_string()
        };
        Err(fail(&detail))
    }

    fn verify_huawei(
        &self,
        head: &RequestHead,
        parsed: Result<huawei_sign::Authorization, &'static str>,
        body: &[u8],
        now: u64,
    ) -> Result<u32, AuthFailure> {
        let fail = |detail: &str| AuthFailure::new(GatewayError::AUTH_FAILURE, detail);
        let auth = parsed.map_err(fail)?;
        let app = *self
            .by_key
            .get(auth.access)
            .ok_or_else(|| fail(&format!("app not found, appkey {}", auth.access)))?;
        let date = head
            .get("x-sdk-date")
            .ok_or_else(|| fail("X-Sdk-Date is missing"))?;
        let signed_at =
            huawei_sign::parse_sdk_date(date).ok_or_else(|| fail("X-Sdk-Date is malformed"))?;
        if !auth.signed_headers.contains(&"x-sdk-date") {
            return Err(fail("x-sdk-date must be a signed header"));
        }
        if now.abs_diff(signed_at) > huawei_sign::MAX_SKEW_SECS {
            return Err(fail("signature expired"));
        }
        let (path, query) = head.path().split_once('?').unwrap_or((head.path(), ""));
        // The canonical URI decodes before splitting, so `/a%2Fb` and `/a/b`
        // sign alike, yet route apart (`%2F` is no separator to the router):
        // a signature made for one API would be accepted on another.
        if path.contains("%2F") || path.contains("%2f") {
            return Err(fail("an encoded '/' (%2F) in the path cannot be signed"));
        }
        let lookup = |name: &str| header_values(head, name);
        // SDKs differ: some use the header's value even for an empty body,
        // some the empty-body hash; `+` in a query is a `+` or a space.
        if auth.signed_headers.iter().any(|h| head.is_opaque(h)) {
            return Err(fail("a signed header is not valid UTF-8"));
        }
        let hashes = payload_hashes(head, &auth.signed_headers, body).map_err(fail)?;
        let pluses: &[Plus] = if query.contains('+') {
            &[Plus::Literal, Plus::Space]
        } else {
            &[Plus::Literal]
        };
        let key = &self.apps[app as usize].sha256;
        let mut first_canonical = None;
        for hash in &hashes {
            for plus in pluses {
                let req = Signed {
                    method: head.method(),
                    path,
                    query,
                    signed_headers: &auth.signed_headers,
                    payload_hash: hash.as_ref(),
                };
                let canonical = huawei_sign::canonical_request(&req, lookup, *plus);
                let sts = huawei_sign::string_to_sign(date, &canonical);
                if huawei_sign::verify_keyed(key, &sts, auth.signature) {
                    return Ok(app);
                }
                first_canonical.get_or_insert(canonical);
            }
        }
        // The canonical request holds no secret; it helps callers debug their
        // signing, as the vendor gateway does, but only when they ask.
        let detail = if head.debug() {
            format!(
                "verify signature fail, canonicalRequest:{}",
                first_canonical.unwrap_or_default().replace('\n', "|")
            )
        } else {
            "verify signature fail".to_string()
        };
        Err(fail(&detail))
    }
}

/// The payload hashes a Huawei signature may cover. The body a signature
/// covers is the body received: a declared `X-Sdk-Content-Sha256` must be
/// its SHA-256, so nobody can pair a seen signature with another body. The
/// one exception is `UNSIGNED-PAYLOAD` (the body is deliberately not
/// covered), which counts only when the header is itself signed; unsigned,
/// the header is ignored and the body's own hash is used.
fn payload_hashes<'h>(
    head: &'h RequestHead,
    signed_headers: &[&str],
    body: &[u8],
) -> Result<Vec<Cow<'h, str>>, &'static str> {
    let body_hash = huawei_sign::sha256_hex(body);
    let declared = match head.get("x-sdk-content-sha256") {
        None => return Ok(vec![Cow::Owned(body_hash)]),
        Some(d) => d.trim(),
    };
    if declared == huawei_sign::UNSIGNED_PAYLOAD {
        if !signed_headers.contains(&"x-sdk-content-sha256") {
            return Ok(vec![Cow::Owned(body_hash)]);
        }
        // SDKs differ on an empty body: some sign the header's value, some
        // the empty-body hash.
        return Ok(if body.is_empty() {
            vec![Cow::Borrowed(declared), Cow::Owned(body_hash)]
        } else {
            vec![Cow::Borrowed(declared)]
        });
    }
    if declared.eq_ignore_ascii_case(&body_hash) {
        Ok(vec![Cow::Borrowed(declared)])
    } else {
        Err("X-Sdk-Content-Sha256 does not match the body")
    }
}

/// Headers a request carries once at most: with two, the gateway would
/// check one and the backend might read the other.
const SINGLE: [&str; 10] = [
    "authorization",
    "x-apig-appcode",
    "x-ca-key",
    "x-ca-signature",
    "x-ca-signature-headers",
    "x-ca-signature-method",
    "x-ca-timestamp",
    "x-ca-nonce",
    "x-sdk-date",
    "x-sdk-content-sha256",
];

fn single_credentials(head: &RequestHead) -> Result<(), AuthFailure> {
    match SINGLE.iter().find(|n| head.repeated(n)) {
        Some(name) => Err(AuthFailure::new(
            GatewayError::AUTH_FAILURE,
            format!("{name} is sent more than once"),
        )),
        None => Ok(()),
    }
}

/// Whether the credentials the request carries are a signature, which
/// covers the body (an AppCode does not).
pub fn signature_needs_body(head: &RequestHead) -> bool {
    head.get("x-ca-signature").is_some()
        || huawei_sign::parse_authorization(head.get("authorization").unwrap_or("")).is_some()
}

fn code_digest(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

/// Query parameter names Alibaba accepts for an AppCode.
const APP_CODE_PARAMS: [&str; 5] = ["AppCode", "appcode", "appCode", "APPCODE", "APPCode"];

/// The AppCode in any accepted form: `X-Apig-AppCode: c`,
/// `Authorization: APPCODE c`, or the `AppCode` query parameter.
pub fn app_code(head: &RequestHead) -> Option<&str> {
    if let Some(code) = head.get("x-apig-appcode") {
        return Some(code.trim());
    }
    if let Some(code) = head
        .get("authorization")
        .and_then(|a| a.strip_prefix("APPCODE "))
    {
        return Some(code.trim());
    }
    let query = head.path().split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        APP_CODE_PARAMS.contains(&k).then_some(v)
    })
}

/// The path with any AppCode query parameter removed, so the code is not
/// forwarded to the backend.
pub fn strip_app_code_param(path: &str) -> Cow<'_, str> {
    let Some((p, query)) = path.split_once('?') else {
        return Cow::Borrowed(path);
    };
    let is_code =
        |pair: &&str| APP_CODE_PARAMS.contains(&pair.split_once('=').map_or(*pair, |(k, _)| k));
    if !query.split('&').any(|pair| is_code(&pair)) {
        return Cow::Borrowed(path);
    }
    let kept: Vec<&str> = query.split('&').filter(|pair| !is_code(pair)).collect();
    Cow::Owned(if kept.is_empty() {
        p.to_string()
    } else {
        format!("{p}?{}", kept.join("&"))
    })
}

/// A signed header's values; `host` is the request authority.
fn header_values<'h>(head: &'h RequestHead, name: &str) -> Vec<&'h str> {
    if name == "host" {
        vec![head.authority()]
    } else {
        head.all(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::huawei_sign::{canonical_request, sign, string_to_sign, EMPTY_BODY_HASH};

    const NOW: u64 = 1_704_067_200; // 20240101T000000Z

    fn auth(a: &Apps, head: &RequestHead, body: &[u8], now: u64) -> Result<u32, AuthFailure> {
        let policy = AuthPolicy {
            allow_hmac_sha1: false,
            app_code: AppCodeMode::Disabled,
            https: false,
        };
        a.authenticate(head, body, now * 1000, policy)
            .map(|c| c.app)
    }
    const DATE: &str = "20240101T000000Z";

    fn apps() -> Apps {
        Apps::from_plan(&[AppPlan {
            id: "app-id".into(),
            name: "mobile".into(),
            key: "key1".into(),
            secret: "s3cret".into(),
            codes: vec!["code-one-0001".into()],
        }])
        .unwrap()
    }

    /// Signs like the vendor SDK: every given header, sorted.
    fn signed_head(
        method: &str,
        path: &str,
        mut headers: Vec<(&str, &str)>,
        body: &[u8],
        secret: &str,
    ) -> RequestHead {
        headers.push(("x-sdk-date", DATE));
        headers.sort();
        let names: Vec<&str> = headers
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !k.starts_with(':'))
            .collect();
        let mut signed: Vec<&str> = names.clone();
        signed.push("host");
        signed.sort();
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        let hash = huawei_sign::sha256_hex(body);
        let req = Signed {
            method,
            path: p,
            query: q,
            signed_headers: &signed,
            payload_hash: &hash,
        };
        let lookup = |n: &str| -> Vec<&str> {
            if n == "host" {
                vec!["api.example.com"]
            } else {
                headers
                    .iter()
                    .filter(|(k, _)| *k == n)
                    .map(|(_, v)| *v)
                    .collect()
            }
        };
        let sig = sign(
            secret.as_bytes(),
            &string_to_sign(DATE, &canonical_request(&req, lookup, Plus::Literal)),
        );
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.push((":method".into(), method.into()));
        all.push((":path".into(), path.into()));
        all.push((":authority".into(), "api.example.com".into()));
        all.push((
            "authorization".into(),
            format!(
                "SDK-HMAC-SHA256 Access=key1, SignedHeaders={}, Signature={sig}",
                signed.join(";")
            ),
        ));
        RequestHead::new(all)
    }

    #[test]
    fn the_claimed_caller_is_the_one_the_signature_names() {
        let a = Apps::from_plan(&[
            AppPlan {
                id: "app-id".into(),
                name: "mobile".into(),
                key: "key1".into(),
                secret: "s3cret".into(),
                codes: vec![],
            },
            AppPlan {
                id: "victim-id".into(),
                name: "victim".into(),
                key: "key2".into(),
                secret: "other".into(),
                codes: vec![],
            },
        ])
        .unwrap();
        // Signed by key1 (Huawei), with key2 in a stray X-Ca-Key.
        let body = b"{}";
        let head = signed_head("POST", "/x", vec![("x-ca-key", "key2")], body, "s3cret");
        assert_eq!(auth(&a, &head, body, NOW), Ok(0));
        assert_eq!(a.claimed(&head), Some(0));
        assert_eq!(a.claimed_account(&head), Some(0));
        // An Alibaba signature names its X-Ca-Key.
        let ali = RequestHead::from_pairs(&[
            ("x-ca-signature", "sig"),
            ("x-ca-key", "key2"),
            (
                "authorization",
                "SDK-HMAC-SHA256 Access=key1, SignedHeaders=x, Signature=s",
            ),
        ]);
        assert_eq!(a.claimed(&ali), Some(1));
        assert_eq!(a.claimed_account(&ali), Some(0));
    }

    /// An Alibaba-signed GET of `/p?id=1` with `x-user` signed, plus `extra`.
    fn aliyun_head(path: &str, extra: &[(&str, &str)]) -> RequestHead {
        let headers = [("x-ca-key", "key1"), ("x-user", "alice")];
        let names = ["x-ca-key", "x-user"];
        let lookup = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        let query = aliyun_sign::parse_params("id=1", true);
        let pp = aliyun_sign::path_and_params("/p", &query, &[], true);
        let sts = aliyun_sign::string_to_sign("GET", lookup, &names, &pp);
        let sig = aliyun_sign::sign(aliyun_sign::Algorithm::HmacSha256, b"s3cret", &sts);
        let mut all = vec![
            (":method", "GET"),
            (":path", path),
            ("x-ca-signature-headers", "x-ca-key,x-user"),
            ("x-ca-signature", sig.as_str()),
        ];
        all.extend(headers);
        all.extend(extra);
        RequestHead::from_pairs(&all)
    }

    #[test]
    fn nothing_rides_unsigned_on_an_alibaba_signature() {
        let a = apps();
        assert_eq!(auth(&a, &aliyun_head("/p?id=1", &[]), b"", NOW), Ok(0));
        // A second value of a signed query key or header is not signed.
        let refused = [
            aliyun_head("/p?id=1&id=2", &[]),
            aliyun_head("/p?id=1", &[("x-user", "mallory")]),
            aliyun_head("/p?id=1", &[("x-ca-key", "key1")]),
        ];
        for head in refused {
            let err = auth(&a, &head, b"", NOW).unwrap_err();
            assert_eq!(err.error, GatewayError::AUTH_FAILURE, "{head:?}");
        }
    }

    #[test]
    fn an_encoded_slash_cannot_borrow_the_signature_of_a_real_one() {
        let a = apps();
        let head = signed_head("GET", "/files/a/b", vec![], b"", "s3cret");
        assert_eq!(auth(&a, &head, b"", NOW), Ok(0));
        for path in ["/files/a%2Fb", "/files/a%2fb"] {
            let replayed = RequestHead::from_pairs(&[
                (":path", path),
                (":method", "GET"),
                (":authority", "api.example.com"),
                ("x-sdk-date", DATE),
                ("authorization", head.get("authorization").unwrap()),
            ]);
            let err = auth(&a, &replayed, b"", NOW).unwrap_err();
            assert_eq!(err.error, GatewayError::AUTH_FAILURE, "{path}");
        }
    }

    #[test]
    fn a_query_value_cannot_hide_behind_a_signed_form_value() {
        let a = apps();
        let form = aliyun_sign::parse_params("amount=1", true);
        let pp = aliyun_sign::path_and_params("/pay", &[], &form, true);
        let ct = "application/x-www-form-urlencoded";
        let lookup = |n: &str| match n {
            "content-type" => Some(ct),
            "x-ca-key" => Some("key1"),
            _ => None,
        };
        let sts = aliyun_sign::string_to_sign("POST", lookup, &["x-ca-key"], &pp);
        let sig = aliyun_sign::sign(aliyun_sign::Algorithm::HmacSha256, b"s3cret", &sts);
        let head = |path: &str| {
            RequestHead::from_pairs(&[
                (":method", "POST"),
                (":path", path),
                ("content-type", ct),
                ("x-ca-key", "key1"),
                ("x-ca-signature-headers", "x-ca-key"),
                ("x-ca-signature", &sig),
            ])
        };
        assert_eq!(auth(&a, &head("/pay"), b"amount=1", NOW), Ok(0));
        let err = auth(&a, &head("/pay?amount=1000000"), b"amount=1", NOW).unwrap_err();
        assert_eq!(err.error, GatewayError::AUTH_FAILURE);
    }

    #[test]
    fn a_declared_payload_hash_must_be_the_bodys() {
        let h = |pairs: &[(&str, &str)]| RequestHead::from_pairs(pairs);
        let body = b"pay 1";
        let sha = huawei_sign::sha256_hex(body);
        let hashes = |head: &RequestHead, signed: &[&str], body: &[u8]| {
            payload_hashes(head, signed, body).map(|v| v.iter().map(|c| c.to_string()).collect())
        };
        let ok = |v: &[&str]| Ok::<Vec<String>, &str>(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(hashes(&h(&[]), &[], body), ok(&[&sha]));
        let declared = h(&[("x-sdk-content-sha256", &sha)]);
        assert_eq!(hashes(&declared, &[], body), ok(&[&sha]));
        assert!(hashes(&declared, &[], b"pay 1000000").is_err());
        assert!(hashes(&declared, &[], b"").is_err());
        let upper = h(&[("x-sdk-content-sha256", &sha.to_uppercase())]);
        assert_eq!(hashes(&upper, &[], body), ok(&[&sha.to_uppercase()]));
        // UNSIGNED-PAYLOAD counts only when the header is signed.
        let unsigned = h(&[("x-sdk-content-sha256", "UNSIGNED-PAYLOAD")]);
        let names = ["x-sdk-content-sha256"];
        assert_eq!(hashes(&unsigned, &names, body), ok(&["UNSIGNED-PAYLOAD"]));
        assert_eq!(hashes(&unsigned, &[], body), ok(&[&sha]));
        assert_eq!(
            hashes(&unsigned, &names, b""),
            ok(&["UNSIGNED-PAYLOAD", EMPTY_BODY_HASH])
        );
    }

    #[test]
    fn a_signature_with_a_declared_hash_does_not_cover_another_body() {
        let a = apps();
        let body = b"{\"pay\":1}";
        let sha = huawei_sign::sha256_hex(body);
        let head = signed_head(
            "POST",
            "/pay",
            vec![("x-sdk-content-sha256", &sha)],
            body,
            "s3cret",
        );
        assert_eq!(auth(&a, &head, body, NOW), Ok(0));
        let swapped = auth(&a, &head, b"{\"pay\":1000000}", NOW).unwrap_err();
        assert_eq!(swapped.error, GatewayError::AUTH_FAILURE);
    }

    #[test]
    fn a_signed_header_that_is_not_utf8_fails_the_signature() {
        let a = apps();
        let head = signed_head("GET", "/x", vec![("x-odd", "ok")], b"", "s3cret");
        assert_eq!(auth(&a, &head, b"", NOW), Ok(0));
        let mut raw: Vec<(String, Vec<u8>)> = head
            .raw()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect();
        raw.iter_mut().find(|(k, _)| k == "x-odd").unwrap().1 = b"\xff".to_vec();
        let err = auth(&a, &RequestHead::from_bytes(raw), b"", NOW).unwrap_err();
        assert_eq!(err.error, GatewayError::AUTH_FAILURE);
    }

    #[test]
    fn accepts_a_correct_signature_with_body() {
        let body = br#"{"a":1}"#;
        let head = signed_head(
            "POST",
            "/v1/x?b=2&a=1",
            vec![("content-type", "application/json")],
            body,
            "s3cret",
        );
        assert_eq!(auth(&apps(), &head, body, NOW), Ok(0));
    }

    #[test]
    fn refuses_tampering_wrong_secret_and_stale_dates() {
        let body = b"hello";
        let good = signed_head("POST", "/v1/x?a=1", vec![], body, "s3cret");
        let a = apps();
        let is_failure =
            |r: Result<u32, AuthFailure>| r.unwrap_err().error == GatewayError::AUTH_FAILURE;
        assert!(is_failure(auth(&a, &good, b"hellO", NOW)), "body changed");
        assert!(is_failure(auth(&a, &good, body, NOW + 16 * 60)), "too late");
        assert!(
            is_failure(auth(&a, &good, body, NOW - 16 * 60)),
            "too early"
        );
        assert_eq!(auth(&a, &good, body, NOW + 14 * 60), Ok(0));
        let wrong = signed_head("POST", "/v1/x?a=1", vec![], body, "other");
        let failure = auth(&a, &wrong, body, NOW).unwrap_err();
        assert_eq!(
            failure.detail, "verify signature fail",
            "no canonical request unless debug"
        );
        assert!(!failure.detail.contains("s3cret"));
    }

    #[test]
    fn debug_mode_echoes_the_canonical_request() {
        let wrong = signed_head("GET", "/v1/x", vec![("x-apig-mode", "debug")], b"", "other");
        let failure = auth(&apps(), &wrong, b"", NOW).unwrap_err();
        assert!(failure
            .detail
            .starts_with("verify signature fail, canonicalRequest:GET|/v1/x/||"));
        assert!(failure.detail.ends_with(EMPTY_BODY_HASH));
        assert!(!failure.detail.contains("s3cret") && !failure.detail.contains("other"));
    }

    #[test]
    fn missing_or_unknown_credentials() {
        let a = apps();
        let none = RequestHead::new(vec![(":path".into(), "/x".into())]);
        assert_eq!(
            auth(&a, &none, b"", NOW).unwrap_err().error,
            GatewayError::AUTH_HEADER_MISSING
        );
        let unknown = RequestHead::new(vec![(
            "authorization".into(),
            "SDK-HMAC-SHA256 Access=nope, SignedHeaders=host;x-sdk-date, Signature=00".into(),
        )]);
        let f = auth(&a, &unknown, b"", NOW).unwrap_err();
        assert_eq!(
            (f.error, f.detail.as_str()),
            (GatewayError::AUTH_FAILURE, "app not found, appkey nope")
        );
    }

    fn head(pairs: &[(&str, &str)]) -> RequestHead {
        RequestHead::from_pairs(pairs)
    }

    #[test]
    fn app_code_in_every_accepted_form() {
        let a = apps();
        let policy = AuthPolicy {
            allow_hmac_sha1: false,
            app_code: AppCodeMode::HttpAllowed,
            https: false,
        };
        for h in [
            head(&[(":path", "/x"), ("x-apig-appcode", "code-one-0001")]),
            head(&[(":path", "/x"), ("authorization", "APPCODE code-one-0001")]),
            head(&[(":path", "/x?a=1&AppCode=code-one-0001")]),
            head(&[(":path", "/x?appCode=code-one-0001")]),
        ] {
            assert_eq!(a.authenticate(&h, b"", NOW, policy).map(|c| c.app), Ok(0));
            assert!(!signature_needs_body(&h));
        }
        let wrong = head(&[(":path", "/x"), ("x-apig-appcode", "code-one-0002")]);
        assert_eq!(
            a.authenticate(&wrong, b"", NOW, policy).unwrap_err().detail,
            "Invalid AppCode"
        );
    }

    #[test]
    fn app_code_needs_https_unless_allowed_and_enabled() {
        let a = apps();
        let h = head(&[(":path", "/x"), ("x-apig-appcode", "code-one-0001")]);
        let mut policy = AuthPolicy {
            allow_hmac_sha1: false,
            app_code: AppCodeMode::Https,
            https: false,
        };
        assert!(a
            .authenticate(&h, b"", NOW, policy)
            .unwrap_err()
            .detail
            .contains("HTTPS"));
        policy.https = true;
        assert_eq!(a.authenticate(&h, b"", NOW, policy).map(|c| c.app), Ok(0));
        policy.app_code = AppCodeMode::Disabled;
        assert!(a
            .authenticate(&h, b"", NOW, policy)
            .unwrap_err()
            .detail
            .contains("not enabled"));
    }

    #[test]
    fn app_code_is_stripped_from_the_forwarded_query() {
        assert_eq!(strip_app_code_param("/x?a=1&AppCode=c&b=2"), "/x?a=1&b=2");
        assert_eq!(strip_app_code_param("/x?appcode=c"), "/x");
        assert_eq!(strip_app_code_param("/x?a=AppCode"), "/x?a=AppCode");
        assert!(matches!(strip_app_code_param("/x?a=1"), Cow::Borrowed(_)));
    }
}
