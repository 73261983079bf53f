//! Pylon's definition format (YAML) and loading it from files or a directory.
//!
//! A definition file may hold any of the top-level sections; a directory's
//! `*.yaml`/`*.yml` files are read in name order and their sections merged.
//! Every object remembers the file it came from so errors can name it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pylon_filter::plan::{
    AclAction, AclKind, AppCodeMode, AuthKind, ConditionTest, Effect, Location, MatchMode, Method,
    ParamType, Protocol, RequestMode, SystemParam,
};
use pylon_filter::response::ErrorType;
use serde::{Deserialize, Serialize};

use crate::error::DefError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDefs {
    #[serde(default)]
    gateway: Option<GatewayDef>,
    #[serde(default)]
    environments: Vec<EnvironmentDef>,
    #[serde(default)]
    groups: Vec<GroupDef>,
    #[serde(default)]
    apis: Vec<ApiDef>,
    #[serde(default)]
    apps: Vec<AppDef>,
    #[serde(default)]
    accounts: Vec<AccountDef>,
    #[serde(default)]
    acls: Vec<AclDef>,
    #[serde(default)]
    throttles: Vec<ThrottleDef>,
}

/// A throttling policy: request limits per time window, bound to APIs per
/// environment.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleDef {
    pub name: String,
    /// For readers of the definitions; not compiled.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
    pub unit: TimeUnit,
    /// The window is `interval` units long (default 1).
    #[serde(default = "one")]
    pub interval: u64,
    pub api_limit: u64,
    #[serde(default)]
    pub user_limit: Option<u64>,
    #[serde(default)]
    pub app_limit: Option<u64>,
    #[serde(default)]
    pub ip_limit: Option<u64>,
    /// One count across all bound APIs (default: each API counts alone).
    #[serde(default)]
    pub shared: bool,
    #[serde(default)]
    pub special_apps: BTreeMap<String, u64>,
    #[serde(default)]
    pub special_users: BTreeMap<String, u64>,
    #[serde(default)]
    pub bindings: Vec<GrantDef>,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    Second,
    Minute,
    Hour,
    Day,
}

/// An access control policy: allow or deny client IPs or account names,
/// bound to APIs per environment.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AclDef {
    pub name: String,
    /// For readers of the definitions; not compiled.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
    #[serde(rename = "type")]
    pub kind: AclKind,
    pub action: AclAction,
    /// IP addresses, CIDR blocks or `a-b` ranges; or account names.
    pub values: Vec<String>,
    #[serde(default)]
    pub bindings: Vec<GrantDef>,
}

/// An IAM-style account (tenant): callers sign with its AK/SK using
/// `SDK-HMAC-SHA256`; the account name is the caller's identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountDef {
    pub name: String,
    /// For readers of the definitions; not compiled.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
    /// Access key (public).
    pub ak: String,
    /// Secret key, given like an app secret.
    pub sk: SecretDef,
}

/// A caller's app: its AppKey and AppSecret, and what it may call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppDef {
    pub name: String,
    /// For readers of the definitions; not compiled.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
    /// The AppKey callers sign with (public).
    pub key: String,
    pub secret: SecretDef,
    /// AppCodes for simple authentication (at most 5), given like secrets.
    #[serde(default)]
    pub codes: Vec<SecretDef>,
    /// APIs the app may call, per environment.
    #[serde(default)]
    pub authorizations: Vec<GrantDef>,
}

/// A secret given inline, or read at compile time from an environment
/// variable or a file (so definitions can live in git without it).
#[derive(Debug, Clone)]
pub enum SecretDef {
    Inline(String),
    Env { env: String },
    File { file: PathBuf },
}

/// By hand rather than `untagged`: errors then name the `secret` field,
/// `{env, file}` together or unknown keys are refused, and no error ever
/// quotes the value (serde's "invalid type: integer `1234...`" would).
impl<'de> Deserialize<'de> for SecretDef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SecretDef, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

