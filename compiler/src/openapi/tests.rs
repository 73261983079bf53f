//! Round trips (import → export → import gives the same definitions;
//! export → import → export the same document), real documents, scale.

use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;
use serde_json::Value;

use super::import::{import, Options};
use super::report::Level;
use super::*;
use crate::defs::{
    AclDef, BackendDef, BackendParamDef, ConditionDef, GrantDef, HttpBackendDef, MockBackendDef,
    ParamDef, PolicyDef, Text,
};
use crate::tls::{BackendTlsDef, CertificateDef};
use pylon_filter::plan::{
    AclAction, AclKind, AppCodeMode, AuthKind, ConditionTest, Effect, Location, MatchMode, Method,
    ParamType, Protocol, RequestMode, SystemParam,
};

fn data(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/openapi")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

fn opts() -> Options {
    Options {
        backend: Some("http://127.0.0.1:9000".into()),
        publish: vec!["RELEASE".into()],
        ..Default::default()
    }
}

fn compiles(d: &DefsOut) {
    let admin = crate::ssrf::Admin {
        ip: [127, 0, 0, 1].into(),
        port: 9901,
    };
    if let Err(e) = crate::lower::lower(&located(d, Path::new("imported.yaml")), &admin) {
        panic!(
            "{}\n{}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            to_yaml(d)
        );
    }
}

/// Pem files for a certificate (the compiler checks they exist, Envoy reads them).
fn pem_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pylon-openapi-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["cert.pem", "key.pem"] {
        std::fs::write(dir.join(f), "pem\n").unwrap();
    }
    dir
}

/// `d` with a certificate for its group's domains, as a user adds after import.
fn with_certificate(d: &DefsOut) -> DefsOut {
    let dir = pem_dir();
    let mut d = d.clone();
    d.groups[0].certificates = vec![CertificateDef {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        domains: None,
        min_tls: Default::default(),
    }];
    d
}

fn export_doc(d: &DefsOut, f: Format, s: Scope) -> Value {
    export::export(&located(d, Path::new("x.yaml")), None, f, s)
        .unwrap()
        .doc
}

/// import → export → import gives the same definitions, and
/// export → import → export the same document.
fn round_trip(d1: &DefsOut, f: Format, s: Scope, o: &Options) {
    let mut doc1 = export_doc(d1, f, s);
    if f == Format::Openapi {
        // Plain OpenAPI cannot hold every backend: start from a document
        // that export wrote for what an import of it gives.
        let d = import(&serde_json::to_string(&doc1).unwrap(), o)
            .unwrap()
            .defs;
        doc1 = export_doc(&d, f, s);
    }
    let d2 = import(&serde_json::to_string(&doc1).unwrap(), o)
        .unwrap()
        .defs;
    let doc2 = export_doc(&d2, f, s);
    assert_eq!(
        doc1, doc2,
        "{f:?} {s:?}: export → import → export changed the document"
    );
    if s == Scope::Extended || (s == Scope::Full && f == Format::Openapi) {
        let d3 = import(&serde_json::to_string(&doc2).unwrap(), o)
            .unwrap()
            .defs;
        assert_eq!(to_yaml(&d2), to_yaml(&d3));
    }
    if f != Format::Openapi && s == Scope::Extended {
        assert_eq!(
            to_yaml(d1),
            to_yaml(&d2),
            "{f:?}: import → export → import changed the definitions"
        );
    }
}

#[test]
fn huawei_console_export_imports_compiles_and_reports_the_vpc_policy() {
    let imported = import(&data("huawei-export-example.json"), &opts()).unwrap();
    compiles(&with_certificate(&imported.defs));
    let api = &imported.defs.apis[0];
    assert_eq!(
        (api.name.as_str(), api.path.as_str(), api.auth),
        ("API_test", "/test/{path}", AuthKind::App)
    );
    let http = api.backend.http.as_ref().unwrap();
    assert_eq!(
        (http.address.as_str(), http.path.as_str()),
        ("1.1.1.1:443", "/test/{path}")
    );
    assert_eq!(api.backend.params.len(), 3);
    assert_eq!(api.parameters[2].kind, ParamType::Number);
    let refused: Vec<_> = imported
        .reports
        .iter()
        .filter(|r| r.level > Level::Note)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        refused[0].pointer,
        "#/paths/~1test~1{path}/get/x-apigateway-backend-policies/0/type"
    );
    assert_eq!(refused[0].operation, "GET /test/{path}");
}

