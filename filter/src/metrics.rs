//! The gateway's own metrics (Huawei user guide §1.2 "监控告警": calls,
//! latency and errors per API), host-free: the catalogue, the series one
//! finished request adds to, and each series' Envoy stat name. The adapter
//! defines each series once (proxy-wasm `define_metric`) and keeps its id.
//!
//! Labels travel in the stat name as `;label=value` pairs, which the
//! compiler's `stats_config.stats_tags` cut out again (`tag_regex`), so
//! Prometheus sees `pylon_requests_total{api="…",stage="…",…}` rather than
//! names with the values mangled in. Values come from the plan (API, group,
//! stage, app names) or from fixed sets (status class, error type, scheme),
//! never from what a caller sends, so the number of series is bounded by
//! the plan.

use crate::gateway::{ApiHandle, Gateway};
use crate::plan::AuthKind;
use crate::request_head::RequestHead;
use crate::response::{ErrorType, GatewayError};
use crate::throttle::Dimension;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Histogram,
}

/// Every metric the filter defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Requests,
    RequestDuration,
    BackendDuration,
    GatewayErrors,
    Auth,
    AclRefusals,
    Throttled,
    NonceReplays,
    PolicyBackends,
    AppRequests,
    AppThrottled,
}

/// The labels naming an API's series.
const API: &[&str] = &["api", "group", "stage"];

impl Metric {
    pub const ALL: [Metric; 11] = [
        Metric::Requests,
        Metric::RequestDuration,
        Metric::BackendDuration,
        Metric::GatewayErrors,
        Metric::Auth,
        Metric::AclRefusals,
        Metric::Throttled,
        Metric::NonceReplays,
        Metric::PolicyBackends,
        Metric::AppRequests,
        Metric::AppThrottled,
    ];

    /// The Prometheus name: base units where Envoy allows them (histogram
    /// values are integers in the host ABI, so durations are milliseconds),
    /// `_total` on counters.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Requests => "pylon_requests_total",
            Metric::RequestDuration => "pylon_request_duration_milliseconds",
            Metric::BackendDuration => "pylon_backend_duration_milliseconds",
            Metric::GatewayErrors => "pylon_gateway_errors_total",
            Metric::Auth => "pylon_auth_total",
            Metric::AclRefusals => "pylon_acl_refusals_total",
            Metric::Throttled => "pylon_throttled_requests_total",
            Metric::NonceReplays => "pylon_nonce_replays_total",
            Metric::PolicyBackends => "pylon_policy_backend_selections_total",
            Metric::AppRequests => "pylon_app_requests_total",
            Metric::AppThrottled => "pylon_app_throttled_requests_total",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Metric::RequestDuration | Metric::BackendDuration => Kind::Histogram,
            _ => Kind::Counter,
        }
    }

    /// The labels after the API's (`api`, `group`, `stage`), in name order.
    fn own_labels(self) -> &'static [&'static str] {
        match self {
            Metric::Requests => &["class"],
            Metric::GatewayErrors => &["error_type", "code"],
            Metric::Auth => &["scheme", "outcome"],
            Metric::AclRefusals => &["acl"],
            Metric::Throttled => &["dimension"],
            Metric::PolicyBackends => &["policy"],
            Metric::AppRequests => &["app", "class"],
            Metric::AppThrottled => &["app"],
            _ => &[],
        }
    }

    /// Whether the series carry the API labels. Authentication, nonces and
    /// apps are counted gateway-wide: per API they would multiply series by
    /// the API count (10,000 APIs × 1,000 apps is ten million).
    fn per_api(self) -> bool {
        !matches!(
            self,
            Metric::Auth | Metric::NonceReplays | Metric::AppRequests | Metric::AppThrottled
        )
    }

    /// Every label of the metric, in the order they appear in the name.
    pub fn labels(self) -> Vec<&'static str> {
        let api = if self.per_api() { API } else { &[] };
        api.iter().chain(self.own_labels()).copied().collect()
    }
}

