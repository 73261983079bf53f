//! `pylon` on request parameters, backend parameter mapping, request modes,
//! policy backends and CORS: located errors for bad definitions (file,
//! `api 'NAME'`, field), nothing written on error, and what lands in the plan.

mod common;
use common::*;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Output;

/// Environments and a group whose `#vip#` variable has a value in both.
const BASE: &str = r#"
environments:
  - name: TEST
groups:
  - name: shop
    default: true
    variables:
      RELEASE: { vip: "127.0.0.1:9001" }
      TEST: { vip: "127.0.0.1:9002" }
"#;

/// The README's seed example (test01/test02/test03) plus two optional
/// parameters, a constant, two system parameters and two policy backends.
/// Tests break it with `edit` and the `with_*` helpers.
const API: &str = r##"
apis:
  - name: orchestrated
    group: shop
    method: GET
    path: /v1.0/{test01}
    auth: app
    request_mode: mapping
    cors: true
    parameters:
      - {name: test01, in: path}
      - {name: test02, in: header, required: true}
      - {name: test03, in: query, required: true}
      - {name: tier, in: query, enum: [gold, vip, basic], default: basic}
      - {name: size, in: query, type: number, min: 1, max: 100, default: 10}
    backend:
      http: {address: "127.0.0.1:9000", path: "/v1.0/{test05}"}
      params:
        - {name: test01, in: header, from: test01}
        - {name: test05, in: path, from: test02}
        - {name: test03, in: header, from: test03}
        - {name: tenant, in: query, constant: "[apig]"}
        - {name: X-Client-Ip, in: header, system: sourceIp}
        - {name: X-App, in: header, system: appId}
    policies:
      - name: office
        conditions:
          - {source: "10.0.0.0/8,192.0.2.7"}
          - {param: tier, type: enum, value: "gold,vip"}
        backend:
          http: {address: "#vip#", path: "/vip/{test01}", timeout: 3000}
          params: [{name: X-Tier, in: header, from: tier}]
      - name: posts
        effect: all
        conditions:
          - {system: reqMethod, type: enum, value: "GET,POST"}
          - {system: reqPath, type: pattern, value: '^/v1\.0/'}
        backend:
          mock: {status: 200, body: "policy"}
    publish: [RELEASE, TEST]
"##;

const ORCHESTRATED: &str = "api 'orchestrated'";

/// `API` with one more request parameter: it is `parameters[5]`.
fn with_param(param: &str) -> String {
    let last = "      - {name: size, in: query, type: number, min: 1, max: 100, default: 10}\n";
    edit(API, last, &format!("{last}      - {{{param}}}\n"))
}

/// `API` with one more backend parameter: it is `backend.params[6]`.
fn with_backend_param(param: &str) -> String {
    let last = "        - {name: X-App, in: header, system: appId}\n";
    edit(API, last, &format!("{last}        - {{{param}}}\n"))
}

/// `API` with more policies after the two it has (`policies[2]`, ...).
fn with_policies(policies: &[&str]) -> String {
    let last = "          mock: {status: 200, body: \"policy\"}\n";
    let more: String = policies
        .iter()
        .map(|p| format!("      - {{{p}}}\n"))
        .collect();
    edit(API, last, &format!("{last}{more}"))
}

/// A third policy with one condition and a mock backend.
fn with_condition(condition: &str) -> String {
    with_policies(&[&format!(
        "name: third, conditions: [{{{condition}}}], backend: {{mock: {{body: third}}}}"
    )])
}

fn compile(s: &Scratch, base: &str, apis: &str) -> (Output, PathBuf) {
    compile_files(s, &[("base.yaml", base), ("apis.yaml", apis)])
}

/// Compiles `apis` over `BASE`, asserts success and returns the API's plan.
fn accepted(apis: &str) -> Value {
    let s = Scratch::new("params-ok");
    let (o, out) = compile(&s, BASE, apis);
    assert_ok(&o, &format!("compile of\n{apis}\n"));
    written_plan(&out)["groups"][0]["apis"][0].clone()
}

