//! Shared pieces of the fuzz targets: the compiled plan every request-level
//! target loads once, and a request read from fuzz bytes.
//!
//! Random bytes almost never name a published API or carry a valid
//! signature, so a request is HTTP/1.1 text (seeds are real requests; the
//! dictionary holds the plan's vocabulary) and the harness can sign it with
//! a known credential, so mutations reach the code past verification.

use pylon_filter::aliyun_sign;
use pylon_filter::gateway::Gateway;
use pylon_filter::huawei_sign::{self, Plus, Signed};
use pylon_filter::plan::Plan;
use pylon_filter::request_head::RequestHead;

/// `pylon compile fuzz/plan` output (see docs/FUZZING.md to regenerate).
pub const PLAN_JSON: &str = include_str!("../plan/pylon.json");

/// The fixed gateway, compiled once per thread (libFuzzer runs one): like
/// a worker's VM, a gateway is not shared across threads.
pub fn gateway() -> &'static Gateway {
    thread_local! {
        static GW: &'static Gateway = Box::leak(Box::new({
            let plan: Plan = serde_json::from_str(PLAN_JSON).expect("fuzz plan parses");
            Gateway::from_plan(&plan).expect("fuzz plan loads")
        }));
    }
    GW.with(|gw| *gw)
}

/// Credentials in fuzz/plan/defs.yaml: (key, secret) of apps, then accounts.
pub const CREDENTIALS: [(&str, &str); 4] = [
    ("aliAppKey0001", "ali-app-secret-0001"),
    ("hwAppKey00001", "hw-app-secret-00001"),
    ("TENANTAK00A1", "tenant-a-secret-1"),
    ("TENANTAK00B1", "tenant-b-secret-1"),
];

/// A fixed clock (2024-01-01T00:00:00Z) the signing helpers date requests by.
pub const NOW_MS: u64 = 1_704_067_200_000;

/// How the fuzzed request is signed before the gateway sees it.
#[derive(Debug, Clone, Copy)]
pub enum Signing {
    None,
    /// Huawei `SDK-HMAC-SHA256` with credential `key`, also signing the
    /// request's own headers picked by the bits of `extra_signed`.
    Huawei {
        key: u8,
        extra_signed: u8,
    },
    /// Alibaba `X-Ca-Signature`, HmacSHA1 (with a nonce) or HmacSHA256.
    Aliyun {
        key: u8,
        sha1: bool,
    },
    /// Huawei, then one hex digit of the signature changed.
    HuaweiTampered {
        key: u8,
        at: u8,
    },
}

const SOURCE_IPS: [&str; 6] = [
    "10.1.2.3",
    "192.168.1.15",
    "203.0.113.7",
    "2001:db8::1",
    "::1",
    "",
];

/// A request as the adapter hands it to the core.
///
/// Input format, so seeds are real requests written by hand: four control
/// bytes `[signing, key, mask, flags]`, then an HTTP/1.1 request:
/// `METHOD target [version]`, `Name: value` lines (names lower-cased as
/// Envoy delivers them; `Host` becomes `:authority`), an empty line, the
/// body. Lines end in `\n` or `\r\n`.
#[derive(Debug)]
pub struct FuzzRequest {
    pub method: String,
    pub host: String,
    /// `:path` with the query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub source_ip: String,
    pub now_ms: u64,
    pub signing: Signing,
    /// The fourth control byte, for targets' own switches.
    pub flags: u8,
}

