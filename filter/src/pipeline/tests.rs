//! The pipeline driven natively: a fake host, a small plan, and every way
//! a request can go through the stages or end.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::*;
use crate::cors;
use crate::huawei_sign::{self, Plus, Signed};
use crate::plan::{ApiPlan, GroupPlan, Plan, PLAN_VERSION, RELEASE};
use crate::response::{default_set, ErrorType, DEFAULT_SET};
use crate::shared_store::tests::Memory;

const NOW: u64 = 1_704_067_200; // 20240101T000000Z
const DATE: &str = "20240101T000000Z";
const HOST: &str = "api.example.com";

/// Envoy stand-in: a settable clock and client address, a body buffer,
/// response headers, shared data; it counts the dear calls.
struct Fake {
    now: Cell<SystemTime>,
    address: String,
    address_reads: Cell<usize>,
    body: Vec<u8>,
    body_reads: Cell<usize>,
    response: Vec<(String, String)>,
    details: String,
    warnings: RefCell<Vec<String>>,
    store: Memory,
}

/// Shared data as `on_configure` leaves it: keyed, counter slots created
/// (no test signs with a nonce).
fn prepared() -> Memory {
    let m = Memory::default();
    crate::slot_table::tests::keyed(&m);
    crate::throttle::prepare(&m, &[]);
    m
}

impl Fake {
    fn new() -> Fake {
        Fake {
            now: Cell::new(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)),
            address: "192.0.2.7:40000".into(),
            address_reads: Cell::new(0),
            body: Vec::new(),
            body_reads: Cell::new(0),
            response: Vec::new(),
            details: String::new(),
            warnings: RefCell::default(),
            store: prepared(),
        }
    }

    fn at(address: &str) -> Fake {
        Fake {
            address: address.into(),
            ..Fake::new()
        }
    }

    /// A host whose request body buffer holds `body`.
    fn with_body(body: &[u8]) -> Fake {
        Fake {
            body: body.to_vec(),
            ..Fake::new()
        }
    }

    /// A host whose response came with `status`, Envoy's response details
    /// saying by whom.
    fn answered(status: &str, details: &str) -> Fake {
        Fake {
            response: vec![(":status".into(), status.into())],
            details: details.into(),
            ..Fake::new()
        }
    }
}

impl Host for Fake {
    fn now(&self) -> SystemTime {
        self.now.get()
    }
    fn client_address(&self) -> String {
        self.address_reads.set(self.address_reads.get() + 1);
        self.address.clone()
    }
    fn request_body(&self, len: usize) -> Vec<u8> {
        self.body_reads.set(self.body_reads.get() + 1);
        self.body[..len].to_vec()
    }
    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.response
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_bytes().to_vec())
    }
    fn response_details(&self) -> String {
        self.details.clone()
    }
    fn warn(&self, message: &str) {
        self.warnings.borrow_mut().push(message.to_string());
    }
    fn store(&self) -> &dyn SharedStore {
        &self.store
    }
}

fn http(path: &str) -> serde_json::Value {
    json!({"http": {"cluster": "c1", "path": path, "method": null, "timeout_ms": 5000}})
}