/// Asserts the compile failed, wrote nothing, and reported exactly `wants`
/// (field, part of the message) for `object` in `apis.yaml`.
fn refused_with(base: &str, apis: &str, object: &str, wants: &[(&str, &str)]) {
    let (s, err) = compile_refused("params", &[("base.yaml", base), ("apis.yaml", apis)], apis);
    let file = s.path("defs/apis.yaml");
    for (field, says) in wants {
        let what = format!("{object}.{field}: ");
        assert!(
            has_located(&err, &file, &what, says),
            "no located `{what}…{says}…` in:\n{err}\nfor:\n{apis}"
        );
    }
    assert_error_count(&err, wants.len());
}

/// One located error on the orchestrated API.
fn rejects(apis: &str, field: &str, says: &str) {
    refused_with(BASE, apis, ORCHESTRATED, &[(field, says)]);
}

/// The compile fails, writes nothing, and some error is located in
/// `apis.yaml` on the orchestrated API at one of `fields`.
fn refused_at_one_of(apis: &str, fields: &[&str]) {
    let files = [("base.yaml", BASE), ("apis.yaml", apis)];
    let (s, err) = compile_refused("params-any", &files, apis);
    let file = s.path("defs/apis.yaml");
    assert!(
        fields
            .iter()
            .any(|f| has_located(&err, &file, &format!("{ORCHESTRATED}.{f}: "), "")),
        "no error located at one of {fields:?} on `{ORCHESTRATED}` in:\n{err}"
    );
}

// ---------------------------------------------------------------- the plan

#[test]
fn seed_example_lands_in_the_plan() {
    let api = accepted(API);
    assert_eq!(api["request_mode"], "mapping");
    assert_eq!(api["cors"], true);
    assert_eq!(api["auth"], "app");
    assert_eq!(
        api["params"],
        json!([
            {"name": "test01", "in": "path", "required": true},
            {"name": "test02", "in": "header", "required": true},
            {"name": "test03", "in": "query", "required": true},
            {"name": "tier", "in": "query", "default": "basic", "enum": ["gold", "vip", "basic"]},
            {"name": "size", "in": "query", "type": "number", "default": "10", "min": 1.0, "max": 100.0},
        ])
    );
    let backend_params = json!([
        {"name": "test01", "in": "header", "value": {"request": "test01"}},
        {"name": "test05", "in": "path", "value": {"request": "test02"}},
        {"name": "test03", "in": "header", "value": {"request": "test03"}},
        {"name": "tenant", "in": "query", "value": {"constant": "[apig]"}},
        {"name": "X-Client-Ip", "in": "header", "value": {"system": "sourceIp"}},
        {"name": "X-App", "in": "header", "value": {"system": "appId"}},
    ]);
    for stage in ["RELEASE", "TEST"] {
        let http = &api["stages"][stage]["http"];
        assert_eq!(http["path"], "/v1.0/{test05}", "{stage}");
        assert_eq!(http["timeout_ms"], 5000, "{stage}");
        assert_eq!(http["params"], backend_params, "{stage}");
    }

    let policies = api["policies"].as_array().expect("policies");
    assert_eq!(policies.len(), 2);
    let office = &policies[0];
    assert_eq!(office["name"], "office");
    assert!(office.get("effect").is_none(), "`any` is the default");
    assert_eq!(
        office["conditions"],
        json!([
            {"on": "source", "values": ["10.0.0.0/8", "192.0.2.7"]},
            {"on": {"param": "tier"}, "test": "enum", "values": ["gold", "vip"]},
        ])
    );
    // One backend per environment, each with its own `#vip#`.
    let release = &office["stages"]["RELEASE"]["http"];
    let test = &office["stages"]["TEST"]["http"];
    assert!(release["cluster"].as_str().unwrap().contains("9001"));
    assert!(test["cluster"].as_str().unwrap().contains("9002"));
    for http in [release, test] {
        assert_eq!(http["path"], "/vip/{test01}");
        assert_eq!(http["timeout_ms"], 3000);
        assert_eq!(
            http["params"],
            json!([{"name": "X-Tier", "in": "header", "value": {"request": "tier"}}])
        );
    }
    let posts = &policies[1];
    assert_eq!(posts["effect"], "all");
    assert_eq!(
        posts["conditions"],
        json!([
            {"on": "req_method", "test": "enum", "values": ["GET", "POST"]},
            {"on": "req_path", "test": "pattern", "values": ["^/v1\\.0/"]},
        ])
    );
    for stage in ["RELEASE", "TEST"] {
        assert_eq!(
            posts["stages"][stage],
            json!({"mock": {"status": 200, "body": "policy"}})
        );
    }
}

