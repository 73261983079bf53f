//! `pylon publish`, `rollback`, `offline` and `history`: publishing APIs to
//! environments through the release store, and updating the live target.
//!
//! What is live is built from the release store alone for APIs — in each
//! environment, the current version of each API published there — and from
//! the definitions for everything else (gateway, environments, groups, apps,
//! accounts, policies), which in the products take effect without a
//! publication (Huawei user guide §4.2.7, §5.2.5). Editing an API's
//! definition therefore changes nothing live until it is published.
//!
//! Every command checks everything before it writes anything: the
//! definitions (every check `compile` runs), the live plan built from the
//! store (the same checks, and the filter's own loader), and — when an
//! Envoy binary is at hand — Envoy's own validation of the configuration.
//! Only then are the live files replaced; a running Envoy must confirm it
//! applied them (else they are put back), and only then is the store
//! updated.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pylon_filter::gateway::Gateway;
use serde_json::Value;

use crate::defs::{ApiDef, Defs, GrantDef, Located};
use crate::emit::{bootstrap, xds};
use crate::error::DefError;
use crate::lower::{self, Compiled};
use crate::release_store::{Record, Store, Version};
use crate::{envoy_admin, ssrf};

/// Where the definitions, the filter and the live files are.
pub struct Target {
    pub defs: Vec<PathBuf>,
    pub live: PathBuf,
    pub wasm: Option<PathBuf>,
    pub seal_key_file: Option<PathBuf>,
    /// Envoy binary for `--mode validate`; default `$PYLON_ENVOY`, then
    /// `envoy` on the PATH.
    pub envoy: Option<PathBuf>,
}

/// Where `publish`, `rollback` and `offline` write, and with what.
#[derive(clap::Args)]
pub struct LiveArgs {
    /// The live directory (as written by `compile --target xds`).
    #[arg(long, value_name = "DIR")]
    live: PathBuf,
    /// The filter module, as for `compile`.
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// The seal key, as for `compile`; default: $PYLON_SEAL_KEY.
    #[arg(long, value_name = "FILE")]
    seal_key_file: Option<PathBuf>,
    /// Envoy binary that validates the configuration first; default
    /// $PYLON_ENVOY, then `envoy` on the PATH (skipped if there is none).
    #[arg(long)]
    envoy: Option<PathBuf>,
}

impl LiveArgs {
    pub fn target(self, defs: Vec<PathBuf>) -> Target {
        Target {
            defs,
            live: self.live,
            wasm: self.wasm,
            seal_key_file: self.seal_key_file,
            envoy: self.envoy,
        }
    }
}

type Errors = Vec<DefError>;

fn cli_err(m: impl Into<String>) -> Errors {
    vec![DefError::new(Path::new("(command line)"), "", "", m)]
}

fn store_of(defs: &[PathBuf]) -> Store {
    Store::for_defs(defs.first().map_or(Path::new("."), PathBuf::as_path))
}

