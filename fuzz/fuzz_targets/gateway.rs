//! A whole request through the core, in the adapter's order: route (host,
//! stage, method, path), IP policies, authentication and authorization,
//! account policies, rate counters, dispatch (parameters, policy backends,
//! mapping), header rewrite, and the error reply rendered from the
//! response set. The plan is the fixed one in fuzz/plan.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon_filter::aliyun_sign::MAX_SKEW_MS;
use pylon_filter::app_auth::{strip_app_code_param, AuthPolicy};
use pylon_filter::gateway::{Backend, Caller, ErrorScope, Gateway, Request};
use pylon_filter::nonce;
use pylon_filter::plan::{AuthKind, RELEASE};
use pylon_filter::request_head::RequestHead;
use pylon_filter::response::{Context, GatewayError};
use pylon_filter::throttle;
use pylon_fuzz::{gateway, FuzzRequest, Memory};

/// Renders an error the way the adapter does, and checks the reply.
fn reply(gw: &Gateway, head: &RequestHead, scope: ErrorScope, err: &GatewayError, detail: &str) {
    let ctx = Context {
        error_detail: detail,
        request_id: head.request_id(),
        source_ip: "10.0.0.1",
        req_path: head.path().split('?').next().unwrap_or(""),
        req_method: head.method(),
        stage: head.stage().unwrap_or(RELEASE),
        ..Default::default()
    };
    let r = gw.render_error(scope, err, &ctx);
    assert!((400..=599).contains(&r.status), "{r:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some(req) = FuzzRequest::parse(data) else {
        return;
    };
    let gw = gateway();
    let head = req.head();
    let path = head.path().to_owned();
    let stage = head
        .stage()
        .or_else(|| head.get("x-ca-stage"))
        .unwrap_or(RELEASE);
    let r = Request {
        method: head.method(),
        host: head.authority(),
        path: &path,
        stage,
    };
    let routed = match gw.route(&r) {
        Ok(routed) => routed,
        Err((scope, err)) => return reply(gw, &head, scope, &err, ""),
    };
    let handle = routed.handle;
    let scope = gw.view(handle).scope();
    let _ = gw.view(handle).stage();
    let ip = req.source_ip.parse().ok();
    if gw.view(handle).has_ip_acls() {
        if let Some(err) = gw.view(handle).check_acls(true, ip, None) {
            return reply(gw, &head, scope, &err, "");
        }
    }
    let store = Memory::keyed();
    let (mut app, mut account) = (None, None);
    match gw.view(handle).api.auth {
        AuthKind::None => {}
        AuthKind::Iam => match gw
            .accounts
            .authenticate_account(&head, &req.body, req.now_ms)
        {
            Ok(a) => account = Some(a),
            Err(f) => return reply(gw, &head, scope, &f.error, &f.detail),
        },
        AuthKind::App => {
            let policy = AuthPolicy {
                allow_hmac_sha1: gw.view(handle).api.allow_hmac_sha1,
                app_code: gw.view(handle).api.app_code,
                https: head.get("x-forwarded-proto") == Some("https"),
            };
            match gw.apps.authenticate(&head, &req.body, req.now_ms, policy) {
                Ok(caller) => {
                    if let Err(err) = gw.view(handle).authorize(caller.app) {
                        return reply(gw, &head, scope, &err, "");
                    }
                    if let Some(key) = caller.nonce_key {
                        let first = nonce::check_and_record(&store, &key, req.now_ms, MAX_SKEW_MS);
                        assert_eq!(first, nonce::Verdict::Fresh);
                        let again = nonce::check_and_record(&store, &key, req.now_ms, MAX_SKEW_MS);
                        assert_eq!(again, nonce::Verdict::Replayed);
                    }
                    app = Some(caller.app);
                }
                Err(f) => return reply(gw, &head, scope, &f.error, &f.detail),
            }
        }
    }
    let account_name = account.map(|a| gw.accounts.get(a).name.as_str());
    if let Some(err) = gw.view(handle).check_acls(false, None, account_name) {
        return reply(gw, &head, scope, &err, "");
    }
    let app_name = app.map(|a| gw.apps.get(a).name.as_str());
    let ip_text = gw
        .view(handle)
        .throttle_needs_ip()
        .then_some(req.source_ip.as_str());
    let counters = gw.view(handle).counters(app_name, account_name, ip_text);
    if let throttle::Decision::Throttle(_) = throttle::admit(&store, req.now_ms, &counters) {
        return reply(gw, &head, scope, &GatewayError::THROTTLED, "");
    }
    let caller = Caller {
        source_ip: &req.source_ip,
        app,
        account,
    };
    let d = match gw.dispatch(&routed, &head, &caller) {
        Ok(d) => d,
        Err(invalid) => return reply(gw, &head, scope, &GatewayError::BAD_PARAMETERS, &invalid.0),
    };
    match (d.backend, &d.rewrite) {
        (Backend::Http(target), Some(rw)) => {
            assert!(rw.path.starts_with('/'), "backend path {:?}", rw.path);
            let path = strip_app_code_param(&rw.path);
            let mut changes: Vec<(&str, Option<&str>)> = vec![
                (":path", Some(&path)),
                ("x-pylon-cluster", Some(&target.cluster)),
            ];
            changes.extend(rw.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())));
            let _ = head.rewritten(changes);
        }
        (Backend::Mock(m), None) => assert!(m.status >= 100),
        (b, rw) => panic!("backend {b:?} with rewrite {rw:?}"),
    }
});