#[test]
fn defaults_leave_the_plan_quiet() {
    // The seed example byte for byte: mapping_passthrough, no CORS, no auth.
    let seed = r#"
apis:
  - name: orchestrated
    group: shop
    method: GET
    path: /v1.0/{test01}
    parameters:
      - {name: test01, in: path}
      - {name: test02, in: header, required: true}
      - {name: test03, in: query, required: true}
    backend:
      http: {address: "127.0.0.1:9000", path: "/v1.0/{test05}"}
      params:
        - {name: test01, in: header, from: test01}
        - {name: test05, in: path, from: test02}
        - {name: test03, in: header, from: test03}
    publish: [RELEASE]
"#;
    let api = accepted(seed);
    for absent in ["request_mode", "cors", "policies", "auth"] {
        assert!(api.get(absent).is_none(), "{absent}: {api}");
    }
    assert_eq!(api["params"].as_array().unwrap().len(), 3);
    assert_eq!(
        api["stages"]["RELEASE"]["http"]["params"][1],
        json!({"name": "test05", "in": "path", "value": {"request": "test02"}})
    );
}

#[test]
fn yaml_numbers_are_text() {
    let apis = edit(
        &with_backend_param("name: answer, in: query, constant: 42"),
        "{name: tier, in: query, enum: [gold, vip, basic], default: basic}",
        "{name: tier, in: query, enum: [1, 2, 3], default: 2}",
    );
    let apis = edit(
        &apis,
        "{param: tier, type: enum, value: \"gold,vip\"}",
        "{param: tier, type: equal, value: 3}",
    );
    let api = accepted(&apis);
    assert_eq!(api["params"][3]["default"], "2");
    assert_eq!(api["params"][3]["enum"], json!(["1", "2", "3"]));
    assert_eq!(api["params"][4]["default"], "10", "size: default: 10");
    assert_eq!(
        api["stages"]["RELEASE"]["http"]["params"][6]["value"],
        json!({"constant": "42"})
    );
    assert_eq!(api["policies"][0]["conditions"][1]["values"], json!(["3"]));
    // Booleans too.
    let api = accepted(&with_backend_param(
        "name: flag, in: header, constant: true",
    ));
    assert_eq!(
        api["stages"]["TEST"]["http"]["params"][6]["value"],
        json!({"constant": "true"})
    );
}

#[test]
fn cors_preflight_api_with_a_mock() {
    let preflight = format!(
        "{API}  - name: preflight\n    group: shop\n    method: OPTIONS\n    path: /\n    \
         match: prefix\n    auth: app\n    cors: true\n    \
         backend: {{ mock: {{ status: 204 }} }}\n    publish: [RELEASE, TEST]\n"
    );
    let s = Scratch::new("params-cors");
    let (o, out) = compile(&s, BASE, &preflight);
    assert_ok(&o, "compile");
    let plan = written_plan(&out);
    let api = &plan["groups"][0]["apis"][1];
    assert_eq!(api["name"], "preflight");
    assert_eq!(api["method"], "OPTIONS");
    assert_eq!(api["cors"], true);
    assert_eq!(api["stages"]["RELEASE"]["mock"]["status"], 204);
}

// ------------------------------------------------------ request parameters

#[test]
fn names_that_belong_to_the_gateway() {
    for (name, at) in [
        ("x-apig-foo", "query"),
        ("X-APIG-Mode", "header"),
        ("X-SDK-Date", "query"),
        ("x-sdk-nonce", "header"),
        ("x-stage", "query"),
        ("X-Stage", "header"),
        ("X-STAGE", "query"),
    ] {
        rejects(
            &with_param(&format!("name: {name}, in: {at}")),
            "parameters[5].name",
            &format!("`{name}`: names starting with x-apig- or x-sdk-, and x-stage, belong to the gateway"),
        );
    }
}

#[test]
fn authentication_headers_are_not_parameters() {
    for name in [
        "Authorization",
        "authorization",
        "x-auth-token",
        "X-Auth-Token",
    ] {
        rejects(
            &with_param(&format!("name: {name}, in: header")),
            "parameters[5].name",
            &format!("header parameter `{name}` is reserved for authentication"),
        );
    }
    // Only as headers.
    accepted(&with_param("name: authorization, in: query"));
}