#[test]
fn real_documents_import_compile_and_round_trip() {
    for (file, apis) in [
        ("huawei-export-example.json", 1),
        ("petstore-swagger2.json", 3),
        ("swagger-petstore-openapi3.yaml", 10),
    ] {
        let mut d = import(&data(file), &opts()).unwrap().defs;
        assert_eq!(d.apis.len(), apis, "{file}");
        if d.apis.iter().any(|a| a.protocol == Protocol::Https) {
            d = with_certificate(&d);
        }
        compiles(&d);
        for f in [Format::Huawei, Format::Aliyun, Format::Openapi] {
            for s in [Scope::Base, Scope::Full, Scope::Extended] {
                round_trip(&d, f, s, &opts());
            }
        }
    }
}

/// Ory's published client API (Apache 2.0, 171 operations): a larger
/// OpenAPI 3 document other people wrote. Imported with `--backend` as a
/// user would; every operation is imported or refused with its pointer.
#[test]
fn large_public_openapi3_imports_every_operation_or_reports_it() {
    let source = data("ory-client-openapi3.json");
    let doc: Value = serde_json::from_str(&source).unwrap();
    let start = Instant::now();
    let i = import(&source, &opts()).unwrap();
    compiles(&i.defs);
    let took = start.elapsed();
    let methods = [
        ("get", Method::Get),
        ("put", Method::Put),
        ("post", Method::Post),
        ("delete", Method::Delete),
        ("options", Method::Options),
        ("head", Method::Head),
        ("patch", Method::Patch),
        ("trace", Method::Any),
    ];
    let (mut total, mut imported, mut reported) = (0, 0, 0);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (key, method) in methods {
            if item.get(key).is_none() {
                continue;
            }
            total += 1;
            let at = format!("#/paths/{}/{key}", escape(path));
            if i.defs
                .apis
                .iter()
                .any(|a| a.path == *path && a.method == method)
            {
                imported += 1;
            } else if i.reports.iter().any(|r| {
                r.level == Level::Refused
                    && (r.pointer == at || r.pointer.starts_with(&format!("{at}/")))
            }) {
                reported += 1;
            } else {
                panic!("{at}: neither imported nor reported");
            }
        }
    }
    eprintln!(
        "{total} operations: {imported} imported, {reported} refused; import + compile {took:?}"
    );
    assert_eq!(total, 171);
    assert_eq!(imported + reported, total);
    assert_eq!(
        i.defs.apis.len(),
        imported,
        "one API per imported operation"
    );
    // The 125 behind HTTP bearer/basic, OAuth2 or an undefined scheme are
    // refused: Pylon cannot enforce them (a gateway must not open them).
    assert_eq!((imported, reported), (46, 125));
    for f in [Format::Huawei, Format::Aliyun, Format::Openapi] {
        for s in [Scope::Base, Scope::Full, Scope::Extended] {
            round_trip(&i.defs, f, s, &opts());
        }
    }
}

#[test]
fn a_security_requirement_naming_an_undefined_scheme_is_refused() {
    let doc = r#"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /settings:
    post:
      operationId: settings
      security: [{sessionToken: []}]
      responses: {200: {description: ok}}
"#;
    let i = import(doc, &opts()).unwrap();
    assert!(i.defs.apis.is_empty(), "opened without authentication");
    assert!(i.reports.iter().any(|r| r.level == Level::Refused
        && r.pointer == "#/paths/~1settings/post/security"
        && r.message.contains("not defined")));
}

#[test]
fn a_parameter_name_pylon_cannot_declare_is_reported_and_the_api_compiles() {
    let doc = r#"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /flows:
    get:
      operationId: flows
      parameters:
        - {name: return_session_token_exchange_code, in: query, schema: {type: boolean}}
        - {name: X_Token, in: header, schema: {type: string}}
        - {name: id, in: query, schema: {type: string}}
      responses: {200: {description: ok}}
"#;
    let i = import(doc, &opts()).unwrap();
    compiles(&i.defs);
    let names: Vec<_> = i.defs.apis[0].parameters.iter().map(|p| &p.name).collect();
    assert_eq!(names, ["id"]);
    for n in [0, 1] {
        let at = format!("#/paths/~1flows/get/parameters/{n}/name");
        assert!(
            i.reports
                .iter()
                .any(|r| r.level == Level::Unsupported && r.pointer == at),
            "{at}"
        );
    }
}

