//! Swagger 2.0 / OpenAPI 3.x (YAML or JSON) → Pylon definitions.
//!
//! Every key of every object the importer walks is either mapped or
//! reported (`Obj::finish`): nothing is dropped silently.

use std::collections::{BTreeMap, BTreeSet};

use pylon_filter::plan::{
    AclAction, AclKind, AppCodeMode, AuthKind, ConditionTest, Effect, Location, MatchMode, Method,
    ParamType, Protocol, RequestMode, SystemParam,
};
use pylon_filter::response::ErrorType;
use serde_json::{Map, Value};

use super::report::{Level, Report, Reports};
use super::{escape, DefsOut};
use crate::defs::{
    AclDef, ApiDef, BackendDef, BackendParamDef, ConditionDef, EnvironmentDef, GrantDef, GroupDef,
    HttpBackendDef, MockBackendDef, ParamDef, PolicyDef, ResponseDef, Scheme, SystemCondition,
    Text, ThrottleDef, TimeUnit,
};
use crate::tls::{BackendTlsDef, CertificateDef};

/// Choices the document cannot make.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Group name (default: `info.title`, made a valid name).
    pub group: Option<String>,
    /// Backend for operations whose document gives none: `http[s]://host[:port][/base]`.
    pub backend: Option<String>,
    /// Environments to publish the APIs to (default: none — the vendors'
    /// imports do not publish either, Huawei user guide §5.2.8).
    pub publish: Vec<String>,
}

pub struct Imported {
    pub defs: DefsOut,
    pub reports: Vec<Report>,
}

/// Keys kept as documentation only: reported as notes.
const DOC_KEYS: &[&str] = &[
    "summary",
    "tags",
    "externalDocs",
    "responses",
    "produces",
    "consumes",
    "deprecated",
    "example",
    "examples",
    "format",
    "definitions",
    "x-apigateway-request-type",
    "x-apigateway-result-normal-sample",
    "x-apigateway-result-failure-sample",
    "x-apigateway-sample",
    "x-apigateway-content-type",
    "x-aliyun-apigateway-api-market-enable",
    "requestBody",
    "contact",
    "license",
    "termsOfService",
    "version",
    "xml",
    "title",
    "schemas",
    "requestBodies",
    "headers",
    "securitySchemes",
    "bodyFormat",
    "postBodyDescription",
];

/// An object being read: remembers which keys were used.
struct Obj<'a> {
    map: Option<&'a Map<String, Value>>,
    ptr: String,
    used: BTreeSet<&'static str>,
}

impl<'a> Obj<'a> {
    fn new(v: Option<&'a Value>, ptr: String) -> Obj<'a> {
        Obj {
            map: v.and_then(Value::as_object),
            ptr,
            used: BTreeSet::new(),
        }
    }
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.insert(key);
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }
    fn str(&mut self, key: &'static str) -> Option<String> {
        self.get(key).map(text)
    }
    fn at(&self, key: &str) -> String {
        format!("{}/{}", self.ptr, escape(key))
    }
    /// Reports every key not used.
    fn finish(self, r: &mut Reports) {
        let Some(map) = self.map else { return };
        for (k, v) in map {
            if self.used.contains(k.as_str()) {
                continue;
            }
            let at = format!("{}/{}", self.ptr, escape(k));
            if DOC_KEYS.contains(&k.as_str()) || (k == "description" && v.is_string()) {
                r.push(Level::Note, &at, "kept as documentation only");
            } else if k == "x-apigateway-orchestrations" && v.as_array().is_some_and(Vec::is_empty)
            {
                // An empty list says nothing.
            } else {
                r.push(Level::Unsupported, &at, "not supported by Pylon; ignored");
            }
        }
    }
}

/// A scalar as text (`5000` and `"5000"` alike).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn parse_doc(source: &str) -> Result<Value, String> {
    // JSON first: exported JSON may be indented with tabs, which YAML refuses.
    serde_json::from_str(source)
        .or_else(|_| serde_yaml::from_str::<Value>(source))
        .map_err(|e| format!("not a YAML or JSON document: {e}"))
}

/// A valid Pylon name from a title: `Swagger Petstore` → `Swagger_Petstore`.
pub fn name_from(title: &str, fallback: &str) -> String {
    let mut s: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s = format!("{fallback}_{s}");
    }
    s.truncate(64);
    s.trim_end_matches('_').to_string()
}

struct Ctx<'a> {
    doc: &'a Value,
    r: Reports,
    v3: bool,
    group: String,
    opts: &'a Options,
    /// Scheme name → (auth, AppCode) from the security schemes.
    schemes: BTreeMap<String, Option<(AuthKind, AppCodeMode)>>,
    root_security: Option<&'a Value>,
    base_path: String,
    /// Backend from the document's root `servers` (plain OpenAPI 3).
    root_backend: Option<(HttpBackendDef, String)>,
    throttle_bindings: BTreeMap<String, Vec<GrantDef>>,
    acl_bindings: BTreeMap<String, Vec<GrantDef>>,
    responses: BTreeMap<String, BTreeMap<ErrorType, ResponseDef>>,
    names: BTreeSet<String>,
    /// Swagger 2.0 root `schemes`: the default request protocol.
    root_schemes: Option<&'a Value>,
    /// A Huawei operation was read without Pylon's WebSocket flag.
    huawei_websocket_note: bool,
}

