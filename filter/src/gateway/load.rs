//! Loading a plan: every name resolved to an index, every template and
//! path parsed, once, so requests only look things up. A plan that does not
//! load is refused whole (the filter fails closed).

use std::collections::BTreeMap;
use std::rc::Rc;

use super::{Api, Backend, Gateway, Group, HttpTarget, Policy};
use crate::acl::Acl;
use crate::app_auth::Apps;
use crate::cors;
use crate::mapping::Mapping;
use crate::params::Param;
use crate::path_template::PathTemplate;
use crate::plan::{
    ApiPlan, AuthKind, BackendPlan, GroupPlan, Location, Method, Plan, RequestMode, PLAN_VERSION,
};
use crate::policy::{Conditions, MAX_POLICIES};
use crate::response::{CompiledSet, Reply, DEFAULT_SET};
use crate::router::{ApiIndex, HostIndex};
use crate::stage::StageIndex;
use crate::throttle::Scope;

impl Gateway {
    pub fn from_plan(plan: &Plan) -> Result<Gateway, String> {
        if plan.version != PLAN_VERSION {
            return Err(format!(
                "plan version {} is not supported (expected {PLAN_VERSION})",
                plan.version
            ));
        }
        let stages = StageIndex::new(&plan.stages)?;
        // Counters divide by their window.
        if let Some(t) = plan.throttles.iter().find(|t| t.window_ms == 0) {
            return Err(format!("throttle {}: window of 0 ms", t.name));
        }
        let apps = Apps::from_plan(&plan.apps)?;
        let accounts = Apps::from_accounts(&plan.accounts)?;
        let acls = plan
            .acls
            .iter()
            .map(Acl::from_plan)
            .collect::<Result<Vec<_>, _>>()?;
        let acl_names: Vec<&str> = plan.acls.iter().map(|a| a.name.as_str()).collect();
        let throttle_names: Vec<&str> = plan.throttles.iter().map(|t| t.name.as_str()).collect();
        let mut hosts = HostIndex::default();
        let mut groups = Vec::with_capacity(plan.groups.len());
        for (gi, g) in plan.groups.iter().enumerate() {
            for d in &g.domains {
                hosts.insert(d, gi as u32);
            }
            if g.default {
                hosts.set_default(gi as u32);
            }
            groups.push(
                compile_group(g, &stages, &apps, &acl_names, &throttle_names)
                    .map_err(|e| format!("group {}: {e}", g.name))?,
            );
        }
        // What each API's counters share in each stage, so that requests
        // format no counter keys.
        for api in groups.iter_mut().flat_map(|g| &mut g.apis) {
            let default = Rc::new(Scope::new(None, plan.default_limit, &api.counter_name, ""));
            api.scopes = (api.throttle.iter().enumerate())
                .map(|(si, t)| match t {
                    Some(n) => Rc::new(Scope::new(
                        Some((*n, &plan.throttles[*n as usize])),
                        plan.default_limit,
                        &api.counter_name,
                        stages.name(si as u16),
                    )),
                    None => default.clone(),
                })
                .collect();
        }
        Ok(Gateway {
            max_body_bytes: plan.max_body_bytes,
            metrics: plan.metrics,
            access_log: plan.access_log,
            route_timeout_ms: plan.route_timeout_ms.map(|ms| ms.to_string()),
            stages,
            hosts,
            groups,
            apps,
            accounts,
            acls,
            throttles: plan.throttles.clone(),
            fallback_set: CompiledSet::builtin(),
        })
    }
}

