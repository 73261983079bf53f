//! Runs the real `pylon` binary on broken definitions: every error must name
//! the file, the object and the field, and nothing may be written.

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A valid definition set split over two files; tests break it with `edit`.
const GATEWAY: &str = r#"environments:
  - name: TEST
groups:
  - name: shop
    default: true
    domains: [shop.example.com]
    variables:
      RELEASE: { backend: "127.0.0.1:8081" }
      TEST: { backend: "127.0.0.1:8082" }
    responses:
      friendly:
        BACKEND_UNAVAILABLE:
          status: 503
          body: '{"code":"$context.error.code"}'
"#;

const APIS: &str = r##"apis:
  - name: get-item
    group: shop
    method: GET
    path: /items/{id}
    backend:
      http:
        address: "#backend#"
        path: /v1/items/{id}
        timeout: 3000
    publish: [RELEASE, TEST]
    response: friendly
  - name: health
    group: shop
    method: GET
    path: /health
    backend:
      mock:
        status: 200
        body: ok
    publish: [RELEASE]
"##;

/// An API appended to `APIS`.
fn with_api(apis: &str, name: &str, path: &str, backend_path: &str, publish: &str) -> String {
    format!(
        "{apis}  - name: {name}\n    group: shop\n    method: GET\n    path: \"{path}\"\n    \
         backend:\n      http:\n        address: \"#backend#\"\n        path: \"{backend_path}\"\n    \
         publish: [{publish}]\n"
    )
}

/// Writes `files` into `defs/` and a stand-in filter module.
fn defs(s: &Scratch, files: &[(&str, &str)]) -> (PathBuf, PathBuf) {
    for (name, text) in files {
        s.write(&format!("defs/{name}"), text);
    }
    let wasm = s.write("filter.wasm", STAND_IN_WASM);
    (s.path("defs"), wasm)
}

fn pylon(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pylon"))
        .args(args)
        .env_remove("PYLON_WASM")
        .output()
        .expect("run pylon")
}

fn compile(defs: &Path, out: &Path, wasm: &Path) -> Output {
    pylon(&[&"compile", &defs, &"--out", &out, &"--wasm", &wasm])
}

/// One expected error: `error: FILE: OBJECT.FIELD: ...SAYS...`.
struct Want<'a> {
    /// File name inside `defs/`.
    file: &'a str,
    /// `api 'x'`, `group 'x'`, ...; empty for file-level errors.
    object: &'a str,
    /// Empty when the error has no field.
    field: &'a str,
    /// Part of the message.
    says: &'a str,
}

fn assert_reports(o: &Output, defs: &Path, wants: &[Want]) {
    let err = stderr(o);
    assert_failed_quietly(o);
    for w in wants {
        let file = defs.join(w.file);
        let found = if w.object.is_empty() {
            // A file-level error: located when the YAML parser says where.
            let prefix = format!("error: {}", file.display());
            err.lines()
                .any(|l| l.starts_with(&prefix) && l.contains(w.says))
        } else {
            let mut what = w.object.to_string();
            if !w.field.is_empty() {
                what += &format!(".{}", w.field);
            }
            has_located(&err, &file, &format!("{what}: "), w.says)
        };
        assert!(
            found,
            "no error in {} on {} {} containing `{}` in:\n{err}",
            w.file, w.object, w.field, w.says
        );
    }
    assert_error_count(&err, wants.len());
}

/// `validate` and `compile` both reject `files` with exactly `wants`, and
/// `compile` writes nothing: neither a new output directory nor over an
/// existing `envoy.yaml`.
fn rejects(files: &[(&str, &str)], wants: &[Want]) {
    let s = Scratch::new("rejects");
    let (defs, wasm) = defs(&s, files);

    assert_reports(&pylon(&[&"validate", &defs]), &defs, wants);

    let fresh = s.path("out-new");
    assert_reports(&compile(&defs, &fresh, &wasm), &defs, wants);
    assert!(!fresh.exists(), "{} was created", fresh.display());

    let before = "# an earlier, working configuration\nadmin: {}\n";
    let existing = s.path("out-old");
    s.write("out-old/envoy.yaml", before);
    assert_reports(&compile(&defs, &existing, &wasm), &defs, wants);
    assert_eq!(
        fs::read_to_string(existing.join("envoy.yaml")).unwrap(),
        before
    );
    let left: Vec<_> = fs::read_dir(&existing)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        ["envoy.yaml"],
        "files appeared in {}",
        existing.display()
    );
}

