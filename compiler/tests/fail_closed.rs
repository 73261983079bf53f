//! `pylon` fails closed: definitions that would silently lose APIs, leak a
//! secret into an error, carry a bound the plan cannot hold, aim a backend
//! at an internal address, or write the output among the definitions are
//! refused with a located error, and nothing is written.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One valid file: an HTTP API whose backend address tests replace, an app
/// and an account.
const BASE: &str = r#"
gateway:
  admin: 127.0.0.1:9901
groups:
  - name: shop
    default: true
    variables:
      RELEASE: { upstream: "127.0.0.1:8081" }
apis:
  - name: items
    group: shop
    method: GET
    path: /items
    backend:
      http: { address: "127.0.0.1:8081", path: /items }
    publish: [RELEASE]
apps:
  - name: mobile
    key: mobileKey001
    secret: mobile-secret-1
accounts:
  - { name: tenant-a, ak: TENANTAK0001, sk: tenant-a-secret }
"#;

/// Runs `pylon` with `args` (no `PYLON_WASM` from the environment).
fn pylon(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pylon"))
        .args(args)
        .env_remove("PYLON_WASM")
        .env("PYLON_SEAL_KEY", TEST_SEAL_KEY)
        .output()
        .expect("run pylon")
}

/// Asserts a failed run with a line `error: <prefix>…<says>` (the prefix
/// without the line and column an error may carry) and no output directory.
fn assert_refused(o: &Output, out: &Path, prefix: &str, says: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "accepted; stderr:\n{err}");
    let unlocated = |l: &str| match split_located(l) {
        Some((file, rest)) => format!("error: {file}: {rest}"),
        None => l.to_string(),
    };
    assert!(
        err.lines()
            .any(|l| unlocated(l).starts_with(&format!("error: {prefix}")) && l.contains(says)),
        "no `error: {prefix}…{says}` in:\n{err}"
    );
    assert!(err.contains("nothing written"), "{err}");
    assert!(!out.exists(), "{} was written", out.display());
}

fn base_file(s: &Scratch) -> PathBuf {
    s.path("defs/base.yaml")
}

// --- definition directories: nothing is skipped silently ---

#[test]
fn a_yaml_entry_that_is_not_a_regular_file_is_an_error() {
    type Make = fn(&Path);
    let cases: [(&str, Make, &str); 4] = [
        (
            "dangling symlink",
            |p| std::os::unix::fs::symlink("gone.yaml", p).unwrap(),
            "cannot read",
        ),
        (
            "symlink loop",
            |p| std::os::unix::fs::symlink(p.file_name().unwrap(), p).unwrap(),
            "cannot read",
        ),
        (
            "FIFO",
            |p| {
                let ok = Command::new("mkfifo").arg(p).status().unwrap().success();
                assert!(ok, "mkfifo");
            },
            "not a regular file",
        ),
        (
            "directory",
            |p| std::fs::create_dir(p).unwrap(),
            "is a directory",
        ),
    ];
    for (what, make, says) in cases {
        let s = Scratch::new("entries");
        s.write("defs/base.yaml", BASE);
        let entry = s.path("defs/more-apis.yaml");
        make(&entry);
        let (o, out) = compile_files(&s, &[]);
        assert_refused(&o, &out, &format!("{}: ", entry.display()), says);
        eprintln!("{what}: refused");
    }
}

// --- secrets never appear in errors ---

#[test]
fn secret_values_are_never_echoed_in_errors() {
    const SECRET: &str = "MYSECRETCODE0123456789";
    let cases = [
        // A string where a list is expected: serde would quote it.
        ("codes: MYSECRETCODE0123456789", "app 'mobile'.codes"),
        ("codes: 77777777777777777", "app 'mobile'.codes"),
        ("codes: [{MYSECRETCODE0123456789}]", "app 'mobile'.codes[0]"),
        ("secret: {MYSECRETCODE0123456789}", "app 'mobile'.secret"),
        ("secret: {MYSECRETCODE0123456789: x}", "app 'mobile'.secret"),
        (
            "secret: !vault MYSECRETCODE0123456789",
            "app 'mobile'.secret",
        ),
    ];
    for (line, located) in cases {
        let s = Scratch::new("secrets");
        let defs = edit(BASE, "secret: mobile-secret-1", line);
        let (o, out) = compile_files(&s, &[("base.yaml", &defs)]);
        let err = stderr(&o);
        assert_refused(
            &o,
            &out,
            &format!("{}: {located}", base_file(&s).display()),
            "",
        );
        for leak in [SECRET, "77777777777777777"] {
            assert!(!err.contains(leak), "`{line}` leaked:\n{err}");
        }
    }
    // An account's SK given as a number.
    let s = Scratch::new("secrets-sk");
    let defs = edit(BASE, "sk: tenant-a-secret", "sk: 987654321987654321");
    let (o, out) = compile_files(&s, &[("base.yaml", &defs)]);
    assert_refused(
        &o,
        &out,
        &format!("{}: account 'tenant-a'.sk", base_file(&s).display()),
        "",
    );
    assert!(!stderr(&o).contains("987654321987654321"), "{}", stderr(&o));
}