pub fn import(source: &str, opts: &Options) -> Result<Imported, String> {
    let doc = parse_doc(source)?;
    let mut root = Obj::new(Some(&doc), "#".into());
    if root.map.is_none() {
        return Err("the document is not a mapping".into());
    }
    let v3 = match (root.str("swagger"), root.str("openapi")) {
        (Some(v), _) if v == "2.0" => false,
        (_, Some(v)) if v.starts_with("3.") => true,
        _ => return Err("neither `swagger: \"2.0\"` nor `openapi: 3.x`".into()),
    };
    let mut info = Obj::new(root.get("info"), "#/info".into());
    let title = info.str("title").unwrap_or_default();
    let group_name = opts
        .group
        .clone()
        .unwrap_or_else(|| name_from(&title, "group"));
    let mut ctx = Ctx {
        doc: &doc,
        r: Reports::default(),
        v3,
        group: group_name.clone(),
        opts,
        schemes: BTreeMap::new(),
        root_security: None,
        base_path: String::new(),
        root_backend: None,
        throttle_bindings: BTreeMap::new(),
        acl_bindings: BTreeMap::new(),
        responses: BTreeMap::new(),
        names: BTreeSet::new(),
        root_schemes: None,
        huawei_websocket_note: false,
    };
    if opts.group.is_none() && group_name != title {
        ctx.r.push(
            Level::Note,
            "#/info/title",
            format!("group named `{group_name}` (Pylon names are letters, digits, `-`, `_`)"),
        );
    }
    let mut group = GroupDef {
        certificates: Vec::new(),
        name: group_name,
        description: info.str("description").unwrap_or_default(),
        domains: Vec::new(),
        default: false,
        variables: BTreeMap::new(),
        responses: BTreeMap::new(),
    };
    info.finish(&mut ctx.r);

    // Pylon's own group facts (written by `pylon export`).
    let mut pg = Obj::new(root.get("x-pylon-group"), "#/x-pylon-group".into());
    if let Some(v) = pg.get("default") {
        group.default = v.as_bool().unwrap_or(false);
    }
    if let Some(v) = pg.get("domains") {
        // Pylon's list holds the domains `host` names.
        root.used.insert("host");
        group.domains = serde_json::from_value(v.clone()).unwrap_or_default();
    } else if let Some(host) = root.str("host").filter(|_| !v3) {
        // A console export's host is the group's domain: callers keep it.
        let domain = host.split(':').next().unwrap_or_default().to_string();
        if !domain.is_empty() {
            ctx.r.push(
                Level::Note,
                "#/host",
                format!("the group answers on `{domain}`"),
            );
            group.domains.push(domain);
        }
    }
    if let Some(v) = pg.get("variables") {
        group.variables = serde_json::from_value(v.clone()).unwrap_or_default();
    }
    // Certificates by path (`pylon export` writes them here: the vendors'
    // formats have none, Huawei user guide §5.1.2 binds them per domain).
    if let Some(v) = pg.get("certificates") {
        let at = pg.at("certificates");
        match serde_json::from_value::<Vec<CertificateDef>>(v.clone()) {
            Ok(c) => {
                if !c.is_empty() {
                    ctx.r.push(Level::Note, &at, "certificate paths kept as written: relative to the definitions file, so they must resolve from the output directory");
                }
                group.certificates = c;
            }
            Err(e) => ctx.r.push(
                Level::Unsupported,
                &at,
                format!("not a list of certificates ({e}); ignored"),
            ),
        }
    }
    pg.finish(&mut ctx.r);
    let environments: Vec<EnvironmentDef> = root
        .get("x-pylon-environments")
        .and_then(|v| v.as_array())
        .map(|envs| {
            envs.iter()
                .filter_map(|e| {
                    Some(EnvironmentDef {
                        name: e.get("name")?.as_str()?.to_string(),
                        description: e.get("description").map(text).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();

    if !v3 {
        ctx.base_path = root
            .str("basePath")
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
    }
    // Security schemes.
    let schemes_ptr = if v3 {
        "#/components/securitySchemes"
    } else {
        "#/securityDefinitions"
    };
    let schemes = if v3 {
        doc.pointer("/components/securitySchemes")
    } else {
        root.get("securityDefinitions")
    };
    if let Some(m) = schemes.and_then(Value::as_object) {
        for (name, s) in m {
            let kind = security_scheme(
                &mut ctx.r,
                name,
                s,
                &format!("{schemes_ptr}/{}", escape(name)),
            );
            ctx.schemes.insert(name.clone(), kind);
        }
    }
    ctx.root_security = root.get("security");
    if !v3 {
        ctx.root_schemes = root.get("schemes");
    }
    if v3 {
        if let Some(servers) = root.get("servers") {
            ctx.root_backend = server_backend(servers, &mut ctx.r, "#/servers");
        }
    }

    // Root-level Huawei maps.
    let mut throttles = Vec::new();
    let mut acls = Vec::new();
    if let Some(m) = root
        .get("x-apigateway-ratelimits")
        .and_then(Value::as_object)
    {
        for (name, t) in m {
            let ptr = format!("#/x-apigateway-ratelimits/{}", escape(name));
            if let Some(t) = throttle(&mut ctx.r, name, t, &ptr) {
                throttles.push(t);
            }
        }
    }
    if let Some(m) = root
        .get("x-apigateway-access-controls")
        .and_then(Value::as_object)
    {
        for (name, a) in m {
            let ptr = format!("#/x-apigateway-access-controls/{}", escape(name));
            if let Some(a) = acl(&mut ctx.r, name, a, &ptr) {
                acls.push(a);
            }
        }
    }
    let root_responses = if v3 {
        doc.pointer("/components/x-apigateway-responses")
            .or_else(|| root.get("x-apigateway-responses"))
    } else {
        root.get("x-apigateway-responses")
    };
    if let Some(v) = root_responses {
        responses(&mut ctx, v, "#/x-apigateway-responses");
    }
    if v3 {
        root.used.insert("components");
        let mut comps = Obj::new(doc.get("components"), "#/components".into());
        for k in ["securitySchemes", "parameters", "x-apigateway-responses"] {
            comps.used.insert(k);
        }
        comps.finish(&mut ctx.r);
    }
    root.used.insert("parameters"); // referenced by `$ref`

    // Paths.
    let mut apis = Vec::new();
    if let Some(paths) = root.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            path_item(&mut ctx, path, item, &mut apis);
        }
    }
    for k in [
        "x-pylon-environments",
        "x-aliyun-apigateway-paramater-handling",
        "x-aliyun-apigateway-parameter-handling",
        "x-aliyun-apigateway-backend",
    ] {
        // Root-level Alibaba defaults are read per operation.
        root.used.insert(k);
    }
    let mut r = std::mem::take(&mut ctx.r);
    r.operation.clear();
    root.finish(&mut r);
    if ctx.huawei_websocket_note {
        r.push(Level::Note, "#", "Huawei APIs take WebSocket over their request protocol (user guide §8.3.13: HTTP is ws, HTTPS is wss); Pylon refuses an upgrade unless the API says `websocket: true`: set it on the APIs WebSocket callers use");
    }
    let https_only = apis
        .iter()
        .filter(|a| a.protocol == Protocol::Https)
        .count();
    if https_only > 0 && group.certificates.is_empty() {
        // Written anyway: the consoles never export certificates (Huawei user
        // guide §5.1.2, "此证书不支持导入"), and the user has them at hand.
        r.push(Level::Note, "#", format!("{https_only} HTTPS-only API(s): add the domains' certificates as `groups[].certificates` (pem paths); `pylon compile` refuses HTTPS without one"));
    }

    group.responses = std::mem::take(&mut ctx.responses);
    for t in &mut throttles {
        t.bindings = ctx.throttle_bindings.remove(&t.name).unwrap_or_default();
    }
    for a in &mut acls {
        a.bindings = ctx.acl_bindings.remove(&a.name).unwrap_or_default();
    }
    for (name, _) in ctx.throttle_bindings.iter().chain(&ctx.acl_bindings) {
        r.push(
            Level::Refused,
            "#/paths",
            format!("policy `{name}` is referenced but not defined; binding left out"),
        );
    }
    let mut environments = environments;
    for env in &opts.publish {
        if env != "RELEASE" && !environments.iter().any(|e| &e.name == env) {
            environments.push(EnvironmentDef {
                name: env.clone(),
                description: String::new(),
            });
        }
    }
    Ok(Imported {
        defs: DefsOut {
            environments,
            groups: vec![group],
            throttles,
            acls,
            apis,
        },
        reports: r.items,
    })
}

fn security_scheme(
    r: &mut Reports,
    name: &str,
    s: &Value,
    ptr: &str,
) -> Option<(AuthKind, AppCodeMode)> {
    let mut o = Obj::new(Some(s), ptr.to_string());
    let _ = (o.get("type"), o.get("in"), o.get("name"));
    let code = match o
        .get("x-apigateway-auth-opt")
        .and_then(|v| v.get("appcode-auth-type"))
    {
        Some(v) if v == "header" => AppCodeMode::Https,
        _ => AppCodeMode::Disabled,
    };
    let kind = match o.str("x-apigateway-auth-type").as_deref() {
        Some("AppSigv1") => Some((AuthKind::App, code)),
        Some("IAM") => Some((AuthKind::Iam, code)),
        Some("IAM_NONE") => {
            r.push(
                Level::Note,
                &o.at("x-apigateway-auth-type"),
                "IAM_NONE taken as IAM",
            );
            Some((AuthKind::Iam, code))
        }
        Some(other) => {
            r.push(
                Level::Unsupported,
                &o.at("x-apigateway-auth-type"),
                format!(
                    "`{other}` (custom authorizer) is not supported; APIs using it are refused"
                ),
            );
            None
        }
        // Huawei's exporters name the schemes; a plain document keeps the names.
        None => match name {
            "apig-auth-app" => Some((AuthKind::App, AppCodeMode::Disabled)),
            "apig-auth-app-header" => Some((AuthKind::App, AppCodeMode::Https)),
            "apig-auth-iam" => Some((AuthKind::Iam, AppCodeMode::Disabled)),
            _ => None,
        },
    };
    if o.get("x-apigateway-authorizer").is_some() {
        r.push(
            Level::Unsupported,
            &o.at("x-apigateway-authorizer"),
            "custom authorizers are not supported",
        );
    }
    if kind.is_some() {
        let _ = (o.get("description"), o.get("x-apigateway-auth-opt"));
        o.finish(r);
    }
    kind
}

/// `http[s]://host[:port][/base]` → backend and base path.
pub fn parse_backend_url(url: &str) -> Option<(HttpBackendDef, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return None,
    };
    let (address, base) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if address.is_empty() {
        return None;
    }
    Some((
        HttpBackendDef {
            address: address.to_string(),
            scheme,
            path: String::new(),
            method: None,
            timeout: 5000,
            allow_internal_address: false,
            tls: None,
        },
        base.to_string(),
    ))
}

fn server_backend(servers: &Value, r: &mut Reports, ptr: &str) -> Option<(HttpBackendDef, String)> {
    let url = servers.get(0)?.get("url")?.as_str()?;
    if servers.as_array().is_some_and(|s| s.len() > 1) {
        r.push(
            Level::Note,
            ptr,
            "only the first server is used as the backend",
        );
    }
    if url.contains('{') {
        r.push(
            Level::Unsupported,
            &format!("{ptr}/0/url"),
            "server variables are not supported",
        );
        return None;
    }
    let found = parse_backend_url(url);
    if found.is_none() {
        r.push(
            Level::Note,
            &format!("{ptr}/0/url"),
            format!("`{url}` names no backend host; give --backend"),
        );
    }
    found
}

fn throttle(r: &mut Reports, name: &str, t: &Value, ptr: &str) -> Option<ThrottleDef> {
    let mut o = Obj::new(Some(t), ptr.to_string());
    let num = |o: &mut Obj, k: &'static str| o.get(k).and_then(|v| text(v).parse::<u64>().ok());
    let unit = match o.str("unit").map(|u| u.to_ascii_uppercase()).as_deref() {
        Some("SECOND") => TimeUnit::Second,
        Some("MINUTE") => TimeUnit::Minute,
        Some("HOUR") => TimeUnit::Hour,
        Some("DAY") => TimeUnit::Day,
        other => {
            r.push(
                Level::Refused,
                &o.at("unit"),
                format!("unit {other:?} is not SECOND, MINUTE, HOUR or DAY; policy left out"),
            );
            return None;
        }
    };
    let Some(api_limit) = num(&mut o, "api-limit") else {
        r.push(
            Level::Refused,
            &o.at("api-limit"),
            "missing; policy left out",
        );
        return None;
    };
    let mut def = ThrottleDef {
        name: name.to_string(),
        description: o.str("description").unwrap_or_default(),
        unit,
        interval: num(&mut o, "interval").unwrap_or(1),
        api_limit,
        user_limit: num(&mut o, "user-limit"),
        app_limit: num(&mut o, "app-limit"),
        ip_limit: num(&mut o, "ip-limit"),
        shared: o.get("shared").and_then(Value::as_bool).unwrap_or(false),
        special_apps: BTreeMap::new(),
        special_users: BTreeMap::new(),
        bindings: Vec::new(),
    };
    for (i, s) in o
        .get("special")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{}/special/{i}", ptr);
        let (Some(kind), Some(limit), Some(inst)) = (
            s.get("type").map(text),
            s.get("limit").and_then(|v| text(v).parse::<u64>().ok()),
            s.get("instance").map(text),
        ) else {
            r.push(
                Level::Refused,
                &at,
                "needs type, limit and instance; left out",
            );
            continue;
        };
        match kind.as_str() {
            "APP" => {
                def.special_apps.insert(inst, limit);
            }
            "USER" => {
                def.special_users.insert(inst, limit);
            }
            other => r.push(
                Level::Refused,
                &at,
                format!("type `{other}` is not APP or USER; left out"),
            ),
        }
    }
    o.finish(r);
    Some(def)
}

fn acl(r: &mut Reports, name: &str, a: &Value, ptr: &str) -> Option<AclDef> {
    let mut o = Obj::new(Some(a), ptr.to_string());
    let action = match o.str("acl-type").as_deref() {
        Some("PERMIT") => AclAction::Allow,
        Some("DENY") => AclAction::Deny,
        other => {
            r.push(
                Level::Refused,
                &o.at("acl-type"),
                format!("{other:?} is not PERMIT or DENY; policy left out"),
            );
            return None;
        }
    };
    // Huawei's DOMAIN is an account (a Huawei Cloud "domain" is a tenant).
    let kind = match o.str("entity-type").as_deref() {
        Some("IP") | None => AclKind::Ip,
        Some("DOMAIN") => AclKind::Account,
        Some(other) => {
            r.push(
                Level::Refused,
                &o.at("entity-type"),
                format!("`{other}` is not IP or DOMAIN; policy left out"),
            );
            return None;
        }
    };
    let values = o
        .str("value")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let description = o.str("description").unwrap_or_default();
    o.finish(r);
    Some(AclDef {
        name: name.to_string(),
        description,
        kind,
        action,
        values,
        bindings: Vec::new(),
    })
}

fn responses(ctx: &mut Ctx, v: &Value, ptr: &str) {
    let Some(sets) = v.as_object() else { return };
    for (set, types) in sets {
        let entry = ctx.responses.entry(set.clone()).or_default();
        for (ty, resp) in types.as_object().into_iter().flatten() {
            let at = format!("{ptr}/{}/{}", escape(set), escape(ty));
            let Ok(kind) = serde_json::from_value::<ErrorType>(Value::String(ty.clone())) else {
                ctx.r.push(
                    Level::Refused,
                    &at,
                    format!("`{ty}` is not a gateway error type; left out"),
                );
                continue;
            };
            let mut o = Obj::new(Some(resp), at.clone());
            let status = o.get("status").and_then(|s| text(s).parse::<u16>().ok());
            let body = match o.get("body") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Object(m)) => {
                    if m.len() > 1 {
                        ctx.r.push(Level::Unsupported, &format!("{at}/body"), "one body per error type: the application/json one (else the first) is kept");
                    }
                    m.get("application/json")
                        .or_else(|| m.values().next())
                        .map(text)
                }
                _ => None,
            };
            let headers = o
                .get("x-pylon-headers")
                .and_then(|h| serde_json::from_value(h.clone()).ok())
                .unwrap_or_default();
            let _ = o.get("default");
            o.finish(&mut ctx.r);
            entry.insert(
                kind,
                ResponseDef {
                    status,
                    body,
                    headers,
                },
            );
        }
    }
    // `default: {}` is the set that always exists.
    ctx.responses
        .retain(|k, v| !(k == "default" && v.is_empty()));
}