fn api(name: &str, method: &str, path: &str, extra: serde_json::Value) -> ApiPlan {
    let mut v = json!({
        "id": format!("id-{name}"), "name": name, "method": method, "path": path,
        "match_mode": "exact", "response": DEFAULT_SET,
        "stages": {RELEASE: http(&format!("/b/{name}"))},
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn gateway() -> Rc<Gateway> {
    Rc::new(Gateway::from_plan(&plan()).unwrap())
}

fn plan() -> Plan {
    let release = |x: serde_json::Value| json!({ RELEASE: x });
    let n_param = json!([{"name": "n", "in": "query", "type": "number", "required": true}]);
    let apps = json!({ RELEASE: ["mobile"] });
    let apis = vec![
        api("open", "GET", "/open", json!({})),
        api(
            "mock",
            "GET",
            "/mock",
            json!({"stages": release(json!({"mock": {"status": 200, "headers": {}, "body": "hi"}})),
                   "params": n_param}),
        ),
        api(
            "signed",
            "POST",
            "/signed",
            json!({"auth": "app", "authorized": apps}),
        ),
        api(
            "signed-params",
            "POST",
            "/signed-params",
            json!({"auth": "app", "authorized": apps, "params": n_param}),
        ),
        api(
            "limited",
            "POST",
            "/limited",
            json!({"auth": "app", "authorized": apps, "params": n_param,
                   "throttles": release(json!("one"))}),
        ),
        api(
            "fenced",
            "POST",
            "/fenced",
            json!({"auth": "app", "authorized": apps, "acls": release(json!(["no-test-net"]))}),
        ),
        api(
            "tenants",
            "POST",
            "/tenants",
            json!({"auth": "iam", "acls": release(json!(["no-tenant"]))}),
        ),
        api("cors", "GET", "/cors", json!({"cors": true})),
        api("secure", "GET", "/secure", json!({"protocol": "HTTPS"})),
        api(
            "ws",
            "POST",
            "/ws",
            json!({"auth": "app", "authorized": apps, "websocket": true}),
        ),
        api(
            "headers",
            "GET",
            "/headers",
            json!({"stages": release(json!({"http": {
            "cluster": "c1", "path": "/b/headers", "method": null, "timeout_ms": 5000,
            "params": [
                {"name": "x-a", "in": "header", "value": {"constant": "1"}},
                {"name": "x-b", "in": "header", "value": {"constant": "2"}},
            ]}}))}),
        ),
    ];
    Plan {
        version: PLAN_VERSION,
        max_body_bytes: 100,
        default_limit: 200,
        metrics: true,
        access_log: true,
        route_timeout_ms: None,
        stages: vec![RELEASE.into()],
        groups: vec![GroupPlan {
            name: "g".into(),
            domains: vec![HOST.into()],
            default: true,
            responses: [(DEFAULT_SET.to_string(), default_set())].into(),
            apis,
        }],
        apps: serde_json::from_value(json!([
            {"id": "app-id", "name": "mobile", "key": "key1", "secret": "s3cret"}
        ]))
        .unwrap(),
        throttles: serde_json::from_value(json!([
            {"name": "one", "window_ms": 60000, "label": "1 minute", "api_limit": 1}
        ]))
        .unwrap(),
        acls: serde_json::from_value(json!([
            {"name": "no-test-net", "kind": "ip", "action": "deny", "values": ["198.51.100.0/24"]},
            {"name": "no-tenant", "kind": "account", "action": "deny", "values": ["banned"]},
        ]))
        .unwrap(),
        accounts: serde_json::from_value(json!([
            {"id": "t1", "name": "tenant", "ak": "ak-ok", "sk": "sk-ok"},
            {"id": "t2", "name": "banned", "ak": "ak-banned", "sk": "sk-banned"},
        ]))
        .unwrap(),
    }
}

fn head(method: &str, path: &str, extra: &[(&str, &str)]) -> RequestHead {
    let mut all = vec![
        (":method", method),
        (":path", path),
        (":authority", HOST),
        ("x-request-id", "rid-1"),
    ];
    all.extend_from_slice(extra);
    RequestHead::from_pairs(&all)
}

/// A Huawei `SDK-HMAC-SHA256` signed request, as the vendor SDK signs it.
fn signed(path: &str, body: &[u8], key: &str, secret: &str, extra: &[(&str, &str)]) -> RequestHead {
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let hash = huawei_sign::sha256_hex(body);
    let names = ["host", "x-sdk-date"];
    let req = Signed {
        method: "POST",
        path: p,
        query: q,
        signed_headers: &names,
        payload_hash: &hash,
    };
    let lookup = |n: &str| vec![if n == "host" { HOST } else { DATE }];
    let canonical = huawei_sign::canonical_request(&req, lookup, Plus::Literal);
    let sig = huawei_sign::sign(
        secret.as_bytes(),
        &huawei_sign::string_to_sign(DATE, &canonical),
    );
    let auth =
        format!("SDK-HMAC-SHA256 Access={key}, SignedHeaders=host;x-sdk-date, Signature={sig}");
    let mut all = vec![("x-sdk-date", DATE), ("authorization", auth.as_str())];
    all.extend_from_slice(extra);
    head("POST", path, &all)
}

fn app_signed(path: &str, body: &[u8]) -> RequestHead {
    signed(path, body, "key1", "s3cret", &[])
}

fn headers(p: &mut Pipeline, host: &Fake, head: RequestHead, end: bool) -> Outcome<'static> {
    own(p.handle(
        host,
        Event::RequestHeaders {
            head,
            end_of_stream: end,
        },
    ))
}

fn event(p: &mut Pipeline, host: &Fake, e: Event) -> Outcome<'static> {
    own(p.handle(host, e))
}

/// Sends `head` as the headers of a new request to a new pipeline on `plan()`.
fn new_request(host: &Fake, head: RequestHead, end: bool) -> Outcome<'static> {
    headers(&mut pipeline(), host, head, end)
}

/// Sends the response headers to `p`.
fn response_headers(p: &mut Pipeline, host: &Fake, end: bool) -> Outcome<'static> {
    event(p, host, Event::ResponseHeaders { end_of_stream: end })
}

/// `buffered` bytes of request body are in, the last ones if `end_of_stream`.
fn request_body(buffered: usize, end_of_stream: bool) -> Event {
    Event::RequestBody {
        buffered,
        end_of_stream,
    }
}

/// `size` bytes of response body are in, the last ones if `end_of_stream`.
fn response_body(size: usize, end_of_stream: bool) -> Event {
    Event::ResponseBody {
        size,
        end_of_stream,
    }
}

/// The call-out answered with `status` and no body.
fn call_answered(status: u16) -> Event {
    Event::CallAnswer(CallAnswer::Response {
        status,
        body: Vec::new(),
    })
}