#[test]
fn huawei_export_with_https_scheme_imports_as_https_and_compiles_once_certified() {
    // The Huawei API reference's export: `schemes: [https]` is the API's
    // request protocol (user guide §5.2.1).
    let i = import(&data("huawei-export-example.json"), &opts()).unwrap();
    let api = &i.defs.apis[0];
    assert_eq!((api.protocol, api.websocket), (Protocol::Https, false));
    assert!(i.reports.iter().any(|r| r.level == Level::Note
        && r.pointer == "#"
        && r.message.contains("groups[].certificates")));
    // Without a certificate the compiler says what is missing ...
    let admin = crate::ssrf::Admin {
        ip: [127, 0, 0, 1].into(),
        port: 9901,
    };
    let Err(errs) = crate::lower::lower(&located(&i.defs, Path::new("imported.yaml")), &admin)
    else {
        panic!("HTTPS without a certificate compiles");
    };
    assert!(
        errs.iter()
            .any(|e| e.to_string().contains("HTTPS needs a certificate")),
        "{errs:?}"
    );
    // ... `pylon import` still writes the definitions (the console never
    // exports certificates), as HTTPS ...
    let out = std::env::temp_dir().join(format!("pylon-import-https-{}", std::process::id()));
    let file = out.join("export.json");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(&file, data("huawei-export-example.json")).unwrap();
    run_import(&[file], &out.join("defs"), false, &opts()).unwrap();
    let written = std::fs::read_to_string(out.join("defs/APIGroup_test.yaml")).unwrap();
    assert!(written.contains("protocol: HTTPS"), "{written}");
    std::fs::remove_dir_all(&out).ok();
    // ... and with one it compiles, and the certificate paths round-trip.
    let d = with_certificate(&i.defs);
    compiles(&d);
    let doc = export_doc(&d, Format::Huawei, Scope::Extended);
    assert_eq!(
        doc["paths"]["/test/{path}"]["get"]["schemes"],
        serde_json::json!(["https"])
    );
    round_trip(&d, Format::Huawei, Scope::Extended, &opts());
    round_trip(&d, Format::Aliyun, Scope::Extended, &opts());
}