const METHODS: [(&str, Method); 7] = [
    ("get", Method::Get),
    ("post", Method::Post),
    ("put", Method::Put),
    ("delete", Method::Delete),
    ("patch", Method::Patch),
    ("head", Method::Head),
    ("options", Method::Options),
];

fn path_item(ctx: &mut Ctx, path: &str, item: &Value, apis: &mut Vec<ApiDef>) {
    let ptr = format!("#/paths/{}", escape(path));
    let mut o = Obj::new(Some(item), ptr.clone());
    let shared = o.get("parameters");
    for (key, method) in METHODS {
        if let Some(op) = o.get(key) {
            let at = format!("{ptr}/{key}");
            if let Some(api) = operation(ctx, path, method, op, shared, &at) {
                apis.push(api);
            }
        }
    }
    for key in ["x-apigateway-any-method", "x-aliyun-apigateway-any-method"] {
        if let Some(op) = o.get(key) {
            let at = format!("{ptr}/{key}");
            if let Some(api) = operation(ctx, path, Method::Any, op, shared, &at) {
                apis.push(api);
            }
        }
    }
    ctx.r.operation.clear();
    o.finish(&mut ctx.r);
}

/// Follows a local `$ref` (`#/parameters/x`, `#/components/parameters/x`).
fn deref<'a>(doc: &'a Value, v: &'a Value) -> (&'a Value, Option<String>) {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => match doc.pointer(&r[1..]) {
            Some(t) => (t, Some(r.to_string())),
            None => (v, None),
        },
        _ => (v, None),
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
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

fn operation(
    ctx: &mut Ctx,
    path: &str,
    method: Method,
    op: &Value,
    shared: Option<&Value>,
    ptr: &str,
) -> Option<ApiDef> {
    let full_path = format!("{}{}", ctx.base_path, path);
    ctx.r.operation = format!("{} {full_path}", method_name(method));
    let mut o = Obj::new(Some(op), ptr.to_string());
    let doc = ctx.doc;
    let aliyun_root = |k: &str| doc.get(k);

    // Name.
    let name = match o.str("operationId") {
        Some(id) => {
            let n = name_from(&id, "api");
            if n != id {
                ctx.r.push(
                    Level::Note,
                    &o.at("operationId"),
                    format!("API named `{n}`"),
                );
            }
            n
        }
        None => {
            let n = name_from(
                &format!(
                    "{}{}",
                    method_name(method).to_ascii_lowercase(),
                    full_path.replace(['/', '{', '}', '+'], "_")
                ),
                "api",
            );
            ctx.r
                .push(Level::Note, ptr, format!("no operationId; API named `{n}`"));
            n
        }
    };
    let mut name = name;
    if !ctx.names.insert(name.clone()) {
        let mut i = 2;
        while !ctx.names.insert(format!("{name}_{i}")) {
            i += 1;
        }
        name = format!("{name}_{i}");
        ctx.r.push(
            Level::Note,
            &o.at("operationId"),
            format!("name taken; API named `{name}`"),
        );
    }

    let mut api = ApiDef {
        name,
        group: ctx.group.clone(),
        description: o
            .str("description")
            .or_else(|| o.str("summary"))
            .unwrap_or_default(),
        method,
        path: full_path.clone(),
        match_mode: MatchMode::Exact,
        backend: BackendDef {
            http: None,
            mock: None,
            params: Vec::new(),
        },
        publish: ctx.opts.publish.clone(),
        response: None,
        auth: AuthKind::None,
        allow_hmac_sha1: false,
        app_code: AppCodeMode::Disabled,
        request_mode: RequestMode::MappingPassthrough,
        cors: false,
        protocol: Default::default(),
        websocket: false,
        parameters: Vec::new(),
        policies: Vec::new(),
    };
    if let Some(p) = o
        .get("x-pylon-publish")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
    {
        api.publish = p;
    }

    // Authentication: Huawei's security schemes, else Alibaba's auth type.
    let aliyun_auth = o.str("x-aliyun-apigateway-auth-type");
    let security = o.get("security").or(ctx.root_security);
    let mut auth_done = false;
    if let Some(reqs) = security.and_then(Value::as_array) {
        if let Some(req) = reqs.first().and_then(Value::as_object) {
            if let Some(scheme) = req.keys().next() {
                match ctx.schemes.get(scheme) {
                    Some(Some((kind, code))) => {
                        api.auth = *kind;
                        api.app_code = *code;
                        auth_done = true;
                    }
                    Some(None) if aliyun_auth.is_none() => {
                        let at = o.at("security");
                        ctx.r.push(
                            Level::Refused,
                            &at,
                            format!("security scheme `{scheme}` is not one Pylon enforces; API left out (a gateway must not open it silently)"),
                        );
                        return None;
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(a) = aliyun_auth {
        match a.as_str() {
            "APP" => api.auth = AuthKind::App,
            "ANONYMOUS" => api.auth = AuthKind::None,
            other => {
                ctx.r.push(
                    Level::Refused,
                    &o.at("x-aliyun-apigateway-auth-type"),
                    format!("`{other}` is not supported; API left out"),
                );
                return None;
            }
        }
        auth_done = true;
    }
    let _ = auth_done;
    if let Some(v) = o.str("x-aliyun-apigateway-app-code-auth-type") {
        api.app_code = match v.as_str() {
            "DISABLE" => AppCodeMode::Disabled,
            "HEADER_QUERY" | "DEFAULT" => AppCodeMode::HttpAllowed,
            "HEADER" => {
                ctx.r.push(
                    Level::Unsupported,
                    &o.at("x-aliyun-apigateway-app-code-auth-type"),
                    "Pylon also accepts the AppCode in the query",
                );
                AppCodeMode::HttpAllowed
            }
            other => {
                ctx.r.push(
                    Level::Unsupported,
                    &o.at("x-aliyun-apigateway-app-code-auth-type"),
                    format!("`{other}` unknown; AppCodes disabled"),
                );
                AppCodeMode::Disabled
            }
        };
    }
    if let Some(v) = o
        .get("x-pylon-app-code")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
    {
        api.app_code = v;
    }
    if let Some(v) = o.str("x-aliyun-apigateway-allow-signature-method") {
        api.allow_hmac_sha1 = v.contains("HmacSHA1");
    }
    if let Some(v) = o.get("x-pylon-allow-hmac-sha1") {
        api.allow_hmac_sha1 = v.as_bool().unwrap_or(false);
    }
    if o.get("x-aliyun-apigateway-api-force-nonce-check")
        .and_then(Value::as_bool)
        == Some(true)
    {
        ctx.r.push(
            Level::Unsupported,
            &o.at("x-aliyun-apigateway-api-force-nonce-check"),
            "Pylon refuses a replayed X-Ca-Nonce but does not require one",
        );
    }

    // Request protocol. Huawei exports write it as the operation's Swagger
    // `schemes` (user guide §5.2.1: HTTP, HTTPS or HTTP&HTTPS); Swagger's
    // `ws` / `wss` are WebSocket over each.
    let schemes_at = if op.get("schemes").is_some() {
        o.at("schemes")
    } else {
        "#/schemes".to_string()
    };
    if let Some(s) = o.get("schemes").or(ctx.root_schemes) {
        if let Some((p, ws)) = protocol_from_schemes(&mut ctx.r, s, &schemes_at) {
            api.protocol = p;
            api.websocket |= ws;
        }
    }
    // Alibaba's request protocol ("HTTP,HTTPS,WEBSOCKET", the console's
    // 协议 check boxes) and WebSocket API type.
    if let Some(c) = o.get("x-aliyun-apigateway-request-config") {
        request_config(
            ctx,
            &mut api,
            c,
            &o.at("x-aliyun-apigateway-request-config"),
        );
    }
    if let Some(t) = o.str("x-aliyun-apigateway-websocket-api-type") {
        api.websocket = true;
        if t != "COMMON" {
            ctx.r.push(
                Level::Unsupported,
                &o.at("x-aliyun-apigateway-websocket-api-type"),
                format!("`{t}`: Alibaba's two-way notification channel is not supported; forwarded as a plain WebSocket"),
            );
        }
    }
    match o.get("x-pylon-websocket") {
        Some(v) => api.websocket = v.as_bool().unwrap_or(false),
        None if op.get("x-apigateway-backend").is_some() && !api.websocket => {
            ctx.huawei_websocket_note = true
        }
        None => {}
    }

    // Front-end options.
    match o
        .str("x-apigateway-match-mode")
        .or_else(|| o.str("x-pylon-match"))
        .as_deref()
    {
        None | Some("NORMAL") | Some("exact") => {}
        Some("SWA") | Some("prefix") => api.match_mode = MatchMode::Prefix,
        Some(other) => ctx.r.push(
            Level::Unsupported,
            &o.at("x-apigateway-match-mode"),
            format!("`{other}` unknown; exact match"),
        ),
    }
    if let Some(c) = o.get("x-apigateway-cors") {
        api.cors = c.as_bool().unwrap_or(false);
    }
    if let Some(rname) = o.str("x-apigateway-response") {
        if rname != "default" {
            api.response = Some(rname);
        }
    }
    if let Some(v) = o.get("x-apigateway-responses") {
        let at = o.at("x-apigateway-responses");
        responses(ctx, v, &at);
    }
    if let Some(v) = o.get("x-apigateway-plugins") {
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            ctx.r.push(
                Level::Unsupported,
                &o.at("x-apigateway-plugins"),
                "plug-ins are not supported",
            );
        }
    }

    // Parameters.
    let mut aliyun_maps = Vec::new();
    let mut seen = BTreeSet::new();
    let own = o.get("parameters");
    let own_list: Vec<(&Value, String)> = own
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| (p, format!("{ptr}/parameters/{i}")))
        .collect();
    let shared_list: Vec<(&Value, String)> = shared
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| {
            (
                p,
                format!(
                    "{}/parameters/{i}",
                    ptr.rsplit_once('/').map_or("", |x| x.0)
                ),
            )
        })
        .collect();
    for (p, at) in own_list.into_iter().chain(shared_list) {
        let (p, _) = deref(doc, p);
        let key = (p.get("name").map(text), p.get("in").map(text));
        if !seen.insert(key) {
            continue; // an operation's own parameter overrides the path item's
        }
        if p.get("x-pylon-implicit").and_then(Value::as_bool) == Some(true) {
            continue; // `pylon export` declared a path template Pylon leaves implicit
        }
        if let Some((def, map)) = parameter(ctx, p, &at) {
            if let Some(m) = map {
                aliyun_maps.push(m);
            }
            api.parameters.push(def);
        }
    }

    // Request mode.
    let handling = o
        .str("x-aliyun-apigateway-parameter-handling")
        .or_else(|| o.str("x-aliyun-apigateway-paramater-handling"))
        .or_else(|| {
            op.pointer("/x-aliyun-apigateway-request-config/requestMode")
                .map(text)
        })
        .or_else(|| aliyun_root("x-aliyun-apigateway-parameter-handling").map(text))
        .or_else(|| aliyun_root("x-aliyun-apigateway-paramater-handling").map(text));
    if let Some(h) = handling {
        api.request_mode = match h.as_str() {
            "MAPPING" => RequestMode::Mapping,
            "MAPPING_PASSTHROUGH" => RequestMode::MappingPassthrough,
            "PASSTHROUGH" if api.parameters.iter().any(|p| p.location != Location::Path) => {
                ctx.r.push(Level::Note, ptr, "PASSTHROUGH with declared query or header parameters: Pylon checks them and forwards the rest (mapping_passthrough)");
                RequestMode::MappingPassthrough
            }
            "PASSTHROUGH" => RequestMode::Passthrough,
            other => {
                ctx.r.push(
                    Level::Unsupported,
                    ptr,
                    format!("parameter handling `{other}` unknown"),
                );
                RequestMode::MappingPassthrough
            }
        };
    }
    if let Some(v) = o
        .get("x-pylon-request-mode")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
    {
        api.request_mode = v;
    }

    // Backend.
    let mut have_backend = false;
    let vendor_backend = op.get("x-apigateway-backend").is_some()
        || op.get("x-aliyun-apigateway-backend").is_some()
        || aliyun_root("x-aliyun-apigateway-backend").is_some();
    if let Some(b) = o.get("x-apigateway-backend") {
        let at = o.at("x-apigateway-backend");
        match huawei_backend(ctx, b, &at) {
            Some(b) => {
                api.backend = b;
                have_backend = true;
            }
            None => return None,
        }
    } else if let Some(b) = o
        .get("x-aliyun-apigateway-backend")
        .or_else(|| aliyun_root("x-aliyun-apigateway-backend"))
    {
        let at = if op.get("x-aliyun-apigateway-backend").is_some() {
            o.at("x-aliyun-apigateway-backend")
        } else {
            "#/x-aliyun-apigateway-backend".to_string()
        };
        match aliyun_backend(ctx, b, &at, &api.path) {
            Some(b) => {
                api.backend = b;
                have_backend = true;
            }
            None => return None,
        }
    } else if let Some(s) = o.get("servers") {
        let at = o.at("servers");
        if let Some((mut h, base)) = server_backend(s, &mut ctx.r, &at) {
            h.path = format!("{base}{path}");
            api.backend.http = Some(h);
            have_backend = true;
        }
    }
    // An OpenAPI 3 export with a vendor backend (Huawei's OAS3 exports): its
    // `servers` are the gateway's addresses, so their schemes are the
    // request protocol (without one they name the backend, read above).
    if ctx.v3 && vendor_backend {
        let servers = o.get("servers").or_else(|| doc.get("servers"));
        let (mut http, mut https) = (false, false);
        for url in servers.and_then(Value::as_array).into_iter().flatten() {
            let url = url
                .get("url")
                .map(text)
                .unwrap_or_default()
                .to_ascii_lowercase();
            http |= url.starts_with("http://");
            https |= url.starts_with("https://");
        }
        if let Some(p) = protocol_of(http, https) {
            api.protocol = p;
        }
    }
    if !have_backend {
        let from_flag = ctx.opts.backend.as_deref().and_then(parse_backend_url);
        match from_flag.or_else(|| ctx.root_backend.clone()) {
            Some((mut h, base)) => {
                h.path = format!("{base}{}", api.path);
                api.backend.http = Some(h);
            }
            None => {
                ctx.r.push(
                    Level::Refused,
                    ptr,
                    "no backend in the document (a base-scope export?); give --backend URL",
                );
                return None;
            }
        }
    }
    // Pylon's own list, when present, holds every backend parameter in order.
    let pylon_list = o.get("x-pylon-backend-parameters");
    if pylon_list.is_some() {
        aliyun_maps.clear();
    }
    for m in aliyun_maps {
        api.backend.params.push(m);
    }
    for (key, system) in [
        ("x-aliyun-apigateway-constant-parameters", false),
        ("x-aliyun-apigateway-system-parameters", true),
    ] {
        let list = o.get(key).filter(|_| pylon_list.is_none());
        for (i, c) in list
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("{}/{i}", o.at(key));
            if let Some(p) = aliyun_backend_param(&mut ctx.r, c, &at, system) {
                api.backend.params.push(p);
            }
        }
    }
    if let Some(extra) = pylon_list {
        let at = o.at("x-pylon-backend-parameters");
        for (i, p) in extra.as_array().into_iter().flatten().enumerate() {
            if let Some(p) = huawei_backend_param(&mut ctx.r, p, &format!("{at}/{i}")) {
                api.backend.params.push(p);
            }
        }
    }
    if let Some(pol) = o.get("x-apigateway-backend-policies") {
        let at = o.at("x-apigateway-backend-policies");
        for (i, p) in pol.as_array().into_iter().flatten().enumerate() {
            if let Some(p) = policy(ctx, p, &format!("{at}/{i}")) {
                api.policies.push(p);
            }
        }
    }

    // Policy bindings.
    let default_envs = if api.publish.is_empty() {
        vec!["RELEASE".to_string()]
    } else {
        api.publish.clone()
    };
    for (key, pylon_key, throttle) in [
        ("x-apigateway-ratelimit", "x-pylon-ratelimit-bindings", true),
        (
            "x-apigateway-access-control",
            "x-pylon-access-control-bindings",
            false,
        ),
    ] {
        let named = o.str(key);
        let bindings: Vec<(String, Vec<String>)> = match o.get(pylon_key) {
            Some(v) => v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| {
                    Some((
                        b.get("name")?.as_str()?.to_string(),
                        serde_json::from_value(b.get("environments")?.clone()).ok()?,
                    ))
                })
                .collect(),
            None => named
                .into_iter()
                .map(|n| (n, default_envs.clone()))
                .collect(),
        };
        let map = if throttle {
            &mut ctx.throttle_bindings
        } else {
            &mut ctx.acl_bindings
        };
        for (n, envs) in bindings {
            map.entry(n).or_default().push(GrantDef {
                group: ctx.group.clone(),
                api: api.name.clone(),
                environments: envs,
            });
        }
    }
    for k in [
        "parameters",
        "x-pylon-match",
        "x-apigateway-is-send-fg-body-base64",
        "x-aliyun-apigateway-paramater-handling",
        "x-aliyun-apigateway-parameter-handling",
    ] {
        o.used.insert(k);
    }
    if let Some(v) = op.get("x-apigateway-is-send-fg-body-base64") {
        if v.as_bool() == Some(true) {
            ctx.r.push(
                Level::Note,
                &o.at("x-apigateway-is-send-fg-body-base64"),
                "only for FunctionGraph backends; ignored",
            );
        }
    }
    if ctx.v3 {
        if let Some(rb) = op.get("requestBody") {
            let _ = rb;
            ctx.r.push(
                Level::Note,
                &o.at("requestBody"),
                "the body is forwarded as received, not checked",
            );
            o.used.insert("requestBody");
        }
    }
    o.finish(&mut ctx.r);
    Some(api)
}

/// Swagger 2.0 `schemes` → request protocol and WebSocket.
fn protocol_from_schemes(r: &mut Reports, v: &Value, ptr: &str) -> Option<(Protocol, bool)> {
    let (mut http, mut https, mut ws) = (false, false, false);
    for (i, s) in v.as_array().into_iter().flatten().enumerate() {
        match text(s).to_ascii_lowercase().as_str() {
            "http" => http = true,
            "https" => https = true,
            "ws" => (http, ws) = (true, true),
            "wss" => (https, ws) = (true, true),
            other => r.push(
                Level::Unsupported,
                &format!("{ptr}/{i}"),
                format!("scheme `{other}` is not http, https, ws or wss; ignored"),
            ),
        }
    }
    protocol_of(http, https).map(|p| (p, ws))
}

fn protocol_of(http: bool, https: bool) -> Option<Protocol> {
    match (http, https) {
        (true, true) => Some(Protocol::Both),
        (true, false) => Some(Protocol::Http),
        (false, true) => Some(Protocol::Https),
        (false, false) => None,
    }
}

/// `x-aliyun-apigateway-request-config`: `requestProtocol` (its `requestMode`
/// is read as the parameter handling).
fn request_config(ctx: &mut Ctx, api: &mut ApiDef, c: &Value, ptr: &str) {
    let mut o = Obj::new(Some(c), ptr.to_string());
    if let Some(p) = o.str("requestProtocol") {
        let at = o.at("requestProtocol");
        let (mut http, mut https, mut ws) = (false, false, false);
        for part in p.split(',').map(|s| s.trim().to_ascii_uppercase()) {
            match part.as_str() {
                "HTTP" => http = true,
                "HTTPS" => https = true,
                "WEBSOCKET" => ws = true,
                "" => {}
                other => ctx.r.push(
                    Level::Unsupported,
                    &at,
                    format!("`{other}` is not HTTP, HTTPS or WEBSOCKET; ignored"),
                ),
            }
        }
        match protocol_of(http, https) {
            Some(p) => api.protocol = p,
            None if ws => ctx.r.push(
                Level::Note,
                &at,
                "WEBSOCKET alone: ws and wss both accepted (HTTP&HTTPS)",
            ),
            None => {}
        }
        api.websocket |= ws;
    }
    // Read with the other parameter-handling keys (the operation's request mode).
    o.used.insert("requestMode");
    // They restate the operation's method and path.
    if o.str("requestHttpMethod")
        .is_some_and(|m| !m.eq_ignore_ascii_case(method_name(api.method)))
    {
        let at = o.at("requestHttpMethod");
        ctx.r.push(
            Level::Unsupported,
            &at,
            "differs from the operation's method; the operation's is used",
        );
    }
    if o.str("requestPath").is_some_and(|p| p != api.path) {
        let at = o.at("requestPath");
        ctx.r.push(
            Level::Unsupported,
            &at,
            "differs from the operation's path; the operation's is used",
        );
    }
    o.finish(&mut ctx.r);
}

/// Pylon's `x-pylon-tls` on a backend endpoint (paths only).
fn backend_tls(r: &mut Reports, o: &mut Obj) -> Option<BackendTlsDef> {
    let v = o.get("x-pylon-tls")?;
    match serde_json::from_value(v.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            let at = o.at("x-pylon-tls");
            r.push(Level::Unsupported, &at, format!("{e}; ignored"));
            None
        }
    }
}

