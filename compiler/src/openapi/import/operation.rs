//! Path items and operations: one API each, with its authentication,
//! request protocol, front-end options, request mode and policy bindings.

use std::collections::BTreeSet;

use pylon_filter::plan::{
    AppCodeMode, AuthKind, Location, MatchMode, Method, Protocol, RequestMode,
};
use serde_json::Value;

use super::backends::{aliyun_backend, huawei_backend, parse_backend_url, policy, server_backend};
use super::params::{aliyun_backend_param, huawei_backend_params, parameter};
use super::policies::responses;
use super::reader::{text, Obj};
use super::{name_from, Ctx};
use crate::defs::{ApiDef, BackendDef, GrantDef};
use crate::openapi::escape;
use crate::openapi::report::{Level, Reports};

const METHODS: [(&str, Method); 7] = [
    ("get", Method::Get),
    ("post", Method::Post),
    ("put", Method::Put),
    ("delete", Method::Delete),
    ("patch", Method::Patch),
    ("head", Method::Head),
    ("options", Method::Options),
];

pub(super) fn path_item(ctx: &mut Ctx, path: &str, item: &Value, apis: &mut Vec<ApiDef>) {
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
pub(super) fn deref<'a>(doc: &'a Value, v: &'a Value) -> (&'a Value, Option<String>) {
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
    if let Some(p) = o.json("x-pylon-publish") {
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
                        return ctx.r.refuse(&at, format!("security scheme `{scheme}` is not one Pylon enforces; API left out (a gateway must not open it silently)"));
                    }
                    // A requirement naming no defined scheme still asks for
                    // authentication (Ory's published client API has one):
                    // opening the API without any would be the silent drop.
                    None if aliyun_auth.is_none() => {
                        let at = o.at("security");
                        return ctx.r.refuse(&at, format!("security scheme `{scheme}` is not defined in the document; API left out (a gateway must not open it silently)"));
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
                return ctx.r.refuse(
                    &o.at("x-aliyun-apigateway-auth-type"),
                    format!("`{other}` is not supported; API left out"),
                );
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
                o.unsupported(
                    &mut ctx.r,
                    "x-aliyun-apigateway-app-code-auth-type",
                    "Pylon also accepts the AppCode in the query",
                );
                AppCodeMode::HttpAllowed
            }
            other => {
                o.unsupported(
                    &mut ctx.r,
                    "x-aliyun-apigateway-app-code-auth-type",
                    format!("`{other}` unknown; AppCodes disabled"),
                );
                AppCodeMode::Disabled
            }
        };
    }
    if let Some(v) = o.json("x-pylon-app-code") {
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
        o.unsupported(
            &mut ctx.r,
            "x-aliyun-apigateway-api-force-nonce-check",
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
            o.unsupported(&mut ctx.r, "x-aliyun-apigateway-websocket-api-type", format!("`{t}`: Alibaba's two-way notification channel is not supported; forwarded as a plain WebSocket"));
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
        Some(other) => o.unsupported(
            &mut ctx.r,
            "x-apigateway-match-mode",
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
            o.unsupported(
                &mut ctx.r,
                "x-apigateway-plugins",
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
    if let Some(v) = o.json("x-pylon-request-mode") {
        api.request_mode = v;
    }

    // Backend.
    let mut have_backend = false;
    let vendor_backend = op.get("x-apigateway-backend").is_some()
        || op.get("x-aliyun-apigateway-backend").is_some()
        || aliyun_root("x-aliyun-apigateway-backend").is_some();
    if let Some(b) = o.get("x-apigateway-backend") {
        let at = o.at("x-apigateway-backend");
        api.backend = huawei_backend(ctx, b, &at)?;
        have_backend = true;
    } else if let Some(b) = o
        .get("x-aliyun-apigateway-backend")
        .or_else(|| aliyun_root("x-aliyun-apigateway-backend"))
    {
        let at = if op.get("x-aliyun-apigateway-backend").is_some() {
            o.at("x-aliyun-apigateway-backend")
        } else {
            "#/x-aliyun-apigateway-backend".to_string()
        };
        api.backend = aliyun_backend(ctx, b, &at, &api.path)?;
        have_backend = true;
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
                return ctx.r.refuse(
                    ptr,
                    "no backend in the document (a base-scope export?); give --backend URL",
                );
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
        let list = o.items(key);
        for (at, c) in list.into_iter().filter(|_| pylon_list.is_none()) {
            if let Some(p) = aliyun_backend_param(&mut ctx.r, c, &at, system) {
                api.backend.params.push(p);
            }
        }
    }
    huawei_backend_params(
        &mut ctx.r,
        &mut o,
        "x-pylon-backend-parameters",
        &mut api.backend.params,
    );
    for (at, p) in o.items("x-apigateway-backend-policies") {
        if let Some(p) = policy(ctx, p, &at) {
            api.policies.push(p);
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
        o.unsupported(
            &mut ctx.r,
            "requestHttpMethod",
            "differs from the operation's method; the operation's is used",
        );
    }
    if o.str("requestPath").is_some_and(|p| p != api.path) {
        o.unsupported(
            &mut ctx.r,
            "requestPath",
            "differs from the operation's path; the operation's is used",
        );
    }
    o.finish(&mut ctx.r);
}