const SECRET_FORMS: &str = "a string, `{env: VARIABLE}` or `{file: path}`";

/// How every error `SecretVisitor` makes begins (none quotes the value).
const SECRET_MESSAGES: [&str; 4] = [
    "expected a string, `{env",
    "unknown field `",
    "give either `env` or `file`",
    "a secret map takes",
];

impl SecretVisitor {
    fn not_a_string<E: serde::de::Error>() -> E {
        E::custom(format!(
            "expected {SECRET_FORMS}; quote a secret YAML would read as a number or boolean"
        ))
    }
}

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = SecretDef;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(SECRET_FORMS)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretDef, E> {
        Ok(SecretDef::Inline(v.to_string()))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretDef, E> {
        Err(Self::not_a_string())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretDef, E> {
        Err(Self::not_a_string())
    }

    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<SecretDef, E> {
        Err(Self::not_a_string())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretDef, E> {
        Err(Self::not_a_string())
    }

    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<SecretDef, E> {
        Err(Self::not_a_string())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretDef, E> {
        Err(Self::not_a_string())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SecretDef, A::Error> {
        use serde::de::Error;
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            let def = match key.as_str() {
                "env" => SecretDef::Env {
                    env: map.next_value()?,
                },
                "file" => SecretDef::File {
                    file: map.next_value()?,
                },
                other => {
                    // `secret: {S3CRET}` is a map whose key is the secret (and
                    // whose value is null): only a field-like key is echoed.
                    let value: Option<serde::de::IgnoredAny> = map.next_value()?;
                    let field_like = other.len() <= 16
                        && other.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                    if value.is_some() && field_like {
                        return Err(A::Error::unknown_field(other, &["env", "file"]));
                    }
                    return Err(A::Error::custom("a secret map takes `env` or `file` only"));
                }
            };
            if found.replace(def).is_some() {
                return Err(A::Error::custom("give either `env` or `file`, not both"));
            }
        }
        found.ok_or_else(|| A::Error::custom(format!("expected {SECRET_FORMS}")))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrantDef {
    pub group: String,
    pub api: String,
    pub environments: Vec<String>,
}

/// Where Envoy listens and gateway-wide limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayDef {
    #[serde(default)]
    pub listen: Option<String>,
    #[serde(default)]
    pub admin: Option<String>,
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// Proxies in front of Pylon whose X-Forwarded-For entries are trusted
    /// (default 0: the client address is the connection's peer).
    #[serde(default)]
    pub trusted_hops: u32,
    /// Requests per second an API without a throttling policy may take
    /// (default 200).
    #[serde(default)]
    pub default_limit: Option<u64>,
    /// The HTTPS listener, when a group has certificates (default
    /// 127.0.0.1:8443; compiler/src/tls.rs).
    #[serde(default)]
    pub https_listen: Option<String>,
    /// Per-API metrics and access-log fields (default on; off only to
    /// measure their cost).
    #[serde(default)]
    pub metrics: Option<bool>,
    /// The JSON access log's file (default `/dev/stdout`; `off`: none).
    #[serde(default)]
    pub access_log: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentDef {
    pub name: String,
    /// For readers of the definitions; not compiled.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    pub name: String,
    /// For readers of the definitions; not compiled.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
    #[serde(default)]
    pub domains: Vec<String>,
    /// The default group also answers requests for hosts no group claims.
    #[serde(default)]
    pub default: bool,
    /// Environment → variable name → value, used as `#name#`.
    #[serde(default)]
    pub variables: BTreeMap<String, BTreeMap<String, String>>,
    /// Response set name → error type → override. `default` always exists.
    #[serde(default)]
    pub responses: BTreeMap<String, BTreeMap<ErrorType, ResponseDef>>,
    /// SSL certificates of the group's domains (Huawei user guide §5.1.2).
    #[serde(default)]
    pub certificates: Vec<crate::tls::CertificateDef>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseDef {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiDef {
    pub name: String,
    pub group: String,
    /// For readers of the definitions; not compiled.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
    pub method: Method,
    pub path: String,
    #[serde(default, rename = "match")]
    pub match_mode: MatchMode,
    pub backend: BackendDef,
    /// Environments the API is published to.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Response set of the group; `default` when absent.
    #[serde(default)]
    pub response: Option<String>,
    /// `none` (default) or `app`: callers sign with an authorized app.
    #[serde(default)]
    pub auth: AuthKind,
    /// Alibaba-style callers may sign with HmacSHA1 as well as HmacSHA256.
    #[serde(default)]
    pub allow_hmac_sha1: bool,
    /// AppCode simple authentication: `disabled` (default), `https`, or
    /// `http_allowed` (also over plain HTTP).
    #[serde(default)]
    pub app_code: AppCodeMode,
    /// What happens to parameters the API does not declare.
    #[serde(default)]
    pub request_mode: RequestMode,
    /// Cross-origin access for browsers.
    #[serde(default)]
    pub cors: bool,
    /// `HTTP`, `HTTPS` or `HTTP&HTTPS` (default; Huawei user guide §5.2.1).
    #[serde(default)]
    pub protocol: Protocol,
    /// The backend accepts WebSocket: an upgrade may pass (Alibaba's
    /// WEBSOCKET request protocol).
    #[serde(default)]
    pub websocket: bool,
    /// Request parameters: where they are and what is valid.
    #[serde(default)]
    pub parameters: Vec<ParamDef>,
    /// Policy backends, tried in order before `backend` (at most 5).
    #[serde(default)]
    pub policies: Vec<PolicyDef>,
}

/// A declared request parameter.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    pub name: String,
    #[serde(rename = "in")]
    pub location: Location,
    #[serde(rename = "type", default)]
    pub kind: ParamType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Text>,
    #[serde(default)]
    pub min_length: Option<u32>,
    #[serde(default)]
    pub max_length: Option<u32>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default, rename = "enum")]
    pub allowed: Vec<Text>,
    #[serde(default)]
    pub pattern: Option<String>,
    /// For readers of the definitions; not compiled.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
}

/// One parameter the backend receives: exactly one of `from` (a request
/// parameter), `constant` or `system`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendParamDef {
    pub name: String,
    #[serde(rename = "in")]
    pub location: Location,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub constant: Option<Text>,
    #[serde(default)]
    pub system: Option<SystemParam>,
    /// For readers of the definitions; not compiled.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: String,
}

/// A policy backend: its conditions and its own backend.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDef {
    pub name: String,
    #[serde(default)]
    pub effect: Effect,
    pub conditions: Vec<ConditionDef>,
    pub backend: BackendDef,
}

/// Exactly one of `source`, `param` or `system`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDef {
    /// Client addresses and CIDR blocks, comma-separated.
    #[serde(default)]
    pub source: Option<Text>,
    /// A declared request parameter.
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub system: Option<SystemCondition>,
    #[serde(rename = "type", default)]
    pub test: Option<ConditionTest>,
    /// Enum values are comma-separated, as in the products' consoles.
    #[serde(default)]
    pub value: Option<Text>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum SystemCondition {
    #[serde(rename = "reqPath")]
    ReqPath,
    #[serde(rename = "reqMethod")]
    ReqMethod,
}

/// Written back as a string (`pylon import`).
impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A YAML scalar taken as text: `default: 10` and `default: "10"` alike.
/// (YAML reads `0x1F` as the integer 31; decimals must be quoted.)
#[derive(Debug, Clone, PartialEq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            // `1.10` would become "1.1": the text as written is lost.
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Text, E> {
                Err(E::custom(
                    "quote decimal numbers (`\"1.10\"`) so their text is kept as written",
                ))
            }
        }
        d.deserialize_any(V)
    }
}