#[test]
fn header_parameters_have_no_underscore() {
    rejects(
        &with_param("name: x_tenant, in: header"),
        "parameters[5].name",
        "header parameter `x_tenant` may not contain `_`",
    );
    accepted(&with_param("name: x_tenant, in: query"));
}

#[test]
fn name_length_and_characters() {
    let long = "a".repeat(33);
    for bad in [long.as_str(), "1abc", "-abc", "a b", "a/b", "\"\""] {
        rejects(
            &with_param(&format!("name: {bad}, in: query")),
            "parameters[5].name",
            "must be 1-32 letters, digits, `-`, `_` or `.`, starting with a letter",
        );
    }
    accepted(&with_param(&format!("name: {}, in: query", "a".repeat(32))));
    accepted(&with_param("name: a.b-c_9, in: query"));
}

#[test]
fn duplicate_parameters() {
    rejects(
        &with_param("name: test03, in: query"),
        "parameters[5].name",
        "query parameter `test03` is given twice",
    );
    // Header names are case-insensitive.
    rejects(
        &with_param("name: TEST02, in: header"),
        "parameters[5].name",
        "header parameter `TEST02` is given twice",
    );
    rejects(
        &with_param("name: test01, in: path"),
        "parameters[5].name",
        "path parameter `test01` is given twice",
    );
}

#[test]
fn path_parameters_are_in_the_path_and_required() {
    rejects(
        &with_param("name: nope, in: path"),
        "parameters[5].name",
        "path parameter `nope` is not in the path `/v1.0/{test01}`",
    );
    rejects(
        &edit(
            API,
            "{name: test01, in: path}",
            "{name: test01, in: path, default: abc}",
        ),
        "parameters[0].default",
        "path parameters are always required",
    );
    // `required: true` on a path parameter says what is true anyway.
    accepted(&edit(
        API,
        "{name: test01, in: path}",
        "{name: test01, in: path, required: true}",
    ));
}

#[test]
fn constraints_must_fit_the_parameter() {
    rejects(
        &with_param("name: q1, in: query, required: true, default: x"),
        "parameters[5].default",
        "a default applies to optional parameters only",
    );
    for bound in ["min: 1", "max: 9"] {
        rejects(
            &with_param(&format!("name: q1, in: query, {bound}")),
            "parameters[5].min",
            "min/max bound numbers; use min_length/max_length",
        );
    }
    for bound in ["min_length: 1", "max_length: 9"] {
        rejects(
            &with_param(&format!("name: q1, in: query, type: number, {bound}")),
            "parameters[5].min_length",
            "min_length/max_length bound strings; use min/max",
        );
    }
    rejects(
        &with_param("name: q1, in: query, min_length: 5, max_length: 2"),
        "parameters[5].min_length",
        "is greater than max_length",
    );
    rejects(
        &with_param("name: q1, in: query, type: number, min: 5, max: 2"),
        "parameters[5].min",
        "is greater than max",
    );
    accepted(&with_param(
        "name: q1, in: query, min_length: 2, max_length: 2, pattern: '^[a-z]+$', default: ab",
    ));
}

/// Patterns and defaults are checked by the filter's own loader; the error
/// names the parameter (see `pattern_and_default_errors_name_their_field`
/// for the field).
#[test]
fn bad_patterns_and_defaults_breaking_the_rules() {
    let cases = [
        ("pattern: '(['", "parameter q1: bad pattern"),
        (
            "enum: [a, b], default: c",
            "parameter q1: default must be one of a, b",
        ),
        (
            "type: number, default: abc",
            "parameter q1: default is not a number",
        ),
        (
            "type: number, min: 1, default: 0",
            "parameter q1: default must be at least 1",
        ),
        (
            "max_length: 2, default: abc",
            "parameter q1: default must be at most 2 characters",
        ),
        (
            "pattern: '^a', default: bcd",
            "parameter q1: default does not match the required pattern",
        ),
        (
            "default: \"a\\r\\nX-Evil: 1\"",
            "parameter q1: default contains control characters",
        ),
    ];
    for (rule, says) in cases {
        let field = if rule.starts_with("pattern: '(['") {
            "parameters[5].pattern"
        } else {
            "parameters[5].default"
        };
        rejects(
            &with_param(&format!("name: q1, in: query, {rule}")),
            field,
            says,
        );
    }
    accepted(&with_param("name: q1, in: query, enum: [a, b], default: a"));
}