// --- numbers ---

#[test]
fn nan_and_infinite_parameter_bounds_are_refused() {
    for (bound, value) in [
        ("min", ".nan"),
        ("max", ".NaN"),
        ("min", "-.inf"),
        ("max", ".inf"),
    ] {
        let s = Scratch::new("nan");
        let defs = edit(
            BASE,
            "    publish: [RELEASE]\napps:",
            &format!(
                "    parameters:\n      - {{name: size, in: query, type: number, {bound}: {value}}}\n    publish: [RELEASE]\napps:"
            ),
        );
        let (o, out) = compile_files(&s, &[("base.yaml", &defs)]);
        assert_refused(
            &o,
            &out,
            &format!(
                "{}: api 'items'.parameters[0].{bound}",
                base_file(&s).display()
            ),
            "finite",
        );
    }
}

#[test]
fn special_thresholds_must_be_positive() {
    for (special, name) in [("special_apps", "mobile"), ("special_users", "tenant-a")] {
        let s = Scratch::new("special-zero");
        let throttles = format!(
            "throttles:\n  - name: standard\n    unit: second\n    api_limit: 100\n    \
             {special}: {{ {name}: 0 }}\n    bindings:\n      - {{ group: shop, api: items, environments: [RELEASE] }}\n"
        );
        let (o, out) = compile_files(&s, &[("base.yaml", BASE), ("throttles.yaml", &throttles)]);
        assert_refused(
            &o,
            &out,
            &format!(
                "{}: throttle 'standard'.{special}.{name}",
                s.path("defs/throttles.yaml").display()
            ),
            "positive integer",
        );
    }
}

// --- the output directory ---

#[test]
fn out_inside_the_definitions_is_refused() {
    let s = Scratch::new("out-inside");
    s.write("defs/base.yaml", BASE);
    let wasm = s.write("filter.wasm", STAND_IN_WASM);
    let defs = s.path("defs");
    std::os::unix::fs::symlink(&defs, s.path("link-to-defs")).unwrap();
    for out in [
        defs.clone(),
        defs.join("out"),
        defs.join("a/b"),
        s.path("link-to-defs/out"),
        s.path("elsewhere/../defs/out"),
    ] {
        let o = pylon(&[&"compile", &defs, &"--out", &out, &"--wasm", &wasm]);
        assert!(!o.status.success(), "--out {} accepted", out.display());
        assert!(
            stderr(&o).contains("inside the definitions directory"),
            "{}",
            stderr(&o)
        );
        assert!(!defs.join("envoy.yaml").exists());
        assert!(!defs.join("out").exists() && !defs.join("a").exists());
    }
    // A definition file's own directory is fine, if nothing is overwritten.
    let out = s.path("defs");
    let o = pylon(&[&"compile", &base_file(&s), &"--out", &out, &"--wasm", &wasm]);
    assert_ok(&o, "compile a file into its own directory");
    let o = pylon(&[
        &"compile",
        &out.join("envoy.yaml"),
        &"--out",
        &out,
        &"--wasm",
        &wasm,
    ]);
    assert!(stderr(&o).contains("overwrite"), "{}", stderr(&o));
}

// --- backend addresses (SSRF) ---