/// `pylon publish`: snapshots the selected APIs (every API whose `publish:`
/// lists the environment, or the named ones, which must list it) into the
/// store as new current versions, then updates the live files.
pub fn publish(t: &Target, env: &str, names: &[String], note: &str) -> Result<String, Errors> {
    let (defs, _, admin) = crate::commands::load_and_lower(&t.defs, None)?;
    check_environment(&defs, env)?;
    let selected: Vec<&Located<ApiDef>> = if names.is_empty() {
        defs.apis
            .iter()
            .filter(|a| a.def.publish.iter().any(|e| e == env))
            .collect()
    } else {
        let mut out = Vec::new();
        for name in names {
            let (group, api) = split_name(name);
            let found: Vec<_> = defs
                .apis
                .iter()
                .filter(|a| a.def.name == api && group.is_none_or(|g| a.def.group == g))
                .collect();
            match found.as_slice() {
                [] => return Err(cli_err(format!("--api {name}: no such API"))),
                [a] if !a.def.publish.iter().any(|e| e == env) => {
                    return Err(cli_err(format!(
                    "--api {name}: its `publish:` does not list '{env}'; add it to publish there"
                )))
                }
                [a] => out.push(*a),
                _ => {
                    return Err(cli_err(format!(
                        "--api {name}: several groups have this API; name it GROUP/{api}"
                    )))
                }
            }
        }
        out
    };
    if selected.is_empty() {
        return Err(cli_err(format!("no API lists '{env}' in `publish:`")));
    }
    let store = store_of(&t.defs);
    let _lock = store.lock().map_err(cli_err)?;
    let mut records = load_records(&store)?;
    let before = crate::audit::state_of_records(&records);
    let stamp = now();
    let by = publisher();
    let mut changed = Vec::new();
    let mut report = Vec::new();
    for a in selected {
        let definition = raw_definition(a)?;
        let at = match records
            .iter()
            .position(|r| r.environment == env && r.group == a.def.group && r.api == a.def.name)
        {
            Some(i) => i,
            None => {
                records.push(Record::new(&a.def.group, &a.def.name, env));
                records.len() - 1
            }
        };
        let n = records[at].publish(Version {
            version: 0,
            note: note.to_string(),
            published_at: stamp.clone(),
            published_by: by.clone(),
            definition,
        });
        report.push(format!("{}/{} v{n}", a.def.group, a.def.name));
        changed.push(at);
    }
    let summary = go_live(t, &store, defs, admin, &records)?;
    save(&store, &records, &changed)?;
    let msg = format!("published {} to {env}; live: {summary}", report.join(", "));
    Ok(audited(&t.defs, "publish", note, msg, &before, &records))
}

/// `pylon rollback`: makes a kept version of one API current again in one
/// environment; no other API changes (Huawei user guide §5.2.5).
pub fn rollback(t: &Target, api: &str, env: &str, to: u64, note: &str) -> Result<String, Errors> {
    let (defs, _, admin) = crate::commands::load_and_lower(&t.defs, None)?;
    let store = store_of(&t.defs);
    let _lock = store.lock().map_err(cli_err)?;
    let mut records = load_records(&store)?;
    let at = find_record(&records, api, env)?;
    let before = crate::audit::state_of_records(&records);
    records[at].rollback(to).map_err(cli_err)?;
    let summary = go_live(t, &store, defs, admin, &records)?;
    save(&store, &records, &[at])?;
    let r = &records[at];
    let msg = format!(
        "{}/{} in {env} is now v{to}; live: {summary}",
        r.group, r.api
    );
    Ok(audited(&t.defs, "rollback", note, msg, &before, &records))
}

/// `pylon offline`: removes one API from one environment; its callers get
/// NOT_FOUND (Huawei user guide §5.2.6). Its history is kept, so it can be
/// made current again with `rollback`.
pub fn offline(t: &Target, api: &str, env: &str, note: &str) -> Result<String, Errors> {
    let (defs, _, admin) = crate::commands::load_and_lower(&t.defs, None)?;
    let store = store_of(&t.defs);
    let _lock = store.lock().map_err(cli_err)?;
    let mut records = load_records(&store)?;
    let at = find_record(&records, api, env)?;
    if records[at].current.is_none() {
        return Err(cli_err(format!("api '{api}' is not published in '{env}'")));
    }
    let before = crate::audit::state_of_records(&records);
    records[at].current = None;
    let summary = go_live(t, &store, defs, admin, &records)?;
    save(&store, &records, &[at])?;
    let r = &records[at];
    let msg = format!("{}/{} is offline in {env}; live: {summary}", r.group, r.api);
    Ok(audited(&t.defs, "offline", note, msg, &before, &records))
}

/// Appends the change to the audit trail (`audit.rs`); the change itself is
/// done, so a trail that cannot be written is reported, not undone.
fn audited(
    defs: &[PathBuf],
    action: &str,
    note: &str,
    msg: String,
    before: &crate::audit::State,
    records: &[Record],
) -> String {
    let changes = crate::audit::diff(before, &crate::audit::state_of_records(records));
    match crate::audit::record(defs, action, note, &msg, changes) {
        Ok(()) => msg,
        Err(e) => format!("{msg}\nwarning: audit trail not written: {e}"),
    }
}