/// Exactly one of `http` or `mock`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendDef {
    #[serde(default)]
    pub http: Option<HttpBackendDef>,
    #[serde(default)]
    pub mock: Option<MockBackendDef>,
    /// What the backend receives: mapped, constant and system parameters
    /// (HTTP backends).
    #[serde(default)]
    pub params: Vec<BackendParamDef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpBackendDef {
    /// `host[:port]`, may use `#variables#`.
    pub address: String,
    #[serde(default)]
    pub scheme: Scheme,
    /// Backend path; `{name}` takes a request path parameter, `#var#` a variable.
    pub path: String,
    /// Defaults to the caller's method.
    #[serde(default)]
    pub method: Option<Method>,
    /// Milliseconds, 1..=600000; the Huawei user guide's default is 5000.
    #[serde(default = "default_timeout")]
    pub timeout: u32,
    /// Lets this backend be a link-local, cloud metadata or unspecified
    /// address, or the gateway's admin address (refused by default: SSRF).
    #[serde(default)]
    pub allow_internal_address: bool,
    /// TLS toward an `https` backend: verified against the system's CA
    /// bundle unless it names a CA or opts out (compiler/src/tls.rs).
    #[serde(default)]
    pub tls: Option<crate::tls::BackendTlsDef>,
}

/// An HTTP backend's timeout when the definition names none (Huawei user
/// guide §4.2.4, "后端超时": 5000 ms).
pub const DEFAULT_TIMEOUT_MS: u32 = 5000;

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_MS
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MockBackendDef {
    #[serde(default = "default_mock_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

fn default_mock_status() -> u16 {
    200
}

/// An object together with the file it was defined in.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub file: PathBuf,
    pub def: T,
}