impl FuzzRequest {
    pub fn parse(data: &[u8]) -> Option<FuzzRequest> {
        let (&[mode, key, mask, flags], rest) = data.split_first_chunk::<4>()?;
        let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => match rest.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(i) => (&rest[..i], &rest[i + 4..]),
                None => (rest, &[][..]),
            },
        };
        let head = std::str::from_utf8(head).ok()?;
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let mut request_line = lines.next()?.splitn(3, ' ');
        let method = request_line.next()?.to_string();
        let path = request_line.next().unwrap_or("").to_string();
        let mut host = String::new();
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let name = name.to_ascii_lowercase();
            let value = value.trim_start().to_string();
            if name == "host" {
                host = value;
            } else {
                headers.push((name, value));
            }
        }
        let signing = match mode % 5 {
            0 => Signing::None,
            1 => Signing::Huawei {
                key,
                extra_signed: mask,
            },
            2 => Signing::Aliyun { key, sha1: false },
            3 => Signing::Aliyun { key, sha1: true },
            _ => Signing::HuaweiTampered { key, at: mask },
        };
        Some(FuzzRequest {
            method,
            host,
            path,
            headers,
            body: body.to_vec(),
            source_ip: SOURCE_IPS[flags as usize % SOURCE_IPS.len()].to_string(),
            now_ms: NOW_MS,
            signing,
            flags,
        })
    }

    /// The request head as Envoy would hand it over, signed as asked.
    pub fn head(&self) -> RequestHead {
        let mut headers = vec![
            (":method".to_string(), self.method.clone()),
            (":path".to_string(), self.path.clone()),
            (":authority".to_string(), self.host.clone()),
        ];
        headers.extend(self.headers.iter().cloned());
        match self.signing {
            Signing::None => {}
            Signing::Huawei { key, extra_signed } => {
                sign_huawei(&mut headers, &self.body, key, extra_signed, None)
            }
            Signing::HuaweiTampered { key, at } => {
                sign_huawei(&mut headers, &self.body, key, 0, Some(at))
            }
            Signing::Aliyun { key, sha1 } => sign_aliyun(&mut headers, &self.body, key, sha1),
        }
        RequestHead::new(headers)
    }
}