fn location(s: &str) -> Option<Location> {
    match s.to_ascii_lowercase().as_str() {
        "path" => Some(Location::Path),
        "query" => Some(Location::Query),
        "header" => Some(Location::Header),
        _ => None,
    }
}

/// A request parameter, and its Alibaba backend mapping if it has one.
fn parameter(ctx: &mut Ctx, p: &Value, ptr: &str) -> Option<(ParamDef, Option<BackendParamDef>)> {
    let mut o = Obj::new(Some(p), ptr.to_string());
    let name = o.str("name").unwrap_or_default();
    let Some(loc) = o.str("in").as_deref().and_then(location) else {
        let at = o.at("in");
        let what = p.get("in").map(text).unwrap_or_default();
        ctx.r.push(
            Level::Unsupported,
            &at,
            format!("`{name}` in `{what}`: only path, query and header parameters are checked; the body is forwarded as received"),
        );
        return None;
    };
    // Swagger 2.0 keeps the schema on the parameter, OpenAPI 3 under `schema`.
    let (schema_val, schema_ptr) = if ctx.v3 {
        let (s, _) = match p.get("schema") {
            Some(s) => deref(ctx.doc, s),
            None => (&Value::Null, None),
        };
        (Some(s), format!("{ptr}/schema"))
    } else {
        (Some(p), ptr.to_string())
    };
    let mut s = if ctx.v3 {
        o.used.insert("schema");
        Obj::new(schema_val, schema_ptr)
    } else {
        Obj {
            map: None,
            ptr: String::new(),
            used: BTreeSet::new(),
        }
    };
    let sch: &mut Obj = if ctx.v3 { &mut s } else { &mut o };
    let ty = sch.str("type").unwrap_or_else(|| "string".into());
    let kind = match ty.as_str() {
        "string" => ParamType::String,
        "number" => ParamType::Number,
        "integer" => {
            let at = sch.at("type");
            ctx.r.push(
                Level::Unsupported,
                &at,
                "integer is checked as a number: decimals are not refused",
            );
            ParamType::Number
        }
        other => {
            let at = sch.at("type");
            ctx.r.push(
                Level::Unsupported,
                &at,
                format!("type `{other}` is checked as a string"),
            );
            ParamType::String
        }
    };
    let num = |v: Option<&Value>| v.and_then(|v| text(v).parse::<f64>().ok());
    let u32v = |v: Option<&Value>| v.and_then(|v| text(v).parse::<u32>().ok());
    let mut def = ParamDef {
        name: name.clone(),
        location: loc,
        kind,
        required: false,
        default: sch.get("default").map(|v| Text(text(v))),
        min_length: u32v(sch.get("minLength")),
        max_length: u32v(sch.get("maxLength")),
        min: num(sch.get("minimum")),
        max: num(sch.get("maximum")),
        allowed: sch
            .get("enum")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| Text(text(v))).collect())
            .unwrap_or_default(),
        pattern: sch.str("pattern"),
        description: String::new(),
    };
    let _ = sch.get("description");
    if ctx.v3 {
        s.finish(&mut ctx.r);
    }
    def.required =
        o.get("required").and_then(Value::as_bool).unwrap_or(false) || loc == Location::Path;
    def.description = o.str("description").unwrap_or_default();
    if let Some(e) = o.str("x-aliyun-apigateway-enum") {
        def.allowed = e.split(',').map(|v| Text(v.trim().to_string())).collect();
    }
    if o.str("x-apigateway-pass-through").as_deref() == Some("never") {
        let at = o.at("x-apigateway-pass-through");
        ctx.r.push(
            Level::Unsupported,
            &at,
            "Pylon forwards declared parameters; `never` is not honoured",
        );
    }
    let map = match (
        o.str("x-aliyun-apigateway-backend-name"),
        o.str("x-aliyun-apigateway-backend-location")
            .as_deref()
            .and_then(location),
    ) {
        (None, None) => None,
        (bn, bl) => Some(BackendParamDef {
            name: bn.unwrap_or_else(|| name.clone()),
            location: bl.unwrap_or(loc),
            from: Some(name.clone()),
            constant: None,
            system: None,
            description: String::new(),
        }),
    };
    if ctx.v3 {
        for k in ["style", "explode"] {
            if p.get(k).is_some() {
                let at = o.at(k);
                ctx.r
                    .push(Level::Note, &at, "values are read as single strings");
                o.used.insert(k);
            }
        }
    }
    o.finish(&mut ctx.r);
    Some((def, map))
}

