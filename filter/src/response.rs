//! Gateway responses: the Huawei user guide's fixed error types (table 5-2), their
//! `APIG.xxxx` codes (table 6-2) and the `$context.*` body templates.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::plan::{ResponseSet, ResponseSpec};

/// The fixed set of gateway error types; users edit status and body only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorType {
    AccessDenied,
    AuthorizerConfFailure,
    AuthorizerFailure,
    AuthorizerIdentitiesFailure,
    AuthFailure,
    AuthHeaderMissing,
    BackendTimeout,
    BackendUnavailable,
    #[serde(rename = "DEFAULT_4XX")]
    Default4xx,
    #[serde(rename = "DEFAULT_5XX")]
    Default5xx,
    NotFound,
    RequestParametersFailure,
    Throttled,
    Unauthorized,
}

impl ErrorType {
    pub const ALL: [ErrorType; 14] = [
        ErrorType::AccessDenied,
        ErrorType::AuthorizerConfFailure,
        ErrorType::AuthorizerFailure,
        ErrorType::AuthorizerIdentitiesFailure,
        ErrorType::AuthFailure,
        ErrorType::AuthHeaderMissing,
        ErrorType::BackendTimeout,
        ErrorType::BackendUnavailable,
        ErrorType::Default4xx,
        ErrorType::Default5xx,
        ErrorType::NotFound,
        ErrorType::RequestParametersFailure,
        ErrorType::Throttled,
        ErrorType::Unauthorized,
    ];

    /// Table 5-2's default status; `None` keeps the error's own status.
    pub fn default_status(self) -> Option<u16> {
        Some(match self {
            ErrorType::AccessDenied => 403,
            ErrorType::AuthorizerConfFailure | ErrorType::AuthorizerFailure => 500,
            ErrorType::AuthorizerIdentitiesFailure
            | ErrorType::AuthFailure
            | ErrorType::AuthHeaderMissing => 401,
            // Table 5-2 says 401, table 6-2 (APIG.0304) 403: the caller is
            // identified but not allowed, which HTTP calls 403.
            ErrorType::Unauthorized => 403,
            ErrorType::BackendTimeout => 504,
            ErrorType::BackendUnavailable => 502,
            ErrorType::NotFound => 404,
            ErrorType::RequestParametersFailure => 400,
            ErrorType::Throttled => 429,
            ErrorType::Default4xx | ErrorType::Default5xx => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::AccessDenied => "ACCESS_DENIED",
            ErrorType::AuthorizerConfFailure => "AUTHORIZER_CONF_FAILURE",
            ErrorType::AuthorizerFailure => "AUTHORIZER_FAILURE",
            ErrorType::AuthorizerIdentitiesFailure => "AUTHORIZER_IDENTITIES_FAILURE",
            ErrorType::AuthFailure => "AUTH_FAILURE",
            ErrorType::AuthHeaderMissing => "AUTH_HEADER_MISSING",
            ErrorType::BackendTimeout => "BACKEND_TIMEOUT",
            ErrorType::BackendUnavailable => "BACKEND_UNAVAILABLE",
            ErrorType::Default4xx => "DEFAULT_4XX",
            ErrorType::Default5xx => "DEFAULT_5XX",
            ErrorType::NotFound => "NOT_FOUND",
            ErrorType::RequestParametersFailure => "REQUEST_PARAMETERS_FAILURE",
            ErrorType::Throttled => "THROTTLED",
            ErrorType::Unauthorized => "UNAUTHORIZED",
        }
    }
}

/// The default body of every type (Huawei user guide §5.1.4).
pub const DEFAULT_BODY: &str = r#"{"error_code":"$context.error.code","error_msg":"$context.error.message","request_id":"$context.requestId"}"#;

/// One concrete gateway error: its type, natural status, code and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayError {
    pub kind: ErrorType,
    pub status: u16,
    pub code: &'static str,
    pub message: &'static str,
}

