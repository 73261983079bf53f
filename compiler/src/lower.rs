//! Definitions → plan: every semantic check, variable substitution, response
//! sets merged with the defaults, one cluster per distinct backend address.
//! All errors are collected and located; on any error nothing is produced.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pylon_filter::gateway::{default_set, Gateway, DEFAULT_SET};
use pylon_filter::path_template::{PathTemplate, Segment};
use pylon_filter::plan::{
    ApiPlan, BackendParamPlan, BackendPlan, GroupPlan, HttpBackend, Location, MockBackend, Plan,
    ResponseSpec, DEFAULT_MAX_BODY_BYTES, PLAN_VERSION, RELEASE,
};
use pylon_filter::response::Template;
use pylon_filter::router::MAX_STAGES;
use sha2::{Digest, Sha256};

use crate::defs::{ApiDef, BackendDef, Defs, GroupDef, HttpBackendDef, Located, Scheme};
use crate::error::DefError;
use crate::ssrf::Admin;

/// A backend address Envoy needs a cluster for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cluster {
    pub name: String,
    /// Host header the backend receives.
    pub authority: String,
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

#[derive(Debug)]
pub struct Compiled {
    pub plan: Plan,
    pub clusters: Vec<Cluster>,
    /// The JSON access log's path (`None`: off).
    pub access_log: Option<String>,
}

