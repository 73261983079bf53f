//! Runs the real `pylon` binary on definitions with `apps:`: secrets are read
//! inline, from the environment or from a file next to the definitions,
//! grants end up on the granted APIs, errors are located, secrets are never
//! printed and the output files are readable by their owner only.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pylon_filter::plan::Plan;
use pylon_filter::seal::{self, SealKey};
use serde_json::{json, Value};

/// Environments, a group and two APIs the apps in `APPS` are granted.
const BASE: &str = r#"environments:
  - name: TEST
  - name: STAGING
  - name: DEV
groups:
  - name: shop
    default: true
    domains: [shop.example.com]
apis:
  - name: get-item
    group: shop
    method: GET
    path: /items/{id}
    auth: app
    backend:
      mock:
        body: item
    publish: [RELEASE, TEST, STAGING, DEV]
  - name: health
    group: shop
    method: GET
    path: /health
    backend:
      mock:
        body: ok
    publish: [RELEASE]
"#;

const INLINE_SECRET: &str = "inline-S3cret-web-4c1d9e";
const ENV_SECRET: &str = "env-S3cret-batch-8b72f0";
const FILE_SECRET: &str = "file-S3cret-mobile-a5e3";
/// At `secrets/mobile` relative to the working directory, not to the
/// definitions: must never be read.
const DECOY_SECRET: &str = "decoy-S3cret-cwd-77d1";
const SECRET_VAR: &str = "PYLON_IT_BATCH_SECRET";

/// Every secret value used in this file; none may ever be printed.
const ALL_SECRETS: [&str; 4] = [INLINE_SECRET, ENV_SECRET, FILE_SECRET, DECOY_SECRET];

/// Three valid apps, one per kind of secret; tests break them with `edit`.
const APPS: &str = r#"apps:
  - name: web
    description: the shop's web site
    key: web-key-0001
    secret: "inline-S3cret-web-4c1d9e"
    authorizations:
      - group: shop
        api: get-item
        environments: [TEST, RELEASE]
  - name: batch
    key: batch_key_0002
    secret: { env: PYLON_IT_BATCH_SECRET }
    authorizations:
      - { group: shop, api: get-item, environments: [TEST] }
  - name: mobile
    key: MobileKey0003
    secret: { file: secrets/mobile }
    authorizations:
      - { group: shop, api: get-item, environments: [STAGING] }
"#;

/// `defs/base.yaml`, `defs/apps.yaml` with `apps`, the mobile app's
/// secret at `defs/secrets/mobile` (with a trailing newline), a decoy
/// at `secrets/mobile` relative to the working directory, and a
/// stand-in filter module. Returns the definitions directory and the
/// module.
fn defs(s: &Scratch, apps: &str) -> (PathBuf, PathBuf) {
    s.write("defs/base.yaml", BASE);
    s.write("defs/apps.yaml", apps);
    s.write("defs/secrets/mobile", format!("{FILE_SECRET}\n"));
    s.write("secrets/mobile", format!("{DECOY_SECRET}\n"));
    let wasm = s.write("filter.wasm", STAND_IN_WASM);
    (s.path("defs"), wasm)
}

/// Runs `pylon` in `cwd` with `SECRET_VAR` set to `env_secret` (or unset)
/// for the child only.
fn pylon_in(cwd: &Path, env_secret: Option<&str>, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pylon"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("PYLON_WASM")
        .env_remove(SECRET_VAR)
        .env("PYLON_SEAL_KEY", TEST_SEAL_KEY);
    if let Some(v) = env_secret {
        cmd.env(SECRET_VAR, v);
    }
    cmd.output().expect("run pylon")
}

/// Neither stdout nor stderr contains any of `secrets`.
fn assert_no_secrets(o: &Output, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !stdout(o).contains(s) && !stderr(o).contains(s),
            "secret `{s}` was printed:\nstdout: {}\nstderr: {}",
            stdout(o),
            stderr(o)
        );
    }
}

/// One expected error: `error: FILE: app 'NAME'.FIELD: ...SAYS...`.
struct Want<'a> {
    /// File name inside `defs/`.
    file: &'a str,
    /// The app's name.
    app: &'a str,
    field: &'a str,
    /// Part of the message.
    says: &'a str,
}