/// `pylon history`: the kept versions, newest first, per API and
/// environment; `*` marks the current one.
pub fn history(defs: &[PathBuf], api: Option<&str>, env: Option<&str>) -> Result<String, Errors> {
    let records = load_records(&store_of(defs))?;
    let mut lines = vec![format!(
        "{:<12} {:<32} {:>7} {:<1} {:<20} {:<16} NOTE",
        "ENVIRONMENT", "API", "VERSION", "", "PUBLISHED", "BY"
    )];
    for r in &records {
        if env.is_some_and(|e| e != r.environment) || api.is_some_and(|a| !names_record(a, r)) {
            continue;
        }
        let name = format!("{}/{}", r.group, r.api);
        if r.current.is_none() {
            lines.push(format!(
                "{:<12} {:<32} {:>7} {:<1} (offline)",
                r.environment, name, "-", ""
            ));
        }
        for v in r.versions.iter().rev() {
            let mark = if r.current == Some(v.version) {
                "*"
            } else {
                ""
            };
            lines.push(format!(
                "{:<12} {:<32} {:>7} {:<1} {:<20} {:<16} {}",
                r.environment, name, v.version, mark, v.published_at, v.published_by, v.note
            ));
        }
    }
    Ok(lines.join("\n"))
}

fn check_environment(defs: &Defs, env: &str) -> Result<(), Errors> {
    if env == pylon_filter::plan::RELEASE || defs.environments.iter().any(|e| e.def.name == env) {
        Ok(())
    } else {
        Err(cli_err(format!("--env {env}: no such environment")))
    }
}

/// `GROUP/NAME` or `NAME`.
fn split_name(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((g, a)) => (Some(g), a),
        None => (None, name),
    }
}

fn names_record(name: &str, r: &Record) -> bool {
    let (group, api) = split_name(name);
    r.api == api && group.is_none_or(|g| r.group == g)
}

fn find_record(records: &[Record], api: &str, env: &str) -> Result<usize, Errors> {
    let found: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.environment == env && names_record(api, r))
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [i] => Ok(*i),
        [] => Err(cli_err(format!(
            "api '{api}' has never been published to '{env}'"
        ))),
        _ => Err(cli_err(format!(
            "several groups have an API '{api}' in '{env}'; name it GROUP/NAME"
        ))),
    }
}

