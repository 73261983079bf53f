//! Swagger 2.0 / OpenAPI 3.x (YAML or JSON) → Pylon definitions.
//!
//! Every key of every object the importer walks is either mapped or
//! reported (`Obj::finish`): nothing is dropped silently.
//!
//! - `mod.rs`: the document walk (info, group, root maps, paths);
//! - `reader.rs`: `Obj`, the key-tracking reader, and `text`;
//! - `operation.rs`: path items and operations (one API each);
//! - `params.rs`: request parameters and backend parameters;
//! - `backends.rs`: `servers`, Huawei and Alibaba backends, backend policies;
//! - `policies.rs`: security schemes, throttling, access control, gateway
//!   responses.

use std::collections::{BTreeMap, BTreeSet};

use pylon_filter::plan::{AppCodeMode, AuthKind, Protocol};
use pylon_filter::response::ErrorType;
use serde_json::Value;

use super::report::{Level, Report, Reports};
use super::{escape, DefsOut};
use crate::defs::{EnvironmentDef, GrantDef, GroupDef, HttpBackendDef, ResponseDef};
use crate::tls::CertificateDef;

mod backends;
mod operation;
mod params;
mod policies;
mod reader;

pub use backends::parse_backend_url;
use backends::server_backend;
use operation::path_item;
use policies::{acl, responses, security_scheme, throttle};
use reader::{text, Obj};

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