fn system_from(name: &str) -> Option<SystemParam> {
    // Alibaba's system parameter names (CaClientIp and friends) first.
    Some(match name {
        "CaClientIp" => SystemParam::SourceIp,
        "CaStage" => SystemParam::Stage,
        "CaRequestId" => SystemParam::RequestId,
        "CaAppId" => SystemParam::AppId,
        other => serde_json::from_value(Value::String(other.to_string())).ok()?,
    })
}

fn huawei_backend_param(r: &mut Reports, p: &Value, ptr: &str) -> Option<BackendParamDef> {
    let mut o = Obj::new(Some(p), ptr.to_string());
    let name = o.str("name").unwrap_or_default();
    let loc = o.str("in").as_deref().and_then(location);
    let value = o.str("value").unwrap_or_default();
    let mut def = BackendParamDef {
        name,
        location: loc.unwrap_or(Location::Header),
        from: None,
        constant: None,
        system: None,
        description: o.str("description").unwrap_or_default(),
    };
    if loc.is_none() {
        r.push(
            Level::Refused,
            &o.at("in"),
            "not header, query or path; backend parameter left out",
        );
        return None;
    }
    match o.str("origin").map(|s| s.to_ascii_uppercase()).as_deref() {
        Some("REQUEST") => def.from = Some(value),
        Some("CONSTANT") => def.constant = Some(Text(value)),
        Some("SYSTEM") => match system_from(&value) {
            Some(s) => def.system = Some(s),
            None => {
                r.push(
                    Level::Refused,
                    &o.at("value"),
                    format!("system parameter `{value}` is not one Pylon provides; left out"),
                );
                return None;
            }
        },
        other => {
            r.push(
                Level::Refused,
                &o.at("origin"),
                format!("{other:?} is not REQUEST, CONSTANT or SYSTEM; left out"),
            );
            return None;
        }
    }
    o.finish(r);
    Some(def)
}