fn load_records(store: &Store) -> Result<Vec<Record>, Errors> {
    Ok(store
        .load_all()
        .map_err(cli_err)?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

fn save(store: &Store, records: &[Record], changed: &[usize]) -> Result<(), Errors> {
    let changed: Vec<Record> = changed.iter().map(|&i| records[i].clone()).collect();
    store.save(&changed).map_err(cli_err)
}

/// The API's entry as written in its definition file, without `publish:`.
fn raw_definition(a: &Located<ApiDef>) -> Result<Value, Errors> {
    let err = |m: String| {
        vec![DefError::new(
            &a.file,
            &format!("api '{}'", a.def.name),
            "",
            m,
        )]
    };
    let text = std::fs::read_to_string(&a.file).map_err(|e| err(e.to_string()))?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| err(e.to_string()))?;
    let entry = doc
        .get("apis")
        .and_then(|v| v.as_sequence())
        .into_iter()
        .flatten()
        .find(|e| {
            e.get("name").and_then(|v| v.as_str()) == Some(&a.def.name)
                && e.get("group").and_then(|v| v.as_str()) == Some(&a.def.group)
        })
        .ok_or_else(|| err("cannot find the API in its file again".into()))?;
    let mut value = serde_json::to_value(entry).map_err(|e| err(e.to_string()))?;
    if let Some(map) = value.as_object_mut() {
        map.remove("publish");
    }
    Ok(value)
}

/// Builds the live plan from the definitions' shared sections and the
/// store's current versions, checks it (including with Envoy when one is
/// available), and only then replaces the live files.
fn go_live(
    t: &Target,
    store: &Store,
    defs: Defs,
    (admin_host, admin_port): (String, u16),
    records: &[Record],
) -> Result<String, Errors> {
    let listen = crate::commands::pick_address(
        None,
        defs.gateway.as_ref(),
        |g| g.listen.as_ref(),
        "127.0.0.1:8080",
        "listen",
    )?;
    let trusted_hops = defs.gateway.as_ref().map_or(0, |g| g.def.trusted_hops);
    let guard = ssrf::Admin {
        ip: admin_host.parse().expect("the admin address was checked"),
        port: admin_port,
    };
    let mut compiled = live_plan(defs, store, records, &guard)?;

    let wasm_src = t
        .wasm
        .clone()
        .or_else(|| std::env::var_os("PYLON_WASM").map(PathBuf::from))
        .or_else(crate::commands::default_wasm)
        .ok_or_else(|| cli_err("cannot find the filter module; pass --wasm or set PYLON_WASM"))?;
    let wasm_bytes = std::fs::read(&wasm_src)
        .map_err(|e| cli_err(format!("filter module {}: {e}", wasm_src.display())))?;
    crate::commands::seal_secrets(&mut compiled.plan, t.seal_key_file.as_deref())
        .map_err(cli_err)?;

    // The live files must not be read back as definitions.
    crate::commands::check_out(&t.defs, &t.live)
        .map_err(|m| cli_err(m.replace("--out", "--live")))?;
    let io = |p: &Path, e: std::io::Error| cli_err(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(&t.live).map_err(|e| io(&t.live, e))?;
    let live = std::fs::canonicalize(&t.live).map_err(|e| io(&t.live, e))?;
    let wasm_dest = live.join("pylon_filter.wasm");
    let plan_json = serde_json::to_string(&compiled.plan).expect("plan serializes");
    let listen = bootstrap::Listen {
        address: &listen.0,
        port: listen.1,
        admin_address: &admin_host,
        admin_port,
        trusted_hops,
        out_dir: &live,
    };
    let bootstrap =
        bootstrap::bootstrap(&compiled, &plan_json, &wasm_dest.to_string_lossy(), &listen);
    // The certificates' SDS files (paths to pem files the compiler found)
    // must exist for Envoy to validate the listener that names them.
    crate::tls::write_secrets(&live, &compiled.tls).map_err(|e| io(&live, e))?;
    validate_with_envoy(t, &bootstrap, &wasm_src)?;

    // Everything is valid: replace the live files. The module is replaced
    // only when it changed, so Envoy keeps its VM otherwise.
    let envoy = envoy_admin::Admin::probe(&admin_host, admin_port);
    let rejected_before = envoy.as_ref().map_or(0, envoy_admin::Admin::rejected);
    let previous = LiveSnapshot::take(&live);
    let written = crate::files::write_if_changed(&wasm_dest, &wasm_bytes)
        .and_then(|_| xds::write(&live, &xds::split(&bootstrap, &live)));
    let versions = match written {
        Ok(v) => v,
        Err(e) => {
            previous.restore();
            return Err(io(&live, e));
        }
    };
    // A running Envoy checks the update once more, with its own environment
    // (the seal key): wait until it has applied it, else put the previous
    // files back, so the store never records what callers do not get.
    let confirmed = match &envoy {
        Some(admin) => {
            if let Err(m) = admin.wait_applied(&versions, rejected_before, APPLY_WITHIN) {
                previous.restore();
                return Err(cli_err(format!(
                    "{m}; the previous live files are back in {}",
                    live.display()
                )));
            }
            "applied by Envoy"
        }
        None => "no Envoy answers on the admin address",
    };
    let plan_pretty = serde_json::to_string_pretty(&compiled.plan).expect("plan serializes") + "\n";
    let plan_path = live.join("pylon.json");
    crate::files::write_if_changed(&plan_path, plan_pretty.as_bytes())
        .map_err(|e| io(&plan_path, e))?;
    Ok(format!(
        "{} ({confirmed})",
        crate::commands::summary(&compiled)
    ))
}

/// How long a running Envoy may take to apply the live files.
const APPLY_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The live files' contents before an update, to put back if it fails.
struct LiveSnapshot(Vec<(PathBuf, Option<Vec<u8>>)>);

impl LiveSnapshot {
    fn take(live: &Path) -> LiveSnapshot {
        LiveSnapshot(
            xds::FILES
                .iter()
                .chain(["pylon_filter.wasm"].iter())
                .map(|f| (live.join(f), std::fs::read(live.join(f)).ok()))
                .collect(),
        )
    }

    /// Best effort: the files as they were (removed if they did not exist).
    fn restore(&self) {
        for (path, bytes) in &self.0 {
            let _ = match bytes {
                Some(b) => crate::files::write_if_changed(path, b),
                None => std::fs::remove_file(path),
            };
        }
    }
}

/// Prefix of the temporary names of an API whose environments hold
/// different versions (see `live_plan`).
const VARIANT: &str = "pylon-variant-";

/// One distinct published definition of an API: the environments holding
/// it and the store file it came from.
type Distinct = (Value, Vec<String>, PathBuf);

/// The live plan: the definitions with their APIs replaced by the store's
/// current versions. An API whose environments hold different versions
/// becomes one API per version, each published to its environments; they
/// are lowered under temporary names (lowering allows one API per name)
/// and get their own name and id back afterwards.
fn live_plan(
    mut defs: Defs,
    store: &Store,
    records: &[Record],
    guard: &ssrf::Admin,
) -> Result<Compiled, Errors> {
    // (group, api) → distinct definitions, each with its environments.
    let mut versions: BTreeMap<(String, String), Vec<Distinct>> = BTreeMap::new();
    for r in records {
        let Some(v) = r.current_version() else {
            continue;
        };
        let file = store
            .path(&r.environment, &r.group, &r.api)
            .map_err(cli_err)?;
        let entry = versions
            .entry((r.group.clone(), r.api.clone()))
            .or_default();
        match entry.iter_mut().find(|(d, _, _)| *d == v.definition) {
            Some((_, envs, _)) => envs.push(r.environment.clone()),
            None => entry.push((v.definition.clone(), vec![r.environment.clone()], file)),
        }
    }
    let mut apis = Vec::new();
    // (group, api, environment) → the name it is lowered under.
    let mut lowered_as: BTreeMap<(String, String, String), String> = BTreeMap::new();
    let mut renamed: BTreeMap<String, String> = BTreeMap::new();
    let mut errs = Vec::new();
    for ((group, api), list) in &versions {
        for (i, (definition, envs, file)) in list.iter().enumerate() {
            let name = if i == 0 {
                api.clone()
            } else {
                let temp = format!("{VARIANT}{}-{i}", renamed.len());
                renamed.insert(temp.clone(), api.clone());
                temp
            };
            for env in envs {
                lowered_as.insert((group.clone(), api.clone(), env.clone()), name.clone());
            }
            let mut definition = definition.clone();
            definition["name"] = Value::String(name.clone());
            definition["publish"] = serde_json::json!(envs);
            match serde_json::from_value::<ApiDef>(definition) {
                Ok(def) => apis.push(Located {
                    file: file.clone(),
                    def,
                }),
                Err(e) => errs.push(DefError::new(
                    file,
                    &format!("api '{api}'"),
                    "",
                    format!("stored version no longer reads: {e}"),
                )),
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    defs.apis = apis;
    // Bindings name APIs and environments; keep the ones that are live,
    // pointed at the name each is lowered under. Authorizations and
    // policies for what is not published are kept in the definitions.
    let rebind = |grants: &mut Vec<GrantDef>| {
        let mut out: Vec<GrantDef> = Vec::new();
        for g in grants.iter() {
            let mut by_name: BTreeMap<&String, Vec<String>> = BTreeMap::new();
            for env in &g.environments {
                if let Some(n) = lowered_as.get(&(g.group.clone(), g.api.clone(), env.clone())) {
                    by_name.entry(n).or_default().push(env.clone());
                }
            }
            out.extend(by_name.into_iter().map(|(n, environments)| GrantDef {
                group: g.group.clone(),
                api: n.clone(),
                environments,
            }));
        }
        *grants = out;
    };
    for a in &mut defs.apps {
        rebind(&mut a.def.authorizations);
    }
    for a in &mut defs.acls {
        rebind(&mut a.def.bindings);
    }
    for a in &mut defs.throttles {
        rebind(&mut a.def.bindings);
    }
    let restore = |s: &str| {
        renamed
            .iter()
            .fold(s.to_string(), |s, (temp, real)| s.replace(temp, real))
    };
    let mut compiled = lower::lower(&defs, guard).map_err(|errs| {
        errs.into_iter()
            .map(|mut e| {
                e.object = restore(&e.object);
                e.message = restore(&e.message);
                e
            })
            .collect::<Vec<_>>()
    })?;
    for g in &mut compiled.plan.groups {
        for a in &mut g.apis {
            if let Some(real) = renamed.get(&a.name) {
                a.name = real.clone();
                a.id = crate::names::api_id(&g.name, real);
            }
        }
    }
    // The filter's own loader, on the plan as it will run.
    Gateway::from_plan(&compiled.plan)
        .map_err(|e| vec![DefError::new(Path::new("(plan)"), "", "", e)])?;
    Ok(compiled)
}

/// Runs `envoy --mode validate` on the configuration (as a static
/// bootstrap: the same listener, routes, clusters and filter), when an
/// Envoy binary is available.
/// Sets the module file of every `pylon` HTTP filter in `v` to `module`.
fn point_filters_at(v: &mut Value, module: &Value) {
    match v {
        Value::Object(o) => {
            // The HTTP filter (a listener may be called `pylon` too).
            let file = "/typed_config/config/vm_config/code/local/filename";
            if o.get("name").is_some_and(|n| n == "pylon") {
                if let Some(f) = v.pointer_mut(file) {
                    *f = module.clone();
                    return;
                }
            }
            if let Value::Object(o) = v {
                o.values_mut().for_each(|c| point_filters_at(c, module));
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| point_filters_at(c, module)),
        _ => {}
    }
}

fn validate_with_envoy(t: &Target, bootstrap: &Value, wasm: &Path) -> Result<(), Errors> {
    let envoy = t
        .envoy
        .clone()
        .or_else(|| std::env::var_os("PYLON_ENVOY").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join("envoy"))
                    .find(|p| p.is_file())
            })
        });
    let Some(envoy) = envoy else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("pylon-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| cli_err(format!("{}: {e}", dir.display())))?;
    let mut bootstrap = bootstrap.clone();
    // Validate against the module as it is now; the live copy may be older
    // or, on a first publish, absent. Every listener runs the filter (the
    // HTTPS one in each certificate's chain), so every copy is pointed at it.
    point_filters_at(
        &mut bootstrap,
        &Value::String(wasm.to_string_lossy().into_owned()),
    );
    let file = dir.join("envoy.yaml");
    let text = serde_yaml::to_string(&bootstrap).expect("bootstrap serializes");
    let outcome = crate::files::write_atomically(&file, text.as_bytes())
        .map_err(|e| cli_err(format!("{}: {e}", file.display())))
        .and_then(|_| {
            std::process::Command::new(&envoy)
                .args(["--mode", "validate", "--log-level", "error", "-c"])
                .arg(&file)
                .output()
                .map_err(|e| cli_err(format!("{}: {e}", envoy.display())))
        });
    let _ = std::fs::remove_dir_all(&dir);
    let output = outcome?;
    if output.status.success() {
        Ok(())
    } else {
        Err(cli_err(format!(
            "Envoy refused the configuration ({}): {}",
            envoy.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Now, RFC 3339 in UTC.
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Who publishes: `$PYLON_PUBLISHER` (a CI job can name itself), else the
/// user name, if known.
pub(crate) fn publisher() -> String {
    ["PYLON_PUBLISHER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}
