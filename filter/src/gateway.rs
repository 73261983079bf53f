//! The gateway core: a plan indexed once, then asked per request what to do.
//! No host calls here; the proxy-wasm adapter feeds it and applies the answer.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::acl::Acl;
use crate::app_auth::Apps;
use crate::cors;
use crate::mapping::{Incoming, Mapping, Rewrite, System};
use crate::params::{Invalid, Param, Query, Values};
use crate::path_template::PathTemplate;
use crate::plan::{
    ApiPlan, AppCodeMode, AuthKind, BackendPlan, GroupPlan, Location, Method, Plan, RequestMode,
    ResponseSet, ThrottlePlan, PLAN_VERSION,
};
use crate::policy::{Conditions, Facts, MAX_POLICIES};
use crate::request_head::RequestHead;
use crate::response::{Context, ErrorType, GatewayError, Template, DEFAULT_BODY};
use crate::router::{ApiIndex, HostIndex, PathMatch, MAX_STAGES};
use crate::slot_table::Part;
use crate::throttle::{Counter, Dimension};

/// Every group has a response set of this name.
pub const DEFAULT_SET: &str = "default";

/// What the adapter knows about a request when it asks the core.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a, 'p> {
    pub method: &'a str,
    pub host: &'a str,
    /// `:path` as received: path plus optional `?query`.
    pub path: &'p str,
    /// The environment asked for (`X-Stage`, or `RELEASE` when absent).
    pub stage: &'a str,
}

/// Which response set renders an error: the API's group and set when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorScope {
    group: Option<u32>,
    set: u16,
}

/// A fully rendered response the gateway answers itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Names a routed API, stage and chosen backend without borrowing the
/// gateway, so the adapter can keep it across callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiHandle {
    group: u32,
    api: u32,
    stage: u16,
    /// 0: the API's backend; n: its policy backend n.
    backend: u8,
}

impl ApiHandle {
    /// The API and stage, whichever backend was chosen.
    pub fn without_policy(self) -> ApiHandle {
        ApiHandle { backend: 0, ..self }
    }

    /// 0: the API's own backend; n: its policy backend n.
    pub fn policy(self) -> u8 {
        self.backend
    }
}

/// A request matched to a published API.
#[derive(Debug)]
pub struct Routed<'p> {
    pub scope: ErrorScope,
    pub handle: ApiHandle,
    matched: PathMatch<'p>,
    /// The path without the query.
    path: &'p str,
    /// Without its `?`.
    query: &'p str,
}

/// Where a routed request goes, and the request the backend gets.
#[derive(Debug)]
pub struct Dispatch<'g> {
    /// The routed handle, with the backend chosen.
    pub handle: ApiHandle,
    pub backend: &'g Backend,
    /// For HTTP backends.
    pub rewrite: Option<Rewrite>,
}

/// Who is calling, as far as the gateway knows when it dispatches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    /// Read only when `needs_source_ip` says so (else empty).
    pub source_ip: &'a str,
    pub app: Option<u32>,
    pub account: Option<u32>,
}

#[derive(Debug)]
pub struct Api {
    pub id: String,
    pub name: String,
    /// Index of the group's response set this API's errors use.
    response_set: u16,
    pub auth: AuthKind,
    pub allow_hmac_sha1: bool,
    pub app_code: AppCodeMode,
    /// Per stage index: the access control policies bound there.
    acls: Vec<Vec<u32>>,
    /// Per stage index: the throttling policy bound there.
    throttle: Vec<Option<u32>>,
    /// `group/api`, naming the API's own counters.
    counter_name: String,
    /// Per stage index: the apps allowed to call, sorted.
    authorized: Vec<Vec<u32>>,
    /// Backend per stage index; `None` = not published there.
    backends: Vec<Option<Backend>>,
    /// Declared request parameters, then undeclared path parameters.
    params: Vec<Param>,
    policies: Vec<Policy>,
    pub cors: bool,
    /// A policy condition or a backend parameter reads the client address.
    needs_source_ip: bool,
}