impl GatewayError {
    pub const NOT_FOUND: GatewayError = GatewayError {
        kind: ErrorType::NotFound,
        status: 404,
        code: "APIG.0101",
        message: "The API does not exist or has not been published in the environment",
    };
    pub const BODY_TOO_LARGE: GatewayError = GatewayError {
        kind: ErrorType::Default4xx,
        status: 413,
        code: "APIG.0201",
        message: "Request entity too large",
    };
    pub const BACKEND_UNAVAILABLE: GatewayError = GatewayError {
        kind: ErrorType::BackendUnavailable,
        status: 502,
        code: "APIG.0201",
        message: "Backend unavailable",
    };
    pub const BACKEND_TIMEOUT: GatewayError = GatewayError {
        kind: ErrorType::BackendTimeout,
        status: 504,
        code: "APIG.0201",
        message: "Backend timeout",
    };
    pub const CONFIG_NOT_LOADED: GatewayError = GatewayError {
        kind: ErrorType::Default5xx,
        status: 500,
        code: "APIG.0606",
        message: "Failed to load the API configurations",
    };
    pub const BAD_REQUEST: GatewayError = GatewayError {
        kind: ErrorType::Default4xx,
        status: 400,
        code: "APIG.0201",
        message: "API request error",
    };
    /// A declared parameter is missing or invalid; the detail names it.
    pub const BAD_PARAMETERS: GatewayError = GatewayError {
        kind: ErrorType::RequestParametersFailure,
        status: 400,
        code: "APIG.0201",
        message: "Invalid request parameters",
    };
    pub const AUTH_HEADER_MISSING: GatewayError = GatewayError {
        kind: ErrorType::AuthHeaderMissing,
        status: 401,
        code: "APIG.0303",
        message: "Authentication information is missing",
    };
    pub const AUTH_FAILURE: GatewayError = GatewayError {
        kind: ErrorType::AuthFailure,
        status: 401,
        code: "APIG.0303",
        message: "Incorrect app authentication information",
    };
    pub const IAM_HEADER_MISSING: GatewayError = GatewayError {
        kind: ErrorType::AuthHeaderMissing,
        status: 401,
        code: "APIG.0301",
        message: "Authentication information is missing",
    };
    pub const IAM_AUTH_FAILURE: GatewayError = GatewayError {
        kind: ErrorType::AuthFailure,
        status: 401,
        code: "APIG.0301",
        message: "Incorrect IAM authentication information",
    };
    pub const APP_UNAUTHORIZED: GatewayError = GatewayError {
        kind: ErrorType::Unauthorized,
        status: 403,
        code: "APIG.0304",
        message: "The app is not authorized to access the API",
    };
    pub const THROTTLED: GatewayError = GatewayError {
        kind: ErrorType::Throttled,
        status: 429,
        code: "APIG.0308",
        message: "The throttling threshold has been reached",
    };
    pub const IP_DENIED: GatewayError = GatewayError {
        kind: ErrorType::AccessDenied,
        status: 403,
        code: "APIG.0402",
        message: "The IP address is not authorized to access the API",
    };
    pub const ACCOUNT_DENIED: GatewayError = GatewayError {
        kind: ErrorType::AccessDenied,
        status: 403,
        code: "APIG.0302",
        message: "The IAM user is not authorized to access the API",
    };
    pub const INTERNAL: GatewayError = GatewayError {
        kind: ErrorType::Default5xx,
        status: 500,
        code: "APIG.0601",
        message: "Internal server error",
    };
    /// Huawei user guide §6.3.3: a request URI over 32 KiB.
    pub const URI_TOO_LARGE: GatewayError = GatewayError {
        kind: ErrorType::Default4xx,
        status: 414,
        code: "APIG.0201",
        message: "Request URI too large",
    };
    /// Huawei user guide §6.3.3: one header over 32 KiB, or all of them
    /// over 128 KiB.
    pub const HEADERS_TOO_LARGE: GatewayError = GatewayError {
        kind: ErrorType::Default4xx,
        status: 494,
        code: "APIG.0201",
        message: "Request headers too large",
    };
    /// An HTTP/1.0 request: Envoy serves HTTP/1.1 and later only.
    pub const HTTP_VERSION_REFUSED: GatewayError = GatewayError {
        kind: ErrorType::Default4xx,
        status: 426,
        code: "APIG.0201",
        message: "HTTP/1.1 or later is required",
    };
    /// A protocol upgrade to an API that does not declare WebSocket (or one
    /// Envoy does not know).
    pub const UPGRADE_REFUSED: GatewayError = GatewayError {
        kind: ErrorType::Default4xx,
        status: 403,
        code: "APIG.0201",
        message: "Protocol upgrade is not supported",
    };
    /// The filter's VM failed on this request (it is reloaded for later ones).
    pub const GATEWAY_FAILURE: GatewayError = GatewayError {
        kind: ErrorType::Default5xx,
        status: 503,
        code: "APIG.0601",
        message: "Internal server error",
    };

