//! What each `pylon` subcommand does, callable without the binary.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use pylon_filter::plan;
use pylon_filter::seal::{self, SealKey};

use crate::emit::{self, bootstrap, istio, Emitter, Site};
use crate::error::DefError;
use crate::{apps, defs, lower, names, ssrf};

/// What `pylon compile` writes: a static bootstrap, file-based xDS, or
/// Istio resources.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputTarget {
    Static,
    Xds,
    Istio,
}

/// Loads and lowers the definitions; also returns the admin address
/// (`--admin`, else `gateway.admin`), which backends must not reach.
pub fn load_and_lower(
    inputs: &[PathBuf],
    admin: Option<String>,
) -> Result<(defs::Defs, lower::Compiled, (String, u16)), Vec<DefError>> {
    let defs = defs::load(inputs)?;
    let admin = pick_address(
        admin,
        defs.gateway.as_ref(),
        |g| g.admin.as_ref(),
        DEFAULT_ADMIN,
        "admin",
    );
    // A bad admin address is reported with the definitions' own errors.
    let (admin_host, admin_port) = match &admin {
        Ok(a) => a.clone(),
        Err(_) => split_host_port(DEFAULT_ADMIN).expect("default admin address is valid"),
    };
    let guard = ssrf::Admin {
        ip: admin_host.parse().expect("split_host_port checked the IP"),
        port: admin_port,
    };
    match (lower::lower(&defs, &guard), admin) {
        (Ok(compiled), Ok(admin)) => Ok((defs, compiled, admin)),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), Ok(_)) => Err(e),
        (Err(mut e), Err(a)) => {
            e.extend(a);
            Err(e)
        }
    }
}

pub const DEFAULT_ADMIN: &str = "127.0.0.1:9901";

/// An address from its flag, else the `gateway` field, else the default.
pub fn pick_address(
    flag: Option<String>,
    gateway: Option<&defs::Located<defs::GatewayDef>>,
    field: impl Fn(&defs::GatewayDef) -> Option<&String>,
    default: &str,
    name: &str,
) -> Result<(String, u16), Vec<DefError>> {
    let (value, file) = match (flag, gateway.and_then(|g| field(&g.def))) {
        (Some(v), _) => (v, None),
        (None, Some(v)) => (v.clone(), gateway.map(|g| g.file.clone())),
        (None, None) => (default.to_string(), None),
    };
    split_host_port(&value).map_err(|m| match file {
        Some(f) => vec![DefError::new(&f, "gateway", name, m)],
        None => vec![DefError::new(
            Path::new("(command line)"),
            "",
            "",
            format!("--{name}: {m}"),
        )],
    })
}

pub fn summary(c: &lower::Compiled) -> String {
    let apis: usize = c.plan.groups.iter().map(|g| g.apis.len()).sum();
    format!(
        "{} group(s), {} API(s), {} environment(s), {} backend cluster(s)",
        c.plan.groups.len(),
        apis,
        c.plan.stages.len(),
        c.clusters.len()
    )
}

pub fn new_app(name: &str) -> Result<String, Vec<DefError>> {
    if !names::valid_name(name) {
        return Err(vec![DefError::new(
            Path::new("(command line)"),
            "",
            "",
            format!("app name `{name}` must be 1-64 letters, digits, `-` or `_`"),
        )]);
    }
    let (key, secret) = apps::new_credentials().map_err(|e| {
        vec![DefError::new(
            Path::new("/dev/urandom"),
            "",
            "",
            e.to_string(),
        )]
    })?;
    Ok(format!(
        "# Keep the secret out of git: put it in a file or an environment variable\n\
         # and write `secret: {{file: ...}}` or `secret: {{env: ...}}` instead.\n\
         apps:\n  - name: {name}\n    key: {key}\n    secret: {secret}\n    authorizations: []\n"
    ))
}

pub fn validate(inputs: &[PathBuf], admin: Option<String>) -> Result<String, Vec<DefError>> {
    let (_, compiled, _) = load_and_lower(inputs, admin)?;
    Ok(format!("ok: {}", summary(&compiled)))
}