/// `rejects` for a single broken API added to the valid set.
fn rejects_api(apis: &str, wants: &[Want]) {
    rejects(&[("gateway.yaml", GATEWAY), ("apis.yaml", apis)], wants);
}

/// `validate` and `compile` accept `files`.
fn accepts(files: &[(&str, &str)]) {
    let s = Scratch::new("accepts");
    let (defs, wasm) = defs(&s, files);
    let v = pylon(&[&"validate", &defs]);
    assert_ok(&v, "validate");
    assert!(stdout(&v).starts_with("ok: "), "{}", stdout(&v));
    let out = s.path("out");
    assert_ok(&compile(&defs, &out, &wasm), "compile");
    assert!(out.join("envoy.yaml").is_file());
}

#[test]
fn the_base_definitions_are_valid() {
    accepts(&[("gateway.yaml", GATEWAY), ("apis.yaml", APIS)]);
}

// --- 1. malformed YAML ---

#[test]
fn malformed_yaml() {
    let apis = edit(
        APIS,
        "method: GET\n    path: /health",
        "method: [GET\n    path: /health",
    );
    rejects_api(
        &apis,
        &[Want {
            file: "apis.yaml",
            object: "",
            field: "",
            says: "malformed YAML",
        }],
    );
}

// --- 2. unknown fields ---

#[test]
fn unknown_top_level_field() {
    let gateway = format!("{GATEWAY}gatway:\n  listen: 127.0.0.1:8080\n");
    rejects(
        &[("gateway.yaml", &gateway), ("apis.yaml", APIS)],
        &[Want {
            file: "gateway.yaml",
            object: "(file)",
            field: "gatway",
            says: "unknown field `gatway`",
        }],
    );
}

#[test]
fn unknown_field_in_an_api() {
    rejects_api(
        &edit(APIS, "path: /items/{id}", "pathh: /items/{id}"),
        &[Want {
            file: "apis.yaml",
            object: "api 'get-item'",
            field: "pathh",
            says: "unknown field `pathh`",
        }],
    );
}

#[test]
fn unknown_field_nested_in_backend_http() {
    rejects_api(
        &edit(APIS, "address: \"#backend#\"", "adress: \"#backend#\""),
        &[Want {
            file: "apis.yaml",
            object: "api 'get-item'",
            field: "backend.http.adress",
            says: "unknown field `adress`",
        }],
    );
}

// --- 3. dangling references ---

#[test]
fn api_group_that_does_not_exist() {
    rejects_api(
        &edit(
            APIS,
            "get-item\n    group: shop",
            "get-item\n    group: shops",
        ),
        &[Want {
            file: "apis.yaml",
            object: "api 'get-item'",
            field: "group",
            says: "no group named 'shops'",
        }],
    );
}

#[test]
fn api_published_to_an_environment_that_does_not_exist() {
    rejects_api(
        &edit(APIS, "publish: [RELEASE, TEST]", "publish: [STAGING, TEST]"),
        &[Want {
            file: "apis.yaml",
            object: "api 'get-item'",
            field: "publish[0]",
            says: "no environment named 'STAGING'",
        }],
    );
}

#[test]
fn api_response_set_that_does_not_exist() {
    rejects_api(
        &edit(APIS, "response: friendly", "response: chatty"),
        &[Want {
            file: "apis.yaml",
            object: "api 'get-item'",
            field: "response",
            says: "group 'shop' has no response set named 'chatty'",
        }],
    );
}

