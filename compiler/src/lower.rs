//! Definitions → plan: `lower` runs the phases in order (check, resolve,
//! bind) and builds the plan and the cluster list from what they found.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pylon_filter::gateway::Gateway;
use pylon_filter::path_template::PathTemplate;
use pylon_filter::plan::{
    ApiPlan, BackendParamPlan, BackendPlan, GroupPlan, ParamPlan, Plan, PolicyPlan, ResponseSet,
    DEFAULT_MAX_BODY_BYTES, PLAN_VERSION,
};
use pylon_filter::response::DEFAULT_SET;

use crate::bindings::{Bindings, Bound};
use crate::check::{
    check_backend, check_environments, check_variables, response_sets, route_shape,
};
use crate::defs::{ApiDef, BackendDef, Defs, GroupDef, Located, Scheme};
use crate::error::DefError;
use crate::names::{api_id, check_domain, check_name};
use crate::resolve::{authority, backend_for, BackendTarget, Clusters};
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
    pub tls: crate::tls::BackendTls,
}

#[derive(Debug)]
pub struct Compiled {
    pub plan: Plan,
    pub clusters: Vec<Cluster>,
    /// The HTTPS listener's certificates (compiler/src/tls.rs).
    pub tls: crate::tls::Tls,
    /// The JSON access log's path (`None`: off).
    pub access_log: Option<String>,
}

/// The phases after reading (`defs.rs`): check (`check.rs`), resolve —
/// variables, environments, backends and clusters (`resolve.rs`), bindings
/// (`bindings.rs`) — and build the plan; `emit/` then writes the targets.
/// All errors are collected and located; on any error nothing is produced.
pub fn lower(defs: &Defs, admin: &Admin) -> Result<Compiled, Vec<DefError>> {
    let mut errs = Vec::new();
    let stages = check_environments(defs, &mut errs);
    let mut groups = lower_groups(defs, &stages, &mut errs);
    let published = crate::bindings::Published::new(defs, &stages);
    let mut bindings = crate::bindings::resolve(defs, &published, &mut errs);
    let mut clusters = BTreeMap::new();
    lower_apis(
        defs,
        &stages,
        admin,
        &mut groups,
        &mut bindings,
        &mut clusters,
        &mut errs,
    );
    let apps = crate::apps::lower_apps(defs, &mut errs);
    let accounts = crate::apps::lower_accounts(defs, &mut errs);
    let acls = crate::acls::lower_acls(defs, &mut errs);
    let throttles = crate::throttles::lower_throttles(defs, &mut errs);
    let (default_limit, max_body_bytes) = gateway_limits(defs, &mut errs);
    let tls = crate::tls::lower(defs, &mut errs);
    if !errs.is_empty() {
        return Err(errs);
    }
    let access_log = access_log_path(defs);
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
        access_log: access_log.is_some(),
        // The backend route applies the default timeout (most APIs'), so
        // the filter sets the timeout header only for the others.
        route_timeout_ms: Some(crate::defs::DEFAULT_TIMEOUT_MS),
    };
    check_filter_accepts(&plan)?;
    Ok(Compiled {
        plan,
        clusters: cluster_list(clusters),
        tls,
        access_log,
    })
}

/// The JSON access log's path: `gateway.access_log`, the default if unset,
/// `None` for `off`.
fn access_log_path(defs: &Defs) -> Option<String> {
    match defs.gateway.as_ref().and_then(|g| g.def.access_log.clone()) {
        Some(off) if off == "off" => None,
        Some(path) => Some(path),
        None => Some(crate::observability::DEFAULT_ACCESS_LOG.to_string()),
    }
}

/// The filter must accept what we emit: checked with its own loader.
fn check_filter_accepts(plan: &Plan) -> Result<(), Vec<DefError>> {
    Gateway::from_plan(plan)
        .map(|_| ())
        .map_err(|e| vec![DefError::new(std::path::Path::new("(plan)"), "", "", e)])
}

/// One cluster per distinct backend address, in the order `Clusters` keeps.
fn cluster_list(clusters: Clusters) -> Vec<Cluster> {
    clusters
        .into_iter()
        .map(|((scheme, host, port, tls), name)| Cluster {
            name,
            authority: authority(&host, port, scheme),
            scheme,
            host,
            port,
            tls,
        })
        .collect()
}

