//! The proxy-wasm adapter: reads what Envoy knows about a request, asks the
//! core (`gateway`), and applies the answer. No gateway decision lives here.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::aliyun_sign::MAX_SKEW_MS;
use crate::app_auth::{self, AuthFailure, AuthPolicy};
use crate::cors;
use crate::gateway::{
    render_builtin_error, ApiHandle, Backend, Caller, ErrorScope, Gateway, Reply, Request, Routed,
};
use crate::nonce::{self, SharedStore, Verdict};
use crate::plan::{AuthKind, Plan};
use crate::request_head::RequestHead;
use crate::request_path;
use crate::response::{self, GatewayError};
use crate::slot_table;
use crate::throttle::{self, Decision, Tally};

/// The internal header the filter sets for Envoy's second routing pass; a
/// client's own value is always removed first. (Clients' `x-envoy-*`
/// headers are dropped by Envoy: the compiler marks every client external.)
const CLUSTER_HEADER: &str = "x-pylon-cluster";
/// The per-API backend timeout, read by Envoy's router.
const TIMEOUT_HEADER: &str = "x-envoy-upstream-rq-timeout-ms";
/// Request headers that carry credentials: they stay at the gateway.
const CREDENTIALS: [&str; 3] = ["authorization", "x-ca-signature", "x-apig-appcode"];
/// Past this many header changes, the request's headers are replaced in
/// one host call instead of one call per change.
const BATCH_AFTER: usize = 4;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(PylonRoot { gateway: None }) });
}}

struct PylonRoot {
    gateway: Option<Rc<Gateway>>,
}

impl Context for PylonRoot {}