fn aliyun_backend_param(
    r: &mut Reports,
    p: &Value,
    ptr: &str,
    system: bool,
) -> Option<BackendParamDef> {
    let mut o = Obj::new(Some(p), ptr.to_string());
    let name = o.str("backendName").unwrap_or_default();
    let Some(loc) = o.str("location").as_deref().and_then(location) else {
        r.push(
            Level::Refused,
            &o.at("location"),
            "not header, query or path; left out",
        );
        return None;
    };
    let mut def = BackendParamDef {
        name,
        location: loc,
        from: None,
        constant: None,
        system: None,
        description: o.str("description").unwrap_or_default(),
    };
    if system {
        let sys = o.str("systemName").unwrap_or_default();
        match system_from(&sys) {
            Some(s) => def.system = Some(s),
            None => {
                r.push(
                    Level::Refused,
                    &o.at("systemName"),
                    format!("`{sys}` is not a system parameter Pylon provides; left out"),
                );
                return None;
            }
        }
    } else {
        def.constant = Some(Text(o.str("value").unwrap_or_default()));
    }
    o.finish(r);
    Some(def)
}

/// The endpoint of a Huawei backend (or policy backend) object.
fn huawei_endpoint(ctx: &mut Ctx, o: &mut Obj, kind: &str) -> Option<BackendDef> {
    let mut b = BackendDef {
        http: None,
        mock: None,
        params: Vec::new(),
    };
    match kind {
        "HTTP" => {
            let at = o.at("httpEndpoints");
            let mut e = Obj::new(o.get("httpEndpoints"), at.clone());
            let Some(address) = e.str("address") else {
                ctx.r.push(Level::Refused, &at, "no address; API left out");
                return None;
            };
            let scheme = match e.str("scheme").map(|s| s.to_ascii_lowercase()).as_deref() {
                Some("https") => Scheme::Https,
                _ => Scheme::Http,
            };
            let method = e
                .str("method")
                .filter(|m| m != "ANY")
                .and_then(|m| serde_json::from_value(Value::String(m.to_ascii_uppercase())).ok());
            b.http = Some(HttpBackendDef {
                address,
                scheme,
                path: e.str("path").unwrap_or_else(|| "/".into()),
                method,
                timeout: e
                    .get("timeout")
                    .and_then(|t| text(t).parse().ok())
                    .unwrap_or(5000),
                allow_internal_address: e
                    .get("x-pylon-allow-internal-address")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                tls: backend_tls(&mut ctx.r, &mut e),
            });
            let _ = e.get("description");
            if e.str("retryCount").is_some_and(|r| r != "-1" && r != "0") {
                let at = e.at("retryCount");
                ctx.r
                    .push(Level::Unsupported, &at, "backend retries are not supported");
            }
            // Mutual TLS toward the backend (user guide §8.4.1): the console
            // keeps the client certificate; Pylon needs its files.
            let client = b
                .http
                .as_ref()
                .and_then(|h| h.tls.as_ref())
                .is_some_and(|t| t.cert.is_some());
            if e.get("enableClientSsl").and_then(Value::as_bool) == Some(true) && !client {
                let at = e.at("enableClientSsl");
                ctx.r.push(
                    Level::Unsupported,
                    &at,
                    "the document holds no client certificate: add backend.http.tls.cert and .key (pem paths)",
                );
            }
            e.finish(&mut ctx.r);
        }
        "MOCK" => {
            let mut e = Obj::new(o.get("mockEndpoints"), o.at("mockEndpoints"));
            b.mock = Some(MockBackendDef {
                status: e
                    .get("x-pylon-status")
                    .and_then(|s| text(s).parse().ok())
                    .unwrap_or(200),
                headers: e
                    .get("x-pylon-headers")
                    .and_then(|h| serde_json::from_value(h.clone()).ok())
                    .unwrap_or_default(),
                body: e.str("result-content").unwrap_or_default(),
            });
            let _ = e.get("description");
            e.finish(&mut ctx.r);
        }
        other => {
            let what = match other {
                "HTTP-VPC" | "HTTP-VPC-MEMBER-GROUP" => {
                    "VPC channels (load balancing over a channel's members) are not supported"
                }
                "FUNCTION" => "FunctionGraph backends are not supported",
                _ => "unknown backend type",
            };
            ctx.r.push(
                Level::Refused,
                &o.at("type"),
                format!("`{other}`: {what}; left out"),
            );
            for k in [
                "httpVpcEndpoints",
                "httpVpcMemberGroupEndpoints",
                "functionEndpoints",
            ] {
                o.used.insert(k);
            }
            return None;
        }
    }
    Some(b)
}

