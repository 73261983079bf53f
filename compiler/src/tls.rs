//! HTTPS: certificates per group domain on a TLS listener, and verified TLS
//! toward `https` backends.
//!
//! Huawei user guide §5.1.2: a group's domains get SSL certificates (pem),
//! and each domain a minimum TLS version (TLS1.1 or TLS1.2, TLS1.2
//! recommended); §5.2.1: an API's request protocol is HTTP, HTTPS or
//! HTTP&HTTPS. Certificates are referenced by path and read by Envoy through
//! SDS from the file system, so a replaced pem is served without a restart
//! and no key is copied into the outputs.

use std::path::{Path, PathBuf};

use pylon_filter::plan::Protocol;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::defs::{Defs, Scheme};
use crate::error::DefError;
use crate::files::write_if_changed;

/// Where the HTTPS listener listens unless `gateway.https_listen` says.
pub const DEFAULT_HTTPS_LISTEN: &str = "127.0.0.1:8443";
/// The SDS files (one per certificate), under the output directory.
pub const SECRETS_DIR: &str = "tls";

/// TLS 1.2 suites: forward secret AEADs only. TLS 1.3 suites are all AEAD
/// and fixed by Envoy's TLS library.
const CIPHERS: [&str; 6] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];
/// TLS 1.1 has no AEAD suite: a domain that allows it also gets these.
const TLS11_CIPHERS: [&str; 4] = [
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
];

/// CA bundles of the common Linux distributions, tried in order when a
/// backend names no CA file (Envoy has no "system roots" switch).
const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A group's certificate (`groups[].certificates[]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateDef {
    /// The certificate chain (pem), relative to the definition file.
    pub cert: PathBuf,
    /// Its private key (pem).
    pub key: PathBuf,
    /// The group's domains it serves (default: all of them).
    #[serde(default)]
    pub domains: Option<Vec<String>>,
    /// The oldest TLS version these domains accept.
    #[serde(default)]
    pub min_tls: MinTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum MinTls {
    #[serde(rename = "TLS1.1", alias = "1.1")]
    Tls11,
    #[default]
    #[serde(rename = "TLS1.2", alias = "1.2")]
    Tls12,
}

/// TLS toward an `https` backend (`backend.http.tls`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTlsDef {
    /// CA bundle (pem) the backend's certificate must chain to (default:
    /// the system's bundle).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Client certificate and key presented to the backend (mutual TLS).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Accept any certificate: anyone on the path can impersonate the backend.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A backend's resolved TLS settings (absolute paths); part of its cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct BackendTls {
    /// `None`: not verified (`insecure_skip_verify`).
    pub ca: Option<PathBuf>,
    pub client: Option<(PathBuf, PathBuf)>,
}

/// One certificate on the HTTPS listener.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The SDS secret's name, and its file's.
    pub secret: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SNI names (exact or `*.suffix`); empty: the default certificate.
    pub server_names: Vec<String>,
    pub min_tls: MinTls,
}

/// The HTTPS listener, when any certificate is declared.
#[derive(Debug, Default)]
pub struct Tls {
    pub listen: Option<(String, u16)>,
    pub chains: Vec<Chain>,
    /// The default group's certificate: any other or no SNI.
    pub default_chain: Option<Chain>,
    /// Some API is called over plain HTTP (or none is HTTPS-only).
    pub plain: bool,
}

/// `path` relative to the file that names it, made absolute; it must exist.
fn resolve(file: &Path, path: &Path) -> Result<PathBuf, String> {
    let full = file.parent().unwrap_or(Path::new(".")).join(path);
    std::fs::canonicalize(&full).map_err(|e| format!("`{}`: {e}", path.display()))
}