impl RootContext for PylonRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let loaded = self
            .get_plugin_configuration()
            .ok_or_else(|| "no plugin configuration".to_string())
            .and_then(|bytes| serde_json::from_slice::<Plan>(&bytes).map_err(|e| e.to_string()))
            .and_then(|mut plan| {
                // Secrets arrive sealed; the key is in Envoy's environment
                // (host_env_keys), which WASI's environ exposes to the VM.
                let keys = crate::seal::keys_from(|name| std::env::var(name).ok())?;
                crate::seal::open_plan(&mut plan, &keys)?;
                Gateway::from_plan(&plan).map(|gw| (plan, gw))
            })
            .and_then(|loaded| {
                // Counter and nonce slots are keyed by a secret all workers
                // share (WASI random_get, which Envoy provides).
                let mut candidate = [0u8; slot_table::SECRET_LEN];
                getrandom::fill(&mut candidate).map_err(|e| format!("no randomness: {e}"))?;
                slot_table::install_secret(&HostStore(self), &candidate)?;
                Ok(loaded)
            });
        match loaded {
            Ok((plan, gw)) => {
                // Only apps sign with X-Ca-Nonce: no apps, no nonce store.
                if !plan.apps.is_empty() {
                    nonce::prepare(&HostStore(self));
                }
                throttle::prepare(&HostStore(self), &plan.throttles);
                self.gateway = Some(Rc::new(gw));
                true
            }
            Err(e) => {
                // Fail closed: Envoy rejects the plugin, and should a request
                // still arrive it is answered 500 without reaching a backend.
                proxy_wasm::hostcalls::log(
                    LogLevel::Critical,
                    &format!("pylon: configuration rejected: {e}"),
                )
                .ok();
                self.gateway = None;
                false
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(PylonHttp {
            gateway: self.gateway.clone(),
            started: SystemTime::UNIX_EPOCH,
            upstream_started: None,
            head: RequestHead::default(),
            state: State::Pending,
            auth_pending: false,
            body_size: 0,
            app: None,
            account: None,
            client_ip: None,
            rate_tallies: Vec::new(),
            last_error: String::new(),
            bad_parameters: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

enum State {
    Pending,
    /// The gateway answered itself (mock or error).
    Replied,
    /// Sent to a backend; errors from here on use this API's responses.
    Forwarded(ApiHandle),
    /// Envoy answered for the backend (timeout, refused...): the response is
    /// being rewritten into this gateway response body.
    Rewriting(String),
}

/// Whole milliseconds, as the products print them in debug headers.
fn millis_between(from: SystemTime, to: SystemTime) -> String {
    to.duration_since(from)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .to_string()
}

struct PylonHttp {
    gateway: Option<Rc<Gateway>>,
    /// Clock readings, taken only in debug mode.
    started: SystemTime,
    upstream_started: Option<SystemTime>,
    /// Kept from the request headers: Envoy refuses reads of request headers
    /// in later phases, and error templates need them.
    head: RequestHead,
    state: State,
    /// The APP signature is checked once the whole body is in. (Envoy's
    /// buffer filter, after this one, holds the request from the router
    /// until then; proxy-wasm cannot pause headers and still see the body.)
    auth_pending: bool,
    /// The size of the body buffered so far while `auth_pending`.
    body_size: usize,
    /// The authenticated app, for `$context.appId`.
    app: Option<u32>,
    /// The authenticated account (IAM-style APIs): the caller's identity.
    account: Option<u32>,
    /// The client address, once read.
    client_ip: Option<String>,
    /// Rate counters as counted for this request (debug mode only).
    rate_tallies: Vec<Tally>,
    /// The message of the gateway error being answered (X-Ca-Error-Message).
    last_error: String,
    /// Why the parameters were refused, answered once authentication is
    /// done (so an unknown caller learns nothing about them).
    bad_parameters: Option<String>,
}

/// A full counter or nonce slot refused a request: say so, rate-limited.
fn warn_full(now_ms: u64) {
    if let Some(message) = slot_table::full_warning(now_ms) {
        proxy_wasm::hostcalls::log(LogLevel::Warn, &message).ok();
    }
}

/// The host's shared data (one store per Envoy process, all workers).
struct HostStore<'a>(&'a dyn Context);

impl SharedStore for HostStore<'_> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.0.get_shared_data(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        self.0.set_shared_data(key, Some(value), cas).is_ok()
    }
}

impl Context for PylonHttp {}

impl PylonHttp {
    /// The environment asked for: `X-Stage`, else RELEASE.
    fn stage(&self) -> &str {
        self.head
            .stage()
            .or_else(|| self.head.get("x-ca-stage"))
            .unwrap_or(crate::plan::RELEASE)
    }

    /// Milliseconds since the Unix epoch (signature windows, rate windows).
    fn now_ms(&self) -> u64 {
        self.get_current_time()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as u64
    }

    fn now_if_debug(&self) -> Option<SystemTime> {
        self.head.debug().then(|| self.get_current_time())
    }

    /// Checks the caller's credentials (and an app's authorization); on
    /// failure the gateway response is sent and `false` returned.
    fn authenticate(&mut self, gw: &Gateway, handle: ApiHandle, body: &[u8]) -> bool {
        let now_ms = self.now_ms();
        let verdict = match gw.auth_of(handle) {
            AuthKind::Iam => gw
                .accounts
                .authenticate_account(&self.head, body, now_ms)
                .map(|account| self.account = Some(account)),
            _ => self.authenticate_app(gw, handle, body, now_ms),
        }
        .and_then(|()| self.account_acl(gw, handle));
        match verdict {
            Ok(()) => true,
            Err(f) => {
                self.reply_error(gw.scope_of(handle), Some(handle), &f.error, &f.detail);
                false
            }
        }
    }

    fn authenticate_app(
        &mut self,
        gw: &Gateway,
        handle: ApiHandle,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), AuthFailure> {
        gw.apps
            .authenticate(&self.head, body, now_ms, self.auth_policy(gw, handle))
            .and_then(|caller| {
                self.app = Some(caller.app);
                gw.authorize(handle, caller.app)
                    .map_err(|error| AuthFailure {
                        error,
                        detail: String::new(),
                    })?;
                match caller.nonce_key {
                    Some(key) => {
                        let store = HostStore(self);
                        match nonce::check_and_record(&store, &key, now_ms, MAX_SKEW_MS) {
                            Verdict::Fresh => Ok(()),
                            Verdict::Replayed => Err(AuthFailure {
                                error: GatewayError::AUTH_FAILURE,
                                detail: "Nonce Used".into(),
                            }),
                            Verdict::Busy => Err(AuthFailure {
                                error: GatewayError::INTERNAL,
                                detail: "nonce store busy".into(),
                            }),
                            Verdict::Full => {
                                warn_full(now_ms);
                                Err(AuthFailure {
                                    error: GatewayError::THROTTLED,
                                    detail: "nonce store full".into(),
                                })
                            }
                        }
                    }
                    None => Ok(()),
                }
            })
    }

    fn auth_policy(&self, gw: &Gateway, handle: ApiHandle) -> AuthPolicy {
        // Envoy sets x-forwarded-proto from the real connection (every
        // client is external), so a caller cannot claim HTTPS.
        let https = self.head.get("x-forwarded-proto") == Some("https");
        AuthPolicy {
            allow_hmac_sha1: gw.allows_hmac_sha1(handle),
            app_code: gw.app_code_mode(handle),
            https,
        }
    }

    /// Callers using Alibaba's conventions (X-Ca-* headers, `APPCODE`
    /// authorization or the AppCode query parameter) read X-Ca-Error-Message.
    fn aliyun_caller(&self) -> bool {
        let h = &self.head;
        h.get("x-ca-key").is_some()
            || h.get("x-ca-signature").is_some()
            || h.get("authorization")
                .is_some_and(|a| a.starts_with("APPCODE "))
            || (h.get("x-apig-appcode").is_none() && app_auth::app_code(h).is_some())
    }

    /// Checks the parameters, picks the backend and rewrites the request
    /// for it. The request goes on only if nothing refuses it later, so a
    /// refused request never reaches the backend rewritten or not.
    fn dispatch(&mut self, gw: &Gateway, routed: &Routed) -> Result<ApiHandle, String> {
        let caller = Caller {
            source_ip: self.client_ip.as_deref().unwrap_or(""),
            app: self.app,
            account: self.account,
        };
        let d = gw
            .dispatch(routed, &self.head, &caller)
            .map_err(|invalid| invalid.0)?;
        if let (Backend::Http(target), Some(rw)) = (d.backend, &d.rewrite) {
            let path = match gw.auth_of(d.handle) {
                // An AppCode in the query stays at the gateway.
                AuthKind::App => app_auth::strip_app_code_param(&rw.path),
                AuthKind::None | AuthKind::Iam => rw.path.as_str().into(),
            };
            let mut changes: Vec<(&str, Option<&str>)> = vec![
                (":path", Some(&path)),
                (CLUSTER_HEADER, Some(&target.cluster)),
                (TIMEOUT_HEADER, Some(&target.timeout_ms)),
            ];
            if let Some(m) = target.method {
                changes.push((":method", Some(m)));
            }
            changes.extend(rw.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())));
            if changes.len() <= BATCH_AFTER {
                for (name, value) in changes {
                    self.set_http_request_header(name, value);
                }
            } else {
                // Many changes: one host call replacing the map costs less
                // than one call each (measured). It starts from the headers
                // as received, so it repeats the credential removal.
                if gw.auth_of(d.handle) != AuthKind::None {
                    changes.extend(CREDENTIALS.iter().map(|c| (*c, None)));
                }
                let all = self.head.rewritten(&changes);
                self.set_http_request_headers_bytes(all);
            }
        }
        self.state = State::Forwarded(d.handle);
        Ok(d.handle)
    }

    /// The request held for its signature is complete (`body_size` bytes
    /// buffered): authenticate, count, answer a held parameter error, then
    /// forward. Every way a held request can end comes through here.
    fn finish_held(&mut self, handle: ApiHandle) -> Action {
        self.auth_pending = false;
        let Some(gw) = self.gateway.clone() else {
            return Action::Pause;
        };
        let body = match self.body_size {
            0 => Vec::new(),
            n => self.get_http_request_body(0, n).unwrap_or_default(),
        };
        // The request was rewritten for the caller it claimed (system
        // parameters such as appId name it): only that caller may send it.
        let claimed = (self.app, self.account);
        if !self.authenticate(&gw, handle, &body) {
            return Action::Pause;
        }
        if (self.app, self.account) != claimed {
            let err = match gw.auth_of(handle) {
                AuthKind::Iam => GatewayError::IAM_AUTH_FAILURE,
                _ => GatewayError::AUTH_FAILURE,
            };
            let detail = "the signature is not the claimed caller's";
            self.reply_error(gw.scope_of(handle), Some(handle), &err, detail);
            return Action::Pause;
        }
        if !self.throttle(&gw, handle) {
            return Action::Pause;
        }
        if let Some(detail) = self.bad_parameters.take() {
            let err = GatewayError::BAD_PARAMETERS;
            self.reply_error(gw.scope_of(handle), Some(handle), &err, &detail);
            return Action::Pause;
        }
        self.proceed(&gw, handle)
    }

    /// After routing (and authentication): answer a mock, or let the
    /// request go on to its backend.
    fn proceed(&mut self, gw: &Gateway, handle: ApiHandle) -> Action {
        match gw.backend(handle) {
            Backend::Mock(reply) => {
                self.reply(reply.clone());
                Action::Pause
            }
            Backend::Http(_) => {
                self.upstream_started = self.now_if_debug();
                Action::Continue
            }
        }
    }

    /// The client address: the peer, or the X-Forwarded-For entry Envoy
    /// chose by the configured number of trusted hops (`xff_num_trusted_hops`).
    fn source_ip(&self) -> String {
        if let Some(ip) = &self.client_ip {
            return ip.clone();
        }
        let addr = self
            .get_property(vec!["source", "address"])
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        crate::router::strip_port(&addr).to_string()
    }

    /// Counts the request against the API's rate limits; when it does not
    /// fit, THROTTLED is answered and `false` returned.
    fn throttle(&mut self, gw: &Gateway, handle: ApiHandle) -> bool {
        let ip = gw.throttle_needs_ip(handle).then(|| self.source_ip());
        let app = self.app.map(|a| gw.apps.get(a).name.as_str());
        let account = self.account.map(|a| gw.accounts.get(a).name.as_str());
        let counters = gw.counters(handle, app, account, ip.as_deref());
        let now_ms = self.now_ms();
        let (admitted, tallies) = match throttle::admit(&HostStore(self), now_ms, &counters) {
            Decision::Admit(t) => (true, t),
            Decision::Throttle(t) => (false, t),
            Decision::Busy => (false, Vec::new()),
            Decision::Full => {
                warn_full(now_ms);
                (false, Vec::new())
            }
        };
        if self.head.debug() {
            self.rate_tallies = tallies;
        }
        if !admitted {
            self.reply_error(
                gw.scope_of(handle),
                Some(handle),
                &GatewayError::THROTTLED,
                "",
            );
        }
        admitted
    }

    /// The account policies bound to the API (an unauthenticated caller has
    /// no account: an allow-list refuses it).
    fn account_acl(&self, gw: &Gateway, handle: ApiHandle) -> Result<(), AuthFailure> {
        let account = self.account.map(|a| gw.accounts.get(a).name.as_str());
        match gw.check_acls(handle, false, None, account) {
            Some(error) => Err(AuthFailure {
                error,
                detail: String::new(),
            }),
            None => Ok(()),
        }
    }

    /// Answers with a gateway error rendered by the API's (or group's) set.
    fn reply_error(
        &mut self,
        scope: ErrorScope,
        handle: Option<ApiHandle>,
        err: &GatewayError,
        detail: &str,
    ) {
        self.last_error = if detail.is_empty() {
            err.message.to_string()
        } else {
            format!("{}: {detail}", err.message)
        };
        let reply = self.render(scope, handle, err, detail);
        self.reply(reply);
    }

    fn render(
        &self,
        scope: ErrorScope,
        handle: Option<ApiHandle>,
        err: &GatewayError,
        detail: &str,
    ) -> Reply {
        let req_path = self.head.path().split('?').next().unwrap_or("");
        let source_ip = self.source_ip();
        let mut ctx = response::Context {
            error_detail: detail,
            request_id: self.head.request_id(),
            source_ip: &source_ip,
            req_path,
            req_method: self.head.method(),
            stage: self.stage(),
            ..Default::default()
        };
        match &self.gateway {
            Some(gw) => {
                if let Some(h) = handle {
                    (ctx.api_id, ctx.api_name, ctx.stage) = gw.describe(h);
                }
                if let Some(app) = self.app {
                    ctx.app_id = &gw.apps.get(app).id;
                }
                if let Some(account) = self.account {
                    ctx.account = &gw.accounts.get(account).name;
                }
                let mut reply = gw.render_error(scope, err, &ctx);
                // A browser may read a CORS API's errors too.
                if handle.is_some_and(|h| gw.cors(h)) {
                    reply.headers.push((cors::ALLOW_ORIGIN.into(), "*".into()));
                }
                reply
            }
            None => render_builtin_error(err, &ctx),
        }
    }

    fn reply(&mut self, reply: Reply) {
        let mut headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        headers.push(("x-request-id", self.head.request_id()));
        let rate: Vec<(&str, String)> = self
            .rate_tallies
            .iter()
            .map(|t| (t.dimension.header(), t.header_value()))
            .collect();
        headers.extend(rate.iter().map(|(k, v)| (*k, v.as_str())));
        // Alibaba-style callers (they send X-Ca-* headers) read these.
        let error_message;
        if self.aliyun_caller() {
            headers.push(("x-ca-request-id", self.head.request_id()));
            if reply.status >= 400 {
                error_message = response::header_value(&self.last_error).into_owned();
                headers.push(("x-ca-error-message", &error_message));
            }
        }
        let latency;
        if let Some(now) = self.now_if_debug() {
            latency = millis_between(self.started, now);
            headers.push(("x-apig-latency", &latency));
        }
        self.send_http_response(reply.status as u32, headers, Some(reply.body.as_bytes()));
        self.state = State::Replied;
    }
}