    /// The request has passed through the gateway more than `MAX_HOPS`
    /// times: a backend that is the gateway itself, directly or not.
    pub const LOOP_DETECTED: GatewayError = GatewayError {
        kind: ErrorType::Default5xx,
        status: 500,
        code: "APIG.0612",
        message: "Too many nested calls through the gateway",
    };

    /// Maps a reply Envoy made on the backend's behalf (its
    /// `response.code_details` and status) to the gateway error users expect.
    pub fn from_envoy_reply(details: &str, status: u16) -> GatewayError {
        // Envoy 1.40 says `response_timeout`; older ones `upstream_response_timeout`.
        if details.starts_with("response_timeout")
            || details.starts_with("upstream_response_timeout")
            || details.starts_with("upstream_per_try_timeout")
        {
            return GatewayError::BACKEND_TIMEOUT;
        }
        // Envoy's own buffer limit, hit while the filter holds a chunked body.
        if details.starts_with("request_payload_too_large") {
            return GatewayError::BODY_TOO_LARGE;
        }
        if details.starts_with("upstream_reset_before_response_started")
            || details.starts_with("no_healthy_upstream")
            || details.starts_with("cluster_not_found")
            || details.starts_with("no_cluster")
            || details.starts_with("upstream_")
        {
            return GatewayError::BACKEND_UNAVAILABLE;
        }
        let base = if status < 500 {
            GatewayError::BAD_REQUEST
        } else {
            GatewayError::INTERNAL
        };
        GatewayError {
            status: status.clamp(400, 599),
            ..base
        }
    }
}

/// Which of Envoy's own replies (answered before or instead of the filter)
/// an [`EnvoyReply`] covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvoyMatch {
    /// Envoy's status code.
    Status(u16),
    /// `response.code_details` starts with this.
    Details(&'static str),
    /// Any other reply under 500 (status kept).
    OtherClientError,
    /// Any other reply (status kept).
    Other,
}

/// One mapping from an Envoy reply to the gateway error it is answered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvoyReply {
    pub when: EnvoyMatch,
    pub error: GatewayError,
}

impl EnvoyReply {
    /// The status the reply is given; `None` keeps Envoy's.
    pub fn status(&self) -> Option<u16> {
        match self.when {
            EnvoyMatch::OtherClientError | EnvoyMatch::Other => None,
            _ => Some(self.error.status),
        }
    }

    fn matches(&self, details: &str, status: u16) -> bool {
        match self.when {
            EnvoyMatch::Status(s) => s == status,
            EnvoyMatch::Details(prefix) => details.starts_with(prefix),
            EnvoyMatch::OtherClientError => status < 500,
            EnvoyMatch::Other => true,
        }
    }
}

/// Envoy's own replies, first match wins. The compiler turns this table into
/// the connection manager's `local_reply_config`, so a caller sees the same
/// JSON body whether Envoy or the filter answered. Replies Envoy makes for a
/// backend (timeouts, refused connections) fall under `Other` here and are
/// then rewritten by the filter with the API's own gateway responses.
pub const ENVOY_REPLIES: [EnvoyReply; 8] = [
    // The buffer filter's limit (the gateway's `max_body_bytes`).
    EnvoyReply {
        when: EnvoyMatch::Status(413),
        error: GatewayError::BODY_TOO_LARGE,
    },
    // Envoy's header limit sits just above the product's (URI 32 KiB +
    // headers 128 KiB): whatever it refuses breaks Huawei user guide §6.3.3.
    EnvoyReply {
        when: EnvoyMatch::Status(431),
        error: GatewayError::HEADERS_TOO_LARGE,
    },
    EnvoyReply {
        when: EnvoyMatch::Details("low_version"),
        error: GatewayError::HTTP_VERSION_REFUSED,
    },
    EnvoyReply {
        when: EnvoyMatch::Details("upgrade_failed"),
        error: GatewayError::UPGRADE_REFUSED,
    },
    EnvoyReply {
        when: EnvoyMatch::Details("wasm_fail_stream"),
        error: GatewayError::GATEWAY_FAILURE,
    },
    // Only the fail-closed route answers directly: the filter did not route.
    EnvoyReply {
        when: EnvoyMatch::Details("direct_response"),
        error: GatewayError::CONFIG_NOT_LOADED,
    },
    // Bad framing, `%00` in a path, a missing Host…: Huawei user guide
    // §6.3.3 "API request error".
    EnvoyReply {
        when: EnvoyMatch::OtherClientError,
        error: GatewayError::BAD_REQUEST,
    },
    EnvoyReply {
        when: EnvoyMatch::Other,
        error: GatewayError::INTERNAL,
    },
];