fn huawei_backend(ctx: &mut Ctx, v: &Value, ptr: &str) -> Option<BackendDef> {
    let mut o = Obj::new(Some(v), ptr.to_string());
    let kind = o.str("type").unwrap_or_else(|| "HTTP".into());
    let mut b = huawei_endpoint(ctx, &mut o, &kind)?;
    for (i, p) in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{ptr}/parameters/{i}");
        if let Some(p) = huawei_backend_param(&mut ctx.r, p, &at) {
            b.params.push(p);
        }
    }
    o.finish(&mut ctx.r);
    Some(b)
}

fn policy(ctx: &mut Ctx, v: &Value, ptr: &str) -> Option<PolicyDef> {
    let mut o = Obj::new(Some(v), ptr.to_string());
    let name = o.str("name").unwrap_or_default();
    let kind = o.str("type").unwrap_or_else(|| "HTTP".into());
    let effect = match o.str("effectMode").as_deref() {
        Some("ALL") => Effect::All,
        _ => Effect::Any,
    };
    let mut backend = huawei_endpoint(ctx, &mut o, &kind)?;
    for (i, p) in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{ptr}/parameters/{i}");
        if let Some(p) = huawei_backend_param(&mut ctx.r, p, &at) {
            backend.params.push(p);
        }
    }
    let mut conditions = Vec::new();
    for (i, c) in o
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{ptr}/conditions/{i}");
        let mut c = Obj::new(Some(c), at.clone());
        let value = c.str("value").map(Text);
        // Real exports write `exact` and `param` where the guide says `equal`
        // and `request`; both are read.
        let test = match c.str("type").as_deref() {
            Some("equal") | Some("exact") => Some(ConditionTest::Equal),
            Some("enum") => Some(ConditionTest::Enum),
            Some("pattern") => Some(ConditionTest::Pattern),
            None | Some("") => None,
            Some(other) => {
                ctx.r.push(
                    Level::Refused,
                    &c.at("type"),
                    format!("`{other}` is not equal, enum or pattern; policy left out"),
                );
                return None;
            }
        };
        let parameter = c
            .str("parameter")
            .or_else(|| c.str("parameter_name"))
            .unwrap_or_default();
        let cond = match c.str("origin").as_deref() {
            Some("source") => ConditionDef {
                source: value,
                param: None,
                system: None,
                test: None,
                value: None,
            },
            Some("request") | Some("param") => ConditionDef {
                source: None,
                param: Some(parameter),
                system: None,
                test,
                value,
            },
            Some("system") => {
                let system = match parameter.as_str() {
                    "reqPath" => SystemCondition::ReqPath,
                    "reqMethod" => SystemCondition::ReqMethod,
                    other => {
                        ctx.r.push(
                            Level::Refused,
                            &c.at("parameter"),
                            format!(
                                "system condition on `{other}` is not supported; policy left out"
                            ),
                        );
                        return None;
                    }
                };
                ConditionDef {
                    source: None,
                    param: None,
                    system: Some(system),
                    test,
                    value,
                }
            }
            other => {
                ctx.r.push(
                    Level::Refused,
                    &c.at("origin"),
                    format!("condition origin {other:?} is not supported; policy left out"),
                );
                return None;
            }
        };
        c.finish(&mut ctx.r);
        conditions.push(cond);
    }
    o.finish(&mut ctx.r);
    Some(PolicyDef {
        name,
        effect,
        conditions,
        backend,
    })
}