#[test]
fn group_variables_for_an_environment_that_does_not_exist() {
    let gateway = edit(
        GATEWAY,
        "      TEST: { backend",
        "      PROD: { backend: \"10.0.0.1\" }\n      TEST: { backend",
    );
    rejects(
        &[("gateway.yaml", &gateway), ("apis.yaml", APIS)],
        &[Want {
            file: "gateway.yaml",
            object: "group 'shop'",
            field: "variables.PROD",
            says: "no environment named 'PROD'",
        }],
    );
}

// --- 4. duplicate routes ---

#[test]
fn same_route_shape_in_the_same_environment() {
    rejects_api(
        &with_api(
            APIS,
            "get-item-2",
            "/items/{key}",
            "/v2/items/{key}",
            "TEST",
        ),
        &[Want {
            file: "apis.yaml",
            object: "api 'get-item-2'",
            field: "path",
            says: "api 'get-item' already serves GET /items/{key} in environment TEST",
        }],
    );
}

#[test]
fn same_route_shape_in_different_environments_is_fine() {
    let apis = edit(APIS, "publish: [RELEASE, TEST]", "publish: [RELEASE]");
    let apis = with_api(
        &apis,
        "get-item-2",
        "/items/{key}",
        "/v2/items/{key}",
        "TEST",
    );
    accepts(&[("gateway.yaml", GATEWAY), ("apis.yaml", &apis)]);
}

// --- 5. path templates ---

fn rejects_path(path: &str, says: &str) {
    rejects_api(
        &with_api(APIS, "bad-path", path, "/", "RELEASE"),
        &[Want {
            file: "apis.yaml",
            object: "api 'bad-path'",
            field: "path",
            says,
        }],
    );
}

#[test]
fn path_parameter_must_be_a_whole_segment() {
    rejects_path("/abc{id}", "a parameter must be a whole segment");
}

#[test]
fn path_greedy_parameter_must_be_last() {
    rejects_path("/{p+}/more", "`{p+}` must be the last segment");
}

#[test]
fn path_greedy_parameter_needs_exact_matching() {
    let apis = edit(
        &with_api(APIS, "bad-path", "/{p+}", "/", "RELEASE"),
        "path: \"/{p+}\"",
        "path: \"/{p+}\"\n    match: prefix",
    );
    rejects_api(
        &apis,
        &[Want {
            file: "apis.yaml",
            object: "api 'bad-path'",
            field: "path",
            says: "only allowed with exact matching",
        }],
    );
}

#[test]
fn path_must_start_with_a_slash() {
    rejects_path("items/{id}", "must start with `/`");
}

#[test]
fn backend_path_parameter_must_come_from_the_request_path() {
    rejects_api(
        &with_api(APIS, "bad-param", "/things/{id}", "/v1/{name}", "RELEASE"),
        &[Want {
            file: "apis.yaml",
            object: "api 'bad-param'",
            field: "backend.http.path",
            says: "backend path uses `{name}`",
        }],
    );
}

// --- 6. variables per environment ---

const GATEWAY_NO_TEST_BACKEND: &str = r#"environments:
  - name: TEST
groups:
  - name: shop
    default: true
    variables:
      RELEASE: { backend: "127.0.0.1:8081" }
      TEST: { other: "x" }
"#;

#[test]
fn variable_unset_in_a_published_environment() {
    rejects(
        &[
            ("gateway.yaml", GATEWAY_NO_TEST_BACKEND),
            ("apis.yaml", &edit(APIS, "    response: friendly\n", "")),
        ],
        &[Want {
            file: "apis.yaml",
            object: "api 'get-item'",
            field: "backend.http.address",
            says: "variable #backend# has no value in environment TEST",
        }],
    );
}

#[test]
fn variable_unset_only_where_not_published_is_fine() {
    let apis = edit(APIS, "    response: friendly\n", "");
    let apis = edit(&apis, "publish: [RELEASE, TEST]", "publish: [RELEASE]");
    accepts(&[
        ("gateway.yaml", GATEWAY_NO_TEST_BACKEND),
        ("apis.yaml", &apis),
    ]);
}

// --- 7. other checks ---

#[test]
fn backend_address_with_a_scheme() {
    rejects_api(
        &edit(APIS, "address: \"#backend#\"", "address: \"http://x\""),
        &[Want {
            file: "apis.yaml",
            object: "api 'get-item'",
            field: "backend.http.address",
            says: "`http://x`: must be `host[:port]`",
        }],
    );
}