pub fn lower(defs: &Defs, admin: &Admin) -> Result<Compiled, Vec<DefError>> {
    let mut errs = Vec::new();
    let stages = check_environments(defs, &mut errs);
    let mut groups: Vec<GroupPlan> = Vec::new();
    let mut group_at: HashMap<&str, usize> = HashMap::new();
    let mut domain_owner: HashMap<String, String> = HashMap::new();
    let mut default_group: Option<&str> = None;
    for g in &defs.groups {
        let object = format!("group '{}'", g.def.name);
        let err = |field: &str, msg: String| DefError::new(&g.file, &object, field, msg);
        if let Err(m) = check_name(&g.def.name) {
            errs.push(err("name", m));
        }
        if group_at.contains_key(g.def.name.as_str()) {
            errs.push(err("name", "another group has this name".into()));
            continue;
        }
        if g.def.default {
            if let Some(prev) = default_group {
                errs.push(err(
                    "default",
                    format!("group '{prev}' is already the default group"),
                ));
            }
            default_group = Some(&g.def.name);
        }
        for (i, d) in g.def.domains.iter().enumerate() {
            let field = format!("domains[{i}]");
            if let Err(m) = check_domain(d) {
                errs.push(err(&field, m));
            } else if let Some(owner) =
                domain_owner.insert(d.to_ascii_lowercase(), g.def.name.clone())
            {
                errs.push(err(
                    &field,
                    format!("domain `{d}` is already bound to group '{owner}'"),
                ));
            }
        }
        check_variables(g, &stages, &mut errs);
        let responses = response_sets(g, &mut errs);
        group_at.insert(&g.def.name, groups.len());
        groups.push(GroupPlan {
            name: g.def.name.clone(),
            domains: g
                .def
                .domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            default: g.def.default,
            responses,
            apis: Vec::new(),
        });
    }

    let mut clusters: BTreeMap<(Scheme, String, u16), String> = BTreeMap::new();
    let mut routes: HashMap<(String, String, String, bool, String), String> = HashMap::new();
    let mut names: BTreeSet<(String, String)> = BTreeSet::new();
    for a in &defs.apis {
        let object = format!("api '{}'", a.def.name);
        let err = |field: &str, msg: String| DefError::new(&a.file, &object, field, msg);
        if let Err(m) = check_name(&a.def.name) {
            errs.push(err("name", m));
        }
        let Some(&gi) = group_at.get(a.def.group.as_str()) else {
            errs.push(err(
                "group",
                format!("no group named '{}' is defined", a.def.group),
            ));
            continue;
        };
        if !names.insert((a.def.group.clone(), a.def.name.clone())) {
            errs.push(err(
                "name",
                format!("group '{}' already has an API with this name", a.def.group),
            ));
        }
        let template = match PathTemplate::parse(&a.def.path, a.def.match_mode) {
            Ok(t) => t,
            Err(m) => {
                errs.push(err("path", m));
                continue;
            }
        };
        let params = crate::params::lower_params(a, &template, &mut errs);
        let mut policies = crate::params::lower_policies(a, &params, &template, &mut errs);
        // Each backend's parameters, and (once per API, published or not)
        // what does not depend on an environment's variables; the rest is
        // checked per published environment in `backend_for`.
        let backends: Vec<(String, &BackendDef)> =
            std::iter::once(("backend".to_string(), &a.def.backend))
                .chain(
                    a.def
                        .policies
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (format!("policies[{i}].backend"), &p.backend)),
                )
                .collect();
        let backend_params: Vec<_> = backends
            .iter()
            .map(|(prefix, b)| {
                let bp = crate::params::lower_backend_params(
                    a, prefix, b, &params, &template, &mut errs,
                );
                errs.extend(check_backend(a, prefix, b, &bp, &template, admin));
                bp
            })
            .collect();
        let response = a.def.response.clone().unwrap_or_else(|| DEFAULT_SET.into());
        if !groups[gi].responses.contains_key(&response) {
            errs.push(err(
                "response",
                format!(
                    "group '{}' has no response set named '{response}'",
                    a.def.group
                ),
            ));
        }
        let group = &defs.groups[defs
            .groups
            .iter()
            .position(|g| g.def.name == a.def.group)
            .unwrap_or(0)];
        let mut per_stage = BTreeMap::new();
        for (i, stage) in a.def.publish.iter().enumerate() {
            if !stages.contains(stage) {
                errs.push(err(
                    &format!("publish[{i}]"),
                    format!("no environment named '{stage}' is defined"),
                ));
                continue;
            }
            let key = (
                a.def.group.clone(),
                a.def.method.as_str().to_string(),
                route_shape(&template),
                a.def.match_mode == pylon_filter::plan::MatchMode::Prefix,
                stage.clone(),
            );
            if let Some(other) = routes.insert(key, a.def.name.clone()) {
                errs.push(err(
                    "path",
                    format!(
                        "api '{other}' already serves {} {} in environment {stage}",
                        a.def.method.as_str(),
                        a.def.path
                    ),
                ));
            }
            for (i, ((prefix, b), bp)) in backends.iter().zip(&backend_params).enumerate() {
                let target = BackendTarget {
                    prefix,
                    def: b,
                    params: bp,
                };
                match backend_for(a, &target, group, stage, &template, admin, &mut clusters) {
                    Ok(plan) if i == 0 => {
                        per_stage.insert(stage.clone(), plan);
                    }
                    Ok(plan) => {
                        policies[i - 1].stages.insert(stage.clone(), plan);
                    }
                    Err(e) => errs.extend(e),
                }
            }
        }
        groups[gi].apis.push(ApiPlan {
            id: api_id(&a.def.group, &a.def.name),
            name: a.def.name.clone(),
            method: a.def.method,
            path: a.def.path.clone(),
            match_mode: a.def.match_mode,
            response,
            stages: per_stage,
            auth: a.def.auth,
            allow_hmac_sha1: a.def.allow_hmac_sha1,
            app_code: a.def.app_code,
            authorized: Default::default(),
            acls: Default::default(),
            throttles: Default::default(),
            request_mode: a.def.request_mode,
            params,
            policies,
            cors: a.def.cors,
        });
    }
    let apps = crate::apps::lower_apps(defs, &mut groups, &mut errs);
    let accounts = crate::apps::lower_accounts(defs, &mut errs);
    let acls = crate::acls::lower_acls(defs, &mut groups, &mut errs);
    let throttles = crate::throttles::lower_throttles(defs, &mut groups, &mut errs);
    let default_limit = match defs
        .gateway
        .as_ref()
        .and_then(|g| g.def.default_limit.map(|l| (g, l)))
    {
        Some((g, 0)) => {
            errs.push(DefError::new(
                &g.file,
                "gateway",
                "default_limit",
                "must be at least 1",
            ));
            0
        }
        Some((_, l)) => l,
        None => pylon_filter::plan::DEFAULT_LIMIT,
    };

    let max_body_bytes = match &defs.gateway {
        Some(g) => match g.def.max_body_bytes {
            Some(0) => {
                errs.push(DefError::new(
                    &g.file,
                    "gateway",
                    "max_body_bytes",
                    "must be greater than 0",
                ));
                0
            }
            Some(n) => n,
            None => DEFAULT_MAX_BODY_BYTES,
        },
        None => DEFAULT_MAX_BODY_BYTES,
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    let plan = Plan {
        version: PLAN_VERSION,
        max_body_bytes,
        stages,
        groups,
        apps,
        accounts,
        acls,
        throttles,
        default_limit,
        metrics: defs
            .gateway
            .as_ref()
            .and_then(|g| g.def.metrics)
            .unwrap_or(true),
    };
    // The filter must accept what we emit: check with its own loader.
    if let Err(e) = Gateway::from_plan(&plan) {
        return Err(vec![DefError::new(
            std::path::Path::new("(plan)"),
            "",
            "",
            e,
        )]);
    }
    let clusters = clusters
        .into_iter()
        .map(|((scheme, host, port), name)| Cluster {
            name,
            authority: authority(&host, port, scheme),
            scheme,
            host,
            port,
        })
        .collect();
    let access_log = match defs.gateway.as_ref().and_then(|g| g.def.access_log.clone()) {
        Some(off) if off == "off" => None,
        Some(path) => Some(path),
        None => Some(crate::observability::DEFAULT_ACCESS_LOG.to_string()),
    };
    Ok(Compiled {
        plan,
        clusters,
        access_log,
    })
}