/// A policy backend: its conditions, and its backend per stage index.
#[derive(Debug)]
struct Policy {
    conditions: Conditions,
    backends: Vec<Option<Backend>>,
}

#[derive(Debug)]
pub enum Backend {
    Http(HttpTarget),
    Mock(Reply),
}

#[derive(Debug)]
pub struct HttpTarget {
    pub cluster: String,
    pub method: Option<&'static str>,
    /// Pre-rendered for the `x-envoy-upstream-rq-timeout-ms` header.
    pub timeout_ms: String,
    mapping: Mapping,
}

#[derive(Debug)]
struct Group {
    index: ApiIndex,
    /// The `default` set: errors before an API is identified use it.
    default_set: u16,
    apis: Vec<Api>,
    /// Response sets in plan order (BTreeMap order), then by error type.
    sets: Vec<CompiledSet>,
}

#[derive(Debug)]
struct CompiledSet {
    by_type: HashMap<ErrorType, CompiledResponse>,
}

#[derive(Debug)]
struct CompiledResponse {
    status: Option<u16>,
    template: Template,
    headers: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Gateway {
    pub max_body_bytes: u64,
    /// Metrics and access-log fields are recorded (plan `metrics`).
    pub metrics: bool,
    stages: HashMap<String, u16>,
    stage_names: Vec<String>,
    hosts: HostIndex,
    groups: Vec<Group>,
    pub apps: Apps,
    pub accounts: Apps,
    acls: Vec<Acl>,
    throttles: Vec<ThrottlePlan>,
    default_limit: u64,
    /// Used when no group claims the host.
    fallback_set: CompiledSet,
}

impl Gateway {
    pub fn from_plan(plan: &Plan) -> Result<Gateway, String> {
        if plan.version != PLAN_VERSION {
            return Err(format!(
                "plan version {} is not supported (expected {PLAN_VERSION})",
                plan.version
            ));
        }
        if plan.stages.len() > MAX_STAGES {
            return Err(format!("more than {MAX_STAGES} environments"));
        }
        // Per-stage tables are sized by the map: a repeated name would leave
        // an index past their end.
        let mut stages: HashMap<String, u16> = HashMap::with_capacity(plan.stages.len());
        for (i, s) in plan.stages.iter().enumerate() {
            if stages.insert(s.clone(), i as u16).is_some() {
                return Err(format!("environment {s} is listed twice"));
            }
        }
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
        Ok(Gateway {
            max_body_bytes: plan.max_body_bytes,
            metrics: plan.metrics,
            stages,
            stage_names: plan.stages.clone(),
            hosts,
            groups,
            apps,
            accounts,
            acls,
            throttles: plan.throttles.clone(),
            default_limit: plan.default_limit,
            fallback_set: compile_set(&default_set()).expect("built-in set is valid"),
        })
    }

