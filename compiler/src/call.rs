//! `pylon call`: a curl-like client that signs a request as the vendors'
//! SDKs do (Huawei `SDK-HMAC-SHA256`, Alibaba `X-Ca-Signature`) or sends an
//! AppCode, using the same signing code the gateway verifies with.

use std::time::{SystemTime, UNIX_EPOCH};

use pylon_filter::{aliyun_sign, huawei_sign};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheme {
    /// `Authorization: SDK-HMAC-SHA256 ...` (Huawei APIG; also accounts' AK/SK).
    Huawei,
    /// `X-Ca-Key`, `X-Ca-Signature`, ... (Alibaba API Gateway).
    Aliyun,
    /// `X-Apig-AppCode: <code>`.
    Appcode,
    /// No credentials.
    None,
}

pub struct Call {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub scheme: Scheme,
    pub key: Option<String>,
    pub secret: Option<String>,
    pub app_code: Option<String>,
    pub stage: Option<String>,
}

/// Sends the call and prints the response like `curl -i`; `Ok(true)` for a
/// 2xx/3xx status.
pub fn run(call: Call) -> Result<bool, String> {
    let url = url::Url::parse(&call.url).map_err(|e| format!("bad URL {}: {e}", call.url))?;
    if url.scheme() != "http" {
        return Err("pylon call speaks plain HTTP only".into());
    }
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    };
    let method = call.method.to_ascii_uppercase();
    let mut headers = call.headers.clone();
    if let Some(stage) = &call.stage {
        let name = if call.scheme == Scheme::Aliyun {
            "x-ca-stage"
        } else {
            "x-stage"
        };
        headers.push((name.into(), stage.clone()));
    }
    let need =
        |v: &Option<String>, what: &str| v.clone().ok_or_else(|| format!("--scheme needs {what}"));
    match call.scheme {
        Scheme::Huawei => sign_huawei(
            &method,
            &url,
            &host,
            &mut headers,
            &call.body,
            &need(&call.key, "--key")?,
            &need(&call.secret, "--secret or PYLON_SECRET")?,
        ),
        Scheme::Aliyun => sign_aliyun(
            &method,
            &url,
            &mut headers,
            &call.body,
            &need(&call.key, "--key")?,
            &need(&call.secret, "--secret or PYLON_SECRET")?,
        )?,
        Scheme::Appcode => headers.push((
            "x-apig-appcode".into(),
            need(&call.app_code, "--app-code or PYLON_APP_CODE")?,
        )),
        Scheme::None => {}
    }
    let mut req = ureq::request(&method, url.as_str());
    for (k, v) in &headers {
        req = req.set(k, v);
    }
    let resp = match if call.body.is_empty() {
        req.call()
    } else {
        req.send_bytes(&call.body)
    } {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.status();
    println!("HTTP/1.1 {status} {}", resp.status_text());
    for name in resp.headers_names() {
        for value in resp.all(&name) {
            println!("{name}: {value}");
        }
    }
    println!();
    let body = resp.into_string().map_err(|e| e.to_string())?;
    println!("{body}");
    Ok(status < 400)
}

fn sign_huawei(
    method: &str,
    url: &url::Url,
    host: &str,
    headers: &mut Vec<(String, String)>,
    body: &[u8],
    key: &str,
    secret: &str,
) {
    let date = sdk_date(SystemTime::now());
    headers.push(("x-sdk-date".into(), date.clone()));
    let mut signed: Vec<String> = headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    signed.push("host".into());
    signed.sort();
    signed.dedup();
    let names: Vec<&str> = signed.iter().map(String::as_str).collect();
    let hash = huawei_sign::sha256_hex(body);
    let req = huawei_sign::Signed {
        method,
        path: url.path(),
        query: url.query().unwrap_or(""),
        signed_headers: &names,
        payload_hash: &hash,
    };
    let lookup = |name: &str| -> Vec<&str> {
        if name == "host" {
            vec![host]
        } else {
            headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        }
    };
    let canonical = huawei_sign::canonical_request(&req, lookup, huawei_sign::Plus::Literal);
    let signature = huawei_sign::sign(
        secret.as_bytes(),
        &huawei_sign::string_to_sign(&date, &canonical),
    );
    let auth = format!(
        "{} Access={key}, SignedHeaders={}, Signature={signature}",
        huawei_sign::ALGORITHM,
        names.join(";")
    );
    headers.push(("authorization".into(), auth));
}

fn sign_aliyun(
    method: &str,
    url: &url::Url,
    headers: &mut Vec<(String, String)>,
    body: &[u8],
    key: &str,
    secret: &str,
) -> Result<(), String> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis();
    let mut nonce = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(|e| e.to_string())?,
        &mut nonce,
    )
    .map_err(|e| e.to_string())?;
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let has = |h: &Vec<(String, String)>, n: &str| h.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has(headers, "accept") {
        headers.push(("accept".into(), "application/json".into()));
    }
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    if !body.is_empty() && !is_form {
        headers.push(("content-md5".into(), aliyun_sign::content_md5(body)));
    }
    headers.push(("x-ca-key".into(), key.into()));
    headers.push(("x-ca-timestamp".into(), now_ms.to_string()));
    headers.push(("x-ca-nonce".into(), nonce));
    let mut names: Vec<String> = headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .filter(|k| k.starts_with("x-ca-"))
        .collect();
    names.sort();
    let lowered: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let lookup = |name: &str| {
        lowered
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let query = aliyun_sign::parse_params(url.query().unwrap_or(""), true);
    let form = if is_form {
        aliyun_sign::parse_params(&String::from_utf8_lossy(body), true)
    } else {
        Vec::new()
    };
    let pp = aliyun_sign::path_and_params(url.path(), &query, &form, true);
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let sts = aliyun_sign::string_to_sign(method, lookup, &name_refs, &pp);
    let signature = aliyun_sign::sign(aliyun_sign::Algorithm::HmacSha256, secret.as_bytes(), &sts);
    headers.push(("x-ca-signature-headers".into(), names.join(",")));
    headers.push(("x-ca-signature".into(), signature));
    Ok(())
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
fn sdk_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sdk_dates_round_trip_with_the_gateways_parser() {
        for secs in [0u64, 1_573_464_883, 1_709_251_199, 4_102_444_800] {
            let s = sdk_date(UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(huawei_sign::parse_sdk_date(&s), Some(secs), "{s}");
        }
        assert_eq!(
            sdk_date(UNIX_EPOCH + Duration::from_secs(1_573_464_883)),
            "20191111T093443Z"
        );
    }
}
