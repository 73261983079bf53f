//! Pylon definitions → a Swagger 2.0 document with Huawei or Alibaba
//! extensions, or a plain OpenAPI 3.0 document (Huawei user guide §5.2.9:
//! base, full and extended scopes). Secrets (apps, accounts) are never
//! written: no vendor format holds them.

use pylon_filter::plan::{
    AclAction, AclKind, AppCodeMode, AuthKind, Location, MatchMode, Method, ParamType, Protocol,
    RequestMode,
};
use serde_json::{json, Map, Value};

use super::report::{Level, Reports};
use super::{escape, Format, Scope, ALIYUN_SYSTEM};
use crate::defs::{
    AclDef, ApiDef, BackendDef, BackendParamDef, ConditionDef, Defs, ParamDef, PolicyDef, Scheme,
    ThrottleDef, TimeUnit,
};

fn lower_method(m: Method) -> &'static str {
    match m {
        Method::Get => "get",
        Method::Post => "post",
        Method::Put => "put",
        Method::Delete => "delete",
        Method::Patch => "patch",
        Method::Head => "head",
        Method::Options => "options",
        Method::Any => "any",
    }
}

fn loc(l: Location) -> &'static str {
    match l {
        Location::Path => "path",
        Location::Query => "query",
        Location::Header => "header",
    }
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).expect("serializes")
}

/// A number's text as a JSON number when it reads back identically.
fn number_or_text(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        if i.to_string() == s {
            return json!(i);
        }
    }
    json!(s)
}

fn f64_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

/// The schema keywords of a parameter (Swagger 2.0 puts them on the
/// parameter, OpenAPI 3 in `schema`).
fn schema_of(p: &ParamDef) -> Map<String, Value> {
    let mut s = Map::new();
    let number = p.kind == ParamType::Number;
    s.insert(
        "type".into(),
        json!(if number { "number" } else { "string" }),
    );
    let val = |t: &str| if number { number_or_text(t) } else { json!(t) };
    if let Some(d) = &p.default {
        s.insert("default".into(), val(&d.0));
    }
    if let Some(v) = p.min_length {
        s.insert("minLength".into(), json!(v));
    }
    if let Some(v) = p.max_length {
        s.insert("maxLength".into(), json!(v));
    }
    if let Some(v) = p.min {
        s.insert("minimum".into(), f64_value(v));
    }
    if let Some(v) = p.max {
        s.insert("maximum".into(), f64_value(v));
    }
    if !p.allowed.is_empty() {
        s.insert(
            "enum".into(),
            Value::Array(p.allowed.iter().map(|t| val(&t.0)).collect()),
        );
    }
    if let Some(v) = &p.pattern {
        s.insert("pattern".into(), json!(v));
    }
    s
}

fn huawei_backend_param(p: &BackendParamDef) -> Value {
    let (origin, value) = match (&p.from, &p.constant, &p.system) {
        (Some(f), _, _) => ("REQUEST", f.clone()),
        (_, Some(c), _) => ("CONSTANT", c.0.clone()),
        (_, _, Some(s)) => (
            "SYSTEM",
            to_value(s).as_str().unwrap_or_default().to_string(),
        ),
        _ => ("REQUEST", String::new()),
    };
    let mut m = json!({"name": p.name, "in": loc(p.location).to_ascii_uppercase(), "origin": origin, "value": value});
    if !p.description.is_empty() {
        m["description"] = json!(p.description);
    }
    m
}