/// Copies an outcome out of the pipeline's borrow, so tests can hold it
/// while they send the next event.
fn own(o: Outcome<'_>) -> Outcome<'static> {
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let leak_bytes = |b: &[u8]| -> &'static [u8] { Box::leak(b.to_vec().into_boxed_slice()) };
    match o {
        Outcome::Continue(ops) => Outcome::Continue(
            ops.into_iter()
                .map(|op| match op {
                    HeaderOp::Set(k, v) => {
                        HeaderOp::Set(leak(k), v.map(|v| Cow::Owned(v.into_owned())))
                    }
                    HeaderOp::Replace(all) => HeaderOp::Replace(
                        all.into_iter()
                            .map(|(k, v)| (leak(k), leak_bytes(v)))
                            .collect(),
                    ),
                })
                .collect(),
        ),
        Outcome::WaitForBody => Outcome::WaitForBody,
        Outcome::Reply(r) => Outcome::Reply(LocalReply {
            status: r.status,
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (leak(k), leak(v)))
                .collect(),
            body: leak_bytes(r.body),
        }),
        Outcome::CallOut(c) => Outcome::CallOut(Box::leak(Box::new(c.clone()))),
        Outcome::ReplaceBody { size, with } => Outcome::ReplaceBody {
            size,
            with: leak_bytes(with),
        },
    }
}

/// `(status, error code)` of a reply.
fn refused(o: &Outcome) -> (u32, String) {
    let Outcome::Reply(r) = o else {
        panic!("expected a reply, got {o:?}");
    };
    let body: serde_json::Value = serde_json::from_slice(r.body).unwrap_or(json!({}));
    (
        r.status,
        body["error_code"].as_str().unwrap_or("").to_string(),
    )
}

fn reply_header<'a>(o: &'a Outcome, name: &str) -> Option<&'a str> {
    match o {
        Outcome::Reply(r) => r.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v),
        _ => None,
    }
}

fn set(name: &'static str, value: &str) -> HeaderOp<'static> {
    HeaderOp::Set(name, Some(Cow::Owned(value.to_string())))
}

fn unset(name: &'static str) -> HeaderOp<'static> {
    HeaderOp::Set(name, None)
}

fn forwarded_to(path: &str) -> Vec<HeaderOp<'static>> {
    vec![
        set(":path", path),
        set(CLUSTER_HEADER, "c1"),
        set(TIMEOUT_HEADER, "5000"),
    ]
}

fn stripped() -> Vec<HeaderOp<'static>> {
    CREDENTIALS.iter().map(|c| unset(c)).collect()
}

/// An authenticated request's changes: credentials removed, then forwarded
/// to `path`.
fn stripped_then_forwarded_to(path: &str) -> Vec<HeaderOp<'static>> {
    let mut want = stripped();
    want.extend(forwarded_to(path));
    want
}

/// The header changes of a `Continue`; any other outcome fails the test.
fn continued<'a>(o: &'a Outcome<'static>) -> &'a [HeaderOp<'static>] {
    let Outcome::Continue(ops) = o else {
        panic!("{o:?}")
    };
    ops
}

fn pipeline() -> Pipeline {
    Pipeline::new(Some(gateway()))
}

// Request protocols and WebSocket (protocol.rs).

#[test]
fn an_https_api_refuses_plain_http_with_the_protocol_error() {
    let host = Fake::new();
    let out = new_request(&host, head("GET", "/secure", &[]), true);
    assert_eq!(refused(&out), (400, "APIG.0204".into()));
    let tls = head("GET", "/secure", &[("x-forwarded-proto", "https")]);
    let out = new_request(&host, tls, true);
    assert_eq!(out, Outcome::Continue(forwarded_to("/b/secure")));
}

#[test]
fn an_upgrade_to_an_api_without_websocket_is_refused() {
    let host = Fake::new();
    let up = [("connection", "Upgrade"), ("upgrade", "websocket")];
    let out = new_request(&host, head("GET", "/open", &up), false);
    assert_eq!(refused(&out), (403, "APIG.0201".into()));
}

#[test]
fn a_signed_websocket_upgrade_is_verified_at_its_headers() {
    // The frames after an upgrade are no body: the signature is checked
    // now, never held until a body end that does not come.
    let host = Fake::new();
    let up = [("connection", "Upgrade"), ("upgrade", "websocket")];
    let good = signed("/ws", b"", "key1", "s3cret", &up);
    let out = new_request(&host, good, false);
    assert_eq!(out, Outcome::Continue(stripped_then_forwarded_to("/b/ws")));
    let bad = signed("/ws", b"", "key1", "wrong", &up);
    let out = new_request(&host, bad, false);
    assert_eq!(refused(&out), (401, "APIG.0303".into()));
}

// Each way a request ends.

#[test]
fn headers_that_end_the_request_are_forwarded_with_the_backend_changes() {
    let host = Fake::new();
    let out = new_request(&host, head("GET", "/open", &[]), true);
    assert_eq!(out, Outcome::Continue(forwarded_to("/b/open")));
    // Nothing needed the client address: the dear property was not read.
    assert_eq!(host.address_reads.get(), 0);
}

#[test]
fn a_client_cluster_header_goes_before_anything_else() {
    let host = Fake::new();
    let h = head("GET", "/open", &[(CLUSTER_HEADER, "admin")]);
    let out = new_request(&host, h, true);
    let mut want = vec![unset(CLUSTER_HEADER)];
    want.extend(forwarded_to("/b/open"));
    assert_eq!(out, Outcome::Continue(want));
}