/// `pylon compile`: writes the target's files; returns the message for the
/// user and the definitions it read (the audit trail records them).
pub fn compile(
    inputs: &[PathBuf],
    out: &Path,
    wasm: Option<PathBuf>,
    listen: Option<String>,
    admin: Option<String>,
    seal_key_file: Option<PathBuf>,
    (target, wasm_url): (OutputTarget, Option<String>),
) -> Result<(String, crate::defs::Defs), Vec<DefError>> {
    let cli_err = |m: String| vec![DefError::new(Path::new("(command line)"), "", "", m)];
    check_out(inputs, out).map_err(cli_err)?;
    if wasm_url.is_some() && target != OutputTarget::Istio {
        return Err(cli_err("--wasm-url is for --target istio".into()));
    }
    let (defs, mut compiled, (admin_host, admin_port)) = load_and_lower(inputs, admin)?;
    let gateway = defs.gateway.as_ref();
    let (listen_host, listen_port) = pick_address(
        listen,
        gateway,
        |g| g.listen.as_ref(),
        "127.0.0.1:8080",
        "listen",
    )?;

    let wasm_src = wasm
        .or_else(|| std::env::var_os("PYLON_WASM").map(PathBuf::from))
        .or_else(default_wasm)
        .ok_or_else(|| {
            cli_err("cannot find the filter module; pass --wasm or set PYLON_WASM".into())
        })?;
    let wasm_bytes = std::fs::read(&wasm_src).map_err(|e| {
        cli_err(format!(
            "cannot read filter module {}: {e}",
            wasm_src.display()
        ))
    })?;

    let sealed = seal_secrets(&mut compiled.plan, seal_key_file.as_deref()).map_err(cli_err)?;
    // Istio's gateway has no Pylon access log to read the filter's fields.
    if target == OutputTarget::Istio {
        compiled.plan.access_log = false;
    }

    let io_err = |what: &Path, e: std::io::Error| cli_err(format!("{}: {e}", what.display()));
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let out_abs = std::fs::canonicalize(out).map_err(|e| io_err(out, e))?;
    let wasm_dest = out_abs.join("pylon_filter.wasm");

    let plan_json = serde_json::to_string(&compiled.plan).expect("plan serializes");
    let wasm_path = wasm_dest.to_string_lossy();
    let wasm_url = wasm_url.unwrap_or_else(|| format!("file://{}", wasm_dest.display()));
    let site = Site {
        listen: bootstrap::Listen {
            address: &listen_host,
            port: listen_port,
            admin_address: &admin_host,
            admin_port,
            trusted_hops: gateway.map_or(0, |g| g.def.trusted_hops),
            out_dir: &out_abs,
        },
        plan_json: &plan_json,
        wasm_path: &wasm_path,
        wasm: &wasm_bytes,
        wasm_url: &wasm_url,
    };
    let plan_pretty = serde_json::to_string_pretty(&compiled.plan).expect("plan serializes") + "\n";

    let write = |name: &str, bytes: &[u8]| {
        let dest = out_abs.join(name);
        write_atomically(&dest, bytes).map_err(|e| io_err(&dest, e))
    };
    write(OUTPUTS[0], &wasm_bytes)?;
    if target != OutputTarget::Istio {
        crate::tls::write_secrets(&out_abs, &compiled.tls).map_err(|e| io_err(&out_abs, e))?;
    }
    // Istio gets only the resources: `kubectl apply -f DIR` reads every
    // YAML and JSON file in DIR (the plan is inside the WasmPlugin).
    if target != OutputTarget::Istio {
        write(OUTPUTS[1], plan_pretty.as_bytes())?;
    }
    let emitter: &dyn Emitter = match target {
        OutputTarget::Static => &emit::Static,
        OutputTarget::Xds => &emit::Xds,
        OutputTarget::Istio => &emit::Istio,
    };
    let dest = emitter
        .write(&compiled, &site, &out_abs)
        .map_err(|e| io_err(&out_abs, e))?;
    let msg = format!(
        "compiled {} into {}{}",
        summary(&compiled),
        dest.display(),
        match (target, sealed) {
            (OutputTarget::Istio, _) | (_, None) => String::new(),
            (_, Some(id)) => format!("; secrets sealed with key {id}"),
        }
    );
    Ok((msg, defs))
}

/// Records a successful compile in the audit trail; the output is written,
/// so a trail that cannot be written is reported, not fatal.
pub fn audit_compile(
    inputs: &[PathBuf],
    defs: &crate::defs::Defs,
    note: &str,
    msg: String,
) -> String {
    match crate::audit::record_compile(inputs, defs, note, &msg) {
        Ok(()) => msg,
        Err(e) => format!("{msg}\nwarning: audit trail not written: {e}"),
    }
}

