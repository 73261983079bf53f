//! `pylon import` / `pylon export`: Swagger 2.0 and OpenAPI 3 documents with
//! Huawei APIG (`x-apigateway-*`) and Alibaba API Gateway
//! (`x-aliyun-apigateway-*`) extensions, to and from Pylon definitions
//! (Huawei user guide §5.2.8 import, §5.2.9 export, §8.7).
//!
//! Facts a vendor format has no field for are written as `x-pylon-*`
//! extensions (or, for Alibaba, with Huawei's extension where Alibaba has
//! none), so a round trip through a document loses nothing.

pub mod export;
pub mod import;
pub mod report;
#[cfg(test)]
mod tests;

use serde::Serialize;

use pylon_filter::plan::SystemParam;

use crate::defs::{AclDef, ApiDef, EnvironmentDef, GroupDef, ThrottleDef};

/// Alibaba's system parameter names (`x-aliyun-apigateway-system-parameters`
/// `systemName`: values the gateway computes per request) for the Pylon system
/// parameters they match; import and export read this one table.
pub const ALIYUN_SYSTEM: [(SystemParam, &str); 6] = [
    (SystemParam::SourceIp, "CaClientIp"),
    (SystemParam::Stage, "CaStage"),
    (SystemParam::RequestId, "CaRequestId"),
    (SystemParam::AppId, "CaAppId"),
    (SystemParam::Protocol, "CaHttpSchema"),
    (SystemParam::Domain, "CaDomain"),
];

/// Which vendor's dialect an exported document speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Swagger 2.0 with Huawei APIG's `x-apigateway-*` extensions.
    Huawei,
    /// Swagger 2.0 with Alibaba API Gateway's `x-aliyun-apigateway-*` extensions.
    Aliyun,
    /// Plain OpenAPI 3.0, no extensions.
    Openapi,
}

/// The export scopes of Huawei user guide §5.2.9 (表 5-16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scope {
    /// Front-end requests and responses only.
    Base,
    /// Plus backends (and policy backends).
    Full,
    /// Plus throttling and access-control policies.
    Extended,
}

/// One group's definitions, in the order a person writes them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DefsOut {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<EnvironmentDef>,
    pub groups: Vec<GroupDef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub throttles: Vec<ThrottleDef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<AclDef>,
    pub apis: Vec<ApiDef>,
}

/// Definitions as readable YAML: fields at their default value are left out.
pub fn to_yaml(defs: &DefsOut) -> String {
    let mut value = serde_yaml::to_value(defs).expect("definitions serialize");
    tidy(&mut value, "");
    serde_yaml::to_string(&value).expect("definitions serialize")
}