#[test]
fn a_body_nobody_signed_streams_on_without_being_held() {
    let host = Fake::with_body(b"data");
    let mut p = pipeline();
    let out = headers(&mut p, &host, head("GET", "/open", &[]), false);
    assert_eq!(out, Outcome::Continue(forwarded_to("/b/open")));
    for end_of_stream in [false, true] {
        let chunk = request_body(4, end_of_stream);
        assert_eq!(event(&mut p, &host, chunk), Outcome::Continue(vec![]));
    }
    assert_eq!(
        event(&mut p, &host, Event::RequestTrailers),
        Outcome::Continue(vec![])
    );
    assert_eq!(host.body_reads.get(), 0);
}

#[test]
fn a_mock_is_answered_at_the_headers() {
    let host = Fake::new();
    let out = new_request(&host, head("GET", "/mock?n=1", &[]), true);
    let Outcome::Reply(r) = &out else {
        panic!("{out:?}")
    };
    assert_eq!((r.status, r.body), (200, &b"hi"[..]));
    assert_eq!(reply_header(&out, "x-request-id"), Some("rid-1"));
}

#[test]
fn a_signed_body_is_held_until_it_ends_and_read_once() {
    let host = Fake::with_body(b"pay 1");
    let mut p = pipeline();
    let out = headers(&mut p, &host, app_signed("/signed", b"pay 1"), false);
    // Credentials stay at the gateway; the request is already rewritten for
    // the caller it claims to be.
    assert_eq!(
        out,
        Outcome::Continue(stripped_then_forwarded_to("/b/signed"))
    );
    let chunk = request_body(3, false);
    assert_eq!(event(&mut p, &host, chunk), Outcome::WaitForBody);
    assert_eq!(host.body_reads.get(), 0);
    let end = request_body(5, true);
    assert_eq!(event(&mut p, &host, end), Outcome::Continue(vec![]));
    assert_eq!(host.body_reads.get(), 1);
}

#[test]
fn a_held_request_failing_authentication_is_refused_at_its_end() {
    let host = Fake::with_body(b"pay 2");
    let mut p = pipeline();
    // Signed for another body.
    headers(&mut p, &host, app_signed("/signed", b"pay 1"), false);
    let end = request_body(5, true);
    let out = event(&mut p, &host, end);
    assert_eq!(refused(&out), (401, "APIG.0303".into()));
}

#[test]
fn trailers_after_a_body_end_a_held_request() {
    let host = Fake::with_body(b"pay 2");
    let mut p = pipeline();
    headers(&mut p, &host, app_signed("/signed", b"pay 1"), false);
    let chunk = request_body(5, false);
    assert_eq!(event(&mut p, &host, chunk), Outcome::WaitForBody);
    let out = event(&mut p, &host, Event::RequestTrailers);
    assert_eq!(refused(&out), (401, "APIG.0303".into()));

    let host = Fake::with_body(b"pay 1");
    let mut p = pipeline();
    headers(&mut p, &host, app_signed("/signed", b"pay 1"), false);
    let chunk = request_body(5, false);
    event(&mut p, &host, chunk);
    assert_eq!(
        event(&mut p, &host, Event::RequestTrailers),
        Outcome::Continue(vec![])
    );
}

#[test]
fn trailers_without_a_body_meet_authentication_over_the_empty_body() {
    let host = Fake::new();
    let mut p = pipeline();
    headers(&mut p, &host, app_signed("/signed", b"claimed"), false);
    let out = event(&mut p, &host, Event::RequestTrailers);
    assert_eq!(refused(&out), (401, "APIG.0303".into()));
    assert_eq!(host.body_reads.get(), 0);

    let mut p = pipeline();
    headers(&mut p, &host, app_signed("/signed", b""), false);
    assert_eq!(
        event(&mut p, &host, Event::RequestTrailers),
        Outcome::Continue(vec![])
    );
}

#[test]
fn a_held_request_is_throttled_after_its_body() {
    let host = Fake::with_body(b"x");
    let end = || request_body(1, true);
    let mut first = pipeline();
    headers(&mut first, &host, app_signed("/limited?n=1", b"x"), false);
    assert_eq!(event(&mut first, &host, end()), Outcome::Continue(vec![]));
    let mut second = pipeline();
    let out = headers(&mut second, &host, app_signed("/limited?n=1", b"x"), false);
    assert!(matches!(out, Outcome::Continue(_)), "{out:?}");
    assert_eq!(
        refused(&event(&mut second, &host, end())),
        (429, "APIG.0308".into())
    );
}

#[test]
fn a_held_parameter_error_waits_for_authentication() {
    let host = Fake::with_body(b"x");
    let end = || request_body(1, true);
    // Bad parameters and a false signature: the caller only learns that it
    // is not authenticated.
    let mut p = pipeline();
    let out = headers(
        &mut p,
        &host,
        app_signed("/signed-params?n=x", b"other"),
        false,
    );
    // Held: credentials go, but nothing is routed to a backend.
    assert_eq!(out, Outcome::Continue(stripped()));
    assert_eq!(
        refused(&event(&mut p, &host, end())),
        (401, "APIG.0303".into())
    );
    // Authenticated: now the parameter error is answered.
    let mut p = pipeline();
    headers(&mut p, &host, app_signed("/signed-params?n=x", b"x"), false);
    let out = event(&mut p, &host, end());
    assert_eq!(refused(&out), (400, "APIG.0201".into()));
    let Outcome::Reply(r) = &out else {
        unreachable!()
    };
    assert!(String::from_utf8_lossy(r.body).contains("Invalid request parameters"));
}