#[test]
fn backend_timeout_zero_is_reported_once() {
    // Published to two environments, but the timeout is the same in both.
    rejects_api(
        &edit(APIS, "timeout: 3000", "timeout: 0"),
        &[Want {
            file: "apis.yaml",
            object: "api 'get-item'",
            field: "backend.http.timeout",
            says: "timeout must be 1-600000 ms",
        }],
    );
}

#[test]
fn unpublished_api_backend_is_still_checked() {
    let apis = edit(APIS, "    publish: [RELEASE, TEST]\n", "");
    let apis = edit(&apis, "address: \"#backend#\"", "address: \"http://x\"");
    let apis = edit(&apis, "timeout: 3000", "timeout: 0");
    let apis = edit(&apis, "status: 200", "status: 99");
    rejects_api(
        &apis,
        &[
            Want {
                file: "apis.yaml",
                object: "api 'get-item'",
                field: "backend.http.address",
                says: "`http://x`",
            },
            Want {
                file: "apis.yaml",
                object: "api 'get-item'",
                field: "backend.http.timeout",
                says: "timeout must be",
            },
            Want {
                file: "apis.yaml",
                object: "api 'health'",
                field: "backend.mock.status",
                says: "status must be 200-599",
            },
        ],
    );
}

#[test]
fn duplicate_group_name() {
    let gateway = format!("{GATEWAY}  - name: shop\n    domains: [other.example.com]\n");
    rejects(
        &[("gateway.yaml", &gateway), ("apis.yaml", APIS)],
        &[Want {
            file: "gateway.yaml",
            object: "group 'shop'",
            field: "name",
            says: "another group has this name",
        }],
    );
}

#[test]
fn two_default_groups() {
    rejects(
        &[
            ("gateway.yaml", GATEWAY),
            ("more.yaml", "groups:\n  - name: extra\n    default: true\n"),
            ("apis.yaml", APIS),
        ],
        &[Want {
            file: "more.yaml",
            object: "group 'extra'",
            field: "default",
            says: "group 'shop' is already the default group",
        }],
    );
}

#[test]
fn domain_bound_to_two_groups() {
    let more = "groups:\n  - name: extra\n    domains: [a.example.com, Shop.Example.com]\n";
    rejects(
        &[
            ("gateway.yaml", GATEWAY),
            ("more.yaml", more),
            ("apis.yaml", APIS),
        ],
        &[Want {
            file: "more.yaml",
            object: "group 'extra'",
            field: "domains[1]",
            says: "domain `Shop.Example.com` is already bound to group 'shop'",
        }],
    );
}

#[test]
fn unknown_response_template_variable() {
    rejects(
        &[
            (
                "gateway.yaml",
                &edit(GATEWAY, "$context.error.code", "$context.nope"),
            ),
            ("apis.yaml", APIS),
        ],
        &[Want {
            file: "gateway.yaml",
            object: "group 'shop'",
            field: "responses.friendly.BACKEND_UNAVAILABLE.body",
            says: "unknown variable `$context.nope`",
        }],
    );
}

#[test]
fn errors_in_several_files_are_all_reported() {
    rejects(
        &[
            ("gateway.yaml", &format!("{GATEWAY}: [\n")),
            (
                "apis.yaml",
                &edit(APIS, "timeout: 3000", "timeout: 3000\n        tls_mode: on"),
            ),
        ],
        &[
            Want {
                file: "gateway.yaml",
                object: "",
                field: "",
                says: "malformed YAML",
            },
            Want {
                file: "apis.yaml",
                object: "api 'get-item'",
                field: "backend.http.tls_mode",
                says: "unknown field `tls_mode`",
            },
        ],
    );
}

// --- 8. determinism and directory loading ---

