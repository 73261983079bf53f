//! Gateway response templates (Huawei user guide §5.1.4, `$context`
//! variables): parsing arbitrary templates and rendering them with
//! caller-controlled values, which must stay inside their JSON strings;
//! and Envoy's own replies mapped to gateway errors.
//!
//! Input: lines; the template, Envoy's response code details, a status,
//! then the context values (detail, api id, api name, app id, account,
//! request id, stage, source ip, path, method).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon_filter::response::{render_builtin_error, Context, GatewayError, Template};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let template = lines.next().unwrap_or("");
    let details = lines.next().unwrap_or("");
    let status = lines.next().unwrap_or("").trim().parse().unwrap_or(0);
    let mut v = [""; 10];
    for (slot, line) in v.iter_mut().zip(lines) {
        *slot = line;
    }
    let ctx = Context {
        error_detail: v[0],
        api_id: v[1],
        api_name: v[2],
        app_id: v[3],
        account: v[4],
        request_id: v[5],
        stage: v[6],
        source_ip: v[7],
        req_path: v[8],
        req_method: v[9],
    };
    let err = GatewayError::from_envoy_reply(details, status);
    assert!((400..=599).contains(&err.status));
    if let Ok(t) = Template::parse(template) {
        let _ = t.render(&err, &ctx);
    }
    // Every value, however hostile, renders into valid JSON.
    for body in [
        r#"{"p":"$context.reqPath","m":"$context.reqMethod","d":"$context.error.message"}"#,
        r#"{"a":"$context.apiName","i":"$context.sourceIp","s":"$context.stage","r":"$context.requestId","x":"$context.appId$context.account$context.apiId"}"#,
    ] {
        let out = Template::parse(body).unwrap().render(&err, &ctx);
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap_or_else(|e| panic!("{out:?} is not JSON: {e}"));
    }
    // The built-in set is compiled per call (it serves only when no plan
    // loaded): one input in sixteen, so the rest run fast.
    if status % 16 == 0 {
        let reply = render_builtin_error(&err, &ctx);
        serde_json::from_str::<serde_json::Value>(&reply.body)
            .unwrap_or_else(|e| panic!("{:?} is not JSON: {e}", reply.body));
    }
});