fn check_environments(defs: &Defs, errs: &mut Vec<DefError>) -> Vec<String> {
    let mut stages = vec![RELEASE.to_string()];
    for e in &defs.environments {
        let object = format!("environment '{}'", e.def.name);
        if let Err(m) = check_env_name(&e.def.name) {
            errs.push(DefError::new(&e.file, &object, "name", m));
        } else if stages.contains(&e.def.name) {
            let m = if e.def.name == RELEASE {
                "RELEASE always exists and is not declared".to_string()
            } else {
                "another environment has this name".to_string()
            };
            errs.push(DefError::new(&e.file, &object, "name", m));
        } else {
            stages.push(e.def.name.clone());
        }
    }
    if stages.len() > MAX_STAGES {
        let file = &defs.environments[MAX_STAGES - 1].file;
        errs.push(DefError::new(
            file,
            "environments",
            "",
            format!("at most {MAX_STAGES} environments"),
        ));
    }
    stages
}

fn check_variables(g: &Located<GroupDef>, stages: &[String], errs: &mut Vec<DefError>) {
    let object = format!("group '{}'", g.def.name);
    for (env, vars) in &g.def.variables {
        if !stages.contains(env) {
            errs.push(DefError::new(
                &g.file,
                &object,
                &format!("variables.{env}"),
                format!("no environment named '{env}' is defined"),
            ));
        }
        for (name, value) in vars {
            let field = format!("variables.{env}.{name}");
            if let Err(m) = check_var_name(name) {
                errs.push(DefError::new(&g.file, &object, &field, m));
            }
            if value.is_empty() || value.len() > 255 {
                errs.push(DefError::new(
                    &g.file,
                    &object,
                    &field,
                    "value must be 1-255 characters",
                ));
            }
        }
    }
}

/// The group's response sets, each complete: the product defaults + overrides.
fn response_sets(
    g: &Located<GroupDef>,
    errs: &mut Vec<DefError>,
) -> BTreeMap<String, pylon_filter::plan::ResponseSet> {
    let object = format!("group '{}'", g.def.name);
    let mut sets = BTreeMap::new();
    sets.insert(DEFAULT_SET.to_string(), default_set());
    for (set_name, overrides) in &g.def.responses {
        // A custom set starts from the group's `default` set as overridden.
        let mut set = g
            .def
            .responses
            .get(DEFAULT_SET)
            .filter(|_| set_name != DEFAULT_SET)
            .map(|d| apply_overrides(default_set(), d))
            .unwrap_or_else(default_set);
        set = apply_overrides(set, overrides);
        for (kind, def) in overrides {
            let field = format!("responses.{set_name}.{}", kind.as_str());
            if let Some(s) = def.status {
                if !(200..=599).contains(&s) {
                    errs.push(DefError::new(
                        &g.file,
                        &object,
                        &format!("{field}.status"),
                        "status must be 200-599",
                    ));
                }
            }
            if let Some(body) = &def.body {
                if let Err(m) = Template::parse(body) {
                    errs.push(DefError::new(&g.file, &object, &format!("{field}.body"), m));
                }
            }
            for (k, v) in &def.headers {
                if let Err(m) = check_header(k, v) {
                    errs.push(DefError::new(
                        &g.file,
                        &object,
                        &format!("{field}.headers.{k}"),
                        m,
                    ));
                }
            }
        }
        sets.insert(set_name.clone(), set);
    }
    sets
}