#[test]
fn compiling_twice_gives_identical_output() {
    let s = Scratch::new("twice");
    let (defs, wasm) = defs(&s, &[("gateway.yaml", GATEWAY), ("apis.yaml", APIS)]);
    let out = s.path("out");
    assert_ok(&compile(&defs, &out, &wasm), "first compile");
    let first = (
        fs::read(out.join("envoy.yaml")).unwrap(),
        fs::read(out.join("pylon.json")).unwrap(),
    );
    assert_ok(&compile(&defs, &out, &wasm), "second compile");
    assert!(first.0 == fs::read(out.join("envoy.yaml")).unwrap());
    assert!(first.1 == fs::read(out.join("pylon.json")).unwrap());
}

#[test]
fn a_directory_is_read_in_name_order_and_merged() {
    let s = Scratch::new("order");
    // Written in reverse; environment and group names sort the other way.
    let (defs, wasm) = defs(&s, &[
        ("c-apis.yaml", "apis:\n  - name: ping\n    group: alpha\n    method: GET\n    path: /ping\n    backend: { mock: { body: pong } }\n    publish: [ZULU, ALPHA]\n"),
        ("b.yml", "environments: [{ name: ALPHA }]\ngroups: [{ name: alpha, default: true }]\n"),
        ("a.yaml", "environments: [{ name: ZULU }]\ngroups: [{ name: zeta }]\n"),
        ("notes.txt", "not: [yaml"),
    ]);
    let out = s.path("out");
    assert_ok(&compile(&defs, &out, &wasm), "compile");
    let plan = written_plan(&out);
    assert_eq!(
        plan["stages"],
        serde_json::json!(["RELEASE", "ZULU", "ALPHA"])
    );
    let groups: Vec<&str> = plan["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["zeta", "alpha"]);
    assert_eq!(plan["groups"][1]["apis"][0]["name"], "ping");

    // A second `gateway` section: the later file in name order is the error.
    s.write("defs/a.yaml", "gateway: { listen: 127.0.0.1:8080 }\nenvironments: [{ name: ZULU }]\ngroups: [{ name: zeta }]\n");
    s.write("defs/b.yml", "gateway: { listen: 127.0.0.1:8081 }\nenvironments: [{ name: ALPHA }]\ngroups: [{ name: alpha, default: true }]\n");
    let o = pylon(&[&"validate", &defs]);
    assert_reports(
        &o,
        &defs,
        &[Want {
            file: "b.yml",
            object: "gateway",
            field: "",
            says: &format!("already defined in {}", defs.join("a.yaml").display()),
        }],
    );
}

// --- 9. success ---

#[test]
fn a_valid_directory_compiles_into_three_files() {
    let s = Scratch::new("ok");
    let (defs, wasm) = defs(
        &s,
        &[
            ("gateway.yaml", GATEWAY),
            ("apis.yaml", APIS),
            ("more/ignored.yaml", "not: [yaml"),
        ],
    );
    let out = s.path("out/nested");
    let o = compile(&defs, &out, &wasm);
    assert_ok(&o, "compile");
    assert!(
        stdout(&o)
            .starts_with("compiled 1 group(s), 2 API(s), 2 environment(s), 2 backend cluster(s)"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));

    let mut files: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["envoy.yaml", "pylon.json", "pylon_filter.wasm"]);
    assert_eq!(
        fs::read(out.join("pylon_filter.wasm")).unwrap(),
        fs::read(&wasm).unwrap()
    );

    let envoy = fs::read_to_string(out.join("envoy.yaml")).unwrap();
    assert!(envoy.starts_with("# Generated by `pylon compile`"));
    let wasm_dest = fs::canonicalize(&out).unwrap().join("pylon_filter.wasm");
    assert!(
        envoy.contains(&format!("filename: {}", wasm_dest.display())),
        "{envoy}"
    );
    assert!(envoy.contains("shop.example.com"));

    let plan = written_plan(&out);
    assert_eq!(plan["stages"], serde_json::json!(["RELEASE", "TEST"]));
    let api = &plan["groups"][0]["apis"][0];
    assert_eq!(api["name"], "get-item");
    assert_eq!(api["stages"]["TEST"]["http"]["path"], "/v1/items/{id}");
    assert_eq!(api["stages"]["TEST"]["http"]["timeout_ms"], 3000);
    assert!(api["stages"]["TEST"]["http"]["cluster"]
        .as_str()
        .unwrap()
        .ends_with("_127_0_0_1_8082"));
}