/// The groups, checked, with their complete response sets and no APIs yet.
fn lower_groups(defs: &Defs, stages: &[String], errs: &mut Vec<DefError>) -> Vec<GroupPlan> {
    let mut groups: Vec<GroupPlan> = Vec::new();
    let mut group_at: HashMap<&str, usize> = HashMap::new();
    let mut domain_owner: HashMap<String, String> = HashMap::new();
    let mut default_group: Option<&str> = None;
    for g in &defs.groups {
        if !check_group_identity(g, &group_at, &mut default_group, errs) {
            continue;
        }
        check_domains(g, &mut domain_owner, errs);
        check_variables(g, stages, errs);
        let responses = response_sets(g, errs);
        group_at.insert(&g.def.name, groups.len());
        groups.push(group_plan(g, responses));
    }
    groups
}

/// Huawei user guide §5.1.1: a group's name, unique, and at most one default
/// group; false for a second group of the same name (it is not lowered).
fn check_group_identity<'d>(
    g: &'d Located<GroupDef>,
    group_at: &HashMap<&str, usize>,
    default_group: &mut Option<&'d str>,
    errs: &mut Vec<DefError>,
) -> bool {
    if let Err(m) = check_name(&g.def.name) {
        errs.push(group_err(g, "name", m));
    }
    if group_at.contains_key(g.def.name.as_str()) {
        errs.push(group_err(g, "name", "another group has this name".into()));
        return false;
    }
    if g.def.default {
        if let Some(prev) = default_group {
            errs.push(group_err(
                g,
                "default",
                format!("group '{prev}' is already the default group"),
            ));
        }
        *default_group = Some(&g.def.name);
    }
    true
}

/// Huawei user guide §5.1.2: each domain well formed and bound to one group
/// only (`domain_owner`: lower-cased domain → its group).
fn check_domains(
    g: &Located<GroupDef>,
    domain_owner: &mut HashMap<String, String>,
    errs: &mut Vec<DefError>,
) {
    for (i, d) in g.def.domains.iter().enumerate() {
        let field = format!("domains[{i}]");
        if let Err(m) = check_domain(d) {
            errs.push(group_err(g, &field, m));
        } else if let Some(owner) = domain_owner.insert(d.to_ascii_lowercase(), g.def.name.clone())
        {
            errs.push(group_err(
                g,
                &field,
                format!("domain `{d}` is already bound to group '{owner}'"),
            ));
        }
    }
}

/// A checked group's plan: lower-cased domains, its response sets, no APIs yet.
fn group_plan(g: &Located<GroupDef>, responses: BTreeMap<String, ResponseSet>) -> GroupPlan {
    GroupPlan {
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
    }
}

fn group_err(g: &Located<GroupDef>, field: &str, msg: String) -> DefError {
    DefError::new(&g.file, &format!("group '{}'", g.def.name), field, msg)
}

/// Group, method, route shape, prefix match and environment: one API each.
type RouteKey = (String, String, String, bool, String);

/// One of an API's backends — its own (`backend`) or a policy's
/// (`policies[i].backend`) — with its checked parameters.
struct ApiBackend<'d> {
    prefix: String,
    def: &'d BackendDef,
    params: Vec<BackendParamPlan>,
}

/// An API whose identity and request path are checked: what each
/// environment it is published to needs.
struct ApiInput<'d> {
    a: &'d Located<ApiDef>,
    group: &'d Located<GroupDef>,
    template: PathTemplate,
    /// Its own backend first, then its policies' in order.
    backends: Vec<ApiBackend<'d>>,
}

/// The API's backend plans per environment: its own, and its policies'.
struct StagePlans {
    own: BTreeMap<String, BackendPlan>,
    policies: Vec<PolicyPlan>,
}