fn apply_overrides(
    mut set: pylon_filter::plan::ResponseSet,
    overrides: &BTreeMap<pylon_filter::response::ErrorType, crate::defs::ResponseDef>,
) -> pylon_filter::plan::ResponseSet {
    for (kind, def) in overrides {
        let base = set.get(kind).cloned();
        let spec = ResponseSpec {
            status: def.status.or(base.as_ref().and_then(|b| b.status)),
            body: def
                .body
                .clone()
                .or(base.map(|b| b.body))
                .unwrap_or_default(),
            headers: def.headers.clone(),
        };
        set.insert(*kind, spec);
    }
    set
}

/// The backend checks that do not depend on an environment: reported once,
/// even for an API published nowhere (or everywhere).
fn check_backend(
    a: &Located<ApiDef>,
    prefix: &str,
    backend: &BackendDef,
    params: &[BackendParamPlan],
    template: &PathTemplate,
    admin: &Admin,
) -> Vec<DefError> {
    let object = format!("api '{}'", a.def.name);
    let err = |field: &str, msg: String| {
        DefError::new(&a.file, &object, &format!("{prefix}{field}"), msg)
    };
    let mut errs = Vec::new();
    match (&backend.http, &backend.mock) {
        (Some(_), Some(_)) | (None, None) => {
            errs.push(err("", "give exactly one of `http` or `mock`".into()));
        }
        (None, Some(m)) => {
            if !(200..=599).contains(&m.status) {
                errs.push(err(".mock.status", "status must be 200-599".into()));
            }
            for (k, v) in &m.headers {
                if let Err(msg) = check_header(k, v) {
                    errs.push(err(&format!(".mock.headers.{k}"), msg));
                }
            }
        }
        (Some(h), None) => {
            if !(1..=600_000).contains(&h.timeout) {
                errs.push(err(".http.timeout", "timeout must be 1-600000 ms".into()));
            }
            // With a `#variable#` these are checked per environment.
            if !h.address.contains('#') {
                if let Err(m) = backend_address(&h.address, h, admin) {
                    errs.push(err(".http.address", format!("`{}`: {m}", h.address)));
                }
            }
            if !h.path.contains('#') {
                if let Err(m) = check_backend_path(&h.path, template, params) {
                    errs.push(err(".http.path", m));
                }
            }
        }
    }
    errs
}

/// One of an API's backends: its own or a policy's.
struct BackendTarget<'a> {
    /// `backend` or `policies[i].backend`, for error fields.
    prefix: &'a str,
    def: &'a BackendDef,
    params: &'a [BackendParamPlan],
}