/// Editors and CI annotate `file:line:column`: the line and column are the
/// offending key's, in block and flow style alike.
#[test]
fn errors_point_at_the_line_and_column_of_the_offending_key() {
    let s = Scratch::new("located");
    let defs = "\
groups:
  - name: shop
    default: true
apis:
  - name: fine
    group: shop
    method: GET
    path: /fine
    backend: {http: {address: \"127.0.0.1:8081\", path: /}}
    publish: [RELEASE]
  - name: metadata
    group: shop
    method: GET
    path: /md
    backend:
      http:
        address: 169.254.169.254
        path: /
    publish: [RELEASE]
  - {name: flow, group: shop, method: GET, path: /f, backend: {http: {address: \"0.0.0.0:80\", path: /}}, publish: [RELEASE]}
";
    let (o, _) = compile_files(&s, &[("apis.yaml", defs)]);
    let err = stderr(&o);
    let file = s.path("defs/apis.yaml").display().to_string();
    assert!(
        err.contains(&format!(
            "error: {file}:17:9: api 'metadata'.backend.http.address: "
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "error: {file}:20:71: api 'flow'.backend.http.address: "
        )),
        "{err}"
    );
}

/// `--format json` reports the same errors for machines.
#[test]
fn json_format_reports_the_same_located_errors() {
    let s = Scratch::new("located-json");
    let defs = "\
groups:
  - name: shop
    default: true
apis:
  - name: metadata
    group: shop
    method: GET
    path: /md
    backend: {http: {address: \"169.254.169.254\", path: /}}
    publish: [RELEASE, NOPE]
";
    s.write("defs/apis.yaml", defs);
    let out = s.path("out");
    let o = Command::new(env!("CARGO_BIN_EXE_pylon"))
        .args(["--format", "json", "compile"])
        .arg(s.path("defs"))
        .arg("--out")
        .arg(&out)
        .env("PYLON_SEAL_KEY", TEST_SEAL_KEY)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(!out.exists(), "nothing is written");
    let doc: serde_json::Value = serde_json::from_str(&stderr(&o)).expect("one JSON document");
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{doc}");
    let address = errors
        .iter()
        .find(|e| e["field"] == "backend.http.address")
        .expect("the address error");
    assert_eq!(address["object"], "api 'metadata'");
    assert_eq!(address["line"], 9);
    assert_eq!(address["column"], 22);
    assert_eq!(
        address["file"],
        s.path("defs/apis.yaml").display().to_string()
    );
    assert!(address["message"].as_str().unwrap().contains("169.254"));
}

// --- HTTPS (compiler/src/tls.rs) ---

#[test]
fn certificates_and_protocols_are_checked() {
    let gateway = GATEWAY.replace(
        "    domains: [shop.example.com]\n",
        "    domains: [shop.example.com]\n    certificates:\n      \
         - {cert: missing.pem, key: missing.key, domains: [other.example.com]}\n",
    );
    let apis = APIS
        .replace(
            "    response: friendly\n",
            "    response: friendly\n    protocol: HTTPS\n",
        )
        .replace(
            "        timeout: 3000\n",
            "        timeout: 3000\n        tls: {insecure_skip_verify: true}\n",
        );
    rejects(
        &[("gateway.yaml", &gateway), ("apis.yaml", &apis)],
        &[
            Want {
                file: "gateway.yaml",
                object: "group 'shop'",
                field: "certificates[0].cert",
                says: "missing.pem",
            },
            Want {
                file: "gateway.yaml",
                object: "group 'shop'",
                field: "certificates[0].key",
                says: "missing.key",
            },
            Want {
                file: "gateway.yaml",
                object: "group 'shop'",
                field: "certificates[0].domains",
                says: "not a domain of the group",
            },
            // TLS settings belong to https backends (once per environment).
            Want {
                file: "apis.yaml",
                object: "api 'get-item'",
                field: "backend.http.tls",
                says: "is for `scheme: https`",
            },
        ],
    );
}