/// Each API checked, its backends resolved per published environment, and
/// its plan (with its bindings) added to its group.
fn lower_apis(
    defs: &Defs,
    stages: &[String],
    admin: &Admin,
    groups: &mut [GroupPlan],
    bindings: &mut Bindings,
    clusters: &mut Clusters,
    errs: &mut Vec<DefError>,
) {
    let group_at: HashMap<String, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.name.clone(), i))
        .collect();
    let mut routes: HashMap<RouteKey, String> = HashMap::new();
    let mut names: BTreeSet<(String, String)> = BTreeSet::new();
    for a in &defs.apis {
        let Some(gi) = check_api_identity(a, &group_at, &mut names, errs) else {
            continue;
        };
        let Some(template) = request_path(a, errs) else {
            continue;
        };
        let params = crate::params::lower_params(a, &template, errs);
        let policies = crate::params::lower_policies(a, &params, &template, errs);
        let backends = api_backends(a, &params, &template, admin, errs);
        let response = response_set(a, &groups[gi], errs);
        let api = ApiInput {
            a,
            group: group_def(defs, &a.def.group),
            template,
            backends,
        };
        let mut plans = StagePlans {
            own: BTreeMap::new(),
            policies,
        };
        for (i, stage) in a.def.publish.iter().enumerate() {
            if check_stage_defined(a, i, stage, stages, errs) {
                lower_stage(&api, stage, &mut routes, &mut plans, admin, clusters, errs);
            }
        }
        let bound = bindings.take(&a.def.group, &a.def.name);
        groups[gi]
            .apis
            .push(api_plan(a, response, plans, bound, params));
    }
}

/// Huawei user guide §5.2.1 (table 5-4): the API's name, unique within its
/// group, which must exist; that group's index, or `None` if it does not.
fn check_api_identity(
    a: &Located<ApiDef>,
    group_at: &HashMap<String, usize>,
    names: &mut BTreeSet<(String, String)>,
    errs: &mut Vec<DefError>,
) -> Option<usize> {
    if let Err(m) = check_name(&a.def.name) {
        errs.push(api_err(a, "name", m));
    }
    let Some(&gi) = group_at.get(a.def.group.as_str()) else {
        errs.push(api_err(
            a,
            "group",
            format!("no group named '{}' is defined", a.def.group),
        ));
        return None;
    };
    if !names.insert((a.def.group.clone(), a.def.name.clone())) {
        errs.push(api_err(
            a,
            "name",
            format!("group '{}' already has an API with this name", a.def.group),
        ));
    }
    Some(gi)
}

/// Huawei user guide §5.2.1 (table 5-5): the request path, parsed as a
/// template for its match mode.
fn request_path(a: &Located<ApiDef>, errs: &mut Vec<DefError>) -> Option<PathTemplate> {
    match PathTemplate::parse(&a.def.path, a.def.match_mode) {
        Ok(t) => Some(t),
        Err(m) => {
            errs.push(api_err(a, "path", m));
            None
        }
    }
}

/// Huawei user guide §5.2.1 (tables 5-7, 5-9): the default backend and the
/// policy backends, each with its parameters, and (once per API, published
/// or not) what does not depend on an environment's variables; the rest is
/// checked per published environment in `backend_for`.
fn api_backends<'d>(
    a: &'d Located<ApiDef>,
    params: &[ParamPlan],
    template: &PathTemplate,
    admin: &Admin,
    errs: &mut Vec<DefError>,
) -> Vec<ApiBackend<'d>> {
    std::iter::once(("backend".to_string(), &a.def.backend))
        .chain(
            a.def
                .policies
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("policies[{i}].backend"), &p.backend)),
        )
        .map(|(prefix, def)| {
            let params =
                crate::params::lower_backend_params(a, &prefix, def, params, template, errs);
            errs.extend(check_backend(a, &prefix, def, &params, template, admin));
            ApiBackend {
                prefix,
                def,
                params,
            }
        })
        .collect()
}

/// Huawei user guide §5.2.1 (table 5-4, §5.1.4): the gateway response set the
/// API names (`default` if none), which its group must have.
fn response_set(a: &Located<ApiDef>, group: &GroupPlan, errs: &mut Vec<DefError>) -> String {
    let response = a.def.response.clone().unwrap_or_else(|| DEFAULT_SET.into());
    if !group.responses.contains_key(&response) {
        errs.push(api_err(
            a,
            "response",
            format!(
                "group '{}' has no response set named '{response}'",
                a.def.group
            ),
        ));
    }
    response
}