// Each stage-order rule.

#[test]
fn size_limits_come_before_everything_else() {
    let host = Fake::new();
    let long = format!("/{}", "a".repeat(crate::limits::MAX_URI_BYTES));
    let via = "pylon, ".repeat(20);
    let h = head("GET", &long, &[("via", &via)]);
    assert_eq!(
        refused(&headers(&mut Pipeline::new(None), &host, h, true)).0,
        414
    );
}

#[test]
fn the_loop_guard_comes_before_routing() {
    let host = Fake::new();
    let via = "pylon, pylon, pylon, pylon, pylon, pylon, pylon, pylon, pylon, pylon, pylon";
    let out = new_request(&host, head("GET", "/nowhere", &[("via", via)]), true);
    assert_eq!(refused(&out), (500, "APIG.0612".into()));
}

#[test]
fn a_bad_path_is_refused_before_routing() {
    let host = Fake::new();
    let out = new_request(&host, head("GET", "/nowhere%00", &[]), true);
    assert_eq!(refused(&out), (400, "APIG.0201".into()));
}

#[test]
fn routing_comes_before_the_body_limit() {
    let host = Fake::new();
    let big = [("content-length", "1000")];
    let out = new_request(&host, head("GET", "/nowhere", &big), false);
    assert_eq!(refused(&out), (404, "APIG.0101".into()));
    let out = new_request(&host, head("GET", "/open", &big), false);
    assert_eq!(refused(&out).0, 413);
}

#[test]
fn the_body_limit_comes_before_the_ip_policy() {
    let host = Fake::at("198.51.100.9:1");
    let h = signed(
        "/fenced",
        b"",
        "key1",
        "s3cret",
        &[("content-length", "1000")],
    );
    assert_eq!(refused(&new_request(&host, h, false)).0, 413);
}

#[test]
fn the_ip_policy_comes_before_authentication() {
    let host = Fake::at("198.51.100.9:1");
    let h = head("POST", "/fenced", &[]);
    let out = new_request(&host, h, true);
    assert_eq!(refused(&out), (403, "APIG.0402".into()));
    // One property read serves the policy and the error's `$context`.
    assert_eq!(host.address_reads.get(), 1);
    // Another address passes the policy and meets authentication.
    let host = Fake::at("192.0.2.1:1");
    let out = new_request(&host, head("POST", "/fenced", &[]), true);
    assert_eq!(refused(&out).0, 401);
    let out = new_request(&host, app_signed("/fenced", b""), true);
    assert_eq!(
        out,
        Outcome::Continue(stripped_then_forwarded_to("/b/fenced"))
    );
}

#[test]
fn authentication_comes_before_the_account_policy() {
    let host = Fake::new();
    let forged = signed("/tenants", b"", "ak-banned", "wrong", &[]);
    let out = new_request(&host, forged, true);
    assert_eq!(refused(&out), (401, "APIG.0301".into()));
    let banned = signed("/tenants", b"", "ak-banned", "sk-banned", &[]);
    let out = new_request(&host, banned, true);
    assert_eq!(refused(&out), (403, "APIG.0302".into()));
    let tenant = signed("/tenants", b"", "ak-ok", "sk-ok", &[]);
    let out = new_request(&host, tenant, true);
    assert!(matches!(out, Outcome::Continue(_)), "{out:?}");
}

#[test]
fn authentication_comes_before_throttling() {
    let host = Fake::new();
    // Refused callers do not use up the limit of one.
    for _ in 0..3 {
        let forged = signed("/limited?n=1", b"", "key1", "wrong", &[]);
        assert_eq!(refused(&new_request(&host, forged, true)).0, 401);
    }
    let out = new_request(&host, app_signed("/limited?n=1", b""), true);
    assert!(matches!(out, Outcome::Continue(_)), "{out:?}");
}

#[test]
fn throttling_comes_before_the_parameters() {
    let host = Fake::new();
    let out = new_request(&host, app_signed("/limited?n=1", b""), true);
    assert!(matches!(out, Outcome::Continue(_)), "{out:?}");
    let out = new_request(&host, app_signed("/limited?n=x", b""), true);
    assert_eq!(refused(&out), (429, "APIG.0308".into()));
}

#[test]
fn the_parameters_come_before_a_mock_answer() {
    let host = Fake::new();
    let out = new_request(&host, head("GET", "/mock?n=x", &[]), true);
    assert_eq!(refused(&out), (400, "APIG.0201".into()));
}