    /// Matches a request to a published API and its backend for the stage.
    pub fn route<'p>(
        &self,
        req: &Request<'_, 'p>,
    ) -> Result<Routed<'p>, (ErrorScope, GatewayError)> {
        let not_found = |scope| Err((scope, GatewayError::NOT_FOUND));
        let Some(gi) = self.hosts.lookup(req.host) else {
            return not_found(ErrorScope::default());
        };
        let group = &self.groups[gi as usize];
        let scope = ErrorScope {
            group: Some(gi),
            set: group.default_set,
        };
        let Some(&stage) = self.stages.get(req.stage) else {
            return not_found(scope);
        };
        let Some(method) = Method::parse(req.method).filter(|m| *m != Method::Any) else {
            return not_found(scope);
        };
        let (path, query) = match req.path.split_once('?') {
            Some((p, q)) => (p, q),
            None => (req.path, ""),
        };
        let Some(matched) = group.index.lookup(path, method, stage) else {
            return not_found(scope);
        };
        let api = &group.apis[matched.api as usize];
        Ok(Routed {
            scope: ErrorScope {
                group: Some(gi),
                set: api.response_set,
            },
            handle: ApiHandle {
                group: gi,
                api: matched.api,
                stage,
                backend: 0,
            },
            matched,
            path,
            query,
        })
    }

    /// Checks the declared parameters, picks the backend (the first policy
    /// backend whose conditions hold, else the API's) and builds the
    /// request it receives.
    pub fn dispatch<'g>(
        &'g self,
        routed: &Routed,
        head: &RequestHead,
        caller: &Caller,
    ) -> Result<Dispatch<'g>, Invalid> {
        let mut handle = routed.handle;
        let api = self.api(handle);
        let query = Query::parse(routed.query);
        let params = &routed.matched.params;
        let values: Values = api
            .params
            .iter()
            .map(|p| p.value(params, &query, head))
            .collect::<Result<_, _>>()?;
        if !api.policies.is_empty() {
            let facts = Facts {
                values: &values,
                source_ip: caller.source_ip.parse().ok(),
                path: routed.path,
                method: head.method(),
            };
            let stage = handle.stage as usize;
            handle.backend = api
                .policies
                .iter()
                .position(|p| p.backends[stage].is_some() && p.conditions.hold(&facts))
                .map_or(0, |i| i as u8 + 1);
        }
        let backend = self.backend(handle);
        let rewrite = match backend {
            Backend::Mock(_) => None,
            Backend::Http(t) => {
                let incoming = Incoming {
                    values: &values,
                    path_params: params,
                    remainder: routed.matched.remainder,
                    query: &query,
                    head,
                };
                let system = System {
                    source_ip: caller.source_ip,
                    stage: &self.stage_names[handle.stage as usize],
                    api_id: &api.id,
                    app_id: caller.app.map(|a| self.apps.get(a).id.as_str()),
                    request_id: head.request_id(),
                    account: caller.account.map(|a| self.accounts.get(a).name.as_str()),
                };
                Some(t.mapping.build(&api.params, &incoming, &system)?)
            }
        };
        Ok(Dispatch {
            handle,
            backend,
            rewrite,
        })
    }

    /// Whether dispatching the API needs the client address.
    pub fn needs_source_ip(&self, h: ApiHandle) -> bool {
        self.api(h).needs_source_ip
    }

    /// Whether the API answers cross-origin callers.
    pub fn cors(&self, h: ApiHandle) -> bool {
        self.api(h).cors
    }

    fn api(&self, h: ApiHandle) -> &Api {
        &self.groups[h.group as usize].apis[h.api as usize]
    }

    /// The group's name (metrics and access logs).
    pub fn group_name(&self, h: ApiHandle) -> &str {
        let key = &self.api(h).counter_name;
        key.split_once('/').map_or(key.as_str(), |(g, _)| g)
    }

    /// `(api id, api name, stage)` for response templates.
    pub fn describe(&self, h: ApiHandle) -> (&str, &str, &str) {
        let api = self.api(h);
        (&api.id, &api.name, &self.stage_names[h.stage as usize])
    }

    /// The handle's backend (the API's, or a policy's) in its stage.
    pub fn backend(&self, h: ApiHandle) -> &Backend {
        let api = self.api(h);
        let per_stage = match h.backend {
            0 => &api.backends,
            n => &api.policies[n as usize - 1].backends,
        };
        per_stage[h.stage as usize]
            .as_ref()
            .expect("handles name published backends")
    }

    pub fn auth_of(&self, h: ApiHandle) -> AuthKind {
        self.api(h).auth
    }

    pub fn allows_hmac_sha1(&self, h: ApiHandle) -> bool {
        self.api(h).allow_hmac_sha1
    }

    /// Whether the throttling bound to the API counts client IPs.
    pub fn throttle_needs_ip(&self, h: ApiHandle) -> bool {
        self.api(h).throttle[h.stage as usize]
            .is_some_and(|t| self.throttles[t as usize].ip_limit.is_some())
    }

    /// The counters a request to the API must fit under, given who is
    /// calling. Without a policy: the gateway-wide default per API.
    pub fn counters(
        &self,
        h: ApiHandle,
        app: Option<&str>,
        account: Option<&str>,
        ip: Option<&str>,
    ) -> Vec<Counter> {
        let api = self.api(h);
        let Some(t) = api.throttle[h.stage as usize] else {
            return vec![Counter {
                dimension: Dimension::ApiAllEnv,
                key: format!("default|{}", api.counter_name),
                limit: self.default_limit,
                window_ms: 1000,
                label: "1 second".into(),
                part: Part::Plan,
            }];
        };
        let policy = t;
        let t = &self.throttles[t as usize];
        // A shared policy counts all its APIs together; a basic one per API
        // and environment.
        let scope = if t.shared {
            format!("{}|*", t.name)
        } else {
            format!(
                "{}|{}@{}",
                t.name, api.counter_name, self.stage_names[h.stage as usize]
            )
        };
        let counter = |dimension, who: &str, limit| Counter {
            dimension,
            key: format!("{scope}|{who}"),
            limit,
            window_ms: t.window_ms,
            label: t.label.clone(),
            // Callers choose their addresses, not apps or accounts (those
            // come from the plan): addresses get the policy's own region.
            part: if dimension == Dimension::Ip {
                Part::Policy(policy)
            } else {
                Part::Plan
            },
        };
        let mut out = vec![counter(Dimension::Api, "api", t.api_limit)];
        if let Some(account) = account {
            let limit = t.special_users.get(account).copied().or(t.user_limit);
            out.extend(limit.map(|l| counter(Dimension::User, &format!("user:{account}"), l)));
        }
        if let Some(app) = app {
            let limit = t.special_apps.get(app).copied().or(t.app_limit);
            out.extend(limit.map(|l| counter(Dimension::App, &format!("app:{app}"), l)));
        }
        if let (Some(ip), Some(l)) = (ip, t.ip_limit) {
            // `::ffff:a.b.c.d` is the client a.b.c.d, as for IP policies.
            let who = match ip.parse::<IpAddr>() {
                Ok(addr) => format!("ip:{}", addr.to_canonical()),
                Err(_) => format!("ip:{ip}"),
            };
            out.push(counter(Dimension::Ip, &who, l));
        }
        out
    }

    /// Whether IP policies are bound (the client address is read only then).
    pub fn has_ip_acls(&self, h: ApiHandle) -> bool {
        self.api(h).acls[h.stage as usize]
            .iter()
            .any(|i| self.acls[*i as usize].is_ip())
    }

    /// The first refusal by the IP policies (`ip_phase`) or the account
    /// policies bound to the API in the handle's stage.
    pub fn check_acls(
        &self,
        h: ApiHandle,
        ip_phase: bool,
        ip: Option<IpAddr>,
        account: Option<&str>,
    ) -> Option<GatewayError> {
        self.api(h).acls[h.stage as usize]
            .iter()
            .map(|i| &self.acls[*i as usize])
            .filter(|acl| acl.is_ip() == ip_phase)
            .find_map(|acl| acl.check(ip, account))
    }

    pub fn app_code_mode(&self, h: ApiHandle) -> AppCodeMode {
        self.api(h).app_code
    }

    /// Whether `app` may call the API in the handle's stage.
    pub fn authorize(&self, h: ApiHandle, app: u32) -> Result<(), GatewayError> {
        let allowed = &self.api(h).authorized[h.stage as usize];
        match allowed.binary_search(&app) {
            Ok(_) => Ok(()),
            Err(_) => Err(GatewayError::APP_UNAUTHORIZED),
        }
    }

    pub fn scope_of(&self, h: ApiHandle) -> ErrorScope {
        ErrorScope {
            group: Some(h.group),
            set: self.api(h).response_set,
        }
    }

    /// Renders a gateway error with the scope's response set.
    pub fn render_error(&self, scope: ErrorScope, err: &GatewayError, ctx: &Context) -> Reply {
        let set = scope
            .group
            .and_then(|g| self.groups[g as usize].sets.get(scope.set as usize))
            .unwrap_or(&self.fallback_set);
        render_with(set, err, ctx)
    }
}