#[test]
fn pattern_and_default_errors_name_their_field() {
    rejects(
        &with_param("name: q1, in: query, pattern: '(['"),
        "parameters[5].pattern",
        "bad pattern",
    );
    rejects(
        &with_param("name: q1, in: query, enum: [a, b], default: c"),
        "parameters[5].default",
        "must be one of a, b",
    );
}

// ----------------------------------------------------------- request modes

const PASSTHROUGH: &str = r#"
apis:
  - name: pass
    group: shop
    method: GET
    path: /pass/{id}
    request_mode: passthrough
    parameters:
      - {name: id, in: path, type: number}
    backend:
      http: {address: "127.0.0.1:9000", path: "/p/{id}"}
      params:
        - {name: X-Id, in: header, from: id}
        - {name: tenant, in: query, constant: pylon}
    publish: [RELEASE]
"#;

#[test]
fn passthrough_declares_path_parameters_only() {
    let api = accepted(PASSTHROUGH);
    assert_eq!(api["request_mode"], "passthrough");
    for at in ["query", "header"] {
        let apis = edit(
            PASSTHROUGH,
            "      - {name: id, in: path, type: number}\n",
            &format!(
                "      - {{name: id, in: path, type: number}}\n      - {{name: extra, in: {at}}}\n"
            ),
        );
        refused_with(
            BASE,
            &apis,
            "api 'pass'",
            &[(
                "parameters[1].in",
                "passthrough mode forwards query and headers untouched: declare path parameters only",
            )],
        );
    }
}

// ------------------------------------------------------ backend parameters

#[test]
fn backend_parameter_takes_exactly_one_source() {
    for sources in [
        "",
        ", from: test03, constant: x",
        ", from: test03, system: stage",
        ", constant: x, system: stage",
        ", from: test03, constant: x, system: stage",
    ] {
        rejects(
            &with_backend_param(&format!("name: b1, in: query{sources}")),
            "backend.params[6]",
            "give exactly one of `from`, `constant` or `system`",
        );
    }
}

#[test]
fn backend_parameter_from_an_undeclared_parameter() {
    rejects(
        &with_backend_param("name: b1, in: query, from: nope"),
        "backend.params[6].from",
        "`nope` is not a declared request parameter or a path parameter",
    );
    // A policy backend's too.
    rejects(
        &edit(API, "from: tier}]", "from: tiers}]"),
        "policies[0].backend.params[0].from",
        "`tiers` is not a declared request parameter or a path parameter",
    );
}

#[test]
fn backend_path_parameter_appears_in_the_backend_path() {
    rejects(
        &with_backend_param("name: b1, in: path, constant: x"),
        "backend.params[6].name",
        "backend path parameter `b1` must appear as `{b1}` in the backend path",
    );
}

#[test]
fn backend_path_placeholders_must_be_known() {
    rejects(
        &edit(API, "/v1.0/{test05}\"}", "/v1.0/{test05}/{x}\"}"),
        "backend.http.path",
        "backend path uses `{x}`, but neither the request path `/v1.0/{test01}` nor the backend's path parameters have it",
    );
    rejects(
        &edit(API, "/vip/{test01}\"", "/vip/{test01}/{x}\""),
        "policies[0].backend.http.path",
        "backend path uses `{x}`",
    );
}

#[test]
fn backend_headers_owned_by_envoy_and_the_gateway() {
    for name in [
        "Host",
        "content-length",
        "Transfer-Encoding",
        "x-envoy-foo",
        "X-Pylon-Api",
    ] {
        rejects(
            &with_backend_param(&format!("name: {name}, in: header, constant: x")),
            "backend.params[6].name",
            &format!("header `{name}` belongs to Envoy and the gateway"),
        );
    }
    rejects(
        &with_backend_param("name: x_tenant, in: header, constant: x"),
        "backend.params[6].name",
        "header parameter `x_tenant` may not contain `_`",
    );
    for at in ["query", "header"] {
        rejects(
            &with_backend_param(&format!("name: x-apig-x, in: {at}, constant: x")),
            "backend.params[6].name",
            "`x-apig-x`: names starting with x-apig- or x-sdk-, and x-stage, belong to the gateway",
        );
    }
}

#[test]
fn duplicate_backend_parameters() {
    rejects(
        &with_backend_param("name: tenant, in: query, constant: y"),
        "backend.params[6].name",
        "query parameter `tenant` is given twice",
    );
    rejects(
        &with_backend_param("name: x-client-ip, in: header, constant: y"),
        "backend.params[6].name",
        "header parameter `x-client-ip` is given twice",
    );
}