fn assert_reports(o: &Output, defs: &Path, wants: &[Want]) {
    let err = stderr(o);
    assert_failed_quietly(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    for w in wants {
        let what = format!("app '{}'.{}: ", w.app, w.field);
        assert!(
            has_located(&err, &defs.join(w.file), &what, w.says),
            "no line located in {} at `{what}` containing `{}` in:\n{err}",
            w.file,
            w.says
        );
    }
    assert_error_count(&err, wants.len());
}

/// `validate` and `compile` both reject `apps` (with the env secret set for
/// the child unless `env_secret` is `None`) with exactly `wants`, print no
/// secret (neither those of `ALL_SECRETS` nor `more_secrets`), and
/// `compile` creates no output directory.
fn rejects(apps: &str, env_secret: Option<&str>, more_secrets: &[&str], wants: &[Want]) {
    let s = Scratch::new("rejects");
    let (defs, wasm) = defs(&s, apps);
    let secrets: Vec<&str> = ALL_SECRETS.iter().chain(more_secrets).copied().collect();

    let v = pylon_in(&s.root, env_secret, &[&"validate", &defs]);
    assert_reports(&v, &defs, wants);
    assert_no_secrets(&v, &secrets);

    let out = s.path("out");
    let c = pylon_in(
        &s.root,
        env_secret,
        &[&"compile", &defs, &"--out", &out, &"--wasm", &wasm],
    );
    assert_reports(&c, &defs, wants);
    assert_no_secrets(&c, &secrets);
    assert!(!out.exists(), "{} was created", out.display());
}

fn compile_ok(s: &Scratch, cwd: &Path, inputs: &[&Path], out: &Path, wasm: &Path) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"compile"];
    for i in inputs {
        args.push(i);
    }
    args.extend([
        &"--out" as &dyn AsRef<std::ffi::OsStr>,
        &out,
        &"--wasm",
        &wasm,
    ]);
    let o = pylon_in(cwd, Some(ENV_SECRET), &args);
    assert_ok(&o, &format!("compile in {}", s.root.display()));
    assert_no_secrets(&o, &ALL_SECRETS);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    o
}

/// The plan as the filter sees it: its secrets opened with the test key
/// (none of `ALL_SECRETS` is in the file itself).
fn read_plan(out: &Path) -> Value {
    let text = fs::read_to_string(out.join("pylon.json")).unwrap();
    for secret in ALL_SECRETS {
        assert!(
            !text.contains(secret),
            "{secret} in plaintext in pylon.json"
        );
    }
    let mut plan: Plan = serde_json::from_str(&text).unwrap();
    let key = SealKey::from_base64(TEST_SEAL_KEY).unwrap();
    seal::open_plan(&mut plan, &[key]).unwrap();
    serde_json::to_value(&plan).unwrap()
}

fn api<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["groups"][0]["apis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no api {name} in {plan:#}"))
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

// --- 1. success ---

#[test]
fn inline_env_and_file_secrets_compile_and_grants_reach_the_api() {
    let s = Scratch::new("ok");
    let (defs, wasm) = defs(&s, APPS);
    let out = s.path("out");
    let o = compile_ok(&s, &s.root, &[&defs], &out, &wasm);
    assert!(
        stdout(&o).starts_with("compiled 1 group(s), 2 API(s), 4 environment(s)"),
        "{}",
        stdout(&o)
    );

    let plan = read_plan(&out);
    let apps = plan["apps"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str)> = apps
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["key"].as_str().unwrap(),
                a["secret"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("web", "web-key-0001", INLINE_SECRET),
            ("batch", "batch_key_0002", ENV_SECRET),
            // Read next to the definitions, not the working directory, and
            // without the file's trailing newline.
            ("mobile", "MobileKey0003", FILE_SECRET),
        ]
    );
    for a in apps {
        assert!(is_lower_hex(a["id"].as_str().unwrap(), 32), "{a}");
    }
    assert_ne!(apps[0]["id"], apps[1]["id"]);

    let item = api(&plan, "get-item");
    assert_eq!(item["auth"], "app");
    // Only the granted environments; DEV is published but granted to no one.
    assert_eq!(
        item["authorized"],
        json!({
            "RELEASE": ["web"],
            "STAGING": ["mobile"],
            "TEST": ["batch", "web"],
        })
    );
    let health = api(&plan, "health");
    assert!(health.get("auth").is_none(), "{health}");
    assert!(health.get("authorized").is_none(), "{health}");

    // envoy.yaml embeds the plan with its secrets sealed, and names the
    // variable Envoy passes the key in, never the key.
    let envoy = fs::read_to_string(out.join("envoy.yaml")).unwrap();
    for secret in ALL_SECRETS.iter().chain([&TEST_SEAL_KEY]) {
        assert!(!envoy.contains(secret), "{secret} in envoy.yaml");
    }
    assert!(envoy.contains("pylon-sealed:v1:"));
    assert!(envoy.contains("host_env_keys:\n"), "{envoy}");
    assert!(envoy.contains("- PYLON_SEAL_KEY\n"), "{envoy}");
    assert!(stdout(&o).contains(&format!(
        "secrets sealed with key {}",
        SealKey::from_base64(TEST_SEAL_KEY).unwrap().id()
    )));
}