fn aliyun_backend(ctx: &mut Ctx, v: &Value, ptr: &str, api_path: &str) -> Option<BackendDef> {
    let mut o = Obj::new(Some(v), ptr.to_string());
    let kind = o.str("type").unwrap_or_else(|| "HTTP".into());
    let mut b = BackendDef {
        http: None,
        mock: None,
        params: Vec::new(),
    };
    match kind.as_str() {
        "HTTP" => {
            let address = o.str("address").unwrap_or_default();
            let (mut h, base) = parse_backend_url(&address)
                .or_else(|| parse_backend_url(&format!("http://{address}")))?;
            h.path = o.str("path").unwrap_or_else(|| format!("{base}{api_path}"));
            h.method = o
                .str("method")
                .filter(|m| !m.eq_ignore_ascii_case("any"))
                .and_then(|m| serde_json::from_value(Value::String(m.to_ascii_uppercase())).ok());
            h.timeout = o
                .get("timeout")
                .and_then(|t| text(t).parse().ok())
                .unwrap_or(5000);
            h.allow_internal_address = o
                .get("x-pylon-allow-internal-address")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            h.tls = backend_tls(&mut ctx.r, &mut o);
            b.http = Some(h);
        }
        "MOCK" => {
            b.mock = Some(MockBackendDef {
                status: o
                    .get("mockStatusCode")
                    .and_then(|s| text(s).parse().ok())
                    .unwrap_or(200),
                headers: o
                    .get("x-pylon-headers")
                    .and_then(|h| serde_json::from_value(h.clone()).ok())
                    .unwrap_or_default(),
                body: o.str("mockResult").unwrap_or_default(),
            });
        }
        other => {
            ctx.r.push(Level::Refused, &o.at("type"), format!("`{other}` backends (VPC, Function Compute, OSS, EventBridge) are not supported; API left out"));
            return None;
        }
    }
    o.finish(&mut ctx.r);
    Some(b)
}
