//! What the gateway answers itself (errors, mocks) and what it adds to or
//! rewrites in a backend's response.

use std::borrow::Cow;

use super::{millis_between, Flow, HeaderOp, Host, LocalReply, Outcome, Pipeline, State};
use crate::app_auth;
use crate::cors;
use crate::gateway::{ApiHandle, Backend, ErrorScope};
use crate::response::{self, render_builtin_error, GatewayError, Reply};

impl Pipeline {
    /// Answers a gateway error rendered by the API's (or group's) set.
    pub(super) fn refuse(
        &mut self,
        host: &dyn Host,
        scope: ErrorScope,
        handle: Option<ApiHandle>,
        err: GatewayError,
    ) -> Outcome<'_> {
        self.refuse_flow(host, scope, handle, err);
        Outcome::Reply(self.local_reply())
    }

    pub(super) fn refuse_flow(
        &mut self,
        host: &dyn Host,
        scope: ErrorScope,
        handle: Option<ApiHandle>,
        err: GatewayError,
    ) -> Flow {
        self.refuse_detail(host, scope, handle, err, "")
    }

    pub(super) fn refuse_detail(
        &mut self,
        host: &dyn Host,
        scope: ErrorScope,
        handle: Option<ApiHandle>,
        err: GatewayError,
        detail: &str,
    ) -> Flow {
        // A header value: a detail may quote the caller's (decoded) input,
        // so control characters cannot split it (response::header_value).
        self.last_error = if detail.is_empty() {
            err.message.to_string()
        } else {
            response::header_value(&format!("{}: {detail}", err.message)).into_owned()
        };
        self.error = Some(err);
        self.reply = Some(self.render(host, scope, handle, &err, detail));
        self.finish_reply(host);
        Flow::Replied
    }

    fn render(
        &mut self,
        host: &dyn Host,
        scope: ErrorScope,
        handle: Option<ApiHandle>,
        err: &GatewayError,
        detail: &str,
    ) -> Reply {
        self.source_ip(host);
        let req_path = self.head.path().split('?').next().unwrap_or("");
        let mut ctx = response::Context {
            error_detail: detail,
            request_id: self.head.request_id(),
            source_ip: self.client_ip.as_deref().unwrap_or(""),
            req_path,
            req_method: self.head.method(),
            stage: self.stage(),
            ..Default::default()
        };
        let Some(gw) = self.gateway.as_deref() else {
            return render_builtin_error(err, &ctx);
        };
        if let Some(h) = handle {
            let view = gw.view(h);
            (ctx.api_id, ctx.api_name, ctx.stage) = (&view.api.id, &view.api.name, view.stage());
        }
        if let Some(app) = self.app {
            ctx.app_id = &gw.apps.get(app).id;
        }
        if let Some(account) = self.account {
            ctx.account = &gw.accounts.get(account).name;
        }
        let mut reply = gw.render_error(scope, err, &ctx);
        // A browser may read a CORS API's errors too.
        if handle.is_some_and(|h| gw.view(h).api.cors) {
            reply.headers.push((cors::ALLOW_ORIGIN.into(), "*".into()));
        }
        reply
    }

    /// The answer is decided: take the debug readings that go with it.
    pub(super) fn finish_reply(&mut self, host: &dyn Host) {
        self.state = State::Replied;
        self.reply_rates = self
            .rate_tallies
            .iter()
            .map(|t| (t.dimension.header(), t.header_value()))
            .collect();
        self.reply_latency = self
            .now_if_debug(host)
            .map(|now| millis_between(self.started, now));
    }

    /// The gateway's own answer (an error or a mock) with its headers.
    pub(super) fn local_reply(&self) -> LocalReply<'_> {
        let reply = match (self.mock, &self.reply, self.gateway.as_deref()) {
            (Some(h), _, Some(gw)) => match gw.view(h).backend() {
                Backend::Mock(r) => r,
                Backend::Http(_) => unreachable!("a mock handle names a mock"),
            },
            (_, Some(r), _) => r,
            _ => unreachable!("a reply is rendered before it is sent"),
        };
        let mut headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        headers.push(("x-request-id", self.head.request_id()));
        headers.extend(self.reply_rates.iter().map(|(k, v)| (*k, v.as_str())));
        // Alibaba-style callers (they send X-Ca-* headers) read these.
        if self.aliyun_caller() {
            headers.push(("x-ca-request-id", self.head.request_id()));
            if reply.status >= 400 {
                headers.push(("x-ca-error-message", &self.last_error));
            }
        }
        if let Some(latency) = &self.reply_latency {
            headers.push(("x-apig-latency", latency));
        }
        LocalReply {
            status: reply.status as u32,
            headers,
            body: reply.body.as_bytes(),
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

    /// Debug headers, the Alibaba request id and CORS on a forwarded
    /// request's response; Envoy's own error replies for the backend become
    /// gateway responses.
    pub(super) fn on_response_headers(&mut self, host: &dyn Host, end: bool) -> Outcome<'_> {
        let State::Forwarded(h) = self.state else {
            return Outcome::go_on();
        };
        let mut ops: Vec<(&'static str, Option<String>)> = Vec::new();
        self.responded = self.now_if_timed(host);
        if let (true, Some(now)) = (self.head.debug(), self.responded) {
            let total = millis_between(self.started, now);
            let upstream = millis_between(self.upstream_started.unwrap_or(now), now);
            ops.push(("x-apig-latency", Some(total)));
            ops.push(("x-apig-upstream-latency", Some(upstream)));
            for t in &self.rate_tallies {
                ops.push((t.dimension.header(), Some(t.header_value())));
            }
        }
        // The Alibaba gateway sends X-Ca-Request-Id on every reply (Alibaba
        // quick start, request id); Alibaba-style callers look for it.
        let aliyun = self.aliyun_caller();
        // Huawei user guide §5.2.2: the backend's own CORS headers win.
        let cors_api = self.gateway.as_ref().is_some_and(|gw| gw.view(h).api.cors);
        let allow_origin = cors_api && host.response_header(cors::ALLOW_ORIGIN).is_none();
        // Envoy's replies on a backend's behalf are all errors, so a success
        // needs no further look. (Checking the status first is measured to
        // save ~2 µs per request: property reads are far dearer than headers.)
        let status: u16 = host
            .response_header(":status")
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok())
            .unwrap_or(502);
        self.status = status;
        let mut rewrite = false;
        if status >= 400 {
            let details = host.response_details();
            if details != "via_upstream" {
                if let Some(gw) = self.gateway.clone() {
                    // Envoy answered for the backend: a gateway response.
                    let err = GatewayError::from_envoy_reply(&details, status);
                    self.error = Some(err);
                    self.reply = Some(self.render(host, gw.view(h).scope(), Some(h), &err, ""));
                    rewrite = true;
                    if !end {
                        self.state = State::Rewriting;
                    }
                }
            }
        }
        let mut out: Vec<HeaderOp<'_>> = ops
            .into_iter()
            .map(|(k, v)| HeaderOp::Set(k, v.map(Cow::Owned)))
            .collect();
        if aliyun {
            let id = self.head.request_id();
            out.push(HeaderOp::Set("x-ca-request-id", Some(Cow::Borrowed(id))));
        }
        if allow_origin {
            out.push(HeaderOp::Set(cors::ALLOW_ORIGIN, Some(Cow::Borrowed("*"))));
        }
        if let (true, Some(reply)) = (rewrite, &self.reply) {
            out.push(HeaderOp::Set(
                ":status",
                Some(reply.status.to_string().into()),
            ));
            out.push(HeaderOp::Set("content-length", None));
            for (k, v) in &reply.headers {
                out.push(HeaderOp::Set(k, Some(Cow::Borrowed(v))));
            }
        }
        Outcome::Continue(out)
    }

    /// Envoy's own error body is replaced by the gateway response's.
    pub(super) fn on_response_body(&self, size: usize, end: bool) -> Outcome<'_> {
        match (&self.state, &self.reply) {
            (State::Rewriting, Some(reply)) => Outcome::ReplaceBody {
                size,
                with: if end { reply.body.as_bytes() } else { b"" },
            },
            _ => Outcome::go_on(),
        }
    }
}