/// Everything read from the definition inputs.
#[derive(Debug, Default)]
pub struct Defs {
    pub gateway: Option<Located<GatewayDef>>,
    pub environments: Vec<Located<EnvironmentDef>>,
    pub groups: Vec<Located<GroupDef>>,
    pub apis: Vec<Located<ApiDef>>,
    pub apps: Vec<Located<AppDef>>,
    pub accounts: Vec<Located<AccountDef>>,
    pub acls: Vec<Located<AclDef>>,
    pub throttles: Vec<Located<ThrottleDef>>,
}

/// Reads definitions from files and directories; every file's errors are
/// collected, not just the first.
pub fn load(inputs: &[PathBuf]) -> Result<Defs, Vec<DefError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        match definition_files(input, &mut errors) {
            Ok(found) if found.is_empty() => errors.push(DefError::file(
                input,
                "no *.yaml or *.yml definition files found",
            )),
            Ok(found) => files.extend(found),
            Err(e) => errors.push(e),
        }
    }
    let mut defs = Defs::default();
    for file in files {
        match read_file(&file) {
            Ok(parsed) => {
                if let Some(g) = parsed.gateway {
                    if let Some(prev) = &defs.gateway {
                        errors.push(DefError::new(
                            &file,
                            "gateway",
                            "",
                            format!("already defined in {}", prev.file.display()),
                        ));
                    } else {
                        defs.gateway = Some(Located {
                            file: file.clone(),
                            def: g,
                        });
                    }
                }
                defs.environments
                    .extend(located(&file, parsed.environments));
                defs.groups.extend(located(&file, parsed.groups));
                defs.apis.extend(located(&file, parsed.apis));
                defs.apps.extend(located(&file, parsed.apps));
                defs.accounts.extend(located(&file, parsed.accounts));
                defs.acls.extend(located(&file, parsed.acls));
                defs.throttles.extend(located(&file, parsed.throttles));
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(defs)
    } else {
        Err(errors)
    }
}

fn located<'a, T: 'a>(file: &'a Path, items: Vec<T>) -> impl Iterator<Item = Located<T>> + 'a {
    items.into_iter().map(move |def| Located {
        file: file.to_path_buf(),
        def,
    })
}

/// A file input as it is; a directory's `*.yaml`/`*.yml` entries, each of
/// which must be a regular file (or a symlink to one): a dangling or looping
/// symlink, a FIFO or a directory named `*.yaml` is an error pushed to
/// `errors`, never skipped, so its APIs or apps cannot vanish silently.
fn definition_files(input: &Path, errors: &mut Vec<DefError>) -> Result<Vec<PathBuf>, DefError> {
    let meta = std::fs::metadata(input).map_err(|e| DefError::file(input, e.to_string()))?;
    if meta.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    if !meta.is_dir() {
        return Err(DefError::file(input, "not a regular file or a directory"));
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(input).map_err(|e| DefError::file(input, e.to_string()))? {
        let path = match entry {
            Ok(e) => e.path(),
            Err(e) => {
                errors.push(DefError::file(input, format!("cannot list: {e}")));
                continue;
            }
        };
        if !path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push(path),
            Ok(m) if m.is_dir() => errors.push(DefError::file(
                &path,
                "is a directory; definition files must be regular files",
            )),
            Ok(_) => errors.push(DefError::file(
                &path,
                "is not a regular file (a FIFO, socket or device)",
            )),
            // Dangling symlinks and symlink loops end here.
            Err(e) => errors.push(DefError::file(&path, format!("cannot read: {e}"))),
        }
    }
    files.sort();
    Ok(files)
}

fn read_file(file: &Path) -> Result<FileDefs, DefError> {
    let text = std::fs::read_to_string(file).map_err(|e| DefError::file(file, e.to_string()))?;
    if text.trim().is_empty() {
        return Ok(FileDefs::default());
    }
    // First as plain YAML so a syntax error is reported as such; then typed,
    // so an unknown or mistyped field can be named with its object.
    let value: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
        let err = DefError::file(file, format!("malformed YAML: {e}"));
        match e.location() {
            Some(l) => err.at(l.line(), l.column()),
            None => err,
        }
    })?;
    serde_yaml::from_str::<FileDefs>(&text).map_err(|e| locate_schema_error(file, &value, &e))
}

