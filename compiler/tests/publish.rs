//! `pylon publish`, `rollback`, `offline`, `history` and `compile --target
//! xds`: what the release store records, what the live files hold, and that
//! a refused command writes nothing. (Envoy itself is driven in
//! tests/e2e/test_publish.py.)

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// No Envoy answers on port 1, so commands do not wait for one to apply.
const DEFS: &str = r#"
gateway:
  admin: 127.0.0.1:1
environments:
  - name: TEST
groups:
  - name: shop
    default: true
apis:
  - name: alpha
    group: shop
    method: GET
    path: /alpha
    backend:
      mock: { status: 200, body: "alpha-1" }
    publish: [RELEASE, TEST]
  - name: beta
    group: shop
    method: GET
    path: /beta
    backend:
      mock: { status: 200, body: "beta-1" }
    publish: [RELEASE, TEST]
apps:
  - name: mobile
    key: mobileKey001
    secret: mobile-secret-plaintext
    authorizations:
      - { group: shop, api: alpha, environments: [RELEASE, TEST] }
"#;

struct Live {
    s: Scratch,
}

impl Live {
    fn new(tag: &str) -> Live {
        let s = Scratch::new(tag);
        s.write("defs/defs.yaml", DEFS);
        s.write("filter.wasm", STAND_IN_WASM);
        Live { s }
    }