fn compile_group(
    g: &GroupPlan,
    stages: &StageIndex,
    known_apps: &Apps,
    acl_names: &[&str],
    throttle_names: &[&str],
) -> Result<Group, String> {
    let set_names: Vec<&String> = g.responses.keys().collect();
    let set_index = |name: &str| {
        set_names
            .iter()
            .position(|n| *n == name)
            .map(|i| i as u16)
            .ok_or_else(|| format!("no response set named `{name}`"))
    };
    let sets = g
        .responses
        .values()
        .map(CompiledSet::compile)
        .collect::<Result<Vec<_>, _>>()?;
    let mut index = ApiIndex::default();
    let mut apis = Vec::with_capacity(g.apis.len());
    for (ai, a) in g.apis.iter().enumerate() {
        let at = |e: String| format!("api {}: {e}", a.name);
        let template = PathTemplate::parse(&a.path, a.match_mode).map_err(at)?;
        let params = compile_params(a, &template).map_err(at)?;
        let mut mask = 0u64;
        for stage in a.stages.keys() {
            mask |= 1 << stages.index(stage).map_err(at)?;
        }
        let backends = compile_backends(&a.stages, stages, a, &params).map_err(at)?;
        if a.policies.len() > MAX_POLICIES {
            return Err(at(format!("more than {MAX_POLICIES} policy backends")));
        }
        let policies = a
            .policies
            .iter()
            .map(|p| {
                let at = |e: String| at(format!("policy {}: {e}", p.name));
                let index = |name: &str| crate::params::find(&params, name);
                Ok(Policy {
                    conditions: Conditions::compile(p.effect, &p.conditions, index).map_err(at)?,
                    backends: compile_backends(&p.stages, stages, a, &params).map_err(at)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let needs_source_ip = policies.iter().any(|p| p.conditions.needs_source_ip())
            || backends
                .iter()
                .chain(policies.iter().flat_map(|p| &p.backends))
                .flatten()
                .any(|b| matches!(b, Backend::Http(t) if t.mapping.needs_source_ip()));
        let mut authorized: Vec<Vec<u32>> = stages.table(Vec::new);
        for (stage, names) in &a.authorized {
            let si = stages.index(stage).map_err(at)? as usize;
            for name in names {
                let app = known_apps
                    .by_name(name)
                    .ok_or_else(|| at(format!("unknown app {name}")))?;
                authorized[si].push(app);
            }
            authorized[si].sort_unstable();
        }
        let mut acls: Vec<Vec<u32>> = stages.table(Vec::new);
        for (stage, names) in &a.acls {
            let si = stages.index(stage).map_err(at)? as usize;
            for name in names {
                let i = acl_names
                    .iter()
                    .position(|n| n == name)
                    .ok_or_else(|| at(format!("unknown acl {name}")))?;
                acls[si].push(i as u32);
            }
        }
        let mut throttle = stages.table(|| None);
        for (stage, name) in &a.throttles {
            let si = stages.index(stage).map_err(at)? as usize;
            let i = throttle_names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| at(format!("unknown throttle {name}")))?;
            throttle[si] = Some(i as u32);
        }
        index.insert(&template, a.match_mode, a.method, ai as u32, mask);
        apis.push(Api {
            id: a.id.clone(),
            name: a.name.clone(),
            response_set: set_index(&a.response).map_err(at)?,
            // Huawei user guide §5.2.2: a preflight API is treated as
            // needing no authentication.
            auth: if cors::is_preflight_api(a) {
                AuthKind::None
            } else {
                a.auth
            },
            params,
            policies,
            cors: a.cors,
            protocol: a.protocol,
            websocket: a.websocket,
            needs_source_ip,
            acls,
            throttle,
            scopes: Vec::new(),
            counter_name: format!("{}/{}", g.name, a.name),
            allow_hmac_sha1: a.allow_hmac_sha1,
            app_code: a.app_code,
            authorized,
            backends,
        });
    }
    Ok(Group {
        index,
        default_set: set_index(DEFAULT_SET)?,
        apis,
        sets,
    })
}

/// The declared parameters, then the request path's undeclared ones (any
/// value, required).
fn compile_params(a: &ApiPlan, template: &PathTemplate) -> Result<Vec<Param>, String> {
    let in_path = template.params_with_greedy();
    let mut params = Vec::with_capacity(a.params.len() + in_path.len());
    for p in &a.params {
        if a.request_mode == RequestMode::Passthrough && p.location != Location::Path {
            return Err(format!(
                "parameter {}: passthrough mode declares path parameters only",
                p.name
            ));
        }
        params.push(Param::compile(p, &in_path)?);
    }
    for (i, (name, greedy)) in in_path.iter().enumerate() {
        let declared = a
            .params
            .iter()
            .any(|p| p.location == Location::Path && p.name == *name);
        if !declared {
            params.push(Param::implicit(name, i, *greedy));
        }
    }
    Ok(params)
}

/// One backend per stage index.
fn compile_backends(
    plans: &BTreeMap<String, BackendPlan>,
    stages: &StageIndex,
    a: &ApiPlan,
    params: &[Param],
) -> Result<Vec<Option<Backend>>, String> {
    let mut backends: Vec<Option<Backend>> = stages.table(|| None);
    for (stage, plan) in plans {
        backends[stages.index(stage)? as usize] = Some(compile_backend(plan, a, params)?);
    }
    Ok(backends)
}

fn compile_backend(plan: &BackendPlan, a: &ApiPlan, params: &[Param]) -> Result<Backend, String> {
    Ok(match plan {
        BackendPlan::Mock(m) => {
            let mut headers: Vec<(String, String)> = m
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if a.cors {
                cors::add_to_mock(&mut headers, cors::is_preflight_api(a));
            }
            Backend::Mock(Reply {
                status: m.status,
                headers,
                body: m.body.clone(),
            })
        }
        BackendPlan::Http(h) => Backend::Http(HttpTarget {
            cluster: h.cluster.clone(),
            method: h.method.filter(|m| *m != Method::Any).map(Method::as_str),
            timeout_ms: h.timeout_ms.to_string(),
            mapping: Mapping::compile(&h.path, &h.params, params, a.request_mode)?,
        }),
    })
}
