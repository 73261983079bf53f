//! `pylon` on throttling policies: the seed's limit ordering, specials and
//! bindings, with located errors; and what lands in the plan.

mod common;
use common::*;

use std::process::Output;

const BASE: &str = r#"
groups:
  - name: shop
    default: true
apis:
  - name: items
    group: shop
    method: GET
    path: /items
    backend: { mock: { body: "ok" } }
    publish: [RELEASE]
apps:
  - { name: mobile, key: mobileKey001, secret: mobile-secret-1 }
accounts:
  - { name: tenant-a, ak: TENANTAK0001, sk: tenant-a-secret }
"#;

const POLICY: &str = r#"
throttles:
  - name: standard
    unit: second
    interval: 10
    api_limit: 100
    user_limit: 50
    app_limit: 20
    ip_limit: 10
    special_apps: { mobile: 40 }
    special_users: { tenant-a: 80 }
    bindings:
      - { group: shop, api: items, environments: [RELEASE] }
"#;

fn compile(s: &Scratch, throttles: &str) -> (Output, std::path::PathBuf) {
    compile_files(s, &[("base.yaml", BASE), ("throttles.yaml", throttles)])
}

fn rejects(throttles: &str, field: &str, says: &str) {
    let files = [("base.yaml", BASE), ("throttles.yaml", throttles)];
    let (s, err) = compile_refused("throttle", &files, throttles);
    let what = format!("throttle 'standard'.{field}: ");
    assert!(
        has_located(&err, &s.path("defs/throttles.yaml"), &what, says),
        "no located `{what}…{says}` in:\n{err}"
    );
}

#[test]
fn policy_lands_in_the_plan() {
    let files = [("base.yaml", BASE), ("throttles.yaml", POLICY)];
    let plan = compiled_plan("throttle-ok", &files);
    let t = &plan["throttles"][0];
    assert_eq!(t["window_ms"], 10_000);
    assert_eq!(t["label"], "10 second");
    assert_eq!(t["special_apps"]["mobile"], 40);
    assert_eq!(
        plan["groups"][0]["apis"][0]["throttles"]["RELEASE"],
        "standard"
    );
    assert_eq!(plan["default_limit"], 200);
}

#[test]
fn user_limit_must_not_exceed_api_limit() {
    rejects(
        &edit(POLICY, "user_limit: 50", "user_limit: 101"),
        "user_limit",
        "101 exceeds api_limit 100",
    );
}

#[test]
fn app_limit_must_not_exceed_user_limit() {
    rejects(
        &edit(POLICY, "app_limit: 20", "app_limit: 51"),
        "app_limit",
        "51 exceeds user_limit 50",
    );
    let no_user = edit(
        &edit(POLICY, "    user_limit: 50\n", ""),
        "app_limit: 20",
        "app_limit: 101",
    );
    rejects(
        &edit(&no_user, "    special_users: { tenant-a: 80 }\n", ""),
        "app_limit",
        "101 exceeds api_limit 100",
    );
}

#[test]
fn ip_limit_must_not_exceed_api_limit() {
    rejects(
        &edit(POLICY, "ip_limit: 10", "ip_limit: 200"),
        "ip_limit",
        "200 exceeds api_limit 100",
    );
}

#[test]
fn special_thresholds_must_not_exceed_api_limit_and_must_name_callers() {
    rejects(
        &edit(POLICY, "mobile: 40", "mobile: 101"),
        "special_apps.mobile",
        "exceeds api_limit",
    );
    rejects(
        &edit(POLICY, "tenant-a: 80", "tenant-a: 101"),
        "special_users.tenant-a",
        "exceeds api_limit",
    );
    rejects(
        &edit(POLICY, "mobile: 40", "ghost: 40"),
        "special_apps.ghost",
        "no app named 'ghost'",
    );
    rejects(
        &edit(POLICY, "tenant-a: 80", "nobody: 80"),
        "special_users.nobody",
        "no account named 'nobody'",
    );
}

#[test]
fn zero_limits_and_intervals() {
    rejects(
        &edit(POLICY, "api_limit: 100", "api_limit: 0"),
        "api_limit",
        "at least 1",
    );
    rejects(
        &edit(POLICY, "interval: 10", "interval: 0"),
        "interval",
        "at least 1",
    );
    rejects(
        &edit(POLICY, "unit: second", "unit: week"),
        "unit",
        "unknown variant",
    );
}

#[test]
fn one_policy_per_api_and_environment() {
    let twice = format!(
        "{POLICY}  - name: second\n    unit: minute\n    api_limit: 5\n    bindings:\n      - {{ group: shop, api: items, environments: [RELEASE] }}\n"
    );
    let s = Scratch::new("throttle-twice");
    let (o, out) = compile(&s, &twice);
    assert!(stderr(&o).contains("throttle 'second'.bindings[0].environments[0]: api 'items' already has throttle 'standard'"), "{}", stderr(&o));
    assert!(!out.exists());
}