/// Turns serde's `apis[3].backend.http: unknown field ...` into
/// `api 'name'` + `backend.http` + the message.
fn locate_schema_error(file: &Path, value: &serde_yaml::Value, e: &serde_yaml::Error) -> DefError {
    let text = e.to_string();
    let (path, message) = match text.split_once(": ") {
        Some((p, m)) if !p.contains(' ') => (p.to_string(), m.to_string()),
        _ => (String::new(), text.clone()),
    };
    let (section, rest) = path.split_once('.').unwrap_or((path.as_str(), ""));
    let (list, index) = match section.split_once('[') {
        Some((l, i)) => (l, i.trim_end_matches(']').parse::<usize>().ok()),
        None => (section, None),
    };
    let kind = crate::error::kind_of(list);
    let object = match index {
        Some(i) => {
            let name = value
                .get(list)
                .and_then(|l| l.get(i))
                .and_then(|o| o.get("name"))
                .and_then(|n| n.as_str());
            match name {
                Some(n) => format!("{kind} '{n}'"),
                None => format!("{kind} #{}", i + 1),
            }
        }
        None if path.is_empty() => "(file)".to_string(),
        None => kind.to_string(),
    };
    // For an unknown field, name the field itself: `backend.http.adress`.
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split_once('`'))
        .map(|(name, _)| name);
    let field = match (rest, unknown) {
        ("", Some(name)) => name.to_string(),
        (_, Some(name)) => format!("{rest}.{name}"),
        (_, None) => rest.to_string(),
    };
    // serde quotes the offending value (`invalid type: string "..."`): for a
    // secret field that value is the secret, so the message is replaced.
    let message = match secret_field(list, rest) {
        Some(SecretField::Codes) => {
            format!("expected a list of AppCodes, each given as {SECRET_FORMS}")
        }
        // SecretVisitor's own messages never hold the value.
        Some(SecretField::One) if SECRET_MESSAGES.iter().any(|m| message.starts_with(m)) => message,
        Some(SecretField::One) => format!("expected {SECRET_FORMS}"),
        None => redact_secrets(&message, value),
    };
    let err = DefError::new(file, &object, &field, message);
    match e.location() {
        // The position goes in front, where editors look for it.
        Some(l) => {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            let mut err = err.at(l.line(), l.column());
            if let Some(m) = err.message.strip_suffix(&suffix) {
                err.message = m.to_string();
            }
            err
        }
        None => err,
    }
}