// --- 1b. sealing ---

#[test]
fn every_compile_seals_with_fresh_nonces() {
    let s = Scratch::new("nonces");
    let (defs, wasm) = defs(&s, APPS);
    let out = s.path("out");
    compile_ok(&s, &s.root, &[&defs], &out, &wasm);
    let first = written_plan(&out);
    compile_ok(&s, &s.root, &[&defs], &out, &wasm);
    let second = written_plan(&out);
    let sealed = |p: &Value, i: usize| p["apps"][i]["secret"].as_str().unwrap().to_string();
    assert_ne!(sealed(&first, 0), sealed(&second, 0));
    assert_ne!(sealed(&first, 0), sealed(&first, 1));
    assert_eq!(read_plan(&out)["apps"][0]["secret"], INLINE_SECRET);
}

#[test]
fn secrets_need_a_key_and_nothing_is_written_without_one() {
    let s = Scratch::new("nokey");
    let (defs, wasm) = defs(&s, APPS);
    let out = s.path("out");
    let o = Command::new(env!("CARGO_BIN_EXE_pylon"))
        .args([
            &"compile" as &dyn AsRef<std::ffi::OsStr>,
            &defs,
            &"--out",
            &out,
            &"--wasm",
            &wasm,
        ])
        .env(SECRET_VAR, ENV_SECRET)
        .env_remove("PYLON_SEAL_KEY")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(
            "set PYLON_SEAL_KEY or pass --seal-key-file (make a key with `pylon keygen`)"
        ),
        "{}",
        stderr(&o)
    );
    assert_no_secrets(&o, &ALL_SECRETS);
    assert!(!out.exists());
    // `validate` needs no key.
    let v = Command::new(env!("CARGO_BIN_EXE_pylon"))
        .args([&"validate" as &dyn AsRef<std::ffi::OsStr>, &defs])
        .env(SECRET_VAR, ENV_SECRET)
        .env_remove("PYLON_SEAL_KEY")
        .output()
        .unwrap();
    assert_ok(&v, "validate");
}