/// Drops what a person would not write: empty lists and maps, nulls, `false`,
/// empty descriptions and the documented defaults.
fn tidy(v: &mut serde_yaml::Value, parent: &str) {
    use serde_yaml::Value;
    match v {
        Value::Mapping(m) => {
            let keys: Vec<Value> = m.keys().cloned().collect();
            for k in keys {
                let key = k.as_str().unwrap_or("").to_string();
                let child = m.get_mut(&k).expect("key present");
                tidy(child, &key);
                let drop = match (&*child, key.as_str()) {
                    (Value::Null, _) | (Value::Bool(false), _) => true,
                    (Value::Sequence(s), k) => s.is_empty() && k != "publish",
                    (Value::Mapping(s), _) => s.is_empty(),
                    (Value::String(s), "description") => s.is_empty(),
                    (Value::String(s), "match") => s == "exact",
                    (Value::String(s), "auth") => s == "none",
                    (Value::String(s), "app_code") => s == "disabled",
                    (Value::String(s), "request_mode") => s == "mapping_passthrough",
                    (Value::String(s), "effect") => s == "any",
                    (Value::String(s), "scheme") => s == "http",
                    (Value::String(s), "protocol") => s == "HTTP&HTTPS",
                    (Value::String(s), "min_tls") => s == "TLS1.2",
                    (Value::String(s), "type") => s == "string" && parent_is_param(parent),
                    (Value::Number(n), "timeout") => n.as_u64() == Some(5000),
                    (Value::Number(n), "interval") => n.as_u64() == Some(1),
                    (Value::Number(n), "status") => n.as_u64() == Some(200) && parent == "mock",
                    _ => false,
                };
                if drop {
                    m.shift_remove(&k);
                }
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(|i| tidy(i, parent)),
        _ => {}
    }
}

fn parent_is_param(parent: &str) -> bool {
    parent == "parameters"
}

/// RFC 6901 escaping of one JSON pointer segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// `pylon import`: one definitions file per document (`DIR/<group>.yaml`),
/// the environments they need in `DIR/environments.yaml`; reports on stderr.
/// The result is checked like `pylon compile` checks it before anything is
/// written.
pub fn run_import(
    files: &[std::path::PathBuf],
    out: &std::path::Path,
    strict: bool,
    opts: &import::Options,
) -> Result<String, Vec<crate::error::DefError>> {
    use crate::defs::{Defs, Located};
    use crate::error::DefError;
    use std::path::Path;
    let cli = |m: String| vec![DefError::new(Path::new("(command line)"), "", "", m)];
    if opts.group.is_some() && files.len() > 1 {
        return Err(cli(
            "--group names the group of one document; import one file at a time".into(),
        ));
    }
    let mut outputs = Vec::new();
    let mut envs: Vec<EnvironmentDef> = Vec::new();
    let mut failures = 0;
    let mut count = 0;
    for file in files {
        let text =
            std::fs::read_to_string(file).map_err(|e| cli(format!("{}: {e}", file.display())))?;
        let imported = import::import(&text, opts).map_err(|e| vec![DefError::file(file, e)])?;
        for r in &imported.reports {
            eprintln!("{}: {r}", file.display());
        }
        failures += imported
            .reports
            .iter()
            .filter(|r| r.level > report::Level::Note)
            .count();
        let mut defs = imported.defs;
        for e in std::mem::take(&mut defs.environments) {
            if !envs.iter().any(|x| x.name == e.name) {
                envs.push(e);
            }
        }
        count += defs.apis.len();
        let name = format!("{}.yaml", defs.groups[0].name);
        if outputs.iter().any(|(n, _): &(String, DefsOut)| *n == name) {
            return Err(cli(format!(
                "two documents make group `{}`; import them one at a time with --group",
                defs.groups[0].name
            )));
        }
        outputs.push((name, defs));
    }
    if strict && failures > 0 {
        return Err(cli(format!(
            "--strict: {failures} field(s) not honoured (reported above); nothing written"
        )));
    }
    // The compiler's own checks, on the definitions as they will be written.
    let mut check = Defs::default();
    let at = |n: &str| out.join(n);
    check.environments = envs
        .iter()
        .map(|e| Located {
            file: at("environments.yaml"),
            def: e.clone(),
        })
        .collect();
    for (name, d) in &outputs {
        check.groups.extend(d.groups.iter().map(|g| Located {
            file: at(name),
            def: g.clone(),
        }));
        check.apis.extend(d.apis.iter().map(|g| Located {
            file: at(name),
            def: g.clone(),
        }));
        check.throttles.extend(d.throttles.iter().map(|g| Located {
            file: at(name),
            def: g.clone(),
        }));
        check.acls.extend(d.acls.iter().map(|g| Located {
            file: at(name),
            def: g.clone(),
        }));
    }
    // HTTPS-only APIs are written even without a certificate (reported by
    // the import): the consoles never export certificates, and the user adds
    // them before `pylon compile`. Everything else is checked as written.
    if check.groups.iter().all(|g| g.def.certificates.is_empty()) {
        for a in &mut check.apis {
            if a.def.protocol == pylon_filter::plan::Protocol::Https {
                a.def.protocol = pylon_filter::plan::Protocol::Both;
            }
        }
    }
    let admin = crate::ssrf::Admin {
        ip: [127, 0, 0, 1].into(),
        port: 9901,
    };
    crate::lower::lower(&check, &admin)?;
    std::fs::create_dir_all(out).map_err(|e| cli(format!("{}: {e}", out.display())))?;
    let header = "# Written by `pylon import`; edit freely.\n";
    if !envs.is_empty() {
        let d = DefsOut {
            environments: envs,
            ..Default::default()
        };
        let mut v = serde_yaml::to_value(&d).expect("serializes");
        if let Some(m) = v.as_mapping_mut() {
            m.retain(|k, _| k.as_str() == Some("environments"));
        }
        tidy(&mut v, "");
        let text = format!("{header}{}", serde_yaml::to_string(&v).expect("serializes"));
        std::fs::write(at("environments.yaml"), text)
            .map_err(|e| cli(format!("{}: {e}", out.display())))?;
    }
    for (name, d) in &outputs {
        std::fs::write(at(name), format!("{header}{}", to_yaml(d)))
            .map_err(|e| cli(format!("{}: {e}", out.display())))?;
    }
    Ok(format!(
        "imported {count} API(s) into {} ({failures} field(s) not honoured, see above)",
        out.display()
    ))
}

/// `pylon export`: the document as YAML (`.json` output: JSON); reports on stderr.
pub fn run_export(
    inputs: &[std::path::PathBuf],
    group: Option<&str>,
    format: Format,
    scope: Scope,
    out: Option<&std::path::Path>,
) -> Result<String, Vec<crate::error::DefError>> {
    use crate::error::DefError;
    use std::path::Path;
    let cli = |m: String| vec![DefError::new(Path::new("(command line)"), "", "", m)];
    let defs = crate::defs::load(inputs)?;
    let exported = export::export(&defs, group, format, scope).map_err(cli)?;
    for r in &exported.reports {
        eprintln!("{r}");
    }
    let json = out.is_some_and(|p| p.extension().is_some_and(|e| e == "json"));
    let text = if json {
        serde_json::to_string_pretty(&exported.doc).expect("serializes") + "\n"
    } else {
        serde_yaml::to_string(&exported.doc).expect("serializes")
    };
    match out {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| cli(format!("{}: {e}", p.display())))?;
            Ok(format!("exported to {}", p.display()))
        }
        None => Ok(text.trim_end().to_string()),
    }
}

/// Definitions as the compiler reads them, located in `file`.
#[cfg(test)]
pub fn located(d: &DefsOut, file: &std::path::Path) -> crate::defs::Defs {
    use crate::defs::{Defs, Located};
    fn at<T: Clone>(file: &std::path::Path, items: &[T]) -> Vec<Located<T>> {
        items
            .iter()
            .map(|def| Located {
                file: file.to_path_buf(),
                def: def.clone(),
            })
            .collect()
    }
    Defs {
        environments: at(file, &d.environments),
        groups: at(file, &d.groups),
        apis: at(file, &d.apis),
        throttles: at(file, &d.throttles),
        acls: at(file, &d.acls),
        ..Default::default()
    }
}
