//! One request's way through the gateway, host-free: the adapter feeds it
//! the request's events and applies the outcome it returns. The stage order
//! is written once (`ORDER`); a request paused for its body or for a
//! call-out resumes at the stage it stopped at. The host reaches the core
//! through `Host` (clock, client address, buffers, shared data), so every
//! path is unit-tested natively (`tests.rs`).

mod reply;
mod stages;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::gateway::{ApiHandle, Backend, ErrorScope, Gateway, Routed};
use crate::mapping::Rewrite;
use crate::metrics::{AuthOutcome, Scheme, Summary};
use crate::plan::AuthKind;
use crate::request_head::RequestHead;
use crate::request_path;
use crate::response::{GatewayError, Reply};
use crate::shared_store::SharedStore;
use crate::throttle::{Dimension, Tally};

/// The internal header the filter sets for Envoy's second routing pass; a
/// client's own value is always removed first. (Clients' `x-envoy-*`
/// headers are dropped by Envoy: the compiler marks every client external.)
pub const CLUSTER_HEADER: &str = "x-pylon-cluster";
/// The per-API backend timeout, read by Envoy's router.
const TIMEOUT_HEADER: &str = "x-envoy-upstream-rq-timeout-ms";
/// Request headers that carry credentials: they stay at the gateway.
const CREDENTIALS: [&str; 3] = ["authorization", "x-ca-signature", "x-apig-appcode"];
/// Past this many header changes, the request's headers are replaced in
/// one host call instead of one call per change (measured cheaper).
const BATCH_AFTER: usize = 4;

/// What the core asks of the host. Each method is one host call; the
/// pipeline calls the dear ones (the client address above all: a property
/// read) only when a stage needs them.
pub trait Host {
    /// The host clock.
    fn now(&self) -> SystemTime;
    /// The client address as the host reports it (`source.address`, port
    /// included): the peer, or the X-Forwarded-For entry Envoy chose by its
    /// number of trusted hops.
    fn client_address(&self) -> String;
    /// The first `len` bytes of the request body the host has buffered.
    fn request_body(&self, len: usize) -> Vec<u8>;
    /// A response header, as bytes (a backend's value need not be UTF-8).
    fn response_header(&self, name: &str) -> Option<Vec<u8>>;
    /// Why the host ended the response (`response.code_details`).
    fn response_details(&self) -> String;
    /// A line for the operator's log.
    fn warn(&self, message: &str);
    /// The shared data all workers of this Envoy see.
    fn store(&self) -> &dyn SharedStore;
}

/// What happened to the request, as the host reports it.
#[derive(Debug)]
pub enum Event {
    /// The request headers (read in one host call), and whether they end it.
    RequestHeaders {
        head: RequestHead,
        end_of_stream: bool,
    },
    /// `buffered` bytes of body are in so far.
    RequestBody {
        buffered: usize,
        end_of_stream: bool,
    },
    /// Trailers end the request (after a body or with none).
    RequestTrailers,
    /// The answer to the pipeline's call-out.
    CallAnswer(CallAnswer),
    /// The backend's (or Envoy's) response headers.
    ResponseHeaders { end_of_stream: bool },
    /// `size` bytes of response body are in so far.
    ResponseBody { size: usize, end_of_stream: bool },
}

/// An HTTP call the pipeline waits for before it goes on.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOut {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The host gives up after this; the pipeline, too, counts an answer
    /// arriving later as a timeout.
    pub timeout: Duration,
}

/// How a call-out ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CallAnswer {
    Response {
        status: u16,
        body: Vec<u8>,
    },
    /// No answer: the connection failed or was reset, or the host's timeout
    /// fired (hosts report both alike; the pipeline tells them apart by its
    /// own deadline).
    Failed,
    TimedOut,
}

/// One change to a header map, applied in order.
#[derive(Debug, PartialEq)]
pub enum HeaderOp<'a> {
    /// Sets (or with `None` removes) one header: one host call.
    Set(&'a str, Option<Cow<'a, str>>),
    /// Replaces the whole map: one host call for many changes.
    Replace(Vec<(&'a str, &'a [u8])>),
}

/// An answer the gateway sends itself.
#[derive(Debug, PartialEq)]
pub struct LocalReply<'a> {
    pub status: u32,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