#[test]
fn a_key_file_from_keygen_seals_and_a_bad_key_is_refused_unprinted() {
    let s = Scratch::new("keyfile");
    let (defs, wasm) = defs(&s, APPS);
    let key_file = s.path("seal.key");
    let k = pylon_in(&s.root, None, &[&"keygen", &"--out", &key_file]);
    assert_ok(&k, "keygen");
    assert_eq!(mode(&key_file), 0o600);
    let text = fs::read_to_string(&key_file).unwrap();
    let key = SealKey::from_base64(&text).unwrap();
    assert!(
        !stdout(&k).contains(text.trim()),
        "keygen --out printed the key"
    );
    // An existing key file is never overwritten.
    let again = pylon_in(&s.root, None, &[&"keygen", &"--out", &key_file]);
    assert!(!again.status.success());
    assert_eq!(fs::read_to_string(&key_file).unwrap(), text);
    // Printed keys differ each time.
    let a = pylon_in(&s.root, None, &[&"keygen"]);
    let b = pylon_in(&s.root, None, &[&"keygen"]);
    assert_ne!(stdout(&a), stdout(&b));
    assert!(SealKey::from_base64(&stdout(&a)).is_ok());

    // The file wins over $PYLON_SEAL_KEY.
    let out = s.path("out");
    let o = pylon_in(
        &s.root,
        Some(ENV_SECRET),
        &[
            &"compile",
            &defs,
            &"--out",
            &out,
            &"--wasm",
            &wasm,
            &"--seal-key-file",
            &key_file,
        ],
    );
    assert_ok(&o, "compile with a key file");
    let mut plan: Plan =
        serde_json::from_slice(&fs::read(out.join("pylon.json")).unwrap()).unwrap();
    let test_key = SealKey::from_base64(TEST_SEAL_KEY).unwrap();
    assert!(seal::open_plan(&mut plan.clone(), &[test_key]).is_err());
    seal::open_plan(&mut plan, &[key]).unwrap();
    assert_eq!(plan.apps[1].secret, ENV_SECRET);

    // A key that is not 32 bytes of base64: refused, and not echoed.
    let bad = s.write("bad.key", "c2hvcnQta2V5LXZhbHVl\n");
    let out2 = s.path("out2");
    let o = pylon_in(
        &s.root,
        Some(ENV_SECRET),
        &[
            &"compile",
            &defs,
            &"--out",
            &out2,
            &"--wasm",
            &wasm,
            &"--seal-key-file",
            &bad,
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("the key must be 32 bytes, base64-encoded"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("c2hvcnQta2V5LXZhbHVl"));
    assert!(!out2.exists());
}

#[test]
fn a_secret_file_is_relative_to_its_definition_file_given_by_a_relative_path() {
    let s = Scratch::new("relative");
    let (defs, wasm) = defs(&s, APPS);
    let out = s.path("out");
    // Run inside defs/ with bare file names: `apps.yaml`'s directory is "".
    compile_ok(
        &s,
        &defs,
        &[Path::new("base.yaml"), Path::new("apps.yaml")],
        &out,
        &wasm,
    );
    assert_eq!(read_plan(&out)["apps"][2]["secret"], FILE_SECRET);

    // And from the scratch root, as `defs/apps.yaml`.
    fs::remove_dir_all(&out).unwrap();
    compile_ok(
        &s,
        &s.root,
        &[Path::new("defs/base.yaml"), Path::new("defs/apps.yaml")],
        &out,
        &wasm,
    );
    assert_eq!(read_plan(&out)["apps"][2]["secret"], FILE_SECRET);
}

#[test]
fn a_secret_file_loses_only_its_trailing_newlines() {
    let s = Scratch::new("trim");
    let (defs, wasm) = defs(&s, APPS);
    s.write("defs/secrets/mobile", format!("{FILE_SECRET}\r\n\n"));
    let out = s.path("out");
    compile_ok(&s, &s.root, &[&defs], &out, &wasm);
    assert_eq!(read_plan(&out)["apps"][2]["secret"], FILE_SECRET);
}

#[test]
fn a_secret_of_exactly_eight_characters_is_accepted() {
    let s = Scratch::new("eight");
    let (defs, wasm) = defs(&s, &edit(APPS, INLINE_SECRET, "Eight8ch"));
    let out = s.path("out");
    let o = compile_ok(&s, &s.root, &[&defs], &out, &wasm);
    assert_no_secrets(&o, &["Eight8ch"]);
    assert_eq!(read_plan(&out)["apps"][0]["secret"], "Eight8ch");
}

// --- 4. file modes ---

#[test]
fn output_files_are_readable_by_their_owner_only() {
    let s = Scratch::new("modes");
    let (defs, wasm) = defs(&s, APPS);
    let out = s.path("out");
    compile_ok(&s, &s.root, &[&defs], &out, &wasm);
    for name in ["envoy.yaml", "pylon.json"] {
        assert_eq!(mode(&out.join(name)), 0o600, "{name}");
    }

    // Replacing world-readable files from an earlier compile tightens them.
    for name in ["envoy.yaml", "pylon.json"] {
        fs::set_permissions(out.join(name), fs::Permissions::from_mode(0o644)).unwrap();
    }
    compile_ok(&s, &s.root, &[&defs], &out, &wasm);
    for name in ["envoy.yaml", "pylon.json"] {
        assert_eq!(mode(&out.join(name)), 0o600, "{name} after recompiling");
    }
}

// --- 2./3. located errors, nothing written, no secret printed ---

#[test]
fn env_var_not_set() {
    rejects(
        APPS,
        None,
        &[],
        &[Want {
            file: "apps.yaml",
            app: "batch",
            field: "secret",
            says: "environment variable PYLON_IT_BATCH_SECRET is not set",
        }],
    );
}

#[test]
fn unreadable_secret_file() {
    let s = Scratch::new("missing");
    let (defs, wasm) = defs(&s, &edit(APPS, "secrets/mobile", "secrets/missing"));
    // Present relative to the working directory only: must not be read.
    s.write("secrets/missing", format!("{DECOY_SECRET}\n"));
    let says = format!("cannot read {}", defs.join("secrets/missing").display());
    let wants = [Want {
        file: "apps.yaml",
        app: "mobile",
        field: "secret",
        says: &says,
    }];
    for args in [
        vec![&"validate" as &dyn AsRef<std::ffi::OsStr>, &defs],
        vec![
            &"compile",
            &defs,
            &"--out",
            &s.path("out"),
            &"--wasm",
            &wasm,
        ],
    ] {
        let o = pylon_in(&s.root, Some(ENV_SECRET), &args);
        assert_reports(&o, &defs, &wants);
        assert!(
            stderr(&o).contains("No such file or directory"),
            "{}",
            stderr(&o)
        );
        assert_no_secrets(&o, &ALL_SECRETS);
    }
    assert!(!s.path("out").exists());
}

#[test]
fn secret_file_that_is_a_directory() {
    let s = Scratch::new("dir");
    let (defs, wasm) = defs(&s, &edit(APPS, "secrets/mobile", "secrets"));
    let out = s.path("out");
    let o = pylon_in(
        &s.root,
        Some(ENV_SECRET),
        &[&"compile", &defs, &"--out", &out, &"--wasm", &wasm],
    );
    let says = format!("cannot read {}", defs.join("secrets").display());
    assert_reports(
        &o,
        &defs,
        &[Want {
            file: "apps.yaml",
            app: "mobile",
            field: "secret",
            says: &says,
        }],
    );
    assert_no_secrets(&o, &ALL_SECRETS);
    assert!(!out.exists());
}

#[test]
fn inline_secret_too_short() {
    rejects(
        &edit(APPS, INLINE_SECRET, "Short7c"),
        Some(ENV_SECRET),
        &["Short7c"],
        &[Want {
            file: "apps.yaml",
            app: "web",
            field: "secret",
            says: "AppSecret must be 8-64 printable characters without spaces",
        }],
    );
}

#[test]
fn env_secret_too_short_or_with_a_space() {
    for bad in ["Env7chr", "env secret with space"] {
        rejects(
            APPS,
            Some(bad),
            &[bad],
            &[Want {
                file: "apps.yaml",
                app: "batch",
                field: "secret",
                says: "AppSecret must be 8-64 printable characters without spaces",
            }],
        );
    }
}

#[test]
fn file_secret_too_short_once_its_newline_is_trimmed() {
    let s = Scratch::new("short-file");
    let (defs, wasm) = defs(&s, APPS);
    // 8 bytes with the newline, 7 without.
    s.write("defs/secrets/mobile", "File7ch\n");
    let out = s.path("out");
    let o = pylon_in(
        &s.root,
        Some(ENV_SECRET),
        &[&"compile", &defs, &"--out", &out, &"--wasm", &wasm],
    );
    assert_reports(
        &o,
        &defs,
        &[Want {
            file: "apps.yaml",
            app: "mobile",
            field: "secret",
            says: "AppSecret must be 8-64",
        }],
    );
    assert_no_secrets(&o, &[INLINE_SECRET, ENV_SECRET, "File7ch"]);
    assert!(!out.exists());
}

#[test]
fn app_key_with_bad_characters() {
    for bad in ["web key 0001", "web.key.0001", "wéb-key-0001"] {
        rejects(
            &edit(APPS, "key: web-key-0001", &format!("key: \"{bad}\"")),
            Some(ENV_SECRET),
            &[],
            &[Want {
                file: "apps.yaml",
                app: "web",
                field: "key",
                says: "AppKey must be 8-64 letters, digits, `-` or `_`",
            }],
        );
    }
}

#[test]
fn app_key_too_short() {
    rejects(
        &edit(APPS, "key: web-key-0001", "key: web-key"),
        Some(ENV_SECRET),
        &[],
        &[Want {
            file: "apps.yaml",
            app: "web",
            field: "key",
            says: "AppKey must be 8-64 letters, digits, `-` or `_`",
        }],
    );
}

#[test]
fn duplicate_app_key_across_two_apps() {
    rejects(
        &edit(APPS, "key: MobileKey0003", "key: web-key-0001"),
        Some(ENV_SECRET),
        &[],
        &[Want {
            file: "apps.yaml",
            app: "mobile",
            field: "key",
            says: "app 'web' already uses this AppKey",
        }],
    );
}

#[test]
fn duplicate_app_key_across_two_files() {
    let other = "apps:\n  - name: other\n    key: batch_key_0002\n    secret: other-S3cret-9f1e\n";
    let s = Scratch::new("dup-key-files");
    let (defs, wasm) = defs(&s, APPS);
    s.write("defs/more-apps.yaml", other);
    let out = s.path("out");
    let o = pylon_in(
        &s.root,
        Some(ENV_SECRET),
        &[&"compile", &defs, &"--out", &out, &"--wasm", &wasm],
    );
    assert_reports(
        &o,
        &defs,
        &[Want {
            file: "more-apps.yaml",
            app: "other",
            field: "key",
            says: "app 'batch' already uses this AppKey",
        }],
    );
    assert_no_secrets(
        &o,
        &[INLINE_SECRET, ENV_SECRET, FILE_SECRET, "other-S3cret-9f1e"],
    );
    assert!(!out.exists());
}

#[test]
fn duplicate_app_name() {
    rejects(
        &edit(APPS, "name: mobile", "name: web"),
        Some(ENV_SECRET),
        &[],
        &[Want {
            file: "apps.yaml",
            app: "web",
            field: "name",
            says: "another app has this name",
        }],
    );
}

#[test]
fn grant_to_an_unknown_group() {
    rejects(
        &edit(
            APPS,
            "{ group: shop, api: get-item, environments: [STAGING] }",
            "{ group: shop, api: get-item, environments: [STAGING] }\n      \
             - { group: nope, api: get-item, environments: [TEST] }",
        ),
        Some(ENV_SECRET),
        &[],
        &[Want {
            file: "apps.yaml",
            app: "mobile",
            field: "authorizations[1].group",
            says: "no group named 'nope'",
        }],
    );
}

#[test]
fn grant_to_an_unknown_api() {
    rejects(
        &edit(
            APPS,
            "api: get-item, environments: [TEST] }",
            "api: nope, environments: [TEST] }",
        ),
        Some(ENV_SECRET),
        &[],
        &[Want {
            file: "apps.yaml",
            app: "batch",
            field: "authorizations[0].api",
            says: "group 'shop' has no API named 'nope'",
        }],
    );
}

#[test]
fn grant_in_an_environment_the_api_is_not_published_to() {
    rejects(
        &edit(
            APPS,
            "{ group: shop, api: get-item, environments: [TEST] }",
            "{ group: shop, api: health, environments: [TEST, RELEASE, PROD] }",
        ),
        Some(ENV_SECRET),
        &[],
        &[
            Want {
                file: "apps.yaml",
                app: "batch",
                field: "authorizations[0].environments[0]",
                says: "api 'health' is not published to 'TEST'",
            },
            // Not defined at all.
            Want {
                file: "apps.yaml",
                app: "batch",
                field: "authorizations[0].environments[2]",
                says: "api 'health' is not published to 'PROD'",
            },
        ],
    );
}

#[test]
fn unknown_field_in_an_app() {
    rejects(
        &edit(
            APPS,
            "    key: batch_key_0002\n",
            "    key: batch_key_0002\n    scopes: [read]\n",
        ),
        Some(ENV_SECRET),
        &[],
        &[Want {
            file: "apps.yaml",
            app: "batch",
            field: "scopes",
            says: "unknown field `scopes`",
        }],
    );
}

#[test]
fn unknown_field_in_a_grant() {
    rejects(
        &edit(
            APPS,
            "        environments: [TEST, RELEASE]",
            "        enviroments: [TEST, RELEASE]",
        ),
        Some(ENV_SECRET),
        &[],
        &[Want {
            file: "apps.yaml",
            app: "web",
            field: "authorizations[0].enviroments",
            says: "unknown field `enviroments`",
        }],
    );
}

#[test]
fn secret_of_an_unknown_kind() {
    rejects(
        &edit(
            APPS,
            "{ env: PYLON_IT_BATCH_SECRET }",
            "{ vault: kv/batch }",
        ),
        Some(ENV_SECRET),
        &[],
        &[Want {
            file: "apps.yaml",
            app: "batch",
            field: "secret.vault",
            says: "unknown field `vault`, expected `env` or `file`",
        }],
    );
}

#[test]
fn secret_from_both_env_and_file() {
    rejects(
        &edit(
            APPS,
            "{ env: PYLON_IT_BATCH_SECRET }",
            "{ env: PYLON_IT_BATCH_SECRET, file: secrets/mobile }",
        ),
        Some(ENV_SECRET),
        &[],
        &[Want {
            file: "apps.yaml",
            app: "batch",
            field: "secret",
            says: "give either `env` or `file`, not both",
        }],
    );
}

#[test]
fn secret_that_yaml_reads_as_a_number_is_not_echoed() {
    rejects(
        &edit(APPS, "\"inline-S3cret-web-4c1d9e\"", "73519046"),
        Some(ENV_SECRET),
        &["73519046"],
        &[Want {
            file: "apps.yaml",
            app: "web",
            field: "secret",
            says: "quote a secret YAML would read as a number or boolean",
        }],
    );
}

#[test]
fn a_bad_secret_does_not_hide_the_same_apps_bad_grant() {
    rejects(
        &edit(
            APPS,
            "api: get-item, environments: [TEST] }",
            "api: nope, environments: [TEST] }",
        ),
        None,
        &[],
        &[
            Want {
                file: "apps.yaml",
                app: "batch",
                field: "authorizations[0].api",
                says: "group 'shop' has no API named 'nope'",
            },
            Want {
                file: "apps.yaml",
                app: "batch",
                field: "secret",
                says: "environment variable PYLON_IT_BATCH_SECRET is not set",
            },
        ],
    );
}

// --- 5. `pylon app new` ---

/// The value of `    FIELD: value` in `pylon app new`'s output.
fn field<'a>(yaml: &'a str, name: &str) -> &'a str {
    let prefix = format!("    {name}: ");
    let values: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect();
    assert_eq!(values.len(), 1, "`{prefix}` not once in:\n{yaml}");
    values[0]
}