#[test]
fn constants_hold_no_control_characters() {
    rejects(
        &with_backend_param("name: X-C, in: header, constant: \"a\\r\\nX-Evil: 1\""),
        "backend.params[6].constant",
        "may not contain control characters",
    );
}

#[test]
fn system_parameters_need_their_auth() {
    rejects(
        &edit(API, "    auth: app\n", "    auth: none\n"),
        "backend.params[5].system",
        "appId is only known for `auth: app` APIs",
    );
    rejects(
        &edit(API, "    auth: app\n", "    auth: iam\n"),
        "backend.params[5].system",
        "appId is only known for `auth: app` APIs",
    );
    rejects(
        &with_backend_param("name: X-Account, in: header, system: account"),
        "backend.params[6].system",
        "account is only known for `auth: iam` APIs",
    );
    let iam = edit(
        &edit(API, "    auth: app\n", "    auth: iam\n"),
        "system: appId}",
        "system: account}",
    );
    let api = accepted(&iam);
    assert_eq!(
        api["stages"]["RELEASE"]["http"]["params"][5]["value"],
        json!({"system": "account"})
    );
    for known in ["stage", "apiId", "requestId", "sourceIp"] {
        accepted(&with_backend_param(&format!(
            "name: s1, in: query, system: {known}"
        )));
    }
}

#[test]
fn unknown_system_parameter() {
    rejects(
        &with_backend_param("name: b1, in: query, system: clientIp"),
        "backend.params[6].system",
        "unknown variant `clientIp`",
    );
}

#[test]
fn backend_path_parameter_from_an_optional_parameter() {
    let apis = edit(
        &with_param("name: opt, in: query"),
        "{name: test05, in: path, from: test02}",
        "{name: test05, in: path, from: opt}",
    );
    rejects(
        &apis,
        "backend.params[1].from",
        "`opt` may be absent: a path parameter needs it required or with a default",
    );
    // An optional header, too.
    rejects(
        &edit(
            API,
            "{name: test02, in: header, required: true}",
            "{name: test02, in: header}",
        ),
        "backend.params[1].from",
        "`test02` may be absent",
    );
    // With a default it is always there.
    accepted(&edit(
        API,
        "{name: test05, in: path, from: test02}",
        "{name: test05, in: path, from: tier}",
    ));
}

#[test]
fn mock_backends_take_no_parameters() {
    rejects(
        &edit(
            API,
            "http: {address: \"127.0.0.1:9000\", path: \"/v1.0/{test05}\"}",
            "mock: {body: hi}",
        ),
        "backend.params",
        "a mock backend takes no parameters",
    );
    rejects(
        &edit(
            API,
            "          mock: {status: 200, body: \"policy\"}\n",
            "          mock: {status: 200, body: \"policy\"}\n          params: [{name: X-A, in: header, constant: a}]\n",
        ),
        "policies[1].backend.params",
        "a mock backend takes no parameters",
    );
}

#[test]
fn backend_path_parameter_used_twice_is_located() {
    rejects(
        &edit(API, "/v1.0/{test05}\"}", "/v1.0/{test05}/{test05}\"}"),
        "backend.http.path",
        "`{test05}` more than once",
    );
}

#[test]
fn query_parameter_named_like_a_path_parameter() {
    // `{test01}` in the path is no longer declared; a query `test01` is.
    // Backend paths take path parameters, so `{test01}` is the path's.
    let apis = edit(API, "{name: test01, in: path}", "{name: test01, in: query}");
    let api = accepted(&apis);
    assert_eq!(api["params"][0]["in"], json!("query"));
}

#[test]
fn references_name_parameters_exactly() {
    let apis = with_backend_param("name: X-T, in: header, from: Tier");
    let apis = edit(
        &apis,
        "      - {name: size, in: query, type: number, min: 1, max: 100, default: 10}\n",
        "      - {name: size, in: query, type: number, min: 1, max: 100, default: 10}\n      - {name: Tier, in: query, required: true}\n",
    );
    // `from: Tier` is the query parameter `Tier`, not `tier`: names match
    // exactly (only header names are caseless), as the filter resolves them.
    let api = accepted(&apis);
    assert_eq!(api["params"][5]["name"], json!("Tier"));
    let backend = &api["stages"]["RELEASE"]["http"]["params"][6];
    assert_eq!(backend["value"], json!({ "request": "Tier" }));
}