/// What the host should do.
#[derive(Debug, PartialEq)]
pub enum Outcome<'a> {
    /// Let the request (or response) go on after these changes to the
    /// headers of the event's direction.
    Continue(Vec<HeaderOp<'a>>),
    /// Hold the request until more of its body (or its trailers) arrives.
    WaitForBody,
    /// Answer the client; the request goes no further.
    Reply(LocalReply<'a>),
    /// Send this call and hold the request until `Event::CallAnswer`.
    CallOut(&'a CallOut),
    /// Replace the first `size` bytes of the response body with `with`.
    ReplaceBody { size: usize, with: &'a [u8] },
}

impl Outcome<'_> {
    fn go_on() -> Self {
        Outcome::Continue(Vec::new())
    }
}

/// The request stages, in the order every request meets them. A stage
/// that cannot finish yet (the body or a call-out is missing) pauses the
/// request; it resumes at that stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Host → group, `X-Stage` → environment, method + path → API. (The
    /// request line is checked first, in this order: a configuration is
    /// loaded, the `Via` loop guard, path normalisation; the stages route
    /// on the normalised path.)
    Route,
    /// The API's request protocol (HTTP, HTTPS, both) and WebSocket.
    Protocol,
    /// A declared `Content-Length` over the gateway's limit.
    BodyLimit,
    /// IP access control policies.
    IpAcl,
    /// Credentials stay at the gateway (applied with the other changes).
    StripCredentials,
    /// Custom authorizers (Huawei user guide §5.8) will call out here; the
    /// plan has none yet, so only tests install one.
    Authorizer,
    /// App or account signature, AppCode, app authorization, nonce; held
    /// until the body is in when the signature covers it.
    Authenticate,
    /// Account access control policies (after authentication).
    AccountAcl,
    /// Rate limits.
    Throttle,
    /// Parameters checked, backend chosen, backend request built.
    Parameters,
    /// Mock answered, or the request forwarded.
    Answer,
}

const ORDER: [Stage; 11] = [
    Stage::Route,
    Stage::Protocol,
    Stage::BodyLimit,
    Stage::IpAcl,
    Stage::StripCredentials,
    Stage::Authorizer,
    Stage::Authenticate,
    Stage::AccountAcl,
    Stage::Throttle,
    Stage::Parameters,
    Stage::Answer,
];

/// How a stage ends.
enum Flow {
    Next,
    /// An error or a mock was answered (`Pipeline::reply` is set).
    Replied,
    /// Forward the request's headers now; the body is held for `Authenticate`.
    Hold,
    /// Forward the request.
    Forward,
    /// Wait for the call-out's answer. (Only tests call out until custom
    /// authorizers are in the plan.)
    #[cfg_attr(not(test), allow(dead_code))]
    Call,
}

enum State {
    Pending,
    /// The gateway answered itself (mock or error).
    Replied,
    /// Sent to a backend; errors from here on use this API's responses.
    Forwarded(ApiHandle),
    /// Envoy answered for the backend (timeout, refused...): its response
    /// body is being rewritten into the gateway response (`reply`).
    Rewriting,
}

/// A call-out in flight.
struct Pending {
    /// The stage that called out; the request resumes after it.
    at: usize,
    deadline: SystemTime,
    call: CallOut,
}

/// A stage that calls out and judges the answer (custom authorizers, later).
#[cfg(test)]
pub(crate) struct CallStep {
    pub call: CallOut,
    pub judge: fn(&CallAnswer) -> Result<(), GatewayError>,
}

/// One request's progress through the gateway.
pub struct Pipeline {
    gateway: Option<Rc<Gateway>>,
    /// Kept from the request headers: Envoy refuses reads of request headers
    /// in later phases, and error templates need them.
    head: RequestHead,
    /// The routed path, kept only while a call-out is out.
    path: String,
    state: State,
    /// The stage a paused request resumes at.
    resume: usize,
    /// Clock readings, taken in debug mode or for metrics.
    started: SystemTime,
    upstream_started: Option<SystemTime>,
    /// When the response headers came (metrics: backend latency).
    responded: Option<SystemTime>,
    /// The backend's status, as its response headers said.
    status: u16,
    /// The gateway error answered or rewritten (metrics, access log).
    error: Option<GatewayError>,
    /// How authentication went (metrics).
    auth: Option<(Scheme, AuthOutcome)>,
    /// The limit that refused the request (metrics).
    throttled: Option<Dimension>,
    /// The signature is checked once the whole body (`body_size` bytes) is
    /// in. (Envoy's buffer filter, after this one, holds the request from
    /// the router until then; proxy-wasm cannot pause headers and still see
    /// the body.)
    auth_pending: bool,
    body_size: usize,
    /// No body follows the request headers.
    headers_ended: bool,
    /// The routed API (kept when the request is refused after routing).
    api: Option<ApiHandle>,
    /// The authenticated (or, while held, claimed) app: `$context.appId`.
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
    /// Parameters were checked (for a held request, at the headers).
    dispatched: bool,
    /// The backend request, for HTTP backends.
    rewrite: Option<Rewrite>,
    /// The gateway error answered (or rewritten into Envoy's reply).
    reply: Option<Reply>,
    /// The mock answered.
    mock: Option<ApiHandle>,
    /// Debug header values of the gateway's own answer.
    reply_rates: Vec<(&'static str, String)>,
    reply_latency: Option<String>,
    call: Option<Pending>,
    #[cfg(test)]
    pub(crate) authorizer: Option<CallStep>,
}

impl Pipeline {
    /// A request's pipeline; `None`: the configuration did not load.
    pub fn new(gateway: Option<Rc<Gateway>>) -> Pipeline {
        Pipeline {
            gateway,
            head: RequestHead::default(),
            path: String::new(),
            state: State::Pending,
            resume: 0,
            started: SystemTime::UNIX_EPOCH,
            upstream_started: None,
            responded: None,
            status: 0,
            error: None,
            auth: None,
            throttled: None,
            auth_pending: false,
            body_size: 0,
            headers_ended: false,
            api: None,
            app: None,
            account: None,
            client_ip: None,
            rate_tallies: Vec::new(),
            last_error: String::new(),
            bad_parameters: None,
            dispatched: false,
            rewrite: None,
            reply: None,
            mock: None,
            reply_rates: Vec::new(),
            reply_latency: None,
            call: None,
            #[cfg(test)]
            authorizer: None,
        }
    }

    /// Takes the next event; returns what the host should do.
    pub fn handle(&mut self, host: &dyn Host, event: Event) -> Outcome<'_> {
        match event {
            Event::RequestHeaders {
                head,
                end_of_stream,
            } => self.on_headers(host, head, end_of_stream),
            Event::RequestBody {
                buffered,
                end_of_stream,
            } => self.on_body(host, buffered, end_of_stream),
            Event::RequestTrailers => self.on_trailers(host),
            Event::CallAnswer(answer) => self.on_answer(host, answer),
            Event::ResponseHeaders { end_of_stream } => {
                self.on_response_headers(host, end_of_stream)
            }
            Event::ResponseBody {
                size,
                end_of_stream,
            } => self.on_response_body(size, end_of_stream),
        }
    }

    fn on_headers(&mut self, host: &dyn Host, head: RequestHead, end: bool) -> Outcome<'_> {
        self.head = head;
        // What follows a WebSocket upgrade is the socket's frames, not a
        // body: the request is complete (and signed) as its headers. Only
        // an API that declares WebSocket lets one through (Stage::Protocol).
        let end = end || crate::protocol::is_websocket(&self.head);
        self.headers_ended = end;
        // Size limits first (limits.rs): nothing else reads an oversized head.
        if let Some(err) = crate::limits::check(&self.head) {
            return self.refuse(host, ErrorScope::default(), None, err);
        }
        if self.timed() {
            self.started = host.now();
        }
        let Some(gw) = self.gateway.clone() else {
            return self.refuse(
                host,
                ErrorScope::default(),
                None,
                GatewayError::CONFIG_NOT_LOADED,
            );
        };
        if self.head.gateway_hops() > crate::request_head::MAX_HOPS {
            return self.refuse(
                host,
                ErrorScope::default(),
                None,
                GatewayError::LOOP_DETECTED,
            );
        }
        if !self.head.stage_is_single() {
            let detail = "X-Stage and X-Ca-Stage name different environments";
            let err = GatewayError::BAD_REQUEST;
            self.refuse_detail(host, ErrorScope::default(), None, err, detail);
            return Outcome::Reply(self.local_reply());
        }
        // Routing reads the normalised path; signatures read `:path` as
        // sent (request_path.rs).
        let path = match request_path::normalize_target(self.head.path()) {
            Ok(p) => p.into_owned(),
            Err(_) => {
                return self.refuse(host, ErrorScope::default(), None, GatewayError::BAD_REQUEST)
            }
        };
        let flow = self.run(host, &gw, &path, 0, None, end);
        self.keep_path_if_calling(path);
        self.outcome(flow)
    }

    fn on_body(&mut self, host: &dyn Host, buffered: usize, end: bool) -> Outcome<'_> {
        if !matches!(self.state, State::Forwarded(_)) {
            return Outcome::go_on();
        }
        if !self.auth_pending {
            if end {
                self.upstream_started = self.now_if_timed(host);
            }
            return Outcome::go_on();
        }
        // Buffer until the whole body is in (Envoy answers 413 past the
        // route's buffer limit, which is the gateway's body limit). A body
        // followed by trailers ends with `RequestTrailers`.
        self.body_size = buffered;
        if !end {
            return Outcome::WaitForBody;
        }
        self.finish_held(host)
    }

    /// A request that ends with trailers (HTTP/2, HTTP/1.1 chunked), after
    /// a body or with none, meets the same checks as one whose body ends it.
    fn on_trailers(&mut self, host: &dyn Host) -> Outcome<'_> {
        match self.state {
            State::Forwarded(_) if self.auth_pending => self.finish_held(host),
            _ => Outcome::go_on(),
        }
    }

    /// The held request is complete: the stages go on from authentication.
    fn finish_held(&mut self, host: &dyn Host) -> Outcome<'_> {
        self.auth_pending = false;
        let Some(gw) = self.gateway.clone() else {
            // Not reached: without a configuration the headers were refused.
            return Outcome::WaitForBody;
        };
        let body = match self.body_size {
            0 => Vec::new(),
            n => host.request_body(n),
        };
        let flow = self.run(host, &gw, "", self.resume, Some(&body), true);
        match flow {
            // The headers went on when the request was held.
            Flow::Forward => Outcome::go_on(),
            flow => self.outcome(flow),
        }
    }

    fn on_answer(&mut self, host: &dyn Host, answer: CallAnswer) -> Outcome<'_> {
        let Some(pending) = self.call.take() else {
            return Outcome::go_on();
        };
        let answer = match answer {
            CallAnswer::Failed if host.now() >= pending.deadline => CallAnswer::TimedOut,
            a => a,
        };
        let Some(gw) = self.gateway.clone() else {
            // Not reached: without a configuration the headers were refused.
            return Outcome::WaitForBody;
        };
        if let Err(err) = self.judge(pending.at, &answer) {
            let handle = self.handle_now();
            let scope = handle.map_or_else(ErrorScope::default, |h| gw.view(h).scope());
            return self.refuse(host, scope, handle, err);
        }
        let path = std::mem::take(&mut self.path);
        let flow = self.run(host, &gw, &path, pending.at + 1, None, self.headers_ended);
        self.keep_path_if_calling(path);
        self.outcome(flow)
    }

    /// Runs the stages from `ORDER[from]` on. `body` is the held body once
    /// it is complete; `end`: no body follows the headers.
    fn run(
        &mut self,
        host: &dyn Host,
        gw: &Gateway,
        path: &str,
        from: usize,
        body: Option<&[u8]>,
        end: bool,
    ) -> Flow {
        let mut routed: Option<Routed> = None;
        for (at, stage) in ORDER.iter().enumerate().skip(from) {
            let flow = match stage {
                Stage::Route => match self.route(gw, path) {
                    Ok(r) => {
                        self.state = State::Forwarded(r.handle);
                        self.api = Some(r.handle);
                        routed = Some(r);
                        Flow::Next
                    }
                    Err((scope, err)) => self.refuse_flow(host, scope, None, err),
                },
                Stage::Protocol => {
                    let h = self.api_handle();
                    let api = gw.view(h).api;
                    let (accepts, websocket) = (api.protocol, api.websocket);
                    let https = crate::protocol::is_https(&self.head);
                    let upgrade = crate::protocol::is_websocket(&self.head);
                    match crate::protocol::check(accepts, websocket, https, upgrade) {
                        Ok(()) => Flow::Next,
                        Err((err, detail)) => {
                            self.refuse_detail(host, gw.view(h).scope(), Some(h), err, detail)
                        }
                    }
                }
                Stage::BodyLimit => {
                    let h = self.api_handle();
                    let limit = gw.max_body_bytes;
                    if self.head.content_length().is_some_and(|len| len > limit) {
                        let err = GatewayError::BODY_TOO_LARGE;
                        self.refuse_flow(host, gw.view(h).scope(), Some(h), err)
                    } else {
                        Flow::Next
                    }
                }
                Stage::IpAcl => self.ip_acl(host, gw),
                // The removal itself travels with the request's other
                // header changes (`request_ops`).
                Stage::StripCredentials => Flow::Next,
                Stage::Authorizer => self.authorizer(host, at),
                Stage::Authenticate => self.authenticate(host, gw, path, &mut routed, body, end),
                Stage::AccountAcl => self.account_acl(host, gw),
                Stage::Throttle => self.throttle(host, gw),
                Stage::Parameters => self.parameters(host, gw, path, &mut routed),
                Stage::Answer => self.answer(host, gw, end),
            };
            match flow {
                Flow::Next => continue,
                Flow::Call => self.resume = at,
                Flow::Hold => self.resume = at,
                _ => {}
            }
            return flow;
        }
        Flow::Forward
    }

    /// A call-out resumes with the routed path (`Routed` borrows it).
    fn keep_path_if_calling(&mut self, path: String) {
        if self.call.is_some() {
            self.path = path;
        }
    }

    /// The host's instructions for how the stages ended.
    fn outcome(&self, flow: Flow) -> Outcome<'_> {
        match flow {
            Flow::Replied => Outcome::Reply(self.local_reply()),
            Flow::Forward | Flow::Hold => Outcome::Continue(self.request_ops()),
            Flow::Call => match &self.call {
                Some(p) => Outcome::CallOut(&p.call),
                None => Outcome::go_on(),
            },
            Flow::Next => Outcome::go_on(),
        }
    }

    /// The changes to the request's headers: the client's own cluster
    /// header and credentials go, the backend request's path and headers
    /// come. Past `BATCH_AFTER` dispatch changes the map is replaced in one
    /// host call, built from the headers as received.
    fn request_ops(&self) -> Vec<HeaderOp<'_>> {
        let cluster = self.head.get(CLUSTER_HEADER).is_some();
        let forwarded = match (&self.state, self.gateway.as_deref()) {
            (State::Forwarded(h), Some(gw)) => Some((*h, gw)),
            _ => None,
        };
        let strip = forwarded.is_some_and(|(h, gw)| gw.view(h).api.auth != AuthKind::None);
        let target = forwarded.and_then(|(h, gw)| match (gw.view(h).backend(), &self.rewrite) {
            (Backend::Http(t), Some(rw)) => Some((t, rw, gw)),
            _ => None,
        });
        // Each set is a host call: `:path` only when the backend's differs
        // from the caller's, the timeout only when the backend route does
        // not already apply it: always on an upgrade (the WebSocket route
        // has only the 600 s bound) and over a client's own value, which the
        // router would obey (Envoy drops it from external clients; a proxy
        // in front, such as Istio's, may not).
        let set_path = target.is_some_and(|(_, rw, _)| rw.path != self.head.path());
        let set_timeout = target.is_some_and(|(t, _, gw)| {
            gw.route_timeout_ms.as_deref() != Some(t.timeout_ms.as_str())
                || crate::protocol::is_websocket(&self.head)
                || self.head.raw().any(|(k, _)| k == TIMEOUT_HEADER)
        });
        let changes = target.map_or(0, |(t, rw, _)| {
            1 + usize::from(set_path)
                + usize::from(set_timeout)
                + t.method.iter().len()
                + rw.headers.len()
        });
        let batch = changes > BATCH_AFTER;
        // One allocation, sized for what follows. A batch replaces the map
        // built from the headers as received with the cluster header set
        // and the credentials removed: separate removals would be wasted.
        let mut ops = Vec::with_capacity(match batch {
            true => 1,
            false => usize::from(cluster) + 3 * usize::from(strip) + changes,
        });
        if cluster && !batch {
            ops.push(HeaderOp::Set(CLUSTER_HEADER, None));
        }
        if strip && !batch {
            ops.extend(CREDENTIALS.iter().map(|c| HeaderOp::Set(c, None)));
        }
        let Some((target, rw, _)) = target else {
            return ops;
        };
        let method = target.method.map(|m| (":method", Some(m)));
        let path = set_path.then_some((":path", Some(rw.path.as_str())));
        let timeout = set_timeout.then_some((TIMEOUT_HEADER, Some(target.timeout_ms.as_str())));
        let all = path
            .into_iter()
            .chain([(CLUSTER_HEADER, Some(target.cluster.as_str()))])
            .chain(timeout)
            .chain(method)
            .chain(rw.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())));
        if !batch {
            ops.extend(all.map(|(k, v)| HeaderOp::Set(k, v.map(Cow::Borrowed))));
        } else {
            let strips = CREDENTIALS.iter().filter(|_| strip).map(|c| (*c, None));
            ops.push(HeaderOp::Replace(self.head.rewritten(all.chain(strips))));
        }
        ops
    }

    /// The environment asked for: `X-Stage`, else RELEASE.
    fn stage(&self) -> &str {
        self.head
            .stage()
            .or_else(|| self.head.get("x-ca-stage"))
            .unwrap_or(crate::plan::RELEASE)
    }

    fn now_if_debug(&self, host: &dyn Host) -> Option<SystemTime> {
        self.head.debug().then(|| host.now())
    }

    /// Metrics are on (the plan's `metrics`).
    fn metered(&self) -> bool {
        self.gateway.as_ref().is_some_and(|gw| gw.metrics)
    }

    /// Latencies are measured: for debug headers or for metrics.
    fn timed(&self) -> bool {
        self.head.debug() || self.metered()
    }

    fn now_if_timed(&self, host: &dyn Host) -> Option<SystemTime> {
        self.timed().then(|| host.now())
    }

    /// What the metrics need to know about the finished request (`None`
    /// with metrics off). Reads the clock once.
    pub fn summary(&self, host: &dyn Host) -> Option<Summary> {
        if !self.metered() {
            return None;
        }
        let api = self.api;
        let status = match (&self.state, self.mock, &self.reply) {
            (State::Replied, Some(h), _) => match self.gateway.as_deref()?.view(h).backend() {
                Backend::Mock(r) => r.status,
                Backend::Http(_) => 0,
            },
            (_, _, Some(reply)) => reply.status,
            _ => self.status,
        };
        let ms = |from: SystemTime, to: SystemTime| {
            to.duration_since(from)
                .unwrap_or(Duration::ZERO)
                .as_millis() as u64
        };
        // A request refused before its head was read has no start.
        let total_ms =
            (self.started != SystemTime::UNIX_EPOCH).then(|| ms(self.started, host.now()));
        let backend_ms = match (self.upstream_started, self.responded) {
            (Some(from), Some(to)) => Some(ms(from, to)),
            _ => None,
        };
        Some(Summary {
            api,
            status,
            error: self.error,
            auth: self.auth,
            throttled: self.throttled,
            app: self.app,
            total_ms,
            backend_ms,
        })
    }

    /// The access-log fields the filter knows, as `(filter state key,
    /// value)`: Envoy's access log reads them (`FILTER_STATE(wasm.<key>)`).
    /// Never a credential: the path goes without its query (an AppCode may
    /// be there), and no header is copied.
    pub fn access_log(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::with_capacity(7);
        let Some(gw) = self
            .gateway
            .as_deref()
            .filter(|gw| gw.metrics && gw.access_log)
        else {
            return out;
        };
        let path = self.head.path();
        if !path.is_empty() {
            out.push(("pylon_path", path.split('?').next().unwrap_or("")));
        }
        if let Some(h) = self.api {
            let view = gw.view(h);
            out.push(("pylon_api_id", view.api.id.as_str()));
            out.push(("pylon_api", view.api.name.as_str()));
            out.push(("pylon_group", view.group_name()));
            out.push(("pylon_stage", view.stage()));
        }
        if let Some(app) = self.app {
            out.push(("pylon_app_id", gw.apps.get(app).id.as_str()));
        }
        if let Some(account) = self.account {
            out.push(("pylon_account", gw.accounts.get(account).name.as_str()));
        }
        if let Some(err) = self.error {
            out.push(("pylon_error_code", err.code));
        }
        out
    }

    /// The client address, read from the host once.
    fn source_ip(&mut self, host: &dyn Host) -> &str {
        if self.client_ip.is_none() {
            let addr = host.client_address();
            self.client_ip = Some(crate::router::client_ip(&addr).to_string());
        }
        self.client_ip.as_deref().unwrap_or("")
    }
}

/// Milliseconds since the Unix epoch (signature windows, rate windows).
fn now_ms(host: &dyn Host) -> u64 {
    host.now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// Whole milliseconds, as the products print them in debug headers.
fn millis_between(from: SystemTime, to: SystemTime) -> String {
    to.duration_since(from)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .to_string()
}