#[test]
fn app_new_prints_a_definition_that_compiles() {
    let s = Scratch::new("new");
    let first = pylon_in(&s.root, None, &[&"app", &"new", &"mobile"]);
    assert_ok(&first, "app new");
    assert!(stderr(&first).is_empty(), "{}", stderr(&first));
    let yaml = stdout(&first);
    assert!(yaml.contains("\n  - name: mobile\n"), "{yaml}");
    let key = field(&yaml, "key");
    let secret = field(&yaml, "secret");
    assert!(is_lower_hex(key, 32), "key `{key}`");
    assert!(is_lower_hex(secret, 64), "secret `{secret}`");

    let second = pylon_in(&s.root, None, &[&"app", &"new", &"mobile"]);
    assert_ok(&second, "second app new");
    let yaml2 = stdout(&second);
    assert_ne!(field(&yaml2, "key"), key);
    assert_ne!(field(&yaml2, "secret"), secret);

    // With a real grant it compiles, next to a group and an API.
    let apps = edit(
        &yaml,
        "authorizations: []",
        "authorizations:\n      - { group: shop, api: get-item, environments: [TEST] }",
    );
    s.write("defs/base.yaml", BASE);
    s.write("defs/apps.yaml", &apps);
    let wasm = s.write("filter.wasm", b"\0asm\x01\0\0\0 stand-in module");
    let defs = s.path("defs");
    let out = s.path("out");
    let o = pylon_in(
        &s.root,
        None,
        &[&"compile", &defs, &"--out", &out, &"--wasm", &wasm],
    );
    assert_ok(&o, "compile");
    assert_no_secrets(&o, &[secret]);
    let plan = read_plan(&out);
    assert_eq!(
        plan["apps"],
        json!([{
            "id": plan["apps"][0]["id"],
            "name": "mobile",
            "key": key,
            "secret": secret,
        }])
    );
    assert_eq!(
        api(&plan, "get-item")["authorized"],
        json!({ "TEST": ["mobile"] })
    );
}