impl HttpContext for PylonHttp {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        // Bytes: a value need not be UTF-8, and the SDK's text getters
        // panic on one that is not (request_head.rs says what it means).
        self.head = RequestHead::from_bytes(self.get_http_request_headers_bytes());
        if let Some(err) = crate::limits::check(&self.head) {
            self.reply_error(ErrorScope::default(), None, &err, "");
            return Action::Pause;
        }
        if self.head.get(CLUSTER_HEADER).is_some() {
            self.set_http_request_header(CLUSTER_HEADER, None);
        }
        if let Some(now) = self.now_if_debug() {
            self.started = now;
        }
        let Some(gw) = self.gateway.clone() else {
            let err = GatewayError::CONFIG_NOT_LOADED;
            self.reply_error(ErrorScope::default(), None, &err, "");
            return Action::Pause;
        };
        if self.head.gateway_hops() > crate::request_head::MAX_HOPS {
            let err = GatewayError::LOOP_DETECTED;
            self.reply_error(ErrorScope::default(), None, &err, "");
            return Action::Pause;
        }
        if !self.head.stage_is_single() {
            let err = GatewayError::BAD_REQUEST;
            let detail = "X-Stage and X-Ca-Stage name different environments";
            self.reply_error(ErrorScope::default(), None, &err, detail);
            return Action::Pause;
        }
        // Routing reads the normalised path; signatures read `:path` as
        // sent (request_path.rs). Owned, so what routing matched can
        // outlive the `&mut self` calls.
        let path = match request_path::normalize_target(self.head.path()) {
            Ok(p) => p.into_owned(),
            Err(_) => {
                let err = GatewayError::BAD_REQUEST;
                self.reply_error(ErrorScope::default(), None, &err, "");
                return Action::Pause;
            }
        };
        let req = Request {
            method: self.head.method(),
            host: self.head.authority(),
            path: &path,
            stage: self.stage(),
        };
        let routed = match gw.route(&req) {
            Ok(r) => r,
            Err((scope, err)) => {
                self.reply_error(scope, None, &err, "");
                return Action::Pause;
            }
        };
        let mut handle = routed.handle;
        let content_length = self.head.content_length();
        if content_length.is_some_and(|len| len > gw.max_body_bytes) {
            self.reply_error(
                routed.scope,
                Some(handle),
                &GatewayError::BODY_TOO_LARGE,
                "",
            );
            return Action::Pause;
        }
        self.state = State::Forwarded(handle);
        // Property reads are dear: read the client address once, and only
        // when something needs it.
        let ip_acls = gw.has_ip_acls(handle);
        if ip_acls || gw.throttle_needs_ip(handle) || gw.needs_source_ip(handle) {
            self.client_ip = Some(self.source_ip());
        }
        if ip_acls {
            let ip = self.source_ip().parse().ok();
            if let Some(err) = gw.check_acls(handle, true, ip, None) {
                self.reply_error(gw.scope_of(handle), Some(handle), &err, "");
                return Action::Pause;
            }
        }
        if gw.auth_of(handle) != AuthKind::None {
            // Credentials stay at the gateway (already read into `head`).
            for name in CREDENTIALS {
                self.set_http_request_header(name, None);
            }
            // A signature covers the body: check it once the body is in.
            // Request headers can only change now, so the request is
            // dispatched for the caller it claims to be; a false claim is
            // refused before anything reaches the backend.
            if !end_of_stream && app_auth::signature_needs_body(&self.head) {
                self.auth_pending = true;
                match gw.auth_of(handle) {
                    AuthKind::Iam => self.account = gw.accounts.claimed_account(&self.head),
                    _ => self.app = gw.apps.claimed(&self.head),
                }
                if let Err(detail) = self.dispatch(&gw, &routed) {
                    self.bad_parameters = Some(detail);
                }
                return Action::Continue;
            }
            if !self.authenticate(&gw, handle, &[]) {
                return Action::Pause;
            }
        }
        if let (AuthKind::None, Err(f)) = (gw.auth_of(handle), self.account_acl(&gw, handle)) {
            self.reply_error(gw.scope_of(handle), Some(handle), &f.error, "");
            return Action::Pause;
        }
        if !self.throttle(&gw, handle) {
            return Action::Pause;
        }
        match self.dispatch(&gw, &routed) {
            Ok(h) => handle = h,
            Err(detail) => {
                self.reply_error(
                    gw.scope_of(handle),
                    Some(handle),
                    &GatewayError::BAD_PARAMETERS,
                    &detail,
                );
                return Action::Pause;
            }
        }
        if end_of_stream || matches!(gw.backend(handle), Backend::Mock(_)) {
            return self.proceed(&gw, handle);
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        let State::Forwarded(handle) = self.state else {
            return Action::Continue;
        };
        if !self.auth_pending {
            if end_of_stream {
                self.upstream_started = self.now_if_debug();
            }
            return Action::Continue;
        }
        // Buffer until the whole body is in (Envoy answers 413 past the
        // route's buffer limit, which is the gateway's body limit). A body
        // followed by trailers ends in `on_http_request_trailers`.
        self.body_size = size;
        if !end_of_stream {
            return Action::Pause;
        }
        self.finish_held(handle)
    }