#[test]
fn request_protocols_websocket_and_backend_tls_are_mapped() {
    let doc = r#"
swagger: "2.0"
info: {title: chat, version: "1"}
schemes: [http]
paths:
  /a:
    get:
      operationId: ali_wss
      x-aliyun-apigateway-auth-type: ANONYMOUS
      x-aliyun-apigateway-request-config: {requestProtocol: "HTTPS,WEBSOCKET", requestMode: MAPPING, bodyFormat: STREAM}
      x-aliyun-apigateway-backend: {type: HTTP, address: "https://127.0.0.1:9000", path: /a, method: get, timeout: 3000}
      responses: {200: {description: ok}}
  /b:
    get:
      operationId: ali_both
      x-aliyun-apigateway-auth-type: ANONYMOUS
      x-aliyun-apigateway-request-config: {requestProtocol: "HTTP,HTTPS"}
      x-aliyun-apigateway-websocket-api-type: COMMON
      x-aliyun-apigateway-backend: {type: MOCK, mockResult: ok}
      responses: {200: {description: ok}}
  /c:
    get:
      operationId: hw_root_http
      x-apigateway-backend:
        type: HTTP
        httpEndpoints: {address: "127.0.0.1:9000", scheme: https, method: GET, path: /c, timeout: 5000, enableClientSsl: true}
      responses: {default: {description: ok}}
  /d:
    get:
      operationId: swagger_ws
      schemes: [ws, https]
      x-apigateway-backend: {type: MOCK, mockEndpoints: {result-content: ok}}
      responses: {default: {description: ok}}
"#;
    let i = import(doc, &opts()).unwrap();
    let got: Vec<_> = i
        .defs
        .apis
        .iter()
        .map(|a| (a.name.as_str(), a.protocol, a.websocket, a.request_mode))
        .collect();
    assert_eq!(
        got,
        [
            ("ali_wss", Protocol::Https, true, RequestMode::Mapping),
            (
                "ali_both",
                Protocol::Both,
                true,
                RequestMode::MappingPassthrough
            ),
            (
                "hw_root_http",
                Protocol::Http,
                false,
                RequestMode::MappingPassthrough
            ),
            (
                "swagger_ws",
                Protocol::Both,
                true,
                RequestMode::MappingPassthrough
            ),
        ]
    );
    // Huawei's mutual TLS flag without Pylon's file paths is reported.
    assert!(i.reports.iter().any(|r| r.level == Level::Unsupported
        && r.pointer == "#/paths/~1c/get/x-apigateway-backend/httpEndpoints/enableClientSsl"));
    // Huawei takes WebSocket on every API (user guide §8.3.13): said once.
    assert!(i
        .reports
        .iter()
        .any(|r| r.pointer == "#" && r.message.contains("§8.3.13")));
    // Alibaba's export writes the protocol back with WEBSOCKET.
    let mut d = i.defs.clone();
    d.apis[2].backend.http.as_mut().unwrap().tls = Some(BackendTlsDef {
        ca: Some("tls/ca.pem".into()),
        cert: Some("tls/gw.pem".into()),
        key: Some("tls/gw.key".into()),
        insecure_skip_verify: false,
    });
    let ali = export_doc(&d, Format::Aliyun, Scope::Full);
    assert_eq!(
        ali["paths"]["/a"]["get"]["x-aliyun-apigateway-request-config"]["requestProtocol"],
        "HTTPS,WEBSOCKET"
    );
    let hw = export_doc(&d, Format::Huawei, Scope::Full);
    let e = &hw["paths"]["/c"]["get"]["x-apigateway-backend"]["httpEndpoints"];
    assert_eq!(e["enableClientSsl"], true);
    assert_eq!(e["x-pylon-tls"]["key"], "tls/gw.key");
    assert_eq!(hw["paths"]["/d"]["get"]["x-pylon-websocket"], true);
    let again = import(&hw.to_string(), &opts()).unwrap();
    assert!(!again
        .reports
        .iter()
        .any(|r| r.pointer.ends_with("enableClientSsl")));
    for f in [Format::Huawei, Format::Aliyun] {
        round_trip(&d, f, Scope::Extended, &opts());
    }
}

#[test]
fn openapi3_vendor_export_takes_the_protocol_from_its_servers() {
    // With a vendor backend, `servers` are the gateway's addresses.
    let doc = r#"
openapi: 3.0.1
info: {title: g, version: "1"}
servers: [{url: "https://g.example.com"}]
paths:
  /a:
    get:
      operationId: a
      x-apigateway-backend: {type: MOCK, mockEndpoints: {result-content: ok}}
      responses: {default: {description: ok}}
  /b:
    get:
      operationId: b
      servers: [{url: "http://g.example.com"}, {url: "https://g.example.com"}]
      x-apigateway-backend: {type: MOCK, mockEndpoints: {result-content: ok}}
      responses: {default: {description: ok}}
"#;
    let d = import(doc, &opts()).unwrap().defs;
    assert_eq!(d.apis[0].protocol, Protocol::Https);
    assert_eq!(d.apis[1].protocol, Protocol::Both);
    // Without one, `servers` name the backend and the protocol stays both.
    let plain = import(&data("swagger-petstore-openapi3.yaml"), &opts()).unwrap();
    assert!(plain.defs.apis.iter().all(|a| a.protocol == Protocol::Both));
}

#[test]
fn petstore_base_path_and_integer_are_reported() {
    let i = import(&data("petstore-swagger2.json"), &opts()).unwrap();
    assert_eq!(i.defs.apis[0].path, "/v1/pets");
    assert!(i
        .reports
        .iter()
        .any(|r| r.pointer == "#/paths/~1pets/get/parameters/0/type"
            && r.level == Level::Unsupported));
}