/// `x-pylon-tls`: a backend's CA, client certificate and key as paths
/// (never their contents), and the verification opt-out; no vendor field
/// holds them.
fn tls_value(t: &crate::tls::BackendTlsDef) -> Option<Value> {
    let mut m = Map::new();
    for (k, p) in [("ca", &t.ca), ("cert", &t.cert), ("key", &t.key)] {
        if let Some(p) = p {
            m.insert(k.into(), json!(p.to_string_lossy()));
        }
    }
    if t.insecure_skip_verify {
        m.insert("insecure_skip_verify".into(), json!(true));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// `type` and the endpoint object of a Huawei backend.
fn huawei_endpoint(b: &BackendDef, m: &mut Map<String, Value>) {
    if let Some(h) = &b.http {
        let mut e = json!({
            "address": h.address,
            "scheme": if h.scheme == Scheme::Https { "https" } else { "http" },
            "method": h.method.map_or("ANY".to_string(), |m| lower_method(m).to_ascii_uppercase()),
            "path": h.path,
            "timeout": h.timeout,
        });
        if h.allow_internal_address {
            e["x-pylon-allow-internal-address"] = json!(true);
        }
        if let Some(t) = &h.tls {
            // Huawei's two-way authentication toward the backend (user guide §8.4.1).
            if t.cert.is_some() {
                e["enableClientSsl"] = json!(true);
            }
            if let Some(v) = tls_value(t) {
                e["x-pylon-tls"] = v;
            }
        }
        m.insert("type".into(), json!("HTTP"));
        m.insert("httpEndpoints".into(), e);
    } else if let Some(mock) = &b.mock {
        let mut e = json!({"result-content": mock.body});
        if mock.status != 200 {
            e["x-pylon-status"] = json!(mock.status);
        }
        if !mock.headers.is_empty() {
            e["x-pylon-headers"] = to_value(&mock.headers);
        }
        m.insert("type".into(), json!("MOCK"));
        m.insert("mockEndpoints".into(), e);
    }
}

fn condition(c: &ConditionDef) -> Value {
    let test = c.test.map(|t| to_value(&t)).unwrap_or(json!("equal"));
    let value = c.value.as_ref().map(|v| v.0.clone()).unwrap_or_default();
    if let Some(s) = &c.source {
        json!({"origin": "source", "value": s.0})
    } else if let Some(p) = &c.param {
        json!({"origin": "request", "parameter": p, "type": test, "value": value})
    } else {
        let sys = c.system.map(|s| to_value(&s)).unwrap_or_default();
        let name = match sys.as_str() {
            Some("ReqPath") => "reqPath",
            _ => "reqMethod",
        };
        json!({"origin": "system", "parameter": name, "type": test, "value": value})
    }
}

fn policy(p: &PolicyDef) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(p.name));
    m.insert(
        "effectMode".into(),
        json!(if p.effect == pylon_filter::plan::Effect::All {
            "ALL"
        } else {
            "ANY"
        }),
    );
    huawei_endpoint(&p.backend, &mut m);
    if !p.backend.params.is_empty() {
        m.insert(
            "parameters".into(),
            Value::Array(p.backend.params.iter().map(huawei_backend_param).collect()),
        );
    }
    m.insert(
        "conditions".into(),
        Value::Array(p.conditions.iter().map(condition).collect()),
    );
    Value::Object(m)
}

fn throttle(t: &ThrottleDef) -> Value {
    let unit = match t.unit {
        TimeUnit::Second => "SECOND",
        TimeUnit::Minute => "MINUTE",
        TimeUnit::Hour => "HOUR",
        TimeUnit::Day => "DAY",
    };
    let mut m =
        json!({"api-limit": t.api_limit, "interval": t.interval, "unit": unit, "shared": t.shared});
    for (k, v) in [
        ("user-limit", t.user_limit),
        ("app-limit", t.app_limit),
        ("ip-limit", t.ip_limit),
    ] {
        if let Some(v) = v {
            m[k] = json!(v);
        }
    }
    let mut special: Vec<Value> = t
        .special_apps
        .iter()
        .map(|(i, l)| json!({"type": "APP", "limit": l, "instance": i}))
        .collect();
    special.extend(
        t.special_users
            .iter()
            .map(|(i, l)| json!({"type": "USER", "limit": l, "instance": i})),
    );
    if !special.is_empty() {
        m["special"] = Value::Array(special);
    }
    if !t.description.is_empty() {
        m["description"] = json!(t.description);
    }
    m
}