/// The definition of the group named `name` (the first one of that name).
fn group_def<'d>(defs: &'d Defs, name: &str) -> &'d Located<GroupDef> {
    &defs.groups[defs
        .groups
        .iter()
        .position(|g| g.def.name == name)
        .unwrap_or(0)]
}

/// Huawei user guide §5.2.5: an API is published to a defined environment
/// (`publish[i]` is `stage`).
fn check_stage_defined(
    a: &Located<ApiDef>,
    i: usize,
    stage: &str,
    stages: &[String],
    errs: &mut Vec<DefError>,
) -> bool {
    if stages.iter().any(|s| s == stage) {
        return true;
    }
    errs.push(api_err(
        a,
        &format!("publish[{i}]"),
        format!("no environment named '{stage}' is defined"),
    ));
    false
}

/// Huawei user guide §5.2.5: in one environment no other API of the group
/// serves the same method and path; the API's backends there, resolved.
fn lower_stage(
    api: &ApiInput,
    stage: &str,
    routes: &mut HashMap<RouteKey, String>,
    plans: &mut StagePlans,
    admin: &Admin,
    clusters: &mut Clusters,
    errs: &mut Vec<DefError>,
) {
    let a = api.a;
    let key = (
        a.def.group.clone(),
        a.def.method.as_str().to_string(),
        route_shape(&api.template),
        a.def.match_mode == pylon_filter::plan::MatchMode::Prefix,
        stage.to_string(),
    );
    if let Some(other) = routes.insert(key, a.def.name.clone()) {
        errs.push(api_err(
            a,
            "path",
            format!(
                "api '{other}' already serves {} {} in environment {stage}",
                a.def.method.as_str(),
                a.def.path
            ),
        ));
    }
    for (i, b) in api.backends.iter().enumerate() {
        let target = BackendTarget {
            prefix: &b.prefix,
            def: b.def,
            params: &b.params,
        };
        match backend_for(a, &target, api.group, stage, &api.template, admin, clusters) {
            Ok(plan) if i == 0 => {
                plans.own.insert(stage.to_string(), plan);
            }
            Ok(plan) => {
                plans.policies[i - 1].stages.insert(stage.to_string(), plan);
            }
            Err(e) => errs.extend(e),
        }
    }
}

/// The API's plan: its definition, backend plans and bindings.
fn api_plan(
    a: &Located<ApiDef>,
    response: String,
    plans: StagePlans,
    bound: Bound,
    params: Vec<ParamPlan>,
) -> ApiPlan {
    ApiPlan {
        id: api_id(&a.def.group, &a.def.name),
        name: a.def.name.clone(),
        method: a.def.method,
        path: a.def.path.clone(),
        match_mode: a.def.match_mode,
        response,
        stages: plans.own,
        auth: a.def.auth,
        allow_hmac_sha1: a.def.allow_hmac_sha1,
        app_code: a.def.app_code,
        authorized: bound.authorized,
        acls: bound.acls,
        throttles: bound.throttles,
        request_mode: a.def.request_mode,
        params,
        policies: plans.policies,
        cors: a.def.cors,
        protocol: a.def.protocol,
        websocket: a.def.websocket,
    }
}

fn api_err(a: &Located<ApiDef>, field: &str, msg: String) -> DefError {
    DefError::new(&a.file, &format!("api '{}'", a.def.name), field, msg)
}

/// `gateway.default_limit` and `gateway.max_body_bytes`.
fn gateway_limits(defs: &Defs, errs: &mut Vec<DefError>) -> (u64, u64) {
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
    (default_limit, max_body_bytes)
}

/// Tests' shortcut: `yaml` as the only definitions file of a fresh
/// directory (named after `test`), read and lowered with the admin at
/// 127.0.0.1:9901.
#[cfg(test)]
pub fn lower_yaml(test: &str, yaml: &str) -> Compiled {
    let dir = std::env::temp_dir().join(format!("pylon-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("defs.yaml"), yaml).unwrap();
    let defs = crate::defs::load(std::slice::from_ref(&dir)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let admin = Admin {
        ip: "127.0.0.1".parse().unwrap(),
        port: 9901,
    };
    lower(&defs, &admin).unwrap()
}