#[test]
fn alibaba_documented_extensions_are_mapped() {
    let doc = r#"
swagger: "2.0"
info: {title: shop, version: "1"}
x-aliyun-apigateway-paramater-handling: MAPPING
x-aliyun-apigateway-backend: {type: HTTP, address: "http://127.0.0.1:9000", path: "/backend/[id]", method: get, timeout: 3000}
paths:
  /items/{id}:
    get:
      operationId: getItem
      x-aliyun-apigateway-auth-type: APP
      x-aliyun-apigateway-allow-signature-method: HmacSHA1,HmacSHA256
      x-aliyun-apigateway-app-code-auth-type: HEADER_QUERY
      x-aliyun-apigateway-backend: {type: HTTP, address: "http://127.0.0.1:9000", path: "/backend/{bid}", method: get, timeout: 3000}
      parameters:
        - {name: id, in: path, required: true, type: string, x-aliyun-apigateway-backend-location: path, x-aliyun-apigateway-backend-name: bid}
        - {name: q, in: query, type: string, x-aliyun-apigateway-enum: "a,b"}
      x-aliyun-apigateway-constant-parameters:
        - {backendName: tenant, value: "[apig]", location: query}
      x-aliyun-apigateway-system-parameters:
        - {systemName: CaClientIp, backendName: X-Real-IP, location: header}
        - {systemName: CaHttpSchema, backendName: X-Scheme, location: header}
        - {systemName: CaDomain, backendName: host, location: query}
      responses: {200: {description: ok}}
  /mock:
    x-aliyun-apigateway-any-method:
      operationId: mocked
      x-aliyun-apigateway-auth-type: ANONYMOUS
      x-aliyun-apigateway-backend: {type: MOCK, mockResult: '{"ok":true}', mockStatusCode: 201}
      responses: {200: {description: ok}}
"#;
    let i = import(doc, &opts()).unwrap();
    let d = &i.defs;
    compiles(d);
    let a = &d.apis[0];
    assert_eq!(
        (a.auth, a.allow_hmac_sha1, a.app_code, a.request_mode),
        (
            AuthKind::App,
            true,
            AppCodeMode::HttpAllowed,
            RequestMode::Mapping
        )
    );
    assert_eq!(a.backend.params.len(), 5);
    assert_eq!(a.backend.params[1].constant, Some(Text("[apig]".into())));
    let systems: Vec<_> = a.backend.params[2..].iter().map(|p| p.system).collect();
    assert_eq!(
        systems,
        [
            Some(SystemParam::SourceIp),
            Some(SystemParam::Protocol),
            Some(SystemParam::Domain)
        ]
    );
    assert_eq!(d.apis[1].method, Method::Any);
    assert_eq!(d.apis[1].backend.mock.as_ref().unwrap().status, 201);
    for f in [Format::Huawei, Format::Aliyun] {
        round_trip(d, f, Scope::Extended, &opts());
    }
    // The Alibaba export names them as Alibaba's console does, so a document
    // taken back to Alibaba keeps them.
    let doc = export_doc(d, Format::Aliyun, Scope::Full);
    let op = &doc["paths"]["/items/{id}"]["get"];
    let names: Vec<_> = op["x-aliyun-apigateway-system-parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["systemName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["CaClientIp", "CaHttpSchema", "CaDomain"]);
    assert!(op.get("x-pylon-backend-parameters").is_none());
}

#[test]
fn unsupported_backends_and_authorizers_are_refused_with_their_pointer() {
    let doc = r#"{"swagger":"2.0","info":{"title":"g","version":"1"},
      "securityDefinitions":{"custom":{"type":"apiKey","name":"x","in":"header","x-apigateway-auth-type":"AUTHORIZER"}},
      "paths":{"/f":{"get":{"operationId":"fn","x-apigateway-backend":{"type":"FUNCTION","functionEndpoints":{"function-urn":"urn:x","version":"latest","invocation-type":"sync","timeout":5000}},"responses":{}}},
               "/c":{"get":{"operationId":"custom","security":[{"custom":[]}],"x-apigateway-backend":{"type":"MOCK","mockEndpoints":{"result-content":"x"}},"responses":{}}}}}"#;
    let i = import(doc, &Options::default()).unwrap();
    assert!(i.defs.apis.is_empty());
    let ptrs: Vec<_> = i
        .reports
        .iter()
        .filter(|r| r.level == Level::Refused)
        .map(|r| r.pointer.as_str())
        .collect();
    assert!(
        ptrs.contains(&"#/paths/~1f/get/x-apigateway-backend/type"),
        "{ptrs:?}"
    );
    assert!(ptrs.contains(&"#/paths/~1c/get/security"), "{ptrs:?}");
}