fn acl(a: &AclDef) -> Value {
    let mut m = json!({
        "acl-type": if a.action == AclAction::Allow { "PERMIT" } else { "DENY" },
        "entity-type": if a.kind == AclKind::Ip { "IP" } else { "DOMAIN" },
        "value": a.values.join(","),
    });
    if !a.description.is_empty() {
        m["description"] = json!(a.description);
    }
    m
}

pub struct Exported {
    pub doc: Value,
    pub reports: Vec<super::report::Report>,
}

/// Exports one group (`group`, or the only one).
pub fn export(
    defs: &Defs,
    group: Option<&str>,
    format: Format,
    scope: Scope,
) -> Result<Exported, String> {
    let g = match group {
        Some(name) => defs
            .groups
            .iter()
            .find(|g| g.def.name == name)
            .ok_or_else(|| format!("no group `{name}`"))?,
        None if defs.groups.len() == 1 => &defs.groups[0],
        None => return Err("the definitions hold several groups; choose one with --group".into()),
    };
    let g = &g.def;
    let mut r = Reports::default();
    let vendor = format != Format::Openapi;
    let mut doc = Map::new();
    let mut info = json!({"title": g.name, "version": "1.0.0"});
    if !g.description.is_empty() {
        info["description"] = json!(g.description);
    }
    doc.insert("info".into(), info);
    if vendor {
        doc.insert("swagger".into(), json!("2.0"));
        if let Some(d) = g.domains.iter().find(|d| !d.starts_with('*')) {
            doc.insert("host".into(), json!(d));
        }
        let mut pg = Map::new();
        if g.default {
            pg.insert("default".into(), json!(true));
        }
        if !g.domains.is_empty() {
            pg.insert("domains".into(), to_value(&g.domains));
        }
        if !g.variables.is_empty() && scope >= Scope::Full {
            pg.insert("variables".into(), to_value(&g.variables));
        }
        if !g.certificates.is_empty() {
            // Paths only; the consoles bind certificates per domain and
            // never import them (Huawei user guide §5.1.2).
            pg.insert("certificates".into(), to_value(&g.certificates));
            r.push(Level::Note, "#/x-pylon-group/certificates", "the vendor's format has no certificates: written as Pylon's extension (paths only); bind them in the console");
        }
        if !pg.is_empty() {
            doc.insert("x-pylon-group".into(), Value::Object(pg));
        }
        let envs: Vec<Value> = defs
            .environments
            .iter()
            .map(|e| {
                let mut m = json!({"name": e.def.name});
                if !e.def.description.is_empty() {
                    m["description"] = json!(e.def.description);
                }
                m
            })
            .collect();
        if !envs.is_empty() {
            doc.insert("x-pylon-environments".into(), Value::Array(envs));
        }
        // The three schemes Huawei's exporter always writes.
        doc.insert("securityDefinitions".into(), json!({
            "apig-auth-app": {"type": "apiKey", "name": "Authorization", "in": "header", "x-apigateway-auth-type": "AppSigv1"},
            "apig-auth-app-header": {"type": "apiKey", "name": "Authorization", "in": "header", "x-apigateway-auth-type": "AppSigv1", "x-apigateway-auth-opt": {"appcode-auth-type": "header"}},
            "apig-auth-iam": {"type": "apiKey", "name": "unused", "in": "header", "x-apigateway-auth-type": "IAM"},
        }));
        if !g.responses.is_empty() {
            let mut sets = Map::new();
            for (set, types) in &g.responses {
                let mut t = Map::new();
                for (ty, resp) in types {
                    let mut m = Map::new();
                    if let Some(s) = resp.status {
                        m.insert("status".into(), json!(s));
                    }
                    if let Some(b) = &resp.body {
                        m.insert("body".into(), json!({"application/json": b}));
                    }
                    if !resp.headers.is_empty() {
                        m.insert("x-pylon-headers".into(), to_value(&resp.headers));
                    }
                    t.insert(
                        to_value(ty).as_str().unwrap_or_default().to_string(),
                        Value::Object(m),
                    );
                }
                sets.insert(set.clone(), Value::Object(t));
            }
            doc.insert("x-apigateway-responses".into(), Value::Object(sets));
        }
    } else {
        doc.insert("openapi".into(), json!("3.0.3"));
        if !g.domains.is_empty()
            || g.default
            || !g.responses.is_empty()
            || !g.variables.is_empty()
            || !g.certificates.is_empty()
        {
            r.push(Level::Unsupported, "#/info", "domains, variables, gateway responses and certificates have no place in plain OpenAPI; not exported");
        }
    }

    let apis: Vec<&ApiDef> = defs
        .apis
        .iter()
        .map(|a| &a.def)
        .filter(|a| a.group == g.name)
        .collect();
    let mut paths: Map<String, Value> = Map::new();
    let mut uses_app = false;
    let mut uses_iam = false;
    for api in &apis {
        r.operation = api.name.clone();
        let key = if api.method == Method::Any {
            if !vendor {
                r.push(
                    Level::Refused,
                    &format!("#/paths/{}", escape(&api.path)),
                    "ANY has no OpenAPI method; API not exported",
                );
                continue;
            }
            if format == Format::Aliyun {
                "x-aliyun-apigateway-any-method"
            } else {
                "x-apigateway-any-method"
            }
        } else {
            lower_method(api.method)
        };
        let ptr = format!("#/paths/{}/{}", escape(&api.path), key);
        let op = operation(
            defs,
            api,
            format,
            scope,
            &ptr,
            &mut r,
            &mut uses_app,
            &mut uses_iam,
        );
        paths.entry(api.path.clone()).or_insert_with(|| json!({}))[key] = op;
    }
    doc.insert("paths".into(), Value::Object(paths));
    if !vendor && (uses_app || uses_iam) {
        let mut s = Map::new();
        if uses_app {
            s.insert(
                "apig-auth-app".into(),
                json!({"type": "apiKey", "name": "Authorization", "in": "header"}),
            );
        }
        if uses_iam {
            s.insert(
                "apig-auth-iam".into(),
                json!({"type": "apiKey", "name": "Authorization", "in": "header"}),
            );
        }
        doc.insert("components".into(), json!({"securitySchemes": s}));
    }
    if scope == Scope::Extended {
        let in_group =
            |b: &[crate::defs::GrantDef]| b.is_empty() || b.iter().any(|b| b.group == g.name);
        let ts: Map<String, Value> = defs
            .throttles
            .iter()
            .filter(|t| in_group(&t.def.bindings))
            .map(|t| (t.def.name.clone(), throttle(&t.def)))
            .collect();
        let acls: Map<String, Value> = defs
            .acls
            .iter()
            .filter(|a| in_group(&a.def.bindings))
            .map(|a| (a.def.name.clone(), acl(&a.def)))
            .collect();
        r.operation.clear();
        if vendor {
            if !ts.is_empty() {
                doc.insert("x-apigateway-ratelimits".into(), Value::Object(ts));
            }
            if !acls.is_empty() {
                doc.insert("x-apigateway-access-controls".into(), Value::Object(acls));
            }
        } else if !ts.is_empty() || !acls.is_empty() {
            r.push(Level::Unsupported, "#", "throttling and access-control policies have no place in plain OpenAPI; not exported");
        }
    }
    Ok(Exported {
        doc: Value::Object(doc),
        reports: r.items,
    })
}