fn sdk_date(secs: u64) -> String {
    // Civil date from days since the epoch (inverse of the filter's parser).
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn sign_huawei(
    headers: &mut Vec<(String, String)>,
    body: &[u8],
    key: u8,
    extra_signed: u8,
    tamper: Option<u8>,
) {
    let (access, secret) = CREDENTIALS[key as usize % CREDENTIALS.len()];
    let date = sdk_date(NOW_MS / 1000);
    headers.retain(|(k, _)| k != "x-sdk-date" && k != "authorization");
    headers.push(("x-sdk-date".into(), date.clone()));
    let mut signed: Vec<String> = vec!["host".into(), "x-sdk-date".into()];
    // Some of the request's own headers are signed too, by bit mask.
    for (i, (name, _)) in headers.iter().enumerate() {
        if i < 8 && extra_signed & (1 << i) != 0 && !name.starts_with(':') {
            signed.push(name.clone());
        }
    }
    signed.sort();
    signed.dedup();
    let signed: Vec<&str> = signed.iter().map(String::as_str).collect();
    let path = headers[1].1.clone();
    let (p, q) = path.split_once('?').unwrap_or((&path, ""));
    // SDKs sign the declared content hash (e.g. UNSIGNED-PAYLOAD) when sent.
    let hash = match headers.iter().find(|(k, _)| k == "x-sdk-content-sha256") {
        Some((_, declared)) => declared.clone(),
        None => huawei_sign::sha256_hex(body),
    };
    let snapshot = headers.clone();
    let lookup = |name: &str| -> Vec<&str> {
        let name = if name == "host" { ":authority" } else { name };
        snapshot
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let req = Signed {
        method: &headers[0].1,
        path: p,
        query: q,
        signed_headers: &signed,
        payload_hash: &hash,
    };
    let canonical = huawei_sign::canonical_request(&req, lookup, Plus::Literal);
    let mut signature = huawei_sign::sign(
        secret.as_bytes(),
        &huawei_sign::string_to_sign(&date, &canonical),
    );
    if let Some(at) = tamper {
        let i = at as usize % signature.len();
        let flipped = if &signature[i..=i] == "0" { "1" } else { "0" };
        signature.replace_range(i..=i, flipped);
    }
    headers.push((
        "authorization".into(),
        format!(
            "{} Access={access}, SignedHeaders={}, Signature={signature}",
            huawei_sign::ALGORITHM,
            signed.join(";")
        ),
    ));
}

fn sign_aliyun(headers: &mut Vec<(String, String)>, body: &[u8], key: u8, sha1: bool) {
    let (app_key, secret) = CREDENTIALS[key as usize % 2];
    headers.retain(|(k, _)| !k.starts_with("x-ca-"));
    headers.push(("x-ca-key".into(), app_key.into()));
    let ts = NOW_MS;
    headers.push(("x-ca-timestamp".into(), ts.to_string()));
    let alg = if sha1 {
        headers.push(("x-ca-signature-method".into(), "HmacSHA1".into()));
        aliyun_sign::Algorithm::HmacSha1
    } else {
        aliyun_sign::Algorithm::HmacSha256
    };
    if sha1 {
        headers.push(("x-ca-nonce".into(), format!("n-{ts}")));
    }
    let names = ["x-ca-key", "x-ca-timestamp", "x-ca-nonce"];
    headers.push(("x-ca-signature-headers".into(), names.join(",")));
    let path = headers[1].1.clone();
    let (p, q) = path.split_once('?').unwrap_or((&path, ""));
    let is_form = headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form {
        aliyun_sign::parse_params(&String::from_utf8_lossy(body), true)
    } else {
        Vec::new()
    };
    let query = aliyun_sign::parse_params(q, true);
    let pp = aliyun_sign::path_and_params(p, &query, &form, true);
    let snapshot = headers.clone();
    let lookup = |name: &str| {
        snapshot
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let sts = aliyun_sign::string_to_sign(&headers[0].1, lookup, &names, &pp);
    let signature = aliyun_sign::sign(alg, secret.as_bytes(), &sts);
    headers.push(("x-ca-signature".into(), signature));
}

/// The host's shared data for one fuzz execution (rate counters, nonces).
#[derive(Default)]
pub struct Memory {
    data: std::cell::RefCell<std::collections::HashMap<String, (Vec<u8>, u32)>>,
}

impl Memory {
    /// A store holding the deployment secret, as the filter installs it at
    /// start; without it every count and nonce check is refused as busy.
    pub fn keyed() -> Memory {
        use pylon_filter::slot_table::{install_secret, SECRET_LEN};
        let m = Memory::default();
        install_secret(&m, &[7; SECRET_LEN]).expect("a fresh store takes the secret");
        m
    }
}

impl pylon_filter::shared_store::SharedStore for Memory {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.data.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let mut data = self.data.borrow_mut();
        let current = data.get(key).map(|(_, c)| *c);
        if cas.is_some() && cas != current {
            return false;
        }
        data.insert(key.to_string(), (value.to_vec(), current.unwrap_or(0) + 1));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pylon_filter::app_auth::AuthPolicy;
    use pylon_filter::plan::AppCodeMode;

    fn seed(name: &str) -> FuzzRequest {
        let path = format!("{}/seeds/requests/{name}", env!("CARGO_MANIFEST_DIR"));
        FuzzRequest::parse(&std::fs::read(path).unwrap()).unwrap()
    }

    const POLICY: AuthPolicy = AuthPolicy {
        allow_hmac_sha1: true,
        app_code: AppCodeMode::HttpAllowed,
        https: false,
    };

    /// The harness signs as clients do: the seeds reach past verification.
    #[test]
    fn signed_seeds_authenticate() {
        let gw = gateway();
        for (name, app) in [
            ("orders-huawei", "hw"),
            ("orders-aliyun-form", "ali"),
            ("legacy-aliyun-sha1", "ali"),
            ("orders-appcode-header", "ali"),
        ] {
            let r = seed(name);
            let caller = gw
                .apps
                .authenticate(&r.head(), &r.body, r.now_ms, POLICY)
                .unwrap_or_else(|f| panic!("{name}: {f:?}"));
            assert_eq!(gw.apps.get(caller.app).name, app, "{name}");
        }
        let r = seed("tenant-iam");
        let account = gw
            .accounts
            .authenticate_account(&r.head(), &r.body, r.now_ms)
            .unwrap();
        assert_eq!(gw.accounts.get(account).name, "tenant-a");
        let r = seed("orders-huawei-tampered");
        assert!(gw
            .apps
            .authenticate(&r.head(), &r.body, r.now_ms, POLICY)
            .is_err());
    }
}