#[test]
fn a_store_that_keeps_conflicting_refuses_rather_than_miscounts() {
    // A few compare-and-swap conflicts: counted on retry.
    let host = Fake::new();
    host.store.conflicts.set(3);
    let out = new_request(&host, head("GET", "/open", &[]), true);
    assert_eq!(out, Outcome::Continue(forwarded_to("/b/open")));
    // The store never settles: THROTTLED, never an uncounted request.
    host.store.conflicts.set(usize::MAX);
    let out = new_request(&host, head("GET", "/open", &[]), true);
    assert_eq!(refused(&out), (429, "APIG.0308".into()));
}

#[test]
fn many_backend_changes_replace_the_headers_in_one_call() {
    let host = Fake::new();
    let out = new_request(&host, head("GET", "/headers", &[]), true);
    let ops = continued(&out);
    let [HeaderOp::Replace(all)] = ops else {
        panic!("{ops:?}")
    };
    let get = |n: &str| all.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    assert_eq!(get(":path"), Some(&b"/b/headers"[..]));
    assert_eq!(get("x-a"), Some(&b"1"[..]));
    assert_eq!(get("x-b"), Some(&b"2"[..]));
    assert_eq!(get(CLUSTER_HEADER), Some(&b"c1"[..]));
}

// Header sets the route already covers are skipped (each is a host call).

/// The plan as the static and xDS targets compile it: the backend route
/// applies the default 5000 ms; plus an API with its own timeout and one
/// whose backend path is its request path.
fn route_timed() -> Pipeline {
    let mut plan = plan();
    plan.route_timeout_ms = Some(5000);
    let slow = json!({"stages": {RELEASE: {"http": {
        "cluster": "c1", "path": "/b/slow", "method": null, "timeout_ms": 60000}}}});
    let same = json!({"stages": {RELEASE: {"http": {
        "cluster": "c1", "path": "/same/{id}", "method": null, "timeout_ms": 5000}}}});
    let apis = &mut plan.groups[0].apis;
    apis.push(api("slow", "GET", "/slow", slow));
    apis.push(api("same", "GET", "/same/{id}", same));
    Pipeline::new(Some(Rc::new(Gateway::from_plan(&plan).unwrap())))
}

#[test]
fn the_timeout_the_route_applies_is_not_set_again() {
    let host = Fake::new();
    let out = headers(&mut route_timed(), &host, head("GET", "/open", &[]), true);
    let want = vec![set(":path", "/b/open"), set(CLUSTER_HEADER, "c1")];
    assert_eq!(out, Outcome::Continue(want));
}

#[test]
fn a_timeout_other_than_the_routes_is_set() {
    let host = Fake::new();
    let out = headers(&mut route_timed(), &host, head("GET", "/slow", &[]), true);
    let want = vec![
        set(":path", "/b/slow"),
        set(CLUSTER_HEADER, "c1"),
        set(TIMEOUT_HEADER, "60000"),
    ];
    assert_eq!(out, Outcome::Continue(want));
}

#[test]
fn a_clients_own_timeout_is_overwritten_even_when_the_route_agrees() {
    // A proxy in front may pass the caller's header on: the router would
    // obey it, so the API's timeout replaces it.
    let host = Fake::new();
    let h = head("GET", "/open", &[(TIMEOUT_HEADER, "1")]);
    let out = headers(&mut route_timed(), &host, h, true);
    assert_eq!(out, Outcome::Continue(forwarded_to("/b/open")));
}

#[test]
fn an_upgrade_gets_its_timeout_though_the_backend_route_agrees() {
    // Upgrades take the WebSocket route, bounded only at 600 s: the API's
    // timeout must still bound the wait for the backend's 101.
    let host = Fake::new();
    let up = [("connection", "Upgrade"), ("upgrade", "websocket")];
    let out = headers(
        &mut route_timed(),
        &host,
        signed("/ws", b"", "key1", "s3cret", &up),
        false,
    );
    assert_eq!(out, Outcome::Continue(stripped_then_forwarded_to("/b/ws")));
}

#[test]
fn without_a_route_timeout_the_timeout_is_always_set() {
    // `plan()` has none (the Istio target): every request carries it.
    let host = Fake::new();
    let out = new_request(&host, head("GET", "/open", &[]), true);
    let ops = continued(&out);
    assert!(ops.contains(&set(TIMEOUT_HEADER, "5000")), "{ops:?}");
}

#[test]
fn an_unchanged_path_is_not_set_and_a_changed_one_is() {
    let host = Fake::new();
    let same = head("GET", "/same/42?q=1", &[]);
    let out = headers(&mut route_timed(), &host, same, true);
    assert_eq!(out, Outcome::Continue(vec![set(CLUSTER_HEADER, "c1")]));
    let other = head("GET", "/open?q=1", &[]);
    let out = headers(&mut route_timed(), &host, other, true);
    let want = vec![set(":path", "/b/open?q=1"), set(CLUSTER_HEADER, "c1")];
    assert_eq!(out, Outcome::Continue(want));
}

#[test]
fn alibaba_callers_get_their_reply_headers() {
    let host = Fake::new();
    let h = head("GET", "/nowhere", &[("x-ca-key", "k")]);
    let out = new_request(&host, h, true);
    assert_eq!(reply_header(&out, "x-ca-request-id"), Some("rid-1"));
    assert!(reply_header(&out, "x-ca-error-message").is_some());
    let out = new_request(&host, head("GET", "/nowhere", &[]), true);
    assert_eq!(reply_header(&out, "x-ca-request-id"), None);
}

