//! The gateway core: a plan indexed once (`gateway/load.rs`), then asked
//! per request which API it is (`route`), where it goes (`dispatch`) and,
//! through one `ApiView`, what the routed API requires.
//! No host calls here; the pipeline feeds it and the adapter applies the answer.

use std::net::IpAddr;
use std::rc::Rc;

use crate::acl::Acl;
use crate::app_auth::Apps;
use crate::mapping::{Incoming, Mapping, Rewrite, System};
use crate::params::{Invalid, Param, Query, Values};
use crate::plan::{AppCodeMode, AuthKind, Method, ThrottlePlan};
use crate::policy::{Conditions, Facts};
use crate::request_head::RequestHead;
use crate::response::{CompiledSet, Context, GatewayError, Reply};
use crate::router::{ApiIndex, HostIndex, PathMatch};
use crate::stage::StageIndex;
use crate::throttle::{self, Counter};

mod load;

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
    /// Per stage index: what its counters share (`Gateway::from_plan`).
    scopes: Vec<Rc<throttle::Scope>>,
    /// `group/api`, naming the API's own counters.
    counter_name: String,
    /// Per stage index: the apps allowed to call, sorted.
    authorized: Vec<Vec<u32>>,
    /// Backend per stage index; `None` = not published there.
    backends: Vec<Option<Backend>>,
    /// Declared request parameters, then undeclared path parameters.
    params: Vec<Param>,
    policies: Vec<Policy>,
    /// Whether the API answers cross-origin callers.
    pub cors: bool,
    pub protocol: crate::plan::Protocol,
    pub websocket: bool,
    /// A policy condition or a backend parameter reads the client address.
    pub needs_source_ip: bool,
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
pub struct Gateway {
    pub max_body_bytes: u64,
    /// Metrics and access-log fields are recorded (plan `metrics`).
    pub metrics: bool,
    /// The access log reads the filter's fields (plan `access_log`).
    pub access_log: bool,
    /// The backend route's own timeout (plan `route_timeout_ms`), rendered
    /// like `HttpTarget::timeout_ms` so the two compare as text.
    pub route_timeout_ms: Option<String>,
    stages: StageIndex,
    hosts: HostIndex,
    groups: Vec<Group>,
    pub apps: Apps,
    pub accounts: Apps,
    acls: Vec<Acl>,
    throttles: Vec<ThrottlePlan>,
    /// Used when no group claims the host.
    fallback_set: CompiledSet,
}

/// A routed API in the handle's stage: what the pipeline's stages ask of
/// it. Its plain settings (`auth`, `cors`, `id`...) are `api`'s fields.
#[derive(Debug, Clone, Copy)]
pub struct ApiView<'g> {
    gw: &'g Gateway,
    handle: ApiHandle,
    pub api: &'g Api,
}

impl Gateway {
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
        let Some(stage) = self.stages.get(req.stage) else {
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
        let api = self.view(handle).api;
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
        let backend = self.view(handle).backend();
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
                    stage: self.stages.name(handle.stage),
                    api_id: &api.id,
                    app_id: caller.app.map(|a| self.apps.get(a).id.as_str()),
                    request_id: head.request_id(),
                    account: caller.account.map(|a| self.accounts.get(a).name.as_str()),
                    // Both from the request head, so no host call: Envoy
                    // sets x-forwarded-proto from the connection.
                    protocol: if crate::protocol::is_https(head) {
                        "https"
                    } else {
                        "http"
                    },
                    domain: crate::router::strip_port(head.authority()),
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

    /// The routed API of a handle, in the handle's stage.
    pub fn view(&self, h: ApiHandle) -> ApiView<'_> {
        ApiView {
            gw: self,
            handle: h,
            api: &self.groups[h.group as usize].apis[h.api as usize],
        }
    }

    /// Renders a gateway error with the scope's response set.
    pub fn render_error(&self, scope: ErrorScope, err: &GatewayError, ctx: &Context) -> Reply {
        scope
            .group
            .and_then(|g| self.groups[g as usize].sets.get(scope.set as usize))
            .unwrap_or(&self.fallback_set)
            .render(err, ctx)
    }
}