/// The gateway error an Envoy reply becomes, with the status it is sent with
/// (what the generated `local_reply_config` does, for tests and readers).
pub fn envoy_reply(details: &str, status: u16) -> (GatewayError, u16) {
    let rule = ENVOY_REPLIES
        .iter()
        .find(|r| r.matches(details, status))
        .unwrap_or(&ENVOY_REPLIES[ENVOY_REPLIES.len() - 1]);
    (rule.error, rule.status().unwrap_or(status))
}

/// `$context.*` variables a response template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextVar {
    ApiId,
    ApiName,
    AppId,
    /// The authenticated account's name (IAM-style APIs).
    Account,
    RequestId,
    Stage,
    SourceIp,
    ReqPath,
    ReqMethod,
    ErrorCode,
    ErrorMessage,
    ErrorType,
}

impl ContextVar {
    const NAMES: [(&'static str, ContextVar); 12] = [
        ("apiId", ContextVar::ApiId),
        ("apiName", ContextVar::ApiName),
        ("appId", ContextVar::AppId),
        ("account", ContextVar::Account),
        ("requestId", ContextVar::RequestId),
        ("stage", ContextVar::Stage),
        ("sourceIp", ContextVar::SourceIp),
        ("reqPath", ContextVar::ReqPath),
        ("reqMethod", ContextVar::ReqMethod),
        ("error.code", ContextVar::ErrorCode),
        ("error.message", ContextVar::ErrorMessage),
        ("error.type", ContextVar::ErrorType),
    ];
}

/// Values for one rendering. Missing ones render as empty strings.
#[derive(Debug, Default, Clone, Copy)]
pub struct Context<'a> {
    /// Appended to the error message (`message: detail`) when not empty.
    pub error_detail: &'a str,
    pub api_id: &'a str,
    pub api_name: &'a str,
    pub app_id: &'a str,
    pub account: &'a str,
    pub request_id: &'a str,
    pub stage: &'a str,
    pub source_ip: &'a str,
    pub req_path: &'a str,
    pub req_method: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Var(ContextVar),
}

/// A body template parsed once at configuration time.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `$context.name` references; an unknown name is an error so a
    /// typo is caught by the compiler rather than shipped as literal text.
    pub fn parse(src: &str) -> Result<Template, String> {
        const MARK: &str = "$context.";
        let mut parts = Vec::new();
        let mut rest = src;
        while let Some(at) = rest.find(MARK) {
            if at > 0 {
                parts.push(Part::Text(rest[..at].to_string()));
            }
            let after = &rest[at + MARK.len()..];
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
                .unwrap_or(after.len());
            // `$context.error.code.` would take the trailing dot: trim it.
            let name = after[..len].trim_end_matches('.');
            let var = ContextVar::NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| format!("unknown variable `$context.{name}`"))?;
            parts.push(Part::Var(var));
            rest = &after[name.len()..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// Renders the body. Values are JSON-string-escaped: templates are JSON
    /// and a caller-controlled value (a path) must not break out of a string.
    pub fn render(&self, err: &GatewayError, ctx: &Context) -> String {
        let mut out = String::with_capacity(160);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => {
                    let value = match v {
                        ContextVar::ApiId => ctx.api_id,
                        ContextVar::ApiName => ctx.api_name,
                        ContextVar::AppId => ctx.app_id,
                        ContextVar::Account => ctx.account,
                        ContextVar::RequestId => ctx.request_id,
                        ContextVar::Stage => ctx.stage,
                        ContextVar::SourceIp => ctx.source_ip,
                        ContextVar::ReqPath => ctx.req_path,
                        ContextVar::ReqMethod => ctx.req_method,
                        ContextVar::ErrorCode => err.code,
                        ContextVar::ErrorMessage if !ctx.error_detail.is_empty() => {
                            push_json_escaped(&mut out, err.message);
                            out.push_str(": ");
                            ctx.error_detail
                        }
                        ContextVar::ErrorMessage => err.message,
                        ContextVar::ErrorType => err.kind.as_str(),
                    };
                    push_json_escaped(&mut out, value);
                }
            }
        }
        out
    }
}