pub fn lower(defs: &Defs, errs: &mut Vec<DefError>) -> Tls {
    let mut tls = Tls::default();
    let mut seen: Vec<String> = Vec::new();
    for g in &defs.groups {
        let object = format!("group '{}'", g.def.name);
        for (i, c) in g.def.certificates.iter().enumerate() {
            let field = |f: &str| format!("certificates[{i}].{f}");
            let err = |f: &str, m: String| DefError::new(&g.file, &object, &field(f), m);
            let cert = resolve(&g.file, &c.cert).map_err(|m| errs.push(err("cert", m)));
            let key = resolve(&g.file, &c.key).map_err(|m| errs.push(err("key", m)));
            let names = c.domains.clone().unwrap_or_else(|| g.def.domains.clone());
            for n in &names {
                if !g.def.domains.contains(n) {
                    errs.push(err(
                        "domains",
                        format!("`{n}` is not a domain of the group"),
                    ));
                } else if seen.contains(n) {
                    errs.push(err("domains", format!("`{n}` has another certificate")));
                }
            }
            seen.extend(names.iter().cloned());
            let is_default = g.def.default && tls.default_chain.is_none();
            if names.is_empty() && !is_default {
                errs.push(err("domains", "no domain to serve".into()));
            }
            let (Ok(cert), Ok(key)) = (cert, key) else {
                continue;
            };
            let chain = Chain {
                secret: format!("{}_{i}", g.def.name),
                cert,
                key,
                server_names: names,
                min_tls: c.min_tls,
            };
            if is_default {
                // The default group answers any host; its first certificate
                // answers any name no other certificate claims.
                tls.default_chain = Some(Chain {
                    server_names: Vec::new(),
                    ..chain.clone()
                });
            }
            if !chain.server_names.is_empty() {
                tls.chains.push(chain);
            }
        }
    }
    let https_only = |p: Protocol| p == Protocol::Https;
    let apis = || defs.apis.iter();
    // Declared, even if a file is missing (that error is reported above).
    let any_tls = defs.groups.iter().any(|g| !g.def.certificates.is_empty());
    tls.plain = !any_tls || apis().any(|a| !https_only(a.def.protocol));
    if !any_tls {
        for a in apis().filter(|a| a.def.protocol == Protocol::Https) {
            let object = format!("api '{}'", a.def.name);
            let m = "HTTPS needs a certificate: declare groups[].certificates";
            errs.push(DefError::new(&a.file, &object, "protocol", m));
        }
        return tls;
    }
    let gateway = defs.gateway.as_ref();
    let listen = gateway
        .and_then(|g| g.def.https_listen.clone())
        .unwrap_or_else(|| DEFAULT_HTTPS_LISTEN.to_string());
    match crate::commands::split_host_port(&listen) {
        Ok(hp) => tls.listen = Some(hp),
        Err(m) => {
            let file = gateway.map_or_else(|| PathBuf::from("(gateway)"), |g| g.file.clone());
            errs.push(DefError::new(&file, "gateway", "https_listen", m));
        }
    }
    tls
}

/// An HTTP backend's TLS settings (none for `scheme: http`).
pub fn of_backend(
    file: &Path,
    h: &crate::defs::HttpBackendDef,
) -> Result<BackendTls, (&'static str, String)> {
    match (h.scheme, &h.tls) {
        (Scheme::Https, t) => backend(file, &t.clone().unwrap_or_default()),
        (Scheme::Http, None) => Ok(BackendTls::default()),
        (Scheme::Http, Some(_)) => Err(("tls", "is for `scheme: https`".into())),
    }
}

/// An `https` backend's TLS settings.
fn backend(file: &Path, def: &BackendTlsDef) -> Result<BackendTls, (&'static str, String)> {
    let ca = match (&def.ca, def.insecure_skip_verify) {
        (Some(_), true) => {
            let m = "give `ca` or `insecure_skip_verify`, not both".to_string();
            return Err(("tls.insecure_skip_verify", m));
        }
        (Some(ca), false) => Some(resolve(file, ca).map_err(|m| ("tls.ca", m))?),
        (None, true) => None,
        (None, false) => Some(system_bundle().ok_or((
            "tls.ca",
            "no system CA bundle found: name a CA file".to_string(),
        ))?),
    };
    let client = match (&def.cert, &def.key) {
        (Some(c), Some(k)) => Some((
            resolve(file, c).map_err(|m| ("tls.cert", m))?,
            resolve(file, k).map_err(|m| ("tls.key", m))?,
        )),
        (None, None) => None,
        _ => return Err(("tls", "give both `cert` and `key`".into())),
    };
    Ok(BackendTls { ca, client })
}

fn system_bundle() -> Option<PathBuf> {
    SYSTEM_CA_BUNDLES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The upstream TLS context of an `https` backend: SNI, the certificate
/// chained to the CA and naming the host (a DNS or IP subject alt name).
pub fn upstream_context(host: &str, tls: &BackendTls) -> Value {
    let mut common = json!({});
    if let Some(ca) = &tls.ca {
        let san_type = match host.parse::<std::net::IpAddr>() {
            Ok(_) => "IP_ADDRESS",
            Err(_) => "DNS",
        };
        common["validation_context"] = json!({
            "trusted_ca": {"filename": ca.to_string_lossy()},
            "match_typed_subject_alt_names": [{"san_type": san_type, "matcher": {"exact": host}}],
        });
    }
    if let Some((cert, key)) = &tls.client {
        common["tls_certificates"] = json!([{
            "certificate_chain": {"filename": cert.to_string_lossy()},
            "private_key": {"filename": key.to_string_lossy()},
        }]);
    }
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": host,
            "common_tls_context": common,
        },
    })
}

fn secret_file(dir: &Path, chain: &Chain) -> PathBuf {
    dir.join(SECRETS_DIR).join(format!("{}.yaml", chain.secret))
}