#[test]
fn without_a_configuration_every_request_is_refused() {
    let host = Fake::new();
    let out = headers(
        &mut Pipeline::new(None),
        &host,
        head("GET", "/open", &[]),
        true,
    );
    assert_eq!(refused(&out).0, 500);
}

// The response side.

fn forwarded(host: &Fake, path: &str, extra: &[(&str, &str)]) -> Pipeline {
    let mut p = pipeline();
    let out = headers(&mut p, host, head("GET", path, extra), true);
    assert!(matches!(out, Outcome::Continue(_)), "{out:?}");
    p
}

#[test]
fn envoys_own_error_reply_becomes_a_gateway_response() {
    let host = Fake::answered("504", "upstream_response_timeout");
    let mut p = forwarded(&host, "/open", &[]);
    let out = response_headers(&mut p, &host, false);
    let ops = continued(&out);
    assert_eq!(ops[0], set(":status", "504"));
    assert_eq!(ops[1], unset("content-length"));
    let chunk = response_body(24, false);
    let out = event(&mut p, &host, chunk);
    assert_eq!(
        out,
        Outcome::ReplaceBody {
            size: 24,
            with: b""
        }
    );
    let end = response_body(24, true);
    let Outcome::ReplaceBody { with, .. } = event(&mut p, &host, end) else {
        panic!("expected the body replaced")
    };
    assert!(String::from_utf8_lossy(with).contains("Backend timeout"));
}

#[test]
fn a_backends_own_error_passes_untouched() {
    let host = Fake::answered("500", "via_upstream");
    let mut p = forwarded(&host, "/open", &[]);
    let out = response_headers(&mut p, &host, false);
    assert_eq!(out, Outcome::Continue(vec![]));
    let body = response_body(3, true);
    assert_eq!(event(&mut p, &host, body), Outcome::Continue(vec![]));
}

#[test]
fn cors_and_alibaba_headers_join_the_backends_response() {
    let mut host = Fake::answered("200", "");
    let mut p = forwarded(&host, "/cors", &[("x-ca-key", "k")]);
    let out = response_headers(&mut p, &host, true);
    assert_eq!(
        out,
        Outcome::Continue(vec![
            set("x-ca-request-id", "rid-1"),
            set(cors::ALLOW_ORIGIN, "*"),
        ])
    );
    // Huawei user guide §5.2.2: the backend's own CORS header wins.
    host.response
        .push((cors::ALLOW_ORIGIN.into(), "https://a.example".into()));
    let mut p = forwarded(&host, "/cors", &[]);
    let out = response_headers(&mut p, &host, true);
    assert_eq!(out, Outcome::Continue(vec![]));
}

#[test]
fn debug_mode_times_the_request_and_shows_the_counters() {
    let host = Fake::answered("200", "");
    let mut p = forwarded(&host, "/open", &[("x-apig-mode", "debug")]);
    host.now.set(host.now.get() + Duration::from_millis(7));
    let out = response_headers(&mut p, &host, true);
    let ops = continued(&out);
    assert_eq!(ops[0], set("x-apig-latency", "7"));
    assert_eq!(ops[1], set("x-apig-upstream-latency", "7"));
    assert_eq!(ops.len(), 3, "{ops:?}");
}

// A call-out (custom authorizers, later): the stage order has its place.

const AUTHORIZER_FAILURE: GatewayError = GatewayError {
    kind: ErrorType::AuthorizerFailure,
    status: 500,
    code: "APIG.0103",
    message: "authorizer failed",
};

const AUTHORIZER_TIMEOUT: GatewayError = GatewayError {
    kind: ErrorType::AuthorizerFailure,
    status: 500,
    code: "APIG.0104",
    message: "authorizer timed out",
};

fn judge(answer: &CallAnswer) -> Result<(), GatewayError> {
    match answer {
        CallAnswer::Response { status: 200, .. } => Ok(()),
        CallAnswer::TimedOut => Err(AUTHORIZER_TIMEOUT),
        _ => Err(AUTHORIZER_FAILURE),
    }
}

fn calling() -> (Pipeline, CallOut) {
    let call = CallOut {
        cluster: "authorizer".into(),
        headers: vec![(":path".into(), "/check".into())],
        body: Vec::new(),
        timeout: Duration::from_millis(500),
    };
    let mut p = pipeline();
    p.authorizer = Some(CallStep {
        call: call.clone(),
        judge,
    });
    (p, call)
}

#[test]
fn a_call_out_that_answers_resumes_the_stages() {
    let host = Fake::new();
    let (mut p, call) = calling();
    // The IP policy ran first (the address was read), authentication waits.
    let h = app_signed("/fenced", b"");
    assert_eq!(
        headers(&mut p, &host, h, true),
        Outcome::CallOut(Box::leak(Box::new(call)))
    );
    assert_eq!(host.address_reads.get(), 1);
    let out = event(&mut p, &host, call_answered(200));
    assert_eq!(
        out,
        Outcome::Continue(stripped_then_forwarded_to("/b/fenced"))
    );
}