/// `value` fit for a response header: a message can quote what the caller
/// sent (a decoded query in a string to sign), and a CR, NUL or other
/// control character there would split or break the response.
pub fn header_value(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.chars().any(char::is_control) {
        return value.into();
    }
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .into()
}

fn push_json_escaped(out: &mut String, value: &str) {
    // serde_json quotes the string; keep what is inside the quotes.
    let quoted = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into());
    out.push_str(&quoted[1..quoted.len() - 1]);
}

/// Every group has a response set of this name.
pub const DEFAULT_SET: &str = "default";

/// A fully rendered response the gateway answers itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A response set of the plan, its templates parsed once.
#[derive(Debug)]
pub struct CompiledSet {
    by_type: HashMap<ErrorType, CompiledResponse>,
}

#[derive(Debug)]
struct CompiledResponse {
    status: Option<u16>,
    template: Template,
    headers: Vec<(String, String)>,
}

impl CompiledSet {
    /// Every error type must be in the set (the compiler starts from
    /// `default_set`).
    pub fn compile(set: &ResponseSet) -> Result<CompiledSet, String> {
        let mut by_type = HashMap::new();
        for t in ErrorType::ALL {
            let spec = set
                .get(&t)
                .ok_or_else(|| format!("response set lacks {}", t.as_str()))?;
            let template =
                Template::parse(&spec.body).map_err(|e| format!("{}: {e}", t.as_str()))?;
            let headers = spec
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            by_type.insert(
                t,
                CompiledResponse {
                    status: spec.status,
                    template,
                    headers,
                },
            );
        }
        Ok(CompiledSet { by_type })
    }

    /// The built-in set: for hosts no group claims, and when no plan loaded.
    pub fn builtin() -> CompiledSet {
        CompiledSet::compile(&default_set()).expect("built-in set is valid")
    }

    pub fn render(&self, err: &GatewayError, ctx: &Context) -> Reply {
        let response = &self.by_type[&err.kind];
        Reply {
            status: response.status.unwrap_or(err.status),
            headers: std::iter::once(("content-type".to_string(), "application/json".to_string()))
                .chain(response.headers.iter().cloned())
                .collect(),
            body: response.template.render(err, ctx),
        }
    }
}

/// Renders with the built-in default set: for when no plan could be loaded.
pub fn render_builtin_error(err: &GatewayError, ctx: &Context) -> Reply {
    CompiledSet::builtin().render(err, ctx)
}