fn compile_group(
    g: &GroupPlan,
    stages: &HashMap<String, u16>,
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
        .map(compile_set)
        .collect::<Result<Vec<_>, _>>()?;
    let mut index = ApiIndex::default();
    let mut apis = Vec::with_capacity(g.apis.len());
    for (ai, a) in g.apis.iter().enumerate() {
        let at = |e: String| format!("api {}: {e}", a.name);
        let template = PathTemplate::parse(&a.path, a.match_mode).map_err(at)?;
        let params = compile_params(a, &template).map_err(at)?;
        let mut mask = 0u64;
        for stage in a.stages.keys() {
            let si = *stages
                .get(stage)
                .ok_or_else(|| at(format!("unknown stage {stage}")))?;
            mask |= 1 << si;
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
        let mut authorized: Vec<Vec<u32>> = vec![Vec::new(); stages.len()];
        for (stage, names) in &a.authorized {
            let si = *stages
                .get(stage)
                .ok_or_else(|| at(format!("unknown stage {stage}")))?;
            for name in names {
                let app = known_apps
                    .by_name(name)
                    .ok_or_else(|| at(format!("unknown app {name}")))?;
                authorized[si as usize].push(app);
            }
            authorized[si as usize].sort_unstable();
        }
        let mut acls: Vec<Vec<u32>> = vec![Vec::new(); stages.len()];
        for (stage, names) in &a.acls {
            let si = *stages
                .get(stage)
                .ok_or_else(|| at(format!("unknown stage {stage}")))?;
            for name in names {
                let i = acl_names
                    .iter()
                    .position(|n| n == name)
                    .ok_or_else(|| at(format!("unknown acl {name}")))?;
                acls[si as usize].push(i as u32);
            }
        }
        let mut throttle = vec![None; stages.len()];
        for (stage, name) in &a.throttles {
            let si = *stages
                .get(stage)
                .ok_or_else(|| at(format!("unknown stage {stage}")))?;
            let i = throttle_names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| at(format!("unknown throttle {name}")))?;
            throttle[si as usize] = Some(i as u32);
        }
        index.insert(&template, a.match_mode, a.method, ai as u32, mask);
        apis.push(Api {
            id: a.id.clone(),
            name: a.name.clone(),
            response_set: set_index(&a.response).map_err(at)?,
            // Seed: a preflight API is treated as needing no authentication.
            auth: if cors::is_preflight_api(a) {
                AuthKind::None
            } else {
                a.auth
            },
            params,
            policies,
            cors: a.cors,
            needs_source_ip,
            acls,
            throttle,
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

/// Renders with the built-in default set: for when no plan could be loaded.
pub fn render_builtin_error(err: &GatewayError, ctx: &Context) -> Reply {
    let set = compile_set(&default_set()).expect("built-in set is valid");
    render_with(&set, err, ctx)
}

fn render_with(set: &CompiledSet, err: &GatewayError, ctx: &Context) -> Reply {
    let response = &set.by_type[&err.kind];
    Reply {
        status: response.status.unwrap_or(err.status),
        headers: std::iter::once(("content-type".to_string(), "application/json".to_string()))
            .chain(response.headers.iter().cloned())
            .collect(),
        body: response.template.render(err, ctx),
    }
}

/// Every error type with the Huawei user guide's defaults; the compiler starts from this.
pub fn default_set() -> ResponseSet {
    ErrorType::ALL
        .iter()
        .map(|t| {
            (
                *t,
                crate::plan::ResponseSpec {
                    status: t.default_status(),
                    body: DEFAULT_BODY.to_string(),
                    headers: Default::default(),
                },
            )
        })
        .collect()
}

fn compile_set(set: &ResponseSet) -> Result<CompiledSet, String> {
    let mut by_type = HashMap::new();
    for t in ErrorType::ALL {
        let spec = set
            .get(&t)
            .ok_or_else(|| format!("response set lacks {}", t.as_str()))?;
        let template = Template::parse(&spec.body).map_err(|e| format!("{}: {e}", t.as_str()))?;
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
    plans: &std::collections::BTreeMap<String, BackendPlan>,
    stages: &HashMap<String, u16>,
    a: &ApiPlan,
    params: &[Param],
) -> Result<Vec<Option<Backend>>, String> {
    let mut backends: Vec<Option<Backend>> = (0..stages.len()).map(|_| None).collect();
    for (stage, plan) in plans {
        let si = *stages
            .get(stage)
            .ok_or_else(|| format!("unknown stage {stage}"))?;
        backends[si as usize] = Some(compile_backend(plan, a, params)?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ApiPlan, HttpBackend, MatchMode, MockBackend, ResponseSpec, RELEASE};
    use std::collections::BTreeMap;

    fn http(cluster: &str, path: &str) -> BackendPlan {
        BackendPlan::Http(HttpBackend {
            cluster: cluster.into(),
            path: path.into(),
            method: None,
            timeout_ms: 5000,
            params: vec![],
        })
    }

    fn api(
        name: &str,
        method: Method,
        path: &str,
        mode: MatchMode,
        stages: &[(&str, BackendPlan)],
    ) -> ApiPlan {
        ApiPlan {
            id: format!("id-{name}"),
            name: name.into(),
            method,
            path: path.into(),
            match_mode: mode,
            response: DEFAULT_SET.into(),
            stages: stages
                .iter()
                .map(|(s, b)| (s.to_string(), b.clone()))
                .collect(),
            auth: AuthKind::None,
            acls: BTreeMap::new(),
            throttles: BTreeMap::new(),
            allow_hmac_sha1: false,
            app_code: AppCodeMode::Disabled,
            authorized: BTreeMap::new(),
            request_mode: RequestMode::default(),
            params: vec![],
            policies: vec![],
            cors: false,
        }
    }

    fn plan() -> Plan {
        let mut custom = default_set();
        custom.insert(
            ErrorType::NotFound,
            ResponseSpec {
                status: Some(410),
                body: "gone $context.stage".into(),
                headers: BTreeMap::new(),
            },
        );
        let mock = BackendPlan::Mock(MockBackend {
            status: 201,
            headers: BTreeMap::new(),
            body: "hi".into(),
        });
        Plan {
            version: PLAN_VERSION,
            max_body_bytes: 100,
            default_limit: 200,
            metrics: true,
            throttles: vec![],
            stages: vec![RELEASE.into(), "TEST".into()],
            apps: vec![],
            accounts: vec![],
            acls: vec![],
            groups: vec![
                GroupPlan {
                    name: "pub".into(),
                    domains: vec![],
                    default: true,
                    // "a-custom" sorts before "default": set indices must not assume order.
                    responses: [
                        ("a-custom".to_string(), default_set()),
                        (DEFAULT_SET.to_string(), default_set()),
                    ]
                    .into(),
                    apis: vec![
                        api(
                            "item",
                            Method::Get,
                            "/items/{id}",
                            MatchMode::Exact,
                            &[
                                (RELEASE, http("c1", "/v1/items/{id}")),
                                ("TEST", http("c2", "/v2/items/{id}")),
                            ],
                        ),
                        api(
                            "static",
                            Method::Any,
                            "/static/",
                            MatchMode::Prefix,
                            &[(RELEASE, http("c1", "/assets/"))],
                        ),
                        api(
                            "mock",
                            Method::Get,
                            "/mock",
                            MatchMode::Exact,
                            &[(RELEASE, mock)],
                        ),
                    ],
                },
                GroupPlan {
                    name: "other".into(),
                    domains: vec!["api.example.com".into()],
                    default: false,
                    responses: [(DEFAULT_SET.to_string(), custom)].into(),
                    apis: vec![],
                },
            ],
        }
    }

    fn req<'a>(host: &'a str, method: &'a str, path: &'a str, stage: &'a str) -> Request<'a, 'a> {
        Request {
            method,
            host,
            path,
            stage,
        }
    }

    /// `(cluster, backend path)` of a routed and dispatched request.
    fn forwarded(gw: &Gateway, r: Request) -> (String, String) {
        let routed = gw.route(&r).unwrap();
        let head = RequestHead::from_pairs(&[(":method", r.method), (":path", r.path)]);
        let d = gw.dispatch(&routed, &head, &Caller::default()).unwrap();
        match d.backend {
            Backend::Http(t) => (t.cluster.clone(), d.rewrite.unwrap().path),
            Backend::Mock(_) => panic!("expected an HTTP backend"),
        }
    }

    #[test]
    fn routes_to_the_stage_backend_with_parameters_and_query() {
        let gw = Gateway::from_plan(&plan()).unwrap();
        let r = req("x", "GET", "/items/42?a=1&a=2", RELEASE);
        assert_eq!(
            forwarded(&gw, r),
            ("c1".into(), "/v1/items/42?a=1&a=2".to_string())
        );
        assert_eq!(
            gw.describe(gw.route(&r).unwrap().handle),
            ("id-item", "item", RELEASE)
        );
        assert_eq!(
            forwarded(&gw, req("x", "GET", "/items/42", "TEST")),
            ("c2".into(), "/v2/items/42".to_string())
        );
    }

    #[test]
    fn prefix_remainder_joins_backend_path_without_double_slash() {
        let gw = Gateway::from_plan(&plan()).unwrap();
        let r = req("x", "DELETE", "/static/a/b.css", RELEASE);
        assert_eq!(forwarded(&gw, r).1, "/assets/a/b.css");
        assert_eq!(
            forwarded(&gw, req("x", "GET", "/static", RELEASE)).1,
            "/assets/"
        );
    }

    #[test]
    fn mock_backend_is_a_ready_reply() {
        let gw = Gateway::from_plan(&plan()).unwrap();
        let routed = gw.route(&req("x", "GET", "/mock", RELEASE)).unwrap();
        let head = RequestHead::default();
        let d = gw.dispatch(&routed, &head, &Caller::default()).unwrap();
        assert!(matches!(
            d.backend,
            Backend::Mock(Reply { status: 201, .. })
        ));
        assert!(d.rewrite.is_none());
    }

    #[test]
    fn not_found_cases_use_the_groups_default_set() {
        let gw = Gateway::from_plan(&plan()).unwrap();
        for (host, method, path, stage) in [
            ("x", "GET", "/nope", RELEASE),
            ("x", "GET", "/items/1", "NOPE"),
            ("x", "GET", "/static", "TEST"),
            ("x", "POST", "/mock", RELEASE),
            ("x", "ANY", "/mock", RELEASE),
            ("x", "BREW", "/mock", RELEASE),
        ] {
            let (scope, err) = gw.route(&req(host, method, path, stage)).unwrap_err();
            assert_eq!(err, GatewayError::NOT_FOUND, "{method} {path} {stage}");
            let reply = gw.render_error(scope, &err, &Context::default());
            assert_eq!(reply.status, 404);
            assert!(reply.body.contains("APIG.0101"));
        }
        let (scope, err) = gw
            .route(&req("api.example.com", "GET", "/items/1", "TEST"))
            .unwrap_err();
        let ctx = Context {
            stage: "TEST",
            ..Default::default()
        };
        let reply = gw.render_error(scope, &err, &ctx);
        assert_eq!((reply.status, reply.body.as_str()), (410, "gone TEST"));
    }

    /// A hostile or corrupt plan is refused with an error: loading never
    /// panics (the listener would then fail open to a crash loop).
    #[test]
    fn hostile_plans_are_refused_without_panicking() {
        let mut p = plan();
        p.stages = vec![RELEASE.into(), "TEST".into(), "TEST".into()];
        assert!(Gateway::from_plan(&p).unwrap_err().contains("TEST"));

        let mut p = plan();
        p.stages.clear();
        assert!(Gateway::from_plan(&p).is_err());

        let mut p = plan();
        p.stages = (0..=MAX_STAGES).map(|i| format!("S{i}")).collect();
        assert!(Gateway::from_plan(&p).is_err());

        let mut p = plan();
        p.throttles.push(ThrottlePlan {
            name: "t".into(),
            window_ms: 0,
            label: "0 second".into(),
            api_limit: 1,
            user_limit: None,
            app_limit: None,
            ip_limit: None,
            shared: false,
            special_apps: BTreeMap::new(),
            special_users: BTreeMap::new(),
        });
        assert!(Gateway::from_plan(&p).unwrap_err().contains("window"));

        let mut p = plan();
        p.groups[0].apis[0].response = "nope".into();
        assert!(Gateway::from_plan(&p).is_err());

        let mut p = plan();
        p.groups[0].apis[0]
            .throttles
            .insert(RELEASE.into(), "missing".into());
        assert!(Gateway::from_plan(&p).is_err());

        let mut p = plan();
        p.groups[0].apis[0]
            .acls
            .insert("NOPE".into(), vec!["missing".into()]);
        assert!(Gateway::from_plan(&p).is_err());

        let mut p = plan();
        p.groups[0].apis[0]
            .authorized
            .insert(RELEASE.into(), vec!["missing".into()]);
        assert!(Gateway::from_plan(&p).is_err());

        let mut p = plan();
        p.groups[0].apis[0].path = "no-slash{".into();
        assert!(Gateway::from_plan(&p).is_err());
    }

    #[test]
    fn rejects_unknown_plan_version_and_missing_default_set() {
        let mut p = plan();
        p.version = 99;
        assert!(Gateway::from_plan(&p).unwrap_err().contains("version"));
        let mut p = plan();
        p.groups[1].responses.clear();
        assert!(Gateway::from_plan(&p).is_err());
    }

    #[test]
    fn ip_counters_are_the_policy_s_and_count_mapped_addresses_as_ipv4() {
        let mut p = plan();
        p.throttles.push(ThrottlePlan {
            name: "ips".into(),
            window_ms: 1000,
            label: "1 second".into(),
            api_limit: 100,
            user_limit: None,
            app_limit: None,
            ip_limit: Some(3),
            shared: false,
            special_apps: BTreeMap::new(),
            special_users: BTreeMap::new(),
        });
        p.groups[0].apis[0]
            .throttles
            .insert(RELEASE.into(), "ips".into());
        let gw = Gateway::from_plan(&p).unwrap();
        let h = gw
            .route(&req("x", "GET", "/items/1", RELEASE))
            .unwrap()
            .handle;
        let of = |ip| gw.counters(h, None, None, Some(ip));
        let mapped = of("::ffff:198.51.100.77");
        assert_eq!(mapped, of("198.51.100.77"));
        assert_ne!(of("2001:db8::1")[1].key, mapped[1].key);
        assert_eq!(mapped[0].part, Part::Plan, "the API limit");
        assert_eq!(mapped[1].part, Part::Policy(0), "the addresses");
    }
}