    /// A request that ends with trailers (HTTP/2, HTTP/1.1 chunked) ends
    /// here, after a body or with none: it meets the same checks as one
    /// whose body ends the stream.
    fn on_http_request_trailers(&mut self, _n: usize) -> Action {
        match self.state {
            State::Forwarded(handle) if self.auth_pending => self.finish_held(handle),
            _ => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        let State::Forwarded(handle) = self.state else {
            return Action::Continue;
        };
        if let Some(now) = self.now_if_debug() {
            let total = millis_between(self.started, now);
            let upstream = millis_between(self.upstream_started.unwrap_or(now), now);
            self.set_http_response_header("x-apig-latency", Some(&total));
            self.set_http_response_header("x-apig-upstream-latency", Some(&upstream));
            for t in &self.rate_tallies {
                self.set_http_response_header(t.dimension.header(), Some(&t.header_value()));
            }
        }
        // The Alibaba gateway sends X-Ca-Request-Id on every reply (Alibaba
        // quick start, request id); Alibaba-style callers look for it.
        if self.aliyun_caller() {
            self.set_http_response_header("x-ca-request-id", Some(self.head.request_id()));
        }
        // Seed §5.2.2: the backend's own CORS headers win.
        let cors_api = self.gateway.as_ref().is_some_and(|gw| gw.cors(handle));
        // Bytes: a backend's header value need not be UTF-8.
        if cors_api
            && self
                .get_http_response_header_bytes(cors::ALLOW_ORIGIN)
                .is_none()
        {
            self.set_http_response_header(cors::ALLOW_ORIGIN, Some("*"));
        }
        // Envoy's replies on a backend's behalf are all errors, so a success
        // needs no further look. (Checking the status first is measured to
        // save ~2 µs per request: property reads are far dearer than headers.)
        let status: u16 = self
            .get_http_response_header_bytes(":status")
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok())
            .unwrap_or(502);
        if status < 400 {
            return Action::Continue;
        }
        let details = self
            .get_property(vec!["response", "code_details"])
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        if details == "via_upstream" {
            return Action::Continue;
        }
        // Envoy answered on the backend's behalf: turn it into a gateway response.
        let err = GatewayError::from_envoy_reply(&details, status);
        let Some(gw) = self.gateway.clone() else {
            return Action::Continue;
        };
        let reply = self.render(gw.scope_of(handle), Some(handle), &err, "");
        self.set_http_response_header(":status", Some(&reply.status.to_string()));
        self.set_http_response_header("content-length", None);
        for (k, v) in &reply.headers {
            self.set_http_response_header(k, Some(v));
        }
        if !end_of_stream {
            self.state = State::Rewriting(reply.body);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if let State::Rewriting(body) = &self.state {
            let replacement: &[u8] = if end_of_stream { body.as_bytes() } else { b"" };
            self.set_http_response_body(0, size, replacement);
        }
        Action::Continue
    }
}