/// Every label any metric carries: the compiler emits one tag per label.
pub const LABELS: [&str; 12] = [
    "api",
    "group",
    "stage",
    "class",
    "error_type",
    "code",
    "scheme",
    "outcome",
    "acl",
    "dimension",
    "policy",
    "app",
];

/// The `stats_tags` regex cutting `label` out of a stat name: the first
/// group is removed from the name, the second is the value (Envoy's tag
/// extraction).
pub fn tag_regex(label: &str) -> String {
    format!("(;{label}=([^;]*))")
}

/// How a caller proved who it is (or tried to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Huawei `SDK-HMAC-SHA256` app signature (Huawei user guide §5.3).
    HuaweiSignature,
    /// Alibaba `X-Ca-Signature` (Alibaba quick start).
    AliyunSignature,
    AppCode,
    /// An IAM-style account's AK/SK signature.
    Account,
    /// No credentials at all.
    None,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::HuaweiSignature => "huawei_signature",
            Scheme::AliyunSignature => "aliyun_signature",
            Scheme::AppCode => "app_code",
            Scheme::Account => "account",
            Scheme::None => "none",
        }
    }

    /// The scheme the request's credentials use, for an API that needs `kind`.
    pub fn of(kind: AuthKind, head: &RequestHead) -> Scheme {
        let auth = head.get("authorization").unwrap_or("");
        if kind == AuthKind::Iam {
            return Scheme::Account;
        }
        if auth.starts_with("SDK-HMAC-SHA256") {
            Scheme::HuaweiSignature
        } else if head.get("x-ca-signature").is_some() {
            Scheme::AliyunSignature
        } else if crate::app_auth::app_code(head).is_some() {
            Scheme::AppCode
        } else {
            Scheme::None
        }
    }
}

/// How authentication ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthOutcome {
    Success,
    /// No credentials (AUTH_HEADER_MISSING).
    Missing,
    /// A wrong signature, key or code, an expired timestamp (AUTH_FAILURE).
    Failure,
    /// The app is not authorized for the API (APP_UNAUTHORIZED).
    Unauthorized,
    /// A nonce seen before.
    Replayed,
}

impl AuthOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthOutcome::Success => "success",
            AuthOutcome::Missing => "missing",
            AuthOutcome::Failure => "failure",
            AuthOutcome::Unauthorized => "unauthorized",
            AuthOutcome::Replayed => "replayed",
        }
    }

    /// The outcome a refusal at authentication stands for.
    pub fn of_error(err: &GatewayError) -> AuthOutcome {
        match err.kind {
            ErrorType::AuthHeaderMissing => AuthOutcome::Missing,
            ErrorType::Unauthorized => AuthOutcome::Unauthorized,
            _ => AuthOutcome::Failure,
        }
    }
}

/// What the pipeline knows when a request ends.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The routed API, stage and chosen backend.
    pub api: Option<ApiHandle>,
    /// The status the client got (0: none, the stream was reset).
    pub status: u16,
    pub error: Option<GatewayError>,
    pub auth: Option<(Scheme, AuthOutcome)>,
    /// The limit that refused the request.
    pub throttled: Option<Dimension>,
    pub app: Option<u32>,
    pub total_ms: Option<u64>,
    pub backend_ms: Option<u64>,
}

/// One series: a metric and its label values (as plan indexes, so a key is
/// a few integers and its name is formatted only once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Series {
    pub metric: Metric,
    pub api: Option<ApiHandle>,
    pub label: Label,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    None,
    /// Status class: 1..=5 for 1xx..5xx, 0 for no status.
    Class(u8),
    Error(ErrorType, &'static str),
    Auth(Scheme, AuthOutcome),
    /// true: IP policy; false: account policy.
    Acl(bool),
    Dimension(Dimension),
    /// Policy backend n (1-based).
    Policy(u8),
    App(u32),
    AppClass(u32, u8),
}

