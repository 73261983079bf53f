//! `pylon` on access control policies: located errors for bad entries and
//! bindings, and the bindings it writes into the plan.

mod common;
use common::*;

use std::process::Output;

const BASE: &str = r#"
environments:
  - name: TEST
groups:
  - name: shop
    default: true
apis:
  - name: items
    group: shop
    method: GET
    path: /items
    backend: { mock: { body: "ok" } }
    publish: [RELEASE, TEST]
"#;

const ACLS: &str = r#"
acls:
  - name: office
    type: ip
    action: allow
    values: ["10.0.0.0/8", "192.168.1.10-192.168.1.20", "2001:db8::/32", "203.0.113.7"]
    bindings:
      - { group: shop, api: items, environments: [RELEASE] }
  - name: tenants
    type: account
    action: deny
    values: [tenant-b]
    bindings:
      - { group: shop, api: items, environments: [RELEASE, TEST] }
"#;

fn compile_with(s: &Scratch, base: &str, acls: &str) -> (Output, std::path::PathBuf) {
    compile_files(s, &[("base.yaml", base), ("acls.yaml", acls)])
}

fn rejects(acls: &str, field: &str, says: &str) {
    let (s, err) = compile_refused("acl", &[("base.yaml", BASE), ("acls.yaml", acls)], acls);
    let file = s.path("defs/acls.yaml");
    assert!(
        err.lines()
            .any(|l| split_located(l).is_some_and(|(f, rest)| {
                f == file.display().to_string()
                    && rest.starts_with("acl '")
                    && rest.contains(&format!("'.{field}: "))
            }) && l.contains(says)),
        "no located error for `{field}` saying `{says}`:\n{err}"
    );
}

#[test]
fn bindings_land_in_the_plan() {
    let plan = compiled_plan("acl-ok", &[("base.yaml", BASE), ("acls.yaml", ACLS)]);
    let api = &plan["groups"][0]["apis"][0];
    assert_eq!(
        api["acls"]["RELEASE"],
        serde_json::json!(["office", "tenants"])
    );
    assert_eq!(api["acls"]["TEST"], serde_json::json!(["tenants"]));
    assert_eq!(plan["acls"][0]["kind"], "ip");
    assert_eq!(plan["acls"][1]["action"], "deny");
}

#[test]
fn bad_ip_entries() {
    for bad in ["10.0.0.0/33", "10.0.0.9-10.0.0.1", "1.2.3", "10.0.0.1-::1"] {
        rejects(
            &edit(ACLS, "\"203.0.113.7\"", &format!("\"{bad}\"")),
            "values[3]",
            bad,
        );
    }
}

#[test]
fn too_many_entries() {
    let many: Vec<String> = (0..101)
        .map(|i| format!("\"10.0.0.{}\"", i % 250))
        .collect();
    let acls = edit(
        ACLS,
        r#"["10.0.0.0/8", "192.168.1.10-192.168.1.20", "2001:db8::/32", "203.0.113.7"]"#,
        &format!("[{}]", many.join(", ")),
    );
    rejects(&acls, "values", "1-100 entries");
}

#[test]
fn one_policy_of_a_type_per_api_and_environment() {
    let second = format!(
        "{ACLS}  - name: office2\n    type: ip\n    action: deny\n    values: [\"8.8.8.8\"]\n    bindings:\n      - {{ group: shop, api: items, environments: [RELEASE] }}\n"
    );
    rejects(
        &second,
        "bindings[0].environments[0]",
        "already has acl 'office'",
    );
}

#[test]
fn dangling_bindings() {
    rejects(
        &edit(
            ACLS,
            "api: items, environments: [RELEASE] }",
            "api: nope, environments: [RELEASE] }",
        ),
        "bindings[0]",
        "no API 'nope'",
    );
    let unpublished = edit(BASE, "publish: [RELEASE, TEST]", "publish: [RELEASE]");
    let s = Scratch::new("acl-unpub");
    let (o, out) = compile_with(&s, &unpublished, ACLS);
    assert!(!out.exists(), "nothing is written");
    assert!(
        has_located(
            &stderr(&o),
            &s.path("defs/acls.yaml"),
            "acl 'tenants'.bindings[0].environments[1]: ",
            "api 'items' is not published to 'TEST'"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_type_and_account_names() {
    rejects(
        &edit(ACLS, "type: account", "type: user"),
        "type",
        "unknown variant",
    );
    rejects(
        &edit(ACLS, "values: [tenant-b]", "values: [\"tenant b\"]"),
        "values[0]",
        "not an account name",
    );
}