#[test]
fn exports_hold_no_secret() {
    let text = "apps: [{name: m, key: 9772d51c5b6a31bb30d74233fa74a8f6, secret: TopSecretValue123, codes: [CodeValue12345678], authorizations: []}]\n\
        accounts: [{name: t, ak: AK000001, sk: SkValue987654}]\n\
        groups: [{name: g}]\n\
        apis: [{name: a, group: g, method: GET, path: /a, auth: app, backend: {mock: {body: x}}}]\n";
    let dir = std::env::temp_dir().join(format!("pylon-export-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("d.yaml"), text).unwrap();
    let defs = crate::defs::load(std::slice::from_ref(&dir)).unwrap();
    for f in [Format::Huawei, Format::Aliyun, Format::Openapi] {
        let doc = export::export(&defs, None, f, Scope::Extended)
            .unwrap()
            .doc
            .to_string();
        for s in [
            "TopSecretValue123",
            "CodeValue12345678",
            "SkValue987654",
            "9772d51c",
        ] {
            assert!(!doc.contains(s), "{f:?} exported {s}");
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

/// A Huawei document with `n` APIs, as a console export writes them.
fn big_doc(n: usize) -> String {
    let mut paths = serde_json::Map::new();
    for i in 0..n {
        paths.insert(format!("/svc{}/items{i}/{{id}}", i % 7), serde_json::json!({"get": {
            "operationId": format!("api{i}"),
            "security": [{"apig-auth-app": []}],
            "parameters": [{"name": "id", "in": "path", "required": true, "type": "string"},
                           {"name": "q", "in": "query", "type": "number", "maximum": 100}],
            "x-apigateway-match-mode": "NORMAL",
            "x-apigateway-backend": {"type": "HTTP", "httpEndpoints": {"address": "10.0.0.5:8080", "scheme": "http", "method": "GET", "path": "/items/{id}", "timeout": 5000},
                "parameters": [{"name": "X-Q", "in": "HEADER", "origin": "REQUEST", "value": "q"}]},
            "responses": {"default": {"description": "ok"}}
        }}));
    }
    serde_json::json!({"swagger": "2.0", "info": {"title": "big", "version": "1"}, "paths": paths,
        "securityDefinitions": {"apig-auth-app": {"type": "apiKey", "name": "Authorization", "in": "header", "x-apigateway-auth-type": "AppSigv1"}}}).to_string()
}

fn import_and_compile(n: usize) -> std::time::Duration {
    let doc = big_doc(n);
    let t = Instant::now();
    let d = import(&doc, &opts()).unwrap().defs;
    assert_eq!(d.apis.len(), n);
    compiles(&d);
    t.elapsed()
}

#[test]
fn three_hundred_apis_import_and_compile_well_under_a_second() {
    // The Huawei console imports at most 300 APIs per file (user guide §8.7.1).
    let took = import_and_compile(300);
    eprintln!("300 APIs: {took:?}");
    assert!(took.as_millis() < 1000, "{took:?}");
}

/// `cargo test --release -p pylon ten_thousand -- --ignored --nocapture`
#[test]
#[ignore]
fn ten_thousand_apis() {
    eprintln!("10000 APIs: {:?}", import_and_compile(10_000));
}

// ---- generated definitions ----

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,8}"
}

fn param() -> impl Strategy<Value = ParamDef> {
    (
        name(),
        prop_oneof![Just(Location::Query), Just(Location::Header)],
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(0u32..20),
        proptest::option::of("[a-z]{1,5}"),
    )
        .prop_map(|(n, loc, number, required, max_length, default)| ParamDef {
            // Header parameter names take no `_` (Huawei user guide §5.2.1):
            // the importer leaves such a name undeclared.
            name: match loc {
                Location::Header => format!("p{n}").replace('_', "-"),
                _ => format!("p{n}"),
            },
            location: loc,
            kind: if number {
                ParamType::Number
            } else {
                ParamType::String
            },
            required,
            default: if number {
                default.map(|_| Text("7".into()))
            } else {
                default.map(Text)
            },
            min_length: None,
            max_length: if number { None } else { max_length },
            min: if number { Some(1.0) } else { None },
            max: if number { Some(100.5) } else { None },
            allowed: Vec::new(),
            pattern: None,
            description: String::new(),
        })
}

fn backend(params: Vec<BackendParamDef>) -> impl Strategy<Value = BackendDef> {
    prop_oneof![
        (
            any::<bool>(),
            1u32..60000,
            proptest::option::of(Just(Method::Post)),
            0u8..4,
        )
            .prop_map(move |(https, timeout, method, tls)| BackendDef {
                http: Some(HttpBackendDef {
                    address: "127.0.0.1:9000".into(),
                    scheme: if https {
                        crate::defs::Scheme::Https
                    } else {
                        crate::defs::Scheme::Http
                    },
                    path: "/b/{id}".into(),
                    method,
                    timeout,
                    allow_internal_address: false,
                    tls: match tls {
                        _ if !https => None,
                        1 => Some(BackendTlsDef {
                            ca: Some("tls/ca.pem".into()),
                            ..Default::default()
                        }),
                        2 => Some(BackendTlsDef {
                            ca: Some("tls/ca.pem".into()),
                            cert: Some("tls/gw.pem".into()),
                            key: Some("tls/gw.key".into()),
                            insecure_skip_verify: false,
                        }),
                        3 => Some(BackendTlsDef {
                            insecure_skip_verify: true,
                            ..Default::default()
                        }),
                        _ => None,
                    },
                }),
                mock: None,
                params: params.clone(),
            }),
        (200u16..600, "[a-z ]{0,10}").prop_map(|(status, body)| BackendDef {
            http: None,
            mock: Some(MockBackendDef {
                status,
                headers: Default::default(),
                body
            }),
            params: Vec::new(),
        }),
    ]
}

fn api(i: usize) -> impl Strategy<Value = ApiDef> {
    (
        proptest::collection::vec(param(), 0..3),
        prop_oneof![
            Just(AuthKind::None),
            Just(AuthKind::App),
            Just(AuthKind::Iam)
        ],
        prop_oneof![
            Just(AppCodeMode::Disabled),
            Just(AppCodeMode::Https),
            Just(AppCodeMode::HttpAllowed)
        ],
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(RequestMode::MappingPassthrough),
            Just(RequestMode::Mapping)
        ],
        prop_oneof![Just(Method::Get), Just(Method::Post), Just(Method::Any)],
        "[a-z ]{0,12}",
        0usize..16,
        (
            prop_oneof![
                Just(Protocol::Both),
                Just(Protocol::Http),
                Just(Protocol::Https)
            ],
            any::<bool>(),
        ),
    )
        .prop_flat_map(
            move |(
                mut params,
                auth,
                app_code,
                cors,
                sha1,
                mode,
                method,
                description,
                mapping,
                protocol,
            )| {
                params.dedup_by(|a, b| a.name == b.name);
                let mut bps = vec![];
                if mapping & 1 == 1 {
                    bps.push(BackendParamDef {
                        name: "X-Const".into(),
                        location: Location::Header,
                        from: None,
                        constant: Some(Text("[c]".into())),
                        system: None,
                        description: String::new(),
                    });
                }
                if mapping & 2 == 2 {
                    bps.push(BackendParamDef {
                        name: "X-Ip".into(),
                        location: Location::Header,
                        from: None,
                        constant: None,
                        // Alibaba names each of these (CaClientIp, CaHttpSchema, CaDomain).
                        system: Some(
                            [
                                SystemParam::SourceIp,
                                SystemParam::Protocol,
                                SystemParam::Domain,
                                SystemParam::Stage,
                            ][mapping >> 2],
                        ),
                        description: String::new(),
                    });
                }
                if let Some(p) = params.first() {
                    bps.insert(
                        0,
                        BackendParamDef {
                            name: "mapped".into(),
                            location: Location::Query,
                            from: Some(p.name.clone()),
                            constant: None,
                            system: None,
                            description: String::new(),
                        },
                    );
                }
                let app_code = if auth == AuthKind::App {
                    app_code
                } else {
                    AppCodeMode::Disabled
                };
                (
                    backend(bps),
                    Just((
                        params,
                        auth,
                        app_code,
                        cors,
                        sha1,
                        mode,
                        method,
                        description,
                        protocol,
                    )),
                    any::<bool>(),
                )
            },
        )
        .prop_map(
            move |(
                backend,
                (parameters, auth, app_code, cors, sha1, mode, method, description, protocol),
                policy,
            )| {
                let policies = if policy && backend.http.is_some() {
                    vec![PolicyDef {
                        name: "office".into(),
                        effect: Effect::All,
                        conditions: vec![
                            ConditionDef {
                                source: Some(Text("10.0.0.0/8".into())),
                                param: None,
                                system: None,
                                test: None,
                                value: None,
                            },
                            ConditionDef {
                                source: None,
                                param: None,
                                system: Some(crate::defs::SystemCondition::ReqMethod),
                                test: Some(ConditionTest::Enum),
                                value: Some(Text("GET,POST".into())),
                            },
                        ],
                        backend: BackendDef {
                            http: None,
                            mock: Some(MockBackendDef {
                                status: 203,
                                headers: [("x-a".to_string(), "1".to_string())].into(),
                                body: "p".into(),
                            }),
                            params: vec![],
                        },
                    }]
                } else {
                    vec![]
                };
                ApiDef {
                    name: format!("api{i}"),
                    group: "g".into(),
                    description,
                    method,
                    path: format!("/r{i}/{{id}}"),
                    match_mode: if i.is_multiple_of(2) {
                        MatchMode::Exact
                    } else {
                        MatchMode::Prefix
                    },
                    backend,
                    publish: vec!["RELEASE".into()],
                    response: None,
                    auth,
                    allow_hmac_sha1: sha1 && auth == AuthKind::App,
                    app_code,
                    request_mode: mode,
                    cors,
                    protocol: protocol.0,
                    websocket: protocol.1,
                    parameters,
                    policies,
                }
            },
        )
}

fn defs() -> impl Strategy<Value = DefsOut> {
    (api(0), api(1), api(2), 1u64..100, any::<bool>()).prop_map(|(a, b, c, limit, tls)| DefsOut {
        environments: vec![],
        groups: vec![crate::defs::GroupDef {
            name: "g".into(),
            description: "generated".into(),
            domains: vec!["g.example.com".into()],
            default: true,
            variables: Default::default(),
            responses: Default::default(),
            certificates: if tls {
                vec![CertificateDef {
                    cert: "tls/g.pem".into(),
                    key: "tls/g.key".into(),
                    domains: Some(vec!["g.example.com".into()]),
                    min_tls: crate::tls::MinTls::Tls11,
                }]
            } else {
                Vec::new()
            },
        }],
        throttles: vec![crate::defs::ThrottleDef {
            name: "t".into(),
            description: String::new(),
            unit: crate::defs::TimeUnit::Minute,
            interval: 2,
            api_limit: limit + 10,
            user_limit: Some(limit),
            app_limit: None,
            ip_limit: None,
            shared: false,
            special_apps: [("mobile".to_string(), 3)].into(),
            special_users: Default::default(),
            bindings: vec![GrantDef {
                group: "g".into(),
                api: "api0".into(),
                environments: vec!["RELEASE".into()],
            }],
        }],
        acls: vec![AclDef {
            name: "office".into(),
            description: String::new(),
            kind: AclKind::Ip,
            action: AclAction::Deny,
            values: vec!["10.0.0.0/8".into(), "192.0.2.7".into()],
            bindings: vec![GrantDef {
                group: "g".into(),
                api: "api1".into(),
                environments: vec!["RELEASE".into()],
            }],
        }],
        apis: vec![a, b, c],
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn generated_definitions_round_trip(d in defs()) {
        // import → export → import: start from what an import produces.
        let o = Options { publish: vec!["RELEASE".into()], ..Default::default() };
        for f in [Format::Huawei, Format::Aliyun] {
            let doc = export_doc(&d, f, Scope::Extended);
            let d1 = import(&serde_json::to_string(&doc).unwrap(), &o).unwrap().defs;
            prop_assert_eq!(to_yaml(&d), to_yaml(&d1));
            round_trip(&d1, f, Scope::Extended, &o);
            round_trip(&d1, f, Scope::Full, &o);
        }
    }
}