impl<'g> ApiView<'g> {
    /// The name of the handle's stage.
    /// The group's name (metrics and access logs).
    pub fn group_name(&self) -> &'g str {
        let key = &self.api.counter_name;
        key.split_once('/').map_or(key.as_str(), |(g, _)| g)
    }

    pub fn stage(&self) -> &'g str {
        self.gw.stages.name(self.handle.stage)
    }

    /// The response set the API's errors use.
    pub fn scope(&self) -> ErrorScope {
        ErrorScope {
            group: Some(self.handle.group),
            set: self.api.response_set,
        }
    }

    /// The handle's backend (the API's, or a policy's) in its stage.
    pub fn backend(&self) -> &'g Backend {
        let api = self.api;
        let per_stage = match self.handle.backend {
            0 => &api.backends,
            n => &api.policies[n as usize - 1].backends,
        };
        per_stage[self.handle.stage as usize]
            .as_ref()
            .expect("handles name published backends")
    }

    /// Whether IP policies are bound (the client address is read only then).
    pub fn has_ip_acls(&self) -> bool {
        self.api.acls[self.handle.stage as usize]
            .iter()
            .any(|i| self.gw.acls[*i as usize].is_ip())
    }

    /// The first refusal by the IP policies (`ip_phase`) or the account
    /// policies bound to the API in the handle's stage.
    pub fn check_acls(
        &self,
        ip_phase: bool,
        ip: Option<IpAddr>,
        account: Option<&str>,
    ) -> Option<GatewayError> {
        self.api.acls[self.handle.stage as usize]
            .iter()
            .map(|i| &self.gw.acls[*i as usize])
            .filter(|acl| acl.is_ip() == ip_phase)
            .find_map(|acl| acl.check(ip, account))
    }

    /// Whether `app` may call the API in the handle's stage.
    pub fn authorize(&self, app: u32) -> Result<(), GatewayError> {
        let allowed = &self.api.authorized[self.handle.stage as usize];
        match allowed.binary_search(&app) {
            Ok(_) => Ok(()),
            Err(_) => Err(GatewayError::APP_UNAUTHORIZED),
        }
    }

    /// The throttling policy bound in the handle's stage, with its index.
    fn throttle(&self) -> Option<(u32, &'g ThrottlePlan)> {
        self.api.throttle[self.handle.stage as usize].map(|t| (t, &self.gw.throttles[t as usize]))
    }

    /// Whether the throttling bound to the API counts client IPs.
    pub fn throttle_needs_ip(&self) -> bool {
        self.throttle().is_some_and(|(_, t)| t.ip_limit.is_some())
    }

    /// The counters a request to the API must fit under, given who is
    /// calling (`throttle::counters`).
    pub fn counters(
        &self,
        app: Option<&str>,
        account: Option<&str>,
        ip: Option<&str>,
    ) -> Vec<Counter> {
        throttle::scope_counters(
            &self.api.scopes[self.handle.stage as usize],
            self.throttle().map(|(_, t)| t),
            app,
            account,
            ip,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{
        ApiPlan, BackendParamPlan, BackendPlan, GroupPlan, HttpBackend, Location, MatchMode,
        MockBackend, ParamSource, Plan, RequestMode, ResponseSpec, SystemParam, PLAN_VERSION,
        RELEASE,
    };
    use crate::response::{default_set, ErrorType, DEFAULT_SET};
    use crate::router::MAX_STAGES;
    use crate::slot_table::Part;
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
            protocol: Default::default(),
            websocket: false,
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
            access_log: true,
            route_timeout_ms: None,
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
            {
                let api = gw.view(gw.route(&r).unwrap().handle);
                (api.api.id.as_str(), api.api.name.as_str(), api.stage())
            },
            ("id-item", "item", RELEASE)
        );
        assert_eq!(
            forwarded(&gw, req("x", "GET", "/items/42", "TEST")),
            ("c2".into(), "/v2/items/42".to_string())
        );
    }

    #[test]
    fn protocol_and_domain_reach_the_backend_from_the_connection() {
        // Alibaba system parameters CaHttpSchema and CaDomain (the protocol
        // and domain the client called).
        let mut p = plan();
        let Some(BackendPlan::Http(b)) = p.groups[0].apis[0].stages.get_mut(RELEASE) else {
            unreachable!()
        };
        b.path = "/v1/{d}".into();
        b.params = vec![
            BackendParamPlan {
                name: "x-proto".into(),
                location: Location::Header,
                value: ParamSource::System(SystemParam::Protocol),
            },
            BackendParamPlan {
                name: "d".into(),
                location: Location::Path,
                value: ParamSource::System(SystemParam::Domain),
            },
            BackendParamPlan {
                name: "host".into(),
                location: Location::Query,
                value: ParamSource::System(SystemParam::Domain),
            },
        ];
        let gw = Gateway::from_plan(&p).unwrap();
        let r = req("Shop.Example:8443", "GET", "/items/42", RELEASE);
        let routed = gw.route(&r).unwrap();
        for (sent, proto) in [
            (vec![("x-forwarded-proto", "https")], "https"),
            (vec![("x-forwarded-proto", "http")], "http"),
            (vec![], "http"),
        ] {
            let mut pairs = vec![
                (":method", "GET"),
                (":path", "/items/42"),
                (":authority", "Shop.Example:8443"),
            ];
            pairs.extend(sent);
            let head = RequestHead::from_pairs(&pairs);
            let rw = gw
                .dispatch(&routed, &head, &Caller::default())
                .unwrap()
                .rewrite
                .unwrap();
            assert_eq!(rw.path, "/v1/Shop.Example?host=Shop.Example");
            assert!(rw
                .headers
                .contains(&("x-proto".to_string(), Some(proto.to_string()))));
        }
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
        let of = |ip| gw.view(h).counters(None, None, Some(ip));
        let mapped = of("::ffff:198.51.100.77");
        assert_eq!(mapped, of("198.51.100.77"));
        assert_ne!(of("2001:db8::1")[1].key, mapped[1].key);
        assert_eq!(mapped[0].part, Part::Plan, "the API limit");
        assert_eq!(mapped[1].part, Part::Policy(0), "the addresses");
    }
}