/// `BASE` with the API's backend at `address`, plus `extra` in its `http`.
fn with_backend(address: &str, extra: &str) -> String {
    edit(
        BASE,
        r#"http: { address: "127.0.0.1:8081", path: /items }"#,
        &format!(r#"http: {{ address: "{address}", path: /items{extra} }}"#),
    )
}

fn backend_refused(s: &Scratch, defs: &str, address: &str, says: &str) {
    let (o, out) = compile_files(s, &[("base.yaml", defs)]);
    assert_refused(
        &o,
        &out,
        &format!(
            "{}: api 'items'.backend.http.address: `{address}`",
            base_file(s).display()
        ),
        says,
    );
}

#[test]
fn internal_backend_addresses_are_refused_unless_allowed() {
    for address in [
        "169.254.169.254",
        "169.254.169.254:80",
        "[fe80::1]:8080",
        "[::ffff:169.254.169.254]",
        "[::ffff:a9fe:a9fe]",
        "metadata.google.internal",
        "metadata",
        "instance-data",
        "100.100.100.200",
        "0.0.0.0:8081",
        "[::]:8081",
        "127.0.0.1:9901",
        "localhost:9901",
        "[::1]:9901",
    ] {
        let s = Scratch::new("ssrf");
        backend_refused(
            &s,
            &with_backend(address, ""),
            address,
            "allow_internal_address: true",
        );
        // The documented opt-out.
        let s = Scratch::new("ssrf-allowed");
        let defs = with_backend(address, ", allow_internal_address: true");
        let (o, _) = compile_files(&s, &[("base.yaml", &defs)]);
        assert_ok(&o, address);
    }
}

#[test]
fn numeric_ipv4_spellings_are_refused() {
    for address in [
        "2852039166",
        "0xa9.0xfe.0xa9.0xfe",
        "0251.0376.0251.0376:80",
        "2130706433:8081",
    ] {
        let s = Scratch::new("numeric");
        backend_refused(&s, &with_backend(address, ""), address, "numeric IPv4");
        let s = Scratch::new("numeric-allowed");
        let defs = with_backend(address, ", allow_internal_address: true");
        let (o, _) = compile_files(&s, &[("base.yaml", &defs)]);
        assert!(!o.status.success(), "{address} accepted with the opt-out");
    }
}

#[test]
fn internal_addresses_behind_variables_and_in_policies_are_refused() {
    let s = Scratch::new("ssrf-var");
    let defs = edit(
        &with_backend("#upstream#", ""),
        "RELEASE: { upstream: \"127.0.0.1:8081\" }",
        "RELEASE: { upstream: \"169.254.169.254\" }",
    );
    backend_refused(&s, &defs, "169.254.169.254", "link-local");

    let s = Scratch::new("ssrf-policy");
    let defs = edit(
        BASE,
        "    publish: [RELEASE]\napps:",
        "    parameters: [{name: tier, in: query}]\n    policies:\n      - name: vip\n        \
         conditions: [{param: tier, type: equal, value: gold}]\n        backend:\n          \
         http: { address: \"[::ffff:169.254.169.254]\", path: /vip }\n    publish: [RELEASE]\napps:",
    );
    let (o, out) = compile_files(&s, &[("base.yaml", &defs)]);
    assert_refused(
        &o,
        &out,
        &format!(
            "{}: api 'items'.policies[0].backend.http.address",
            base_file(&s).display()
        ),
        "link-local",
    );
}

#[test]
fn the_admin_address_comes_from_the_flag_or_the_gateway() {
    // gateway.admin moved to 9911: 9911 is refused, 9901 is an ordinary
    // loopback backend again.
    let moved = edit(BASE, "admin: 127.0.0.1:9901", "admin: 127.0.0.1:9911");
    let s = Scratch::new("admin-gw");
    let defs = edit(
        &moved,
        r#"address: "127.0.0.1:8081""#,
        r#"address: "localhost:9911""#,
    );
    backend_refused(&s, &defs, "localhost:9911", "admin address");
    let s = Scratch::new("admin-gw-ok");
    let defs = edit(
        &moved,
        r#"address: "127.0.0.1:8081""#,
        r#"address: "127.0.0.1:9901""#,
    );
    assert_ok(&compile_files(&s, &[("base.yaml", &defs)]).0, "9901");

    // --admin overrides gateway.admin.
    let s = Scratch::new("admin-flag");
    let defs = with_backend("127.0.0.1:9922", "");
    s.write("defs/base.yaml", &defs);
    let wasm = s.write("filter.wasm", STAND_IN_WASM);
    let out = s.path("out");
    let o = pylon(&[
        &"compile",
        &s.path("defs"),
        &"--out",
        &out,
        &"--wasm",
        &wasm,
        &"--admin",
        &"0.0.0.0:9922",
    ]);
    assert_refused(
        &o,
        &out,
        &format!("{}: api 'items'", base_file(&s).display()),
        "admin address",
    );
}

#[test]
fn ordinary_loopback_and_named_backends_stay_allowed() {
    for address in [
        "127.0.0.1:8081",
        "localhost:3000",
        "[::1]:8081",
        "api.example.com",
        "10.0.0.5:9901",
    ] {
        let s = Scratch::new("ssrf-ok");
        let (o, _) = compile_files(&s, &[("base.yaml", &with_backend(address, ""))]);
        assert_ok(&o, address);
    }
}