#[test]
fn a_call_out_answer_still_meets_the_later_stages() {
    let host = Fake::new();
    let (mut p, _) = calling();
    headers(&mut p, &host, head("POST", "/fenced", &[]), true);
    let out = event(&mut p, &host, call_answered(200));
    assert_eq!(refused(&out).0, 401);
}

#[test]
fn a_call_out_that_fails_refuses_the_request() {
    let host = Fake::new();
    let (mut p, _) = calling();
    headers(&mut p, &host, app_signed("/signed", b""), true);
    let out = event(&mut p, &host, Event::CallAnswer(CallAnswer::Failed));
    assert_eq!(refused(&out), (500, "APIG.0103".into()));
    let (mut p, _) = calling();
    headers(&mut p, &host, app_signed("/signed", b""), true);
    assert_eq!(refused(&event(&mut p, &host, call_answered(403))).0, 500);
}

#[test]
fn a_call_out_that_times_out_is_told_from_a_failure() {
    let host = Fake::new();
    let (mut p, _) = calling();
    headers(&mut p, &host, app_signed("/signed", b""), true);
    host.now.set(host.now.get() + Duration::from_millis(500));
    let out = event(&mut p, &host, Event::CallAnswer(CallAnswer::Failed));
    assert_eq!(refused(&out), (500, "APIG.0104".into()));
}

#[test]
fn a_call_out_before_a_held_body_holds_it_after_the_answer() {
    let host = Fake::with_body(b"pay");
    let (mut p, _) = calling();
    let out = headers(&mut p, &host, app_signed("/signed", b"pay"), false);
    assert!(matches!(out, Outcome::CallOut(_)), "{out:?}");
    let out = event(&mut p, &host, call_answered(200));
    assert_eq!(
        out,
        Outcome::Continue(stripped_then_forwarded_to("/b/signed"))
    );
    let end = request_body(3, true);
    assert_eq!(event(&mut p, &host, end), Outcome::Continue(vec![]));
}

// Metrics and access-log fields (metrics.rs).

#[test]
fn a_refused_request_keeps_its_api_error_and_auth_for_metrics() {
    let host = Fake::new();
    let mut p = pipeline();
    let out = headers(
        &mut p,
        &host,
        signed("/signed", b"", "key1", "wrong", &[]),
        true,
    );
    assert_eq!(refused(&out).0, 401);
    let s = p.summary(&host).unwrap();
    assert_eq!(s.status, 401);
    assert!(s.api.is_some(), "the routed API is kept after a refusal");
    assert_eq!(s.error, Some(GatewayError::AUTH_FAILURE));
    assert_eq!(
        s.auth,
        Some((Scheme::HuaweiSignature, AuthOutcome::Failure))
    );
    let log = p.access_log();
    assert!(log.contains(&("pylon_api", "signed")));
    assert!(log.contains(&("pylon_group", "g")));
    assert!(log.contains(&("pylon_error_code", "APIG.0303")));
}

#[test]
fn a_forwarded_request_reports_its_status_and_backend_latency() {
    let host = Fake::answered("200", "via_upstream");
    let mut p = pipeline();
    headers(&mut p, &host, app_signed("/signed", b""), true);
    response_headers(&mut p, &host, true);
    let s = p.summary(&host).unwrap();
    assert_eq!(s.status, 200);
    assert_eq!(
        s.auth,
        Some((Scheme::HuaweiSignature, AuthOutcome::Success))
    );
    assert_eq!(s.app, Some(0));
    assert!(s.total_ms.is_some() && s.backend_ms.is_some());
    assert!(s.error.is_none());
    let log = p.access_log();
    assert!(log.contains(&("pylon_app_id", "app-id")));
}

#[test]
fn a_throttled_request_names_the_limit_it_did_not_fit() {
    let host = Fake::new();
    let mut p = pipeline();
    headers(&mut p, &host, app_signed("/limited?n=1", b""), true);
    let mut p = pipeline();
    let out = headers(&mut p, &host, app_signed("/limited?n=1", b""), true);
    assert_eq!(refused(&out).0, 429);
    assert_eq!(p.summary(&host).unwrap().throttled, Some(Dimension::Api));
}

#[test]
fn without_an_access_log_no_field_is_written_but_metrics_still_count() {
    let mut plan = plan();
    plan.access_log = false;
    let host = Fake::new();
    let mut p = Pipeline::new(Some(Rc::new(Gateway::from_plan(&plan).unwrap())));
    headers(&mut p, &host, head("GET", "/open", &[]), true);
    assert!(p.access_log().is_empty());
    assert!(p.summary(&host).unwrap().api.is_some());
}

#[test]
fn the_access_log_never_carries_the_query_or_credentials() {
    let host = Fake::new();
    let mut p = pipeline();
    let h = head(
        "GET",
        "/open?AppCode=s3cr3t&x=1",
        &[("x-apig-appcode", "s3cr3t")],
    );
    headers(&mut p, &host, h, true);
    let log = p.access_log();
    assert!(log.contains(&("pylon_path", "/open")));
    assert!(log.iter().all(|(_, v)| !v.contains("s3cr3t")));
}