/// A backend in one environment. Errors `check_backend` reports are not
/// repeated here (the result is then an empty error list).
fn backend_for(
    a: &Located<ApiDef>,
    target: &BackendTarget,
    group: &Located<GroupDef>,
    stage: &str,
    template: &PathTemplate,
    admin: &Admin,
    clusters: &mut BTreeMap<(Scheme, String, u16), String>,
) -> Result<BackendPlan, Vec<DefError>> {
    let object = format!("api '{}'", a.def.name);
    let prefix = target.prefix;
    let err = |field: &str, msg: String| {
        DefError::new(&a.file, &object, &format!("{prefix}{field}"), msg)
    };
    let vars = group.def.variables.get(stage);
    let subst = |field: &str, text: &str| {
        substitute(text, vars).map_err(|m| {
            err(
                field,
                format!(
                    "{m} in environment {stage} (set it under group '{}' variables.{stage})",
                    group.def.name
                ),
            )
        })
    };
    match (&target.def.http, &target.def.mock) {
        (Some(_), Some(_)) | (None, None) => Err(Vec::new()),
        (None, Some(m)) => Ok(BackendPlan::Mock(MockBackend {
            status: m.status,
            headers: m.headers.clone(),
            body: m.body.clone(),
        })),
        (Some(h), None) => {
            let address = subst(".http.address", &h.address);
            let path = subst(".http.path", &h.path);
            let parsed = address.and_then(|addr| {
                backend_address(&addr, h, admin)
                    .map_err(|m| err(".http.address", format!("`{addr}`: {m}")))
            });
            let path = path.and_then(|p| {
                check_backend_path(&p, template, target.params)
                    .map_err(|m| err(".http.path", m))?;
                Ok(p)
            });
            match (parsed, path) {
                (Ok((host, port)), Ok(path)) => {
                    let next = clusters.len();
                    let cluster = clusters
                        .entry((h.scheme, host.clone(), port))
                        .or_insert_with(|| cluster_name(h.scheme, &host, port, next))
                        .clone();
                    Ok(BackendPlan::Http(HttpBackend {
                        cluster,
                        path,
                        method: h.method,
                        timeout_ms: h.timeout,
                        params: target.params.to_vec(),
                    }))
                }
                (parsed, path) => {
                    let mut errs = Vec::new();
                    // A variable-free field's error came from `check_backend`.
                    if h.address.contains('#') {
                        errs.extend(parsed.err());
                    }
                    if h.path.contains('#') {
                        errs.extend(path.err());
                    }
                    Err(errs)
                }
            }
        }
    }
}

/// Replaces every `#name#` with its value; an unset variable is an error.
pub fn substitute(text: &str, vars: Option<&BTreeMap<String, String>>) -> Result<String, String> {
    let pieces: Vec<&str> = text.split('#').collect();
    if pieces.len().is_multiple_of(2) {
        return Err(format!("`{text}` has an unterminated `#variable#`"));
    }
    let mut out = String::with_capacity(text.len());
    for (i, piece) in pieces.iter().enumerate() {
        if i % 2 == 0 {
            out.push_str(piece);
            continue;
        }
        check_var_name(piece)?;
        match vars.and_then(|v| v.get(*piece)) {
            Some(value) => out.push_str(value),
            None => return Err(format!("variable #{piece}# has no value")),
        }
    }
    Ok(out)
}

/// `{name}` in a backend path takes a backend path parameter of that name,
/// else the request path parameter.
fn check_backend_path(
    path: &str,
    template: &PathTemplate,
    params: &[BackendParamPlan],
) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("backend path `{path}` must start with `/`"));
    }
    if path.contains(['?', '#', ' ', '\r', '\n']) {
        return Err(format!(
            "backend path `{path}` may not contain `?`, `#`, spaces or line breaks"
        ));
    }
    let backend_params = params;
    let params: Vec<&str> = template.params().collect();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("backend path `{path}` has an unclosed `{{`"))?;
        let name = rest[open + 1..open + close].trim_end_matches('+');
        let mapped = backend_params
            .iter()
            .any(|p| p.location == Location::Path && p.name == name);
        if !params.contains(&name) && !mapped {
            return Err(format!(
                "backend path uses `{{{name}}}`, but neither the request path `{}` nor the backend's path parameters have it",
                template_display(template)
            ));
        }
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("backend path `{path}` has a stray `}}`"));
    }
    Ok(())
}