#[allow(clippy::too_many_arguments)]
fn operation(
    defs: &Defs,
    api: &ApiDef,
    format: Format,
    scope: Scope,
    ptr: &str,
    r: &mut Reports,
    uses_app: &mut bool,
    uses_iam: &mut bool,
) -> Value {
    let vendor = format != Format::Openapi;
    let mut op = Map::new();
    op.insert("operationId".into(), json!(api.name));
    if !api.description.is_empty() {
        op.insert("description".into(), json!(api.description));
    }
    op.insert(
        "responses".into(),
        json!({"default": {"description": "the backend's answer"}}),
    );
    // Parameters.
    let params: Vec<Value> = api
        .parameters
        .iter()
        .map(|p| {
            let mut m = Map::new();
            m.insert("name".into(), json!(p.name));
            m.insert("in".into(), json!(loc(p.location)));
            if p.required || p.location == Location::Path {
                m.insert("required".into(), json!(true));
            }
            if !p.description.is_empty() {
                m.insert("description".into(), json!(p.description));
            }
            if vendor {
                m.extend(schema_of(p));
            } else {
                m.insert("schema".into(), Value::Object(schema_of(p)));
            }
            if format == Format::Aliyun && scope >= Scope::Full {
                if let Some(b) = first_mapping(api, &p.name) {
                    m.insert(
                        "x-aliyun-apigateway-backend-location".into(),
                        json!(loc(b.location)),
                    );
                    m.insert("x-aliyun-apigateway-backend-name".into(), json!(b.name));
                }
            }
            Value::Object(m)
        })
        .collect();
    let mut params = params;
    // Swagger and OpenAPI require every path template to be declared; Pylon
    // takes an undeclared `{name}` as a string (marked so an import keeps it
    // implicit).
    for seg in api.path.split('/') {
        let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            continue;
        };
        if api
            .parameters
            .iter()
            .any(|p| p.name == name && p.location == Location::Path)
        {
            continue;
        }
        let mut m = json!({"name": name, "in": "path", "required": true});
        if vendor {
            m["type"] = json!("string");
            m["x-pylon-implicit"] = json!(true);
        } else {
            m["schema"] = json!({"type": "string"});
        }
        params.push(m);
    }
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    // Request protocol: Swagger's `schemes`, as Huawei's exporter writes it
    // (user guide §5.2.1); Alibaba's request config lists it too, with
    // WEBSOCKET; Huawei has no WebSocket flag (every API takes it, §8.3.13).
    let schemes: &[&str] = match api.protocol {
        Protocol::Http => &["http"],
        Protocol::Https => &["https"],
        Protocol::Both => &["http", "https"],
    };
    match format {
        Format::Huawei | Format::Aliyun => {
            op.insert("schemes".into(), json!(schemes));
            if format == Format::Aliyun {
                let mut p = schemes.join(",").to_ascii_uppercase();
                if api.websocket {
                    p.push_str(",WEBSOCKET");
                }
                op.insert(
                    "x-aliyun-apigateway-request-config".into(),
                    json!({ "requestProtocol": p }),
                );
            } else if api.websocket {
                op.insert("x-pylon-websocket".into(), json!(true));
            }
        }
        Format::Openapi => {
            if api.protocol != Protocol::Both || api.websocket {
                r.push(Level::Unsupported, ptr, "the request protocol and WebSocket have no place in plain OpenAPI (`servers` hold the backend); not exported");
            }
        }
    }
    // Authentication.
    let scheme = match (api.auth, api.app_code) {
        (AuthKind::None, _) => None,
        (AuthKind::Iam, _) => Some("apig-auth-iam"),
        (AuthKind::App, AppCodeMode::Disabled) => Some("apig-auth-app"),
        (AuthKind::App, _) if format == Format::Huawei => Some("apig-auth-app-header"),
        (AuthKind::App, _) => Some("apig-auth-app"),
    };
    match format {
        Format::Huawei => {
            if let Some(s) = scheme {
                op.insert("security".into(), json!([{ s: [] }]));
            }
            if api.app_code == AppCodeMode::HttpAllowed {
                op.insert("x-pylon-app-code".into(), json!("http_allowed"));
            }
            if api.allow_hmac_sha1 {
                op.insert("x-pylon-allow-hmac-sha1".into(), json!(true));
            }
            if api.request_mode != RequestMode::MappingPassthrough {
                op.insert("x-pylon-request-mode".into(), to_value(&api.request_mode));
            }
        }
        Format::Aliyun => {
            match api.auth {
                AuthKind::App => {
                    op.insert("x-aliyun-apigateway-auth-type".into(), json!("APP"));
                }
                AuthKind::None => {
                    op.insert("x-aliyun-apigateway-auth-type".into(), json!("ANONYMOUS"));
                }
                AuthKind::Iam => {
                    r.push(
                        Level::Unsupported,
                        &format!("{ptr}/security"),
                        "Alibaba has no IAM authentication; written with Huawei's scheme",
                    );
                    op.insert("security".into(), json!([{"apig-auth-iam": []}]));
                }
            }
            let code = match api.app_code {
                AppCodeMode::Disabled => "DISABLE",
                _ => "HEADER_QUERY",
            };
            op.insert("x-aliyun-apigateway-app-code-auth-type".into(), json!(code));
            if api.app_code == AppCodeMode::Https {
                op.insert("x-pylon-app-code".into(), json!("https"));
            }
            if api.auth == AuthKind::App {
                op.insert(
                    "x-aliyun-apigateway-allow-signature-method".into(),
                    json!(if api.allow_hmac_sha1 {
                        "HmacSHA1,HmacSHA256"
                    } else {
                        "HmacSHA256"
                    }),
                );
            } else if api.allow_hmac_sha1 {
                op.insert("x-pylon-allow-hmac-sha1".into(), json!(true));
            }
            let handling = match api.request_mode {
                RequestMode::Passthrough => "PASSTHROUGH",
                RequestMode::Mapping => "MAPPING",
                RequestMode::MappingPassthrough => "MAPPING_PASSTHROUGH",
            };
            op.insert(
                "x-aliyun-apigateway-parameter-handling".into(),
                json!(handling),
            );
        }
        Format::Openapi => {
            if let Some(s) = scheme {
                if api.auth == AuthKind::Iam {
                    *uses_iam = true
                } else {
                    *uses_app = true
                }
                op.insert("security".into(), json!([{ s: [] }]));
            }
            if api.app_code != AppCodeMode::Disabled
                || api.allow_hmac_sha1
                || api.request_mode != RequestMode::MappingPassthrough
                || api.cors
                || api.match_mode == MatchMode::Prefix
                || api.response.is_some()
            {
                r.push(Level::Unsupported, ptr, "gateway options (AppCode, HmacSHA1, request mode, CORS, prefix match, response set) have no place in plain OpenAPI; not exported");
            }
        }
    }
    if vendor {
        if !api.publish.is_empty() {
            op.insert("x-pylon-publish".into(), to_value(&api.publish));
        }
        // Alibaba has no extension for these; Huawei's are written so a round
        // trip keeps them.
        op.insert(
            "x-apigateway-match-mode".into(),
            json!(if api.match_mode == MatchMode::Prefix {
                "SWA"
            } else {
                "NORMAL"
            }),
        );
        op.insert("x-apigateway-cors".into(), json!(api.cors));
        if format == Format::Huawei {
            op.insert("x-apigateway-request-type".into(), json!("public"));
        }
        if let Some(rs) = &api.response {
            op.insert("x-apigateway-response".into(), json!(rs));
        }
    }
    if scope >= Scope::Full {
        match format {
            Format::Huawei => {
                let mut b = Map::new();
                huawei_endpoint(&api.backend, &mut b);
                if !api.backend.params.is_empty() {
                    b.insert(
                        "parameters".into(),
                        Value::Array(
                            api.backend
                                .params
                                .iter()
                                .map(huawei_backend_param)
                                .collect(),
                        ),
                    );
                }
                op.insert("x-apigateway-backend".into(), Value::Object(b));
            }
            Format::Aliyun => aliyun_backend(api, &mut op),
            Format::Openapi => {
                let http = api.backend.http.as_ref();
                let base = http.and_then(|h| h.path.strip_suffix(api.path.as_str()));
                match (http, base) {
                    (Some(h), Some(base)) if h.method.is_none() && api.backend.params.is_empty() && !h.address.contains('#') && !base.contains('#') => {
                        let scheme = if h.scheme == Scheme::Https { "https" } else { "http" };
                        op.insert("servers".into(), json!([{"url": format!("{scheme}://{}{base}", h.address)}]));
                        if h.timeout != 5000 || h.allow_internal_address || h.tls.as_ref().and_then(tls_value).is_some() {
                            r.push(Level::Unsupported, &format!("{ptr}/servers"), "backend timeout, internal-address permission and TLS files not exported");
                        }
                    }
                    _ => r.push(Level::Unsupported, &format!("{ptr}/servers"), "this backend (mock, variables, own method, path or parameters) cannot be written as an OpenAPI server; not exported"),
                }
            }
        }
        if !api.policies.is_empty() {
            if vendor {
                op.insert(
                    "x-apigateway-backend-policies".into(),
                    Value::Array(api.policies.iter().map(policy).collect()),
                );
            } else {
                r.push(
                    Level::Unsupported,
                    ptr,
                    "policy backends have no place in plain OpenAPI; not exported",
                );
            }
        }
    }
    if scope == Scope::Extended && vendor {
        let default_envs = if api.publish.is_empty() {
            vec!["RELEASE".to_string()]
        } else {
            api.publish.clone()
        };
        let t = bound_to(
            api,
            defs.throttles
                .iter()
                .map(|t| (&t.def.name, &t.def.bindings)),
        );
        let a = bound_to(
            api,
            defs.acls.iter().map(|a| (&a.def.name, &a.def.bindings)),
        );
        for (list, key, pylon_key) in [
            (t, "x-apigateway-ratelimit", "x-pylon-ratelimit-bindings"),
            (
                a,
                "x-apigateway-access-control",
                "x-pylon-access-control-bindings",
            ),
        ] {
            if let Some((first, _)) = list.first() {
                op.insert(key.into(), json!(first));
            }
            if !(list.is_empty() || (list.len() == 1 && list[0].1 == default_envs)) {
                op.insert(
                    pylon_key.into(),
                    Value::Array(
                        list.iter()
                            .map(|(n, e)| json!({"name": n, "environments": e}))
                            .collect(),
                    ),
                );
            }
        }
    }
    Value::Object(op)
}