    /// Runs `pylon ARGS… --defs/--live/--wasm` with no Envoy to validate
    /// with (PATH emptied), so only the compiler's own checks run.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pylon"));
        cmd.args(args);
        if args[0] != "history" {
            cmd.arg("--live")
                .arg(self.s.path("live"))
                .arg("--wasm")
                .arg(self.s.path("filter.wasm"));
        }
        if args[0] == "publish" {
            cmd.arg(self.s.path("defs"));
        } else {
            cmd.arg("--defs").arg(self.s.path("defs"));
        }
        cmd.env_remove("PYLON_WASM")
            .env_remove("PYLON_ENVOY")
            .env("PATH", "")
            .env("PYLON_PUBLISHER", "ci-job-7")
            .env("PYLON_SEAL_KEY", TEST_SEAL_KEY)
            .output()
            .expect("run pylon")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_ok(&o, &args.join(" "));
        stdout(&o)
    }

    fn edit(&self, from: &str, to: &str) {
        let path = self.s.path("defs/defs.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(&text, from, to)).unwrap();
    }

    fn plan(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.s.path("live/pylon.json")).unwrap()).unwrap()
    }

    /// Mock bodies of the live plan: (api name, environment) → body.
    fn bodies(&self) -> BTreeMap<(String, String), String> {
        let mut out = BTreeMap::new();
        for g in self.plan()["groups"].as_array().unwrap() {
            for a in g["apis"].as_array().unwrap() {
                for (env, b) in a["stages"].as_object().unwrap() {
                    out.insert(
                        (a["name"].as_str().unwrap().to_string(), env.clone()),
                        b["mock"]["body"].as_str().unwrap().to_string(),
                    );
                }
            }
        }
        out
    }

    fn record(&self, env: &str, api: &str) -> Value {
        let path = self
            .s
            .path(&format!("defs/.pylon/releases/{env}/shop/{api}.json"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// Every file under the live directory and the store, with its bytes.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.s.path("live"), self.s.path("defs/.pylon")];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }
}

fn pairs(list: &[(&str, &str, &str)]) -> BTreeMap<(String, String), String> {
    list.iter()
        .map(|(a, e, b)| ((a.to_string(), e.to_string()), b.to_string()))
        .collect()
}

#[test]
fn editing_a_definition_changes_nothing_live_until_it_is_published() {
    let l = Live::new("edit");
    l.ok(&["publish", "--env", "RELEASE", "--note", "first"]);
    l.edit("alpha-1", "alpha-2");
    // Another API's publication does not carry the edit along.
    l.ok(&[
        "publish", "--env", "RELEASE", "--api", "beta", "--note", "beta",
    ]);
    assert_eq!(
        l.bodies(),
        pairs(&[
            ("alpha", "RELEASE", "alpha-1"),
            ("beta", "RELEASE", "beta-1")
        ])
    );
    l.ok(&[
        "publish", "--env", "RELEASE", "--api", "alpha", "--note", "second",
    ]);
    assert_eq!(l.bodies()[&("alpha".into(), "RELEASE".into())], "alpha-2");
    let r = l.record("RELEASE", "alpha");
    assert_eq!(r["current"], 2);
    assert_eq!(r["versions"][1]["note"], "second");
    assert_eq!(r["versions"][1]["published_by"], "ci-job-7");
    assert_eq!(
        r["versions"][1]["definition"]["backend"]["mock"]["body"],
        "alpha-2"
    );
    // The store holds definitions as written: references, never secrets.
    let store = l.snapshot();
    assert!(!store
        .values()
        .any(|b| String::from_utf8_lossy(b).contains("mobile-secret-plaintext")));
}

#[test]
fn environments_hold_different_versions_of_one_api_under_its_own_name_and_id() {
    let l = Live::new("envs");
    l.ok(&["publish", "--env", "RELEASE", "--note", "r"]);
    l.edit("alpha-1", "alpha-2");
    l.ok(&[
        "publish",
        "--env",
        "TEST",
        "--api",
        "shop/alpha",
        "--note",
        "t",
    ]);
    assert_eq!(
        l.bodies(),
        pairs(&[
            ("alpha", "RELEASE", "alpha-1"),
            ("alpha", "TEST", "alpha-2"),
            ("beta", "RELEASE", "beta-1"),
        ])
    );
    let plan = l.plan();
    let ids: Vec<&Value> = plan["groups"][0]["apis"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == "alpha")
        .map(|a| &a["id"])
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "one API, one id, whatever the version");
}

#[test]
fn rollback_changes_only_that_api_in_that_environment() {
    let l = Live::new("rollback");
    l.ok(&["publish", "--env", "RELEASE", "--note", "one"]);
    l.ok(&["publish", "--env", "TEST", "--note", "one"]);
    l.edit("alpha-1", "alpha-2");
    l.edit("beta-1", "beta-2");
    l.ok(&["publish", "--env", "RELEASE", "--note", "two"]);
    let beta_before = l.record("RELEASE", "beta");
    let out = l.ok(&["rollback", "alpha", "--env", "RELEASE", "--to", "1"]);
    assert!(out.contains("shop/alpha in RELEASE is now v1"), "{out}");
    assert_eq!(
        l.bodies(),
        pairs(&[
            ("alpha", "RELEASE", "alpha-1"),
            ("alpha", "TEST", "alpha-1"),
            ("beta", "RELEASE", "beta-2"),
            ("beta", "TEST", "beta-1"),
        ])
    );
    assert_eq!(l.record("RELEASE", "beta"), beta_before);
    assert_eq!(l.record("RELEASE", "alpha")["current"], 1);
    // A version that was never published is refused, and nothing changes.
    let before = l.snapshot();
    let o = l.run(&["rollback", "alpha", "--env", "RELEASE", "--to", "9"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no version 9"), "{}", stderr(&o));
    assert_eq!(l.snapshot(), before);
}

#[test]
fn offline_removes_the_api_from_one_environment_and_keeps_its_history() {
    let l = Live::new("offline");
    l.ok(&["publish", "--env", "RELEASE", "--note", "one"]);
    l.ok(&["publish", "--env", "TEST", "--note", "one"]);
    l.ok(&["offline", "alpha", "--env", "RELEASE"]);
    assert_eq!(
        l.bodies(),
        pairs(&[
            ("alpha", "TEST", "alpha-1"),
            ("beta", "RELEASE", "beta-1"),
            ("beta", "TEST", "beta-1"),
        ])
    );
    let r = l.record("RELEASE", "alpha");
    assert_eq!(r["current"], Value::Null);
    assert_eq!(r["versions"].as_array().unwrap().len(), 1);
    let history = l.ok(&["history", "alpha", "--env", "RELEASE"]);
    assert!(history.contains("(offline)"), "{history}");
    // Rollback brings it back.
    l.ok(&["rollback", "alpha", "--env", "RELEASE", "--to", "1"]);
    assert_eq!(l.bodies()[&("alpha".into(), "RELEASE".into())], "alpha-1");
}

#[test]
fn history_keeps_exactly_the_last_ten_per_api_and_environment() {
    let l = Live::new("history");
    for i in 1..=12 {
        let note = format!("note {i}");
        l.ok(&[
            "publish", "--env", "RELEASE", "--api", "alpha", "--note", &note,
        ]);
    }
    l.ok(&["publish", "--env", "TEST", "--api", "alpha", "--note", "t"]);
    let r = l.record("RELEASE", "alpha");
    let kept: Vec<u64> = r["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, (3..=12).collect::<Vec<_>>());
    let history = l.ok(&["history", "alpha", "--env", "RELEASE"]);
    let rows: Vec<&str> = history.lines().skip(1).collect();
    assert_eq!(rows.len(), 10, "{history}");
    assert!(
        rows[0].contains(" 12 *") && rows[0].contains("note 12"),
        "{history}"
    );
    assert!(rows[9].contains("note 3"), "{history}");
    assert_eq!(
        l.record("TEST", "alpha")["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_refused_publish_writes_nothing() {
    let l = Live::new("refused");
    l.ok(&["publish", "--env", "RELEASE", "--note", "one"]);
    let before = l.snapshot();
    // Invalid definitions.
    l.edit("path: /beta", "path: /beta{x");
    let o = l.run(&["publish", "--env", "RELEASE", "--note", "bad"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nothing written"), "{}", stderr(&o));
    assert_eq!(l.snapshot(), before);
    // Valid definitions whose publication would collide with what is
    // live: alpha moves to beta's path, beta's live version keeps it.
    l.edit("path: /beta{x", "path: /gamma");
    l.edit("path: /alpha", "path: /beta");
    let o = l.run(&[
        "publish", "--env", "RELEASE", "--api", "alpha", "--note", "clash",
    ]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(stderr(&o).contains("api 'alpha'"), "{}", stderr(&o));
    assert_eq!(l.snapshot(), before);
    // Live files among the definitions would be read back as definitions.
    let o = Command::new(env!("CARGO_BIN_EXE_pylon"))
        .args(["publish", "--env", "RELEASE", "--note", "x", "--live"])
        .arg(l.s.path("defs/live"))
        .arg("--wasm")
        .arg(l.s.path("filter.wasm"))
        .arg(l.s.path("defs"))
        .env("PATH", "")
        .env("PYLON_SEAL_KEY", TEST_SEAL_KEY)
        .output()
        .unwrap();
    assert!(stderr(&o).contains("--live"), "{}", stderr(&o));
    assert!(!l.s.path("defs/live").exists());
    assert_eq!(l.snapshot(), before);
    // An environment that does not exist.
    let o = l.run(&["publish", "--env", "NOPE", "--note", "x"]);
    assert!(!o.status.success());
    assert_eq!(l.snapshot(), before);
}

#[test]
fn compile_target_xds_reads_everything_from_watched_files_with_secrets_sealed() {
    let l = Live::new("xds");
    let out = l.s.path("out");
    let o = Command::new(env!("CARGO_BIN_EXE_pylon"))
        .args([
            Path::new("compile"),
            &l.s.path("defs"),
            Path::new("--out"),
            &out,
        ])
        .args([Path::new("--wasm"), &l.s.path("filter.wasm")])
        .args(["--target", "xds"])
        .env("PYLON_SEAL_KEY", TEST_SEAL_KEY)
        .output()
        .unwrap();
    assert_ok(&o, "compile --target xds");
    let read = |f: &str| -> serde_yaml::Value {
        serde_yaml::from_str(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap()
    };
    let out = std::fs::canonicalize(&out).unwrap();
    let boot = read("envoy.yaml");
    assert!(boot.get("static_resources").is_none());
    for (key, file) in [("lds_config", "lds.yaml"), ("cds_config", "cds.yaml")] {
        let src = &boot["dynamic_resources"][key]["path_config_source"];
        assert_eq!(
            src["path"].as_str().unwrap(),
            out.join(file).to_str().unwrap()
        );
        assert_eq!(
            src["watched_directory"]["path"].as_str().unwrap(),
            out.to_str().unwrap()
        );
    }
    let lds = read("lds.yaml");
    let hcm = &lds["resources"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(hcm["rds"]["route_config_name"].as_str(), Some("pylon"));
    let pylon = &hcm["http_filters"][0];
    assert_eq!(pylon["name"].as_str(), Some("pylon"));
    assert!(
        pylon["config_discovery"]["config_source"]["path_config_source"]["path"]
            .as_str()
            .unwrap()
            .ends_with("/ecds.yaml")
    );
    let ecds_text = std::fs::read_to_string(out.join("ecds.yaml")).unwrap();
    assert!(!ecds_text.contains("mobile-secret-plaintext"));
    assert!(ecds_text.contains("pylon-sealed:v1:"));
    let ecds = read("ecds.yaml");
    let vm = &ecds["resources"][0]["typed_config"]["config"]["vm_config"];
    let keys: Vec<&str> = vm["environment_variables"]["host_env_keys"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(keys.contains(&"PYLON_SEAL_KEY"), "{keys:?}");
    assert_eq!(
        read("rds.yaml")["resources"][0]["name"].as_str(),
        Some("pylon")
    );
}
