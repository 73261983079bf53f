//! Definitions → plan: `lower` runs the phases in order (check, resolve,
//! bind) and builds the plan and the cluster list from what they found.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pylon_filter::gateway::Gateway;
use pylon_filter::path_template::PathTemplate;
use pylon_filter::plan::{ApiPlan, GroupPlan, Plan, DEFAULT_MAX_BODY_BYTES, PLAN_VERSION};
use pylon_filter::response::DEFAULT_SET;

use crate::bindings::Bindings;
use crate::check::{
    check_backend, check_environments, check_variables, response_sets, route_shape,
};
use crate::defs::{BackendDef, Defs, Scheme};
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
    let access_log = match defs.gateway.as_ref().and_then(|g| g.def.access_log.clone()) {
        Some(off) if off == "off" => None,
        Some(path) => Some(path),
        None => Some(crate::observability::DEFAULT_ACCESS_LOG.to_string()),
    };
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
        .map(|((scheme, host, port, tls), name)| Cluster {
            name,
            authority: authority(&host, port, scheme),
            scheme,
            host,
            port,
            tls,
        })
        .collect();
    Ok(Compiled {
        plan,
        clusters,
        tls,
        access_log,
    })
}

/// The groups, checked, with their complete response sets and no APIs yet.
fn lower_groups(defs: &Defs, stages: &[String], errs: &mut Vec<DefError>) -> Vec<GroupPlan> {
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
        check_variables(g, stages, errs);
        let responses = response_sets(g, errs);
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
    groups
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
        let params = crate::params::lower_params(a, &template, errs);
        let mut policies = crate::params::lower_policies(a, &params, &template, errs);
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
                let bp =
                    crate::params::lower_backend_params(a, prefix, b, &params, &template, errs);
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
                match backend_for(a, &target, group, stage, &template, admin, clusters) {
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
        let bound = bindings.take(&a.def.group, &a.def.name);
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
            authorized: bound.authorized,
            acls: bound.acls,
            throttles: bound.throttles,
            request_mode: a.def.request_mode,
            params,
            policies,
            cors: a.def.cors,
            protocol: a.def.protocol,
            websocket: a.def.websocket,
        });
    }
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
