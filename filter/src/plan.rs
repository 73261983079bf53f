//! The compiled plan: what `pylon compile` writes and the filter reads.
//!
//! One set of types for both sides, so the compiler can never emit a field the
//! filter does not understand. Everything here is already resolved: variables
//! substituted, response sets merged with the defaults, clusters named.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::response::ErrorType;

/// Plan format version; the filter refuses a plan it does not know.
pub const PLAN_VERSION: u32 = 1;

/// Seed: a request body over 12 MB is refused with 413.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 12 * 1024 * 1024;

/// The name of the environment that always exists.
pub const RELEASE: &str = "RELEASE";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub version: u32,
    pub max_body_bytes: u64,
    /// Every environment callers may select; `RELEASE` first.
    pub stages: Vec<String>,
    pub groups: Vec<GroupPlan>,
    /// Callers' apps. Their secrets (and the accounts' SKs) are sealed in a
    /// compiled plan; the filter opens them on load (`seal.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppPlan>,
    /// Requests per second an API without a throttling policy may take.
    #[serde(default = "default_limit")]
    pub default_limit: u64,
    /// Throttling policies, bound to APIs per environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttles: Vec<ThrottlePlan>,
    /// Access control policies, bound to APIs per environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<AclPlan>,
    /// IAM-style accounts (tenants) with AK/SK credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountPlan>,
    /// Per-API metrics and access-log fields (`metrics.rs`); off only to
    /// measure what they cost.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub metrics: bool,
    /// Envoy's access log reads the filter's `pylon_*` fields; without one
    /// (`gateway.access_log: off`, or a target that emits none) writing
    /// them would be a host call per field per request for nobody.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub access_log: bool,
    /// The backend timeout (ms) the compiler's backend route already
    /// applies. The filter sets `x-envoy-upstream-rq-timeout-ms` only for
    /// an API whose timeout differs (or over a client's own value): a
    /// header set is a host call on every request. `None` (a route that
    /// applies only an upper bound): always set. Every target's backend
    /// route (static, xDS, Istio's VirtualService) applies the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_timeout_ms: Option<u32>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPlan {
    pub id: String,
    pub name: String,
    pub ak: String,
    pub sk: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppPlan {
    pub id: String,
    pub name: String,
    pub key: String,
    pub secret: String,
    /// AppCodes for simple authentication (at most 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
}

/// Seed: APIs without a policy take 200 requests per second.
pub const DEFAULT_LIMIT: u64 = 200;

fn default_limit() -> u64 {
    DEFAULT_LIMIT
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottlePlan {
    pub name: String,
    pub window_ms: u64,
    /// `10 second`, as the debug headers print the window.
    pub label: String,
    pub api_limit: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_limit: Option<u64>,
    /// One count across every API bound to the policy (else per API).
    #[serde(default, skip_serializing_if = "is_default")]
    pub shared: bool,
    /// App name → its own app limit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub special_apps: BTreeMap<String, u64>,
    /// Account name → its own user limit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub special_users: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclPlan {
    pub name: String,
    pub kind: AclKind,
    pub action: AclAction,
    /// IP entries (address, CIDR, `a-b` range) or account names.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AclKind {
    Ip,
    Account,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    Allow,
    Deny,
}

/// Whether an APP API accepts AppCode simple authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppCodeMode {
    #[default]
    Disabled,
    /// Over HTTPS only, as the Huawei user guide requires.
    Https,
    /// Also over plain HTTP (explicitly allowed by the API).
    HttpAllowed,
}

/// The request protocols an API accepts (Huawei user guide §5.2.1,
/// "请求协议": HTTP, HTTPS or HTTP&HTTPS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "HTTP", alias = "http")]
    Http,
    #[serde(rename = "HTTPS", alias = "https")]
    Https,
    /// Both: the default, so APIs defined before TLS keep their callers.
    #[default]
    #[serde(rename = "HTTP&HTTPS", alias = "http&https")]
    Both,
}

/// How an API identifies its callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// Anyone may call.
    #[default]
    None,
    /// An authorized app, proven by an APP signature or an AppCode.
    App,
    /// An account, proven by an AK/SK `SDK-HMAC-SHA256` signature.
    Iam,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupPlan {
    pub name: String,
    /// Exact host names and `*.suffix` wildcards.
    pub domains: Vec<String>,
    /// The default group also answers any host no group claims.
    pub default: bool,
    /// Response sets by name; every set holds every error type.
    pub responses: BTreeMap<String, ResponseSet>,
    pub apis: Vec<ApiPlan>,
}

