//! The stages themselves, in `ORDER`'s order: each one checks one thing
//! and says whether the request goes on.

use std::borrow::Cow;

#[cfg(test)]
use super::Pending;
use super::{now_ms, CallAnswer, Flow, Host, Pipeline, State};
use crate::aliyun_sign::MAX_SKEW_MS;
use crate::app_auth::{self, AuthFailure, AuthPolicy};
use crate::gateway::{ApiHandle, Backend, Caller, ErrorScope, Gateway, Request, Routed};
use crate::metrics::{AuthOutcome, Scheme};
use crate::nonce::{self, Verdict};
use crate::plan::AuthKind;
use crate::response::GatewayError;
use crate::slot_table;
use crate::throttle::{self, Decision};

impl Pipeline {
    pub(super) fn route<'p>(
        &self,
        gw: &Gateway,
        path: &'p str,
    ) -> Result<Routed<'p>, (ErrorScope, GatewayError)> {
        let req = Request {
            method: self.head.method(),
            host: self.head.authority(),
            path,
            stage: self.stage(),
        };
        gw.route(&req)
    }

    /// The routed API (with the backend chosen, once dispatched).
    pub(super) fn api_handle(&self) -> ApiHandle {
        match self.state {
            State::Forwarded(h) => h,
            _ => unreachable!("the stages after routing have an API"),
        }
    }

    pub(super) fn handle_now(&self) -> Option<ApiHandle> {
        match self.state {
            State::Forwarded(h) => Some(h),
            _ => None,
        }
    }

    pub(super) fn ip_acl(&mut self, host: &dyn Host, gw: &Gateway) -> Flow {
        let h = self.api_handle();
        let api = gw.view(h);
        // Property reads are dear: read the client address once, and only
        // when something needs it.
        let ip_acls = api.has_ip_acls();
        if ip_acls || api.throttle_needs_ip() || api.api.needs_source_ip {
            self.source_ip(host);
        }
        if ip_acls {
            let ip = self.client_ip.as_deref().and_then(|ip| ip.parse().ok());
            if let Some(err) = api.check_acls(true, ip, None) {
                return self.refuse_flow(host, api.scope(), Some(h), err);
            }
        }
        Flow::Next
    }

    #[cfg(not(test))]
    pub(super) fn authorizer(&mut self, _host: &dyn Host, _at: usize) -> Flow {
        Flow::Next
    }

    #[cfg(test)]
    pub(super) fn authorizer(&mut self, host: &dyn Host, at: usize) -> Flow {
        let Some(step) = &self.authorizer else {
            return Flow::Next;
        };
        let call = step.call.clone();
        self.call = Some(Pending {
            at,
            deadline: host.now() + call.timeout,
            call,
        });
        Flow::Call
    }

    #[cfg(not(test))]
    pub(super) fn judge(&self, _at: usize, _answer: &CallAnswer) -> Result<(), GatewayError> {
        Ok(())
    }

    #[cfg(test)]
    pub(super) fn judge(&self, _at: usize, answer: &CallAnswer) -> Result<(), GatewayError> {
        self.authorizer
            .as_ref()
            .map_or(Ok(()), |s| (s.judge)(answer))
    }

    /// Checks the caller's credentials (and an app's authorization, and the
    /// account policies). A signature that covers a body still to come holds
    /// the request: it is dispatched now, for the caller it claims to be
    /// (request headers can change only now), and a false claim is refused
    /// before anything reaches the backend.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn authenticate<'p>(
        &mut self,
        host: &dyn Host,
        gw: &Gateway,
        path: &'p str,
        routed: &mut Option<Routed<'p>>,
        body: Option<&[u8]>,
        end: bool,
    ) -> Flow {
        let h = self.api_handle();
        let api = gw.view(h);
        if api.api.auth == AuthKind::None {
            return Flow::Next;
        }
        if body.is_none() && !end && app_auth::signature_needs_body(&self.head) {
            self.auth_pending = true;
            match api.api.auth {
                AuthKind::Iam => self.account = gw.accounts.claimed_account(&self.head),
                _ => self.app = gw.apps.claimed(&self.head),
            }
            if let Err(detail) = self.dispatch(gw, path, routed) {
                self.bad_parameters = Some(detail);
            }
            return Flow::Hold;
        }
        // A held request was rewritten for the caller it claimed (system
        // parameters such as appId name it): only that caller may send it.
        let claimed = body.map(|_| (self.app, self.account));
        let body = body.unwrap_or(&[]);
        let now_ms = now_ms(host);
        let scheme = self
            .metered()
            .then(|| Scheme::of(gw.view(h).api.auth, &self.head));
        let verdict = match gw.view(h).api.auth {
            AuthKind::Iam => gw
                .accounts
                .authenticate_account(&self.head, body, now_ms)
                .map(|account| self.account = Some(account)),
            _ => self.authenticate_app(host, gw, h, body, now_ms),
        };
        let mismatch = claimed.is_some_and(|c| c != (self.app, self.account));
        if let Some(scheme) = scheme {
            let outcome = match &verdict {
                Ok(()) if mismatch => AuthOutcome::Failure,
                Ok(()) => AuthOutcome::Success,
                Err(f) if f.detail == NONCE_USED => AuthOutcome::Replayed,
                Err(f) => AuthOutcome::of_error(&f.error),
            };
            self.auth = Some((scheme, outcome));
        }
        match verdict {
            Ok(()) if mismatch => {
                let err = match gw.view(h).api.auth {
                    AuthKind::Iam => GatewayError::IAM_AUTH_FAILURE,
                    _ => GatewayError::AUTH_FAILURE,
                };
                let detail = "the signature is not the claimed caller's";
                self.refuse_detail(host, api.scope(), Some(h), err, detail)
            }
            Ok(()) => Flow::Next,
            Err(f) => self.refuse_detail(host, api.scope(), Some(h), f.error, &f.detail),
        }
    }

    pub(super) fn authenticate_app(
        &mut self,
        host: &dyn Host,
        gw: &Gateway,
        h: ApiHandle,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), AuthFailure> {
        // Envoy sets x-forwarded-proto from the real connection (every
        // client is external), so a caller cannot claim HTTPS.
        let api = gw.view(h);
        let policy = AuthPolicy {
            allow_hmac_sha1: api.api.allow_hmac_sha1,
            app_code: api.api.app_code,
            https: self.head.get("x-forwarded-proto") == Some("https"),
        };
        let caller = gw.apps.authenticate(&self.head, body, now_ms, policy)?;
        self.app = Some(caller.app);
        api.authorize(caller.app).map_err(|error| AuthFailure {
            error,
            detail: String::new(),
        })?;
        let Some(key) = caller.nonce_key else {
            return Ok(());
        };
        match nonce::check_and_record(host.store(), &key, now_ms, MAX_SKEW_MS) {
            Verdict::Fresh => Ok(()),
            Verdict::Replayed => Err(AuthFailure {
                error: GatewayError::AUTH_FAILURE,
                detail: NONCE_USED.into(),
            }),
            Verdict::Busy => Err(AuthFailure {
                error: GatewayError::INTERNAL,
                detail: "nonce store busy".into(),
            }),
            Verdict::Full => {
                warn_full(host, now_ms);
                Err(AuthFailure {
                    error: GatewayError::THROTTLED,
                    detail: "nonce store full".into(),
                })
            }
        }
    }

    /// The account policies bound to the API (an unauthenticated caller has
    /// no account: an allow-list refuses it).
    pub(super) fn account_acl(&mut self, host: &dyn Host, gw: &Gateway) -> Flow {
        let h = self.api_handle();
        let api = gw.view(h);
        let account = self.account.map(|a| gw.accounts.get(a).name.as_str());
        match api.check_acls(false, None, account) {
            Some(err) => self.refuse_flow(host, api.scope(), Some(h), err),
            None => Flow::Next,
        }
    }

    /// Counts the request against the API's rate limits; THROTTLED when it
    /// does not fit.
    pub(super) fn throttle(&mut self, host: &dyn Host, gw: &Gateway) -> Flow {
        let h = self.api_handle();
        let api = gw.view(h);
        if api.throttle_needs_ip() {
            self.source_ip(host);
        }
        let app = self.app.map(|a| gw.apps.get(a).name.as_str());
        let account = self.account.map(|a| gw.accounts.get(a).name.as_str());
        let ip = api
            .throttle_needs_ip()
            .then_some(self.client_ip.as_deref())
            .flatten();
        let counters = api.counters(app, account, ip);
        let now = now_ms(host);
        let (admitted, tallies) = match throttle::admit(host.store(), now, &counters) {
            Decision::Admit(t) => (true, t),
            Decision::Throttle(t) => {
                // The last counter is the one the request did not fit under.
                self.throttled = t.last().map(|t| t.dimension);
                (false, t)
            }
            Decision::Busy => (false, Vec::new()),
            Decision::Full => {
                warn_full(host, now);
                (false, Vec::new())
            }
        };
        if self.head.debug() {
            self.rate_tallies = tallies;
        }
        if admitted {
            Flow::Next
        } else {
            self.refuse_flow(host, api.scope(), Some(h), GatewayError::THROTTLED)
        }
    }

    /// Checks the parameters and builds the backend request; a held request
    /// was dispatched at its headers, and its parameter error waited for
    /// authentication.
    pub(super) fn parameters<'p>(
        &mut self,
        host: &dyn Host,
        gw: &Gateway,
        path: &'p str,
        routed: &mut Option<Routed<'p>>,
    ) -> Flow {
        let h = self.api_handle();
        let error = if self.dispatched {
            self.bad_parameters.take()
        } else {
            self.dispatch(gw, path, routed).err()
        };
        match error {
            Some(detail) => self.refuse_detail(
                host,
                gw.view(h).scope(),
                Some(h),
                GatewayError::BAD_PARAMETERS,
                &detail,
            ),
            None => Flow::Next,
        }
    }

    /// Checks the parameters, picks the backend and builds the request it
    /// gets. The request goes on only if nothing refuses it later, so a
    /// refused request never reaches the backend, rewritten or not.
    pub(super) fn dispatch<'p>(
        &mut self,
        gw: &Gateway,
        path: &'p str,
        routed: &mut Option<Routed<'p>>,
    ) -> Result<(), String> {
        self.dispatched = true;
        if routed.is_none() {
            // Resumed after a call-out: match again (the same answer).
            *routed = self.route(gw, path).ok();
        }
        let Some(routed) = routed.as_ref() else {
            return Err(String::new());
        };
        let caller = Caller {
            source_ip: self.client_ip.as_deref().unwrap_or(""),
            app: self.app,
            account: self.account,
        };
        let d = gw
            .dispatch(routed, &self.head, &caller)
            .map_err(|invalid| invalid.0)?;
        if let (Backend::Http(_), Some(mut rw)) = (d.backend, d.rewrite) {
            // An AppCode in the query stays at the gateway.
            if gw.view(d.handle).api.auth == AuthKind::App {
                if let Cow::Owned(p) = app_auth::strip_app_code_param(&rw.path) {
                    rw.path = p;
                }
            }
            self.rewrite = Some(rw);
        }
        self.state = State::Forwarded(d.handle);
        self.api = Some(d.handle);
        Ok(())
    }

    /// Answers a mock, or lets the request go on to its backend.
    pub(super) fn answer(&mut self, host: &dyn Host, gw: &Gateway, end: bool) -> Flow {
        let h = self.api_handle();
        match gw.view(h).backend() {
            Backend::Mock(_) => {
                self.mock = Some(h);
                self.finish_reply(host);
                Flow::Replied
            }
            Backend::Http(_) => {
                // The backend's latency runs from the end of the request.
                if end {
                    self.upstream_started = self.now_if_timed(host);
                }
                Flow::Forward
            }
        }
    }
}

/// The detail of a replayed nonce's refusal (Alibaba's wording).
const NONCE_USED: &str = "Nonce Used";

/// A full counter or nonce slot refused a request: say so, rate-limited.
fn warn_full(host: &dyn Host, now_ms: u64) {
    if let Some(message) = slot_table::full_warning(now_ms) {
        host.warn(&message);
    }
}