#[test]
fn yaml_numbers_keep_their_text() {
    // Decimals would lose their text (`1.10` → 1.1): refused, asking for quotes.
    for written in ["1.10", "1e3"] {
        let apis = with_backend_param(&format!("name: version, in: query, constant: {written}"));
        let s = Scratch::new("params-num");
        let (o, _) = compile(&s, BASE, &apis);
        assert!(!o.status.success(), "`{written}` accepted");
        assert!(
            stderr(&o).contains("quote decimal numbers"),
            "{}",
            stderr(&o)
        );
    }
    // Integers and quoted text are kept as written.
    for (written, text) in [("10", "10"), ("\"1.10\"", "1.10")] {
        let api = accepted(&with_backend_param(&format!(
            "name: version, in: query, constant: {written}"
        )));
        assert_eq!(
            api["stages"]["RELEASE"]["http"]["params"][6]["value"],
            json!({ "constant": text }),
            "`constant: {written}` is sent as written"
        );
    }
}

// -------------------------------------------------------- policy backends

fn policy(name: &str) -> String {
    format!(
        "name: {name}, conditions: [{{system: reqMethod, type: equal, value: GET}}], backend: {{mock: {{body: {name}}}}}"
    )
}

#[test]
fn at_most_five_policies() {
    let names: Vec<String> = ["p3", "p4", "p5", "p6"].iter().map(|n| policy(n)).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    rejects(
        &with_policies(&refs),
        "policies",
        "at most 5 policy backends besides the default",
    );
    let api = accepted(&with_policies(&refs[..3]));
    assert_eq!(api["policies"].as_array().unwrap().len(), 5);
}

#[test]
fn policy_names_are_unique() {
    rejects(
        &with_policies(&[&policy("office")]),
        "policies[2].name",
        "another policy is named `office`",
    );
}

#[test]
fn condition_has_exactly_one_subject() {
    for condition in [
        "source: \"10.0.0.1\", param: tier, type: equal, value: a",
        "system: reqPath, param: tier, type: equal, value: a",
        "source: \"10.0.0.1\", system: reqPath, type: equal, value: a",
        "type: equal, value: a",
    ] {
        rejects(
            &with_condition(condition),
            "policies[2].conditions[0]",
            "give exactly one of `source`, `param` or `system`",
        );
    }
}

#[test]
fn unknown_system_condition() {
    rejects(
        &with_condition("system: reqHost, type: equal, value: a"),
        "policies[2].conditions[0].system",
        "unknown variant `reqHost`",
    );
}

#[test]
fn condition_on_an_undeclared_parameter() {
    rejects(
        &with_condition("param: nope, type: equal, value: a"),
        "policies[2].conditions[0].param",
        "`nope` is not a declared request parameter or a path parameter",
    );
    // The second condition of an existing policy.
    rejects(
        &edit(API, "{param: tier, type: enum", "{param: tiers, type: enum"),
        "policies[0].conditions[1].param",
        "`tiers` is not a declared request parameter or a path parameter",
    );
    // An undeclared path parameter of the request path counts.
    let apis = edit(API, "      - {name: test01, in: path}\n", "");
    let apis = with_condition_in(&apis, "param: test01, type: equal, value: a");
    accepted(&apis);
}

/// Like `with_condition`, on another text than `API`.
fn with_condition_in(apis: &str, condition: &str) -> String {
    let last = "          mock: {status: 200, body: \"policy\"}\n";
    edit(
        apis,
        last,
        &format!(
            "{last}      - {{name: third, conditions: [{{{condition}}}], backend: {{mock: {{body: third}}}}}}\n"
        ),
    )
}

#[test]
fn condition_value_is_required() {
    rejects(
        &edit(
            API,
            "{param: tier, type: enum, value: \"gold,vip\"}",
            "{param: tier, type: enum}",
        ),
        "policies[0].conditions[1].value",
        "is required",
    );
    rejects(
        &with_condition("system: reqPath, type: equal"),
        "policies[2].conditions[0].value",
        "is required",
    );
}