/// The HTTPS listener: one filter chain per certificate, picked by SNI
/// (TLS inspector), each running `http` (the connection manager); the
/// default group's certificate for any other name. `dir` holds the SDS files.
pub fn listener(tls: &Tls, http: &Value, dir: &Path) -> Option<Value> {
    let (address, port) = tls.listen.as_ref()?;
    let chain = |c: &Chain| {
        let mut v = json!({
            "transport_socket": downstream_context(c, dir),
            "filters": [http],
        });
        if !c.server_names.is_empty() {
            v["filter_chain_match"] = json!({"server_names": c.server_names});
        }
        v
    };
    let mut listener = json!({
        "name": "pylon_https",
        "address": {"socket_address": {"address": address, "port_value": port}},
        "listener_filters": [{
            "name": "envoy.filters.listener.tls_inspector",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
        }],
        "filter_chains": tls.chains.iter().map(chain).collect::<Vec<_>>(),
    });
    if let Some(c) = &tls.default_chain {
        listener["default_filter_chain"] = chain(c);
    }
    Some(listener)
}

/// The TLS 1.2 (and 1.1) suites a certificate's domains accept; the Istio
/// target names the same ones.
pub fn cipher_suites(min: MinTls) -> Vec<&'static str> {
    match min {
        MinTls::Tls12 => CIPHERS.to_vec(),
        MinTls::Tls11 => [&CIPHERS[..], &TLS11_CIPHERS[..]].concat(),
    }
}

fn downstream_context(c: &Chain, dir: &Path) -> Value {
    let min = match c.min_tls {
        MinTls::Tls12 => "TLSv1_2",
        MinTls::Tls11 => "TLSv1_1",
    };
    let ciphers = cipher_suites(c.min_tls);
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "tls_params": {
                    "tls_minimum_protocol_version": min,
                    "tls_maximum_protocol_version": "TLSv1_3",
                    "cipher_suites": ciphers,
                },
                // HTTP/2 where the client offers it (the connection
                // manager's codec is AUTO).
                "alpn_protocols": ["h2", "http/1.1"],
                // Read through SDS from a file Envoy watches, which names
                // the pem files: Envoy watches their directories too.
                "tls_certificate_sds_secret_configs": [{
                    "name": c.secret,
                    "sds_config": {
                        "path_config_source": {"path": secret_file(dir, c).to_string_lossy()},
                        "resource_api_version": "V3",
                    },
                }],
            },
        },
    })
}

/// Writes the SDS file of each certificate into `dir/tls` (paths only, never
/// a key: the pem files stay where the definitions name them).
pub fn write_secrets(dir: &Path, tls: &Tls) -> std::io::Result<()> {
    let chains = tls.chains.iter().chain(&tls.default_chain);
    for c in chains {
        let path = secret_file(dir, c);
        std::fs::create_dir_all(path.parent().expect("the secret file is in a directory"))?;
        let doc = json!({
            "resources": [{
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                "name": c.secret,
                "tls_certificate": {
                    "certificate_chain": {"filename": c.cert.to_string_lossy()},
                    "private_key": {"filename": c.key.to_string_lossy()},
                },
            }],
        });
        let text = format!(
            "# Generated by pylon: where Envoy reads this certificate.\n{}",
            serde_yaml::to_string(&doc).expect("secrets serialize")
        );
        write_if_changed(&path, text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_that_allows_tls11_gets_cbc_suites_too() {
        let chain = |min_tls| Chain {
            secret: "g_0".into(),
            cert: "/c.pem".into(),
            key: "/k.pem".into(),
            server_names: vec!["a.example".into()],
            min_tls,
        };
        let ctx = downstream_context(&chain(MinTls::Tls12), Path::new("/out"));
        let params = &ctx["typed_config"]["common_tls_context"]["tls_params"];
        assert_eq!(params["tls_minimum_protocol_version"], "TLSv1_2");
        assert_eq!(params["cipher_suites"].as_array().unwrap().len(), 6);
        let ctx = downstream_context(&chain(MinTls::Tls11), Path::new("/out"));
        let params = &ctx["typed_config"]["common_tls_context"]["tls_params"];
        assert_eq!(params["tls_minimum_protocol_version"], "TLSv1_1");
        assert_eq!(params["cipher_suites"].as_array().unwrap().len(), 10);
    }

    #[test]
    fn a_backend_certificate_must_name_the_host() {
        let tls = BackendTls {
            ca: Some("/ca.pem".into()),
            client: None,
        };
        let ctx = upstream_context("10.0.0.5", &tls);
        let v = &ctx["typed_config"]["common_tls_context"]["validation_context"];
        assert_eq!(
            v["match_typed_subject_alt_names"][0]["san_type"],
            "IP_ADDRESS"
        );
        let ctx = upstream_context("api.example.com", &BackendTls::default());
        assert!(ctx["typed_config"]["common_tls_context"]
            .get("validation_context")
            .is_none());
    }
}