fn template_display(t: &PathTemplate) -> String {
    let mut s = String::new();
    for seg in &t.segments {
        s.push('/');
        match seg {
            Segment::Literal(l) => s.push_str(l),
            Segment::Param(n) => s.push_str(&format!("{{{n}}}")),
            Segment::Greedy(n) => s.push_str(&format!("{{{n}+}}")),
        }
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// The route's shape with parameter names erased: `/a/{x}` and `/a/{y}` clash.
fn route_shape(t: &PathTemplate) -> String {
    let mut s = String::new();
    for seg in &t.segments {
        s.push('/');
        match seg {
            Segment::Literal(l) => s.push_str(l),
            Segment::Param(_) => s.push_str("{}"),
            Segment::Greedy(_) => s.push_str("{+}"),
        }
    }
    s
}

/// A backend's address parsed and checked against internal addresses.
fn backend_address(addr: &str, h: &HttpBackendDef, admin: &Admin) -> Result<(String, u16), String> {
    let (host, port) = parse_address(addr, h.scheme)?;
    crate::ssrf::check(&host, port, h.allow_internal_address, admin)?;
    Ok((host, port))
}

fn parse_address(addr: &str, scheme: Scheme) -> Result<(String, u16), String> {
    if addr.contains("://") || addr.contains('/') {
        return Err("must be `host[:port]` (the scheme and path are separate fields)".into());
    }
    let default_port = match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed `[` in IPv6 address")?;
        (h, after.strip_prefix(':'))
    } else {
        match addr.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or(format!("port `{p}` is not 1-65535"))?,
        None => default_port,
    };
    let valid_host = !host.is_empty()
        && (host.parse::<std::net::IpAddr>().is_ok()
            || host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if !valid_host {
        return Err(format!("`{host}` is not a host name or IP address"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn authority(host: &str, port: u16, scheme: Scheme) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match (scheme, port) {
        (Scheme::Http, 80) | (Scheme::Https, 443) => host,
        _ => format!("{host}:{port}"),
    }
}

fn cluster_name(scheme: Scheme, host: &str, port: u16, n: usize) -> String {
    let scheme = match scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    let safe: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // The counter keeps names unique even if two hosts sanitize alike.
    format!("backend{n}_{scheme}_{safe}_{port}")
}

/// A stable 32-hex-digit API id, like the products' ids.
pub fn api_id(group: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{group}/{name}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Group and API names: 1-64 letters, digits, `-` and `_`, starting with a letter.
fn check_name(name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name `{name}` must be 1-64 letters, digits, `-` or `_`, starting with a letter"
        ))
    }
}

/// Seed: environment names are 3-64 letters, digits and `_`, starting with a letter.
fn check_env_name(name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && (3..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "environment name `{name}` must be 3-64 letters, digits or `_`, starting with a letter"
        ))
    }
}

/// Seed: variable names are 3-32 letters, digits, `-` and `_`, starting with a letter.
fn check_var_name(name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && (3..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "variable name `{name}` must be 3-32 letters, digits, `-` or `_`, starting with a letter"
        ))
    }
}

fn check_domain(d: &str) -> Result<(), String> {
    let host = d.strip_prefix("*.").unwrap_or(d);
    let ok = !host.is_empty()
        && host.len() <= 255
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{d}` is not a domain name or a `*.domain` wildcard"
        ))
    }
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !name_ok {
        return Err(format!("`{name}` is not a valid header name"));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err("header value may not contain line breaks".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_several_variables_in_one_field() {
        let vars: BTreeMap<String, String> = [
            ("host".to_string(), "10.0.0.1".to_string()),
            ("ver".to_string(), "v2".to_string()),
        ]
        .into();
        assert_eq!(substitute("#host#:80", Some(&vars)).unwrap(), "10.0.0.1:80");
        assert_eq!(
            substitute("/#ver#/x/#ver#", Some(&vars)).unwrap(),
            "/v2/x/v2"
        );
        assert!(substitute("/#nope#", Some(&vars))
            .unwrap_err()
            .contains("#nope#"));
        assert!(substitute("/#open", Some(&vars)).is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("a.example.com", Scheme::Https).unwrap(),
            ("a.example.com".into(), 443)
        );
        assert_eq!(
            parse_address("127.0.0.1:9000", Scheme::Http).unwrap(),
            ("127.0.0.1".into(), 9000)
        );
        assert_eq!(
            parse_address("[::1]:81", Scheme::Http).unwrap(),
            ("::1".into(), 81)
        );
        for bad in ["http://x", "x:0", "x:99999", "", "a b", "x/y"] {
            assert!(parse_address(bad, Scheme::Http).is_err(), "{bad}");
        }
        assert_eq!(authority("::1", 81, Scheme::Http), "[::1]:81");
        assert_eq!(authority("a", 80, Scheme::Http), "a");
    }

    #[test]
    fn api_ids_are_stable_hex() {
        let id = api_id("shop", "get-item");
        assert_eq!(id.len(), 32);
        assert_eq!(id, api_id("shop", "get-item"));
        assert_ne!(id, api_id("shop", "get-items"));
    }
}