/// Every error type with the Huawei user guide's defaults (table 5-2); the
/// compiler starts from this.
pub fn default_set() -> ResponseSet {
    ErrorType::ALL
        .iter()
        .map(|t| {
            (
                *t,
                ResponseSpec {
                    status: t.default_status(),
                    body: DEFAULT_BODY.to_string(),
                    headers: Default::default(),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_carry_no_control_characters() {
        assert!(matches!(
            header_value("a: b#c"),
            std::borrow::Cow::Borrowed("a: b#c")
        ));
        assert_eq!(header_value("a=\r\nX-Evil: 1\0\u{b}é"), "a=  X-Evil: 1  é");
    }

    #[test]
    fn default_body_renders_code_message_and_request_id() {
        let t = Template::parse(DEFAULT_BODY).unwrap();
        let ctx = Context {
            request_id: "abc",
            ..Default::default()
        };
        let body = t.render(&GatewayError::NOT_FOUND, &ctx);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error_code"], "APIG.0101");
        assert_eq!(v["request_id"], "abc");
        assert_eq!(
            v["error_msg"],
            "The API does not exist or has not been published in the environment"
        );
    }

    #[test]
    fn all_variables_render_and_values_are_escaped() {
        let src = r#"{"a":"$context.apiId","t":"$context.error.type","s":"$context.stage","ip":"$context.sourceIp","p":"$context.reqPath"}"#;
        let t = Template::parse(src).unwrap();
        let ctx = Context {
            api_id: "id1",
            stage: "TEST",
            source_ip: "10.0.0.1",
            req_path: "/x\"},\"evil\":{\"",
            ..Default::default()
        };
        let v: serde_json::Value =
            serde_json::from_str(&t.render(&GatewayError::BACKEND_TIMEOUT, &ctx)).unwrap();
        assert_eq!(v["a"], "id1");
        assert_eq!(v["t"], "BACKEND_TIMEOUT");
        assert_eq!(v["s"], "TEST");
        assert_eq!(v["ip"], "10.0.0.1");
        assert_eq!(v["p"], "/x\"},\"evil\":{\"");
        assert!(v.get("evil").is_none());
    }

    #[test]
    fn trailing_dot_after_variable_is_text() {
        let t = Template::parse("code $context.error.code.").unwrap();
        assert_eq!(
            t.render(&GatewayError::NOT_FOUND, &Context::default()),
            "code APIG.0101."
        );
    }

    #[test]
    fn envoy_replies_map_to_backend_errors() {
        let e = GatewayError::from_envoy_reply;
        assert_eq!(
            e("upstream_response_timeout", 504),
            GatewayError::BACKEND_TIMEOUT
        );
        assert_eq!(e("response_timeout", 504), GatewayError::BACKEND_TIMEOUT);
        let refused = "upstream_reset_before_response_started{remote_connection_failure}";
        assert_eq!(e(refused, 503), GatewayError::BACKEND_UNAVAILABLE);
        assert_eq!(
            e("no_healthy_upstream", 503),
            GatewayError::BACKEND_UNAVAILABLE
        );
        let other = e("request_overall_timeout", 408);
        assert_eq!((other.kind, other.status), (ErrorType::Default4xx, 408));
        assert_eq!(e("filter_chain_not_found", 503).kind, ErrorType::Default5xx);
    }

    #[test]
    fn envoy_own_replies_map_to_gateway_errors() {
        let head = envoy_reply("http1.headers_too_large", 431);
        assert_eq!(head, (GatewayError::HEADERS_TOO_LARGE, 494));
        assert_eq!(head.0.code, "APIG.0201");
        assert_eq!(
            envoy_reply("request_payload_too_large", 413),
            (GatewayError::BODY_TOO_LARGE, 413)
        );
        assert_eq!(
            envoy_reply("low_version", 426),
            (GatewayError::HTTP_VERSION_REFUSED, 426)
        );
        assert_eq!(
            envoy_reply("upgrade_failed", 403),
            (GatewayError::UPGRADE_REFUSED, 403)
        );
        assert_eq!(
            envoy_reply("wasm_fail_stream", 503),
            (GatewayError::GATEWAY_FAILURE, 503)
        );
        assert_eq!(
            envoy_reply("direct_response", 500),
            (GatewayError::CONFIG_NOT_LOADED, 500)
        );
        let framing = envoy_reply("http1.content_length_and_chunked_not_allowed", 400);
        assert_eq!(framing, (GatewayError::BAD_REQUEST, 400));
        assert_eq!(
            envoy_reply("path_normalization_failed", 400),
            (GatewayError::BAD_REQUEST, 400)
        );
        // Other statuses are kept, with the generic code of their class.
        assert_eq!(
            envoy_reply("stream_idle_timeout", 408),
            (GatewayError::BAD_REQUEST, 408)
        );
        assert_eq!(
            envoy_reply("response_timeout", 504),
            (GatewayError::INTERNAL, 504)
        );
    }

    #[test]
    fn unknown_variable_is_rejected() {
        assert!(Template::parse("$context.nope").is_err());
    }

    #[test]
    fn empty_value_renders_empty() {
        let t = Template::parse("[$context.appId]").unwrap();
        assert_eq!(
            t.render(&GatewayError::NOT_FOUND, &Context::default()),
            "[]"
        );
    }
}