/// The policies bound to `api`: (policy name, environments) per binding.
fn bound_to<'a>(
    api: &ApiDef,
    policies: impl Iterator<Item = (&'a String, &'a Vec<crate::defs::GrantDef>)>,
) -> Vec<(String, Vec<String>)> {
    policies
        .flat_map(|(name, bindings)| {
            bindings
                .iter()
                .filter(|b| b.group == api.group && b.api == api.name)
                .map(move |b| (name.clone(), b.environments.clone()))
        })
        .collect()
}

/// The first backend parameter taking request parameter `name`, as Alibaba
/// writes it on the parameter.
fn first_mapping<'a>(api: &'a ApiDef, name: &str) -> Option<&'a BackendParamDef> {
    api.backend
        .params
        .iter()
        .find(|b| b.from.as_deref() == Some(name))
}

fn aliyun_backend(api: &ApiDef, op: &mut Map<String, Value>) {
    let b = &api.backend;
    if let Some(h) = &b.http {
        let scheme = if h.scheme == Scheme::Https {
            "https"
        } else {
            "http"
        };
        let mut m = json!({"type": "HTTP", "address": format!("{scheme}://{}", h.address), "path": h.path, "timeout": h.timeout});
        m["method"] = json!(h.method.map_or("ANY", lower_method));
        if h.allow_internal_address {
            m["x-pylon-allow-internal-address"] = json!(true);
        }
        if let Some(v) = h.tls.as_ref().and_then(tls_value) {
            m["x-pylon-tls"] = v;
        }
        op.insert("x-aliyun-apigateway-backend".into(), m);
    } else if let Some(mock) = &b.mock {
        let mut m = json!({"type": "MOCK", "mockResult": mock.body, "mockStatusCode": mock.status});
        if !mock.headers.is_empty() {
            m["x-pylon-headers"] = to_value(&mock.headers);
        }
        op.insert("x-aliyun-apigateway-backend".into(), m);
    }
    // What Alibaba's fields hold, in the order the importer reads them back:
    // mappings by request parameter, constants, system values; the rest as
    // Pylon's own list.
    let mut constants = Vec::new();
    let mut systems = Vec::new();
    let mut extra = Vec::new();
    let mut mapped: Vec<&str> = Vec::new();
    for p in &api.backend.params {
        let desc = |mut v: Value| {
            if !p.description.is_empty() {
                v["description"] = json!(p.description);
            }
            v
        };
        match (&p.from, &p.constant, &p.system) {
            (Some(f), _, _)
                if !mapped.contains(&f.as_str())
                    && p.description.is_empty()
                    && first_mapping(api, f).is_some_and(|m| std::ptr::eq(m, p))
                    && api.parameters.iter().any(|d| &d.name == f) =>
            {
                mapped.push(f)
            }
            (_, Some(c), _) => constants.push(desc(
                json!({"backendName": p.name, "location": loc(p.location), "value": c.0}),
            )),
            (_, _, Some(s)) => match ALIYUN_SYSTEM.iter().find(|(k, _)| k == s) {
                Some((_, ca)) if p.description.is_empty() => systems.push(
                    json!({"systemName": ca, "backendName": p.name, "location": loc(p.location)}),
                ),
                _ => extra.push(huawei_backend_param(p)),
            },
            _ => extra.push(huawei_backend_param(p)),
        }
    }
    // The importer reads mappings, then constants, then systems: anything
    // out of that order goes to the Pylon list so the order survives.
    let order_ok = {
        let kinds: Vec<u8> = api
            .backend
            .params
            .iter()
            .map(|p| match (&p.from, &p.constant) {
                (Some(_), _) => 0,
                (_, Some(_)) => 1,
                _ => 2,
            })
            .collect();
        kinds.windows(2).all(|w| w[0] <= w[1])
            && extra.is_empty()
            && mapped.len()
                == api
                    .backend
                    .params
                    .iter()
                    .filter(|p| p.from.is_some())
                    .count()
            && api
                .parameters
                .iter()
                .filter_map(|d| first_mapping(api, &d.name))
                .map(|m| m as *const _)
                .eq(api
                    .backend
                    .params
                    .iter()
                    .filter(|p| p.from.is_some())
                    .map(|m| m as *const _))
    };
    if !order_ok {
        // Keep everything in Pylon's list, in order; Alibaba's own fields are
        // still written on the parameters for the console.
        op.insert(
            "x-pylon-backend-parameters".into(),
            Value::Array(
                api.backend
                    .params
                    .iter()
                    .map(huawei_backend_param)
                    .collect(),
            ),
        );
        return;
    }
    if !constants.is_empty() {
        op.insert(
            "x-aliyun-apigateway-constant-parameters".into(),
            Value::Array(constants),
        );
    }
    if !systems.is_empty() {
        op.insert(
            "x-aliyun-apigateway-system-parameters".into(),
            Value::Array(systems),
        );
    }
}