/// Seals every secret of the plan (none in plaintext reaches envoy.yaml or
/// config_dump) with the key from `key_file` or `$PYLON_SEAL_KEY`; returns
/// the key's id, or `None` when the plan holds no secret and no key file
/// was named.
pub fn seal_secrets(
    plan: &mut plan::Plan,
    key_file: Option<&Path>,
) -> Result<Option<String>, String> {
    let key = match key_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("--seal-key-file {}: {e}", path.display()))
            .and_then(|text| {
                SealKey::from_base64(&text)
                    .map_err(|e| format!("--seal-key-file {}: the key {e}", path.display()))
            })?,
        None if !seal::has_secrets(plan) => return Ok(None),
        None => match std::env::var(seal::KEY_ENV) {
            Ok(text) => {
                SealKey::from_base64(&text).map_err(|e| format!("{} {e}", seal::KEY_ENV))?
            }
            Err(_) => {
                return Err(format!(
                    "apps and accounts hold secrets, which are sealed in the output: \
                     set {} or pass --seal-key-file (make a key with `pylon keygen`)",
                    seal::KEY_ENV
                ))
            }
        },
    };
    let mut urandom =
        std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?;
    seal::seal_plan(plan, &key, || {
        let mut nonce = [0u8; 24];
        std::io::Read::read_exact(&mut urandom, &mut nonce).map(|_| nonce)
    })
    .map_err(|e| format!("/dev/urandom: {e}"))?;
    // The filter's own check: the sealed plan opens with this key.
    seal::open_plan(&mut plan.clone(), std::slice::from_ref(&key))?;
    Ok(Some(key.id().to_string()))
}

/// `pylon keygen`: 32 bytes from the OS random source, base64.
pub fn keygen(out: Option<&Path>) -> Result<String, Vec<DefError>> {
    let err = |m: String| vec![DefError::new(Path::new("(command line)"), "", "", m)];
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| err(format!("/dev/urandom: {e}")))?;
    let text = SealKey::text_of(&bytes);
    let Some(path) = out else {
        return Ok(text);
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{text}\n").as_bytes()))
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    Ok(format!(
        "wrote seal key {} to {}",
        SealKey::from_bytes(&bytes).id(),
        path.display()
    ))
}

/// The files `compile` writes into `--out`.
pub const OUTPUTS: [&str; 3] = ["pylon_filter.wasm", "pylon.json", "envoy.yaml"];

/// Refuses an output directory equal to or inside a definitions directory
/// (the next run would read `envoy.yaml` back as definitions), or one where
/// an output would overwrite a definition file.
pub fn check_out(inputs: &[PathBuf], out: &Path) -> Result<(), String> {
    let out_abs = resolve(out);
    for input in inputs {
        let Ok(input_abs) = std::fs::canonicalize(input) else {
            continue; // reported when the definitions are read
        };
        if input_abs.is_dir() && out_abs.starts_with(&input_abs) {
            return Err(format!(
                "--out {} is inside the definitions directory {}; write the output elsewhere",
                out.display(),
                input.display()
            ));
        }
        if OUTPUTS
            .iter()
            .chain([&istio::OUTPUT])
            .any(|name| out_abs.join(name) == input_abs)
        {
            return Err(format!(
                "--out {}: the output would overwrite the definition file {}",
                out.display(),
                input.display()
            ));
        }
    }
    Ok(())
}

/// `path` made absolute with symlinks and `..` resolved as far as it exists
/// (the output directory may not exist yet), lexically beyond.
pub fn resolve(path: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut real = PathBuf::new();
    for c in abs.components() {
        let next = real.join(c);
        real = match (std::fs::canonicalize(&next), c) {
            (Ok(p), _) => p,
            (Err(_), Component::ParentDir) => {
                real.pop();
                real
            }
            (Err(_), Component::CurDir) => real,
            (Err(_), _) => next,
        };
    }
    real
}

/// Writes next to the target and renames, so a reader never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    // A stale temp file would keep its old (maybe wider) permissions.
    let _ = std::fs::remove_file(&tmp);
    // The files may hold app secrets: readable by their owner only.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))?;
    std::fs::rename(&tmp, path)
}

pub fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("`{s}` must be host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("`{s}`: port must be 0-65535"))?;
    if host.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("`{s}`: listen on an IP address"));
    }
    Ok((host.to_string(), port))
}

/// `target/release/pylon` → `target/wasm32-wasip1/release/pylon_filter.wasm`.
pub fn default_wasm() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?;
    let profile = profile_dir.file_name()?;
    let candidate = profile_dir
        .parent()?
        .join("wasm32-wasip1")
        .join(profile)
        .join("pylon_filter.wasm");
    let release = profile_dir
        .parent()?
        .join("wasm32-wasip1/release/pylon_filter.wasm");
    [candidate, release].into_iter().find(|p| p.is_file())
}