/// What to do to one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Increment,
    Record(u64),
}

fn class(status: u16) -> u8 {
    match status {
        100..=599 => (status / 100) as u8,
        _ => 0,
    }
}

/// The series a finished request adds to, in a fixed order. A forwarded
/// request with an app touches five (requests, two durations, auth, app);
/// each is one host call.
pub fn updates(s: &Summary, mut f: impl FnMut(Series, Op)) {
    let api = s.api.map(ApiHandle::without_policy);
    let mut add = |metric, api, label, op| f(Series { metric, api, label }, op);
    add(
        Metric::Requests,
        api,
        Label::Class(class(s.status)),
        Op::Increment,
    );
    if let Some(ms) = s.total_ms {
        add(Metric::RequestDuration, api, Label::None, Op::Record(ms));
    }
    if let Some(ms) = s.backend_ms {
        add(Metric::BackendDuration, api, Label::None, Op::Record(ms));
    }
    if let Some(err) = s.error {
        let label = Label::Error(err.kind, err.code);
        add(Metric::GatewayErrors, api, label, Op::Increment);
        match err {
            GatewayError::IP_DENIED => {
                add(Metric::AclRefusals, api, Label::Acl(true), Op::Increment)
            }
            GatewayError::ACCOUNT_DENIED => {
                add(Metric::AclRefusals, api, Label::Acl(false), Op::Increment)
            }
            _ => {}
        }
    }
    if let Some((scheme, outcome)) = s.auth {
        add(
            Metric::Auth,
            None,
            Label::Auth(scheme, outcome),
            Op::Increment,
        );
        if outcome == AuthOutcome::Replayed {
            add(Metric::NonceReplays, None, Label::None, Op::Increment);
        }
    }
    if let Some(dim) = s.throttled {
        add(Metric::Throttled, api, Label::Dimension(dim), Op::Increment);
        if let Some(app) = s.app {
            add(Metric::AppThrottled, None, Label::App(app), Op::Increment);
        }
    }
    if let Some(policy) = s.api.map(ApiHandle::policy).filter(|&p| p > 0) {
        add(
            Metric::PolicyBackends,
            api,
            Label::Policy(policy),
            Op::Increment,
        );
    }
    if let Some(app) = s.app {
        let label = Label::AppClass(app, class(s.status));
        add(Metric::AppRequests, None, label, Op::Increment);
    }
}

/// A label value as it may stand in a stat name: `;` separates labels.
fn value(v: &str) -> std::borrow::Cow<'_, str> {
    match v.contains(';') {
        true => v.replace(';', "_").into(),
        false => v.into(),
    }
}