pub type ResponseSet = BTreeMap<ErrorType, ResponseSpec>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseSpec {
    /// `None` keeps the status of the error itself (DEFAULT_4XX / DEFAULT_5XX).
    pub status: Option<u16>,
    pub body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
    Options,
    Any,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Patch,
        Method::Head,
        Method::Options,
        Method::Any,
    ];

    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Any => "ANY",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    #[default]
    Exact,
    Prefix,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiPlan {
    pub id: String,
    pub name: String,
    pub method: Method,
    pub path: String,
    pub match_mode: MatchMode,
    /// Name of the group's response set this API answers errors with.
    pub response: String,
    /// Backend per environment the API is published to.
    pub stages: BTreeMap<String, BackendPlan>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub auth: AuthKind,
    /// Alibaba-style callers may sign with HmacSHA1 (HmacSHA256 always works).
    #[serde(default, skip_serializing_if = "is_default")]
    pub allow_hmac_sha1: bool,
    /// APP APIs may also accept an AppCode instead of a signature.
    #[serde(default, skip_serializing_if = "is_default")]
    pub app_code: AppCodeMode,
    /// Environment → the throttling policy bound to the API there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub throttles: BTreeMap<String, String>,
    /// Environment → access control policies bound to the API there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub acls: BTreeMap<String, Vec<String>>,
    /// Environment → names of the apps authorized to call the API there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorized: BTreeMap<String, Vec<String>>,
    /// What happens to parameters the API does not declare.
    #[serde(default, skip_serializing_if = "is_default")]
    pub request_mode: RequestMode,
    /// Declared request parameters, validated before the backend is called.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ParamPlan>,
    /// Policy backends, tried in order before the default backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyPlan>,
    /// Cross-origin access: answers carry `Access-Control-Allow-Origin`, and
    /// an OPTIONS API with a mock backend answers preflights.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cors: bool,
    /// The request protocols the API is called over (`protocol.rs`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub protocol: Protocol,
    /// A WebSocket upgrade may pass to the backend (`protocol.rs`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub websocket: bool,
}

/// Alibaba's request modes (Huawei behaves as `mapping_passthrough`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestMode {
    /// Declared parameters are checked and mapped; the rest go on unchanged.
    #[default]
    MappingPassthrough,
    /// Declared parameters are checked and mapped; undeclared query
    /// parameters and headers are dropped.
    Mapping,
    /// Everything is forwarded as received; only path parameters exist.
    Passthrough,
}

/// Where a parameter sits in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Path,
    Query,
    Header,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
            Location::Header => "header",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    #[default]
    String,
    Number,
}

/// A declared request parameter and what a valid value looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamPlan {
    pub name: String,
    #[serde(rename = "in")]
    pub location: Location,
    #[serde(rename = "type", default, skip_serializing_if = "is_default")]
    pub kind: ParamType,
    #[serde(default, skip_serializing_if = "is_default")]
    pub required: bool,
    /// Sent to the backend when the caller leaves an optional parameter out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// In characters (strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Bounds of a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The value must be one of these.
    #[serde(default, rename = "enum", skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
    /// A regular expression the value must contain a match of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

impl ParamPlan {
    /// An optional string parameter with no constraints.
    pub fn new(name: &str, location: Location) -> ParamPlan {
        ParamPlan {
            name: name.into(),
            location,
            kind: ParamType::String,
            required: false,
            default: None,
            min_length: None,
            max_length: None,
            min: None,
            max: None,
            allowed: Vec::new(),
            pattern: None,
        }
    }
}

/// One parameter the backend receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendParamPlan {
    pub name: String,
    #[serde(rename = "in")]
    pub location: Location,
    pub value: ParamSource,
}

/// Where a backend parameter's value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamSource {
    /// The value of the named (declared) request parameter.
    Request(String),
    /// A fixed value, invisible to callers.
    Constant(String),
    /// A value the gateway knows about the call.
    System(SystemParam),
}

/// The gateway's own values a backend may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SystemParam {
    SourceIp,
    Stage,
    ApiId,
    AppId,
    RequestId,
    /// The authenticated account's name (IAM-style APIs).
    Account,
    /// `http` or `https`: how the client reached the gateway (Alibaba
    /// system parameter `CaHttpSchema`).
    Protocol,
    /// The domain the client called, without its port (Alibaba `CaDomain`).
    Domain,
}

impl SystemParam {
    pub const ALL: [SystemParam; 8] = [
        SystemParam::SourceIp,
        SystemParam::Stage,
        SystemParam::ApiId,
        SystemParam::AppId,
        SystemParam::RequestId,
        SystemParam::Account,
        SystemParam::Protocol,
        SystemParam::Domain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SystemParam::SourceIp => "sourceIp",
            SystemParam::Stage => "stage",
            SystemParam::ApiId => "apiId",
            SystemParam::AppId => "appId",
            SystemParam::RequestId => "requestId",
            SystemParam::Account => "account",
            SystemParam::Protocol => "protocol",
            SystemParam::Domain => "domain",
        }
    }
}

/// A policy backend: used instead of the default backend when its
/// conditions hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPlan {
    pub name: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub effect: Effect,
    pub conditions: Vec<ConditionPlan>,
    /// The policy's backend per environment the API is published to.
    pub stages: BTreeMap<String, BackendPlan>,
}

/// Whether any one condition or all of them must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    #[default]
    Any,
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionPlan {
    pub on: ConditionOn,
    /// `None` for source conditions (the values are addresses and blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<ConditionTest>,
    /// Equal and pattern: one value; enum and source: one or more.
    pub values: Vec<String>,
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOn {
    /// The client address.
    Source,
    /// A declared request parameter.
    Param(String),
    /// The request path, without the query.
    ReqPath,
    ReqMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConditionTest {
    Equal,
    Enum,
    Pattern,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum BackendPlan {
    Http(HttpBackend),
    Mock(MockBackend),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpBackend {
    /// The Envoy cluster the compiler emitted for this address (it also sets
    /// the Host header the backend receives).
    pub cluster: String,
    /// Backend path template; `{name}` takes the request's path parameter.
    pub path: String,
    /// `None` forwards the caller's method.
    pub method: Option<Method>,
    pub timeout_ms: u32,
    /// Parameters the backend receives: mapped, constant and system ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<BackendParamPlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockBackend {
    pub status: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    pub body: String,
}