enum SecretField {
    /// `apps[i].codes` itself: a list of secrets.
    Codes,
    /// One secret: an AppSecret, an AppCode or an account's SK.
    One,
}

/// Whether `rest` (the field path inside an object of `list`) is, or is
/// inside, a field holding a secret.
fn secret_field(list: &str, rest: &str) -> Option<SecretField> {
    let head = rest.split(['.', '[']).next().unwrap_or("");
    match (list, head) {
        ("apps", "codes") if rest == "codes" => Some(SecretField::Codes),
        ("apps", "secret" | "codes") | ("accounts", "sk") => Some(SecretField::One),
        _ => None,
    }
}

/// Belt and braces for errors not located in a secret field: any text of a
/// secret field's value in `message` is masked.
fn redact_secrets(message: &str, value: &serde_yaml::Value) -> String {
    let mut secrets = Vec::new();
    for (list, fields) in [("apps", &["secret", "codes"][..]), ("accounts", &["sk"])] {
        let objects = value.get(list).and_then(|l| l.as_sequence());
        for object in objects.into_iter().flatten() {
            for field in fields {
                if let Some(v) = object.get(field) {
                    collect_scalars(v, &mut secrets);
                }
            }
        }
    }
    let mut message = message.to_string();
    // Longest first, so a secret containing another is masked whole; very
    // short values would mask ordinary words (and are refused anyway).
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        message = message.replace(secret.as_str(), "***");
    }
    message
}

fn collect_scalars(v: &serde_yaml::Value, out: &mut Vec<String>) {
    use serde_yaml::Value;
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Sequence(items) => items.iter().for_each(|i| collect_scalars(i, out)),
        // `{env: NAME}` and `{file: path}` name where a secret is, not it.
        Value::Mapping(m) => m
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), Some("env" | "file")))
            .for_each(|(k, v)| {
                collect_scalars(k, out);
                collect_scalars(v, out);
            }),
        Value::Tagged(t) => collect_scalars(&t.value, out),
        Value::Null | Value::Bool(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_masked_but_not_where_they_come_from() {
        let value: serde_yaml::Value = serde_yaml::from_str(
            "apps: [{secret: S3cretValue, codes: [{file: codes/a}, C0deValue]}]\n\
             accounts: [{sk: {env: SK_VAR}}, {sk: SkValue1}]",
        )
        .unwrap();
        let masked = redact_secrets(
            "saw S3cretValue, C0deValue, SkValue1 near file codes/a and SK_VAR",
            &value,
        );
        assert_eq!(masked, "saw ***, ***, *** near file codes/a and SK_VAR");
    }

    #[test]
    fn secret_fields_are_recognised() {
        assert!(matches!(
            secret_field("apps", "codes"),
            Some(SecretField::Codes)
        ));
        for (list, rest) in [
            ("apps", "codes[2]"),
            ("apps", "secret"),
            ("apps", "secret.env"),
            ("accounts", "sk"),
        ] {
            assert!(
                matches!(secret_field(list, rest), Some(SecretField::One)),
                "{list} {rest}"
            );
        }
        for (list, rest) in [("apps", "key"), ("accounts", "ak"), ("apis", "secret")] {
            assert!(secret_field(list, rest).is_none(), "{list} {rest}");
        }
    }
}