/// The Envoy stat name of a series (Envoy prefixes `wasmcustom.`), e.g.
/// `pylon_requests_total;api=Orders;group=shop;stage=RELEASE;class=2xx`.
pub fn series_name(gw: &Gateway, s: Series) -> String {
    use std::fmt::Write;
    let m = s.metric;
    let mut name = String::from(m.name());
    if m.per_api() {
        let (api, group, stage) = match s.api {
            Some(h) => {
                let view = gw.view(h);
                (view.api.name.as_str(), view.group_name(), view.stage())
            }
            // Before routing: no API, and the asked-for stage is the
            // caller's text, so it is not a label value.
            None => ("", "", ""),
        };
        let _ = write!(
            name,
            ";api={};group={};stage={}",
            value(api),
            value(group),
            value(stage)
        );
    }
    let class_name = |c: u8| match c {
        0 => "none".to_string(),
        c => format!("{c}xx"),
    };
    let app_name = |a: u32| value(&gw.apps.get(a).name).into_owned();
    let own: Vec<String> = match s.label {
        Label::None => vec![],
        Label::Class(c) => vec![class_name(c)],
        Label::Error(t, code) => vec![t.as_str().into(), code.into()],
        Label::Auth(scheme, outcome) => vec![scheme.as_str().into(), outcome.as_str().into()],
        Label::Acl(ip) => vec![if ip { "ip" } else { "account" }.into()],
        Label::Dimension(d) => vec![d.as_str().into()],
        Label::Policy(p) => vec![p.to_string()],
        Label::App(a) => vec![app_name(a)],
        Label::AppClass(a, c) => vec![app_name(a), class_name(c)],
    };
    for (label, v) in m.own_labels().iter().zip(own) {
        let _ = write!(name, ";{label}={v}");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(s: &Summary) -> Vec<(Metric, Label, Op)> {
        let mut out = Vec::new();
        updates(s, |series, op| out.push((series.metric, series.label, op)));
        out
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        for m in Metric::ALL {
            match m.kind() {
                Kind::Counter => assert!(m.name().ends_with("_total"), "{m:?}"),
                Kind::Histogram => assert!(m.name().ends_with("_milliseconds"), "{m:?}"),
            }
            assert!(m.name().starts_with("pylon_"));
            for l in m.labels() {
                assert!(LABELS.contains(&l), "{l} has no tag");
            }
        }
    }

    #[test]
    fn an_unrouted_request_counts_once_with_its_error() {
        let s = Summary {
            status: 404,
            error: Some(GatewayError::NOT_FOUND),
            ..Default::default()
        };
        let got = collect(&s);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (Metric::Requests, Label::Class(4), Op::Increment));
        assert_eq!(
            got[1].1,
            Label::Error(ErrorType::NotFound, GatewayError::NOT_FOUND.code)
        );
    }

    #[test]
    fn a_throttled_app_counts_its_dimension_and_app() {
        let s = Summary {
            status: 429,
            error: Some(GatewayError::THROTTLED),
            auth: Some((Scheme::HuaweiSignature, AuthOutcome::Success)),
            throttled: Some(Dimension::App),
            app: Some(3),
            total_ms: Some(2),
            ..Default::default()
        };
        let metrics: Vec<Metric> = collect(&s).into_iter().map(|(m, _, _)| m).collect();
        assert_eq!(
            metrics,
            [
                Metric::Requests,
                Metric::RequestDuration,
                Metric::GatewayErrors,
                Metric::Auth,
                Metric::Throttled,
                Metric::AppThrottled,
                Metric::AppRequests
            ]
        );
    }

    #[test]
    fn a_replayed_nonce_and_an_acl_refusal_are_counted() {
        let s = Summary {
            status: 401,
            error: Some(GatewayError::AUTH_FAILURE),
            auth: Some((Scheme::AliyunSignature, AuthOutcome::Replayed)),
            ..Default::default()
        };
        assert!(collect(&s).iter().any(|u| u.0 == Metric::NonceReplays));
        let s = Summary {
            status: 403,
            error: Some(GatewayError::IP_DENIED),
            ..Default::default()
        };
        assert!(collect(&s).contains(&(Metric::AclRefusals, Label::Acl(true), Op::Increment)));
    }

    #[test]
    fn tag_regexes_cut_labels_out_of_names() {
        assert_eq!(tag_regex("api"), "(;api=([^;]*))");
        assert_eq!(value("a;b"), "a_b");
    }

    #[test]
    fn schemes_are_told_apart_by_credentials() {
        let head = RequestHead::from_pairs;
        let huawei = head(&[("authorization", "SDK-HMAC-SHA256 Access=k")]);
        assert_eq!(Scheme::of(AuthKind::App, &huawei), Scheme::HuaweiSignature);
        let ali = head(&[("x-ca-signature", "x")]);
        assert_eq!(Scheme::of(AuthKind::App, &ali), Scheme::AliyunSignature);
        let code = head(&[("x-apig-appcode", "c")]);
        assert_eq!(Scheme::of(AuthKind::App, &code), Scheme::AppCode);
        assert_eq!(Scheme::of(AuthKind::App, &head(&[])), Scheme::None);
        assert_eq!(Scheme::of(AuthKind::Iam, &head(&[])), Scheme::Account);
    }
}