#[test]
fn source_conditions_take_addresses_only() {
    rejects(
        &with_condition("source: \"10.0.0.1\", type: equal"),
        "policies[2].conditions[0].source",
        "a source condition takes its addresses in `source` and no `type` or `value`",
    );
    rejects(
        &with_condition("source: \"10.0.0.1\", value: \"10.0.0.2\""),
        "policies[2].conditions[0].source",
        "no `type` or `value`",
    );
}

/// Checked by the filter's own loader: the error names the policy's
/// conditions and the condition's position (see
/// `condition_errors_name_their_field` for the field).
#[test]
fn bad_conditions_refused_by_the_filter_rules() {
    for (condition, says) in [
        (
            "source: \"10.0.0.300\"",
            "`10.0.0.300` is not an IP address, CIDR block or `a-b` range",
        ),
        ("source: \"10.0.0.1,nope\"", "`nope` is not an IP address"),
        (
            "system: reqMethod, type: pattern, value: \"G.*\"",
            "reqMethod takes equal or enum only",
        ),
        (
            "param: tier, value: gold",
            "needs a condition type (equal, enum or pattern)",
        ),
        ("param: tier, type: pattern, value: \"([\"", "bad pattern"),
    ] {
        let part = match condition.split(':').next() {
            Some("source") => "source",
            _ if says.contains("type") || says.contains("reqMethod") => "type",
            _ => "value",
        };
        let field = format!("policies[2].conditions[0].{part}");
        rejects(&with_condition(condition), &field, says);
    }
    rejects(
        &with_policies(&["name: third, conditions: [], backend: {mock: {body: third}}"]),
        "policies[2].conditions",
        "needs 1-5 conditions",
    );
    let six = ["system: reqMethod, type: equal, value: GET"; 6]
        .map(|c| format!("{{{c}}}"))
        .join(", ");
    rejects(
        &with_policies(&[&format!(
            "name: third, effect: all, conditions: [{six}], backend: {{mock: {{body: third}}}}"
        )]),
        "policies[2].conditions",
        "needs 1-5 conditions",
    );
}

#[test]
fn condition_errors_name_their_field() {
    rejects(
        &with_condition("source: \"10.0.0.300\""),
        "policies[2].conditions[0].source",
        "`10.0.0.300` is not an IP address",
    );
    rejects(
        &with_condition("system: reqMethod, type: pattern, value: \"G.*\""),
        "policies[2].conditions[0].type",
        "reqMethod takes equal or enum only",
    );
    rejects(
        &with_condition("param: tier, type: pattern, value: \"([\""),
        "policies[2].conditions[0].value",
        "bad pattern",
    );
    // The second condition of a policy is `conditions[1]`.
    rejects(
        &edit(
            API,
            "{system: reqPath, type: pattern, value: '^/v1\\.0/'}",
            "{system: reqPath, type: pattern, value: '(['}",
        ),
        "policies[1].conditions[1].value",
        "bad pattern",
    );
}

#[test]
fn policy_backend_variables_per_environment() {
    // `#vip#` has no value in TEST, where the API is published.
    let base = edit(
        BASE,
        "      TEST: { vip: \"127.0.0.1:9002\" }\n",
        "      TEST: { other: \"127.0.0.1:9002\" }\n",
    );
    refused_with(
        &base,
        API,
        ORCHESTRATED,
        &[(
            "policies[0].backend.http.address",
            "variable #vip# has no value in environment TEST (set it under group 'shop' variables.TEST)",
        )],
    );
    // In the path, in both environments.
    let apis = edit(API, "path: \"/vip/{test01}\"", "path: \"/#ver#/{test01}\"");
    refused_with(
        BASE,
        &apis,
        ORCHESTRATED,
        &[
            (
                "policies[0].backend.http.path",
                "variable #ver# has no value in environment RELEASE",
            ),
            (
                "policies[0].backend.http.path",
                "variable #ver# has no value in environment TEST",
            ),
        ],
    );
    // Not published to TEST: no value needed there.
    let s = Scratch::new("params-unpub");
    let (o, _) = compile(
        &s,
        &base,
        &edit(API, "publish: [RELEASE, TEST]", "publish: [RELEASE]"),
    );
    assert_ok(&o, "compile");
}

// -------------------------------------------------------------------- CORS

#[test]
fn preflight_api_needs_a_mock_backend() {
    let apis = edit(API, "    method: GET\n", "    method: OPTIONS\n");
    refused_at_one_of(&apis, &["backend.http", "policies[0].backend.http"]);
}
