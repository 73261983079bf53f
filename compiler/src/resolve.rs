//! Resolve: what a definition refers to, found — `#variable#`s substituted
//! per environment, backend addresses parsed and checked, each distinct
//! backend address given one cluster. (Bindings are resolved in
//! `bindings.rs`.)

use std::collections::BTreeMap;

use pylon_filter::path_template::PathTemplate;
use pylon_filter::plan::{BackendParamPlan, BackendPlan, HttpBackend, MockBackend};

use crate::check::check_backend_path;
use crate::defs::{ApiDef, BackendDef, GroupDef, HttpBackendDef, Located, Scheme};
use crate::emit::cluster_name;
use crate::error::DefError;
use crate::names::check_var_name;
use crate::ssrf::Admin;

/// Each distinct backend `(scheme, host, port, TLS settings)` and its cluster's name.
pub type Clusters = BTreeMap<(Scheme, String, u16, crate::tls::BackendTls), String>;

/// One of an API's backends: its own or a policy's.
pub struct BackendTarget<'a> {
    /// `backend` or `policies[i].backend`, for error fields.
    pub prefix: &'a str,
    pub def: &'a BackendDef,
    pub params: &'a [BackendParamPlan],
}

/// A backend in one environment. Errors `check_backend` reports are not
/// repeated here (the result is then an empty error list).
pub fn backend_for(
    a: &Located<ApiDef>,
    target: &BackendTarget,
    group: &Located<GroupDef>,
    stage: &str,
    template: &PathTemplate,
    admin: &Admin,
    clusters: &mut Clusters,
) -> Result<BackendPlan, Vec<DefError>> {
    let object = format!("api '{}'", a.def.name);
    let prefix = target.prefix;
    let err = |field: &str, msg: String| {
        DefError::new(&a.file, &object, &format!("{prefix}{field}"), msg)
    };
    let vars = group.def.variables.get(stage);
    let subst = |field: &str, text: &str| {
        substitute(text, vars).map_err(|m| {
            err(
                field,
                format!(
                    "{m} in environment {stage} (set it under group '{}' variables.{stage})",
                    group.def.name
                ),
            )
        })
    };
    match (&target.def.http, &target.def.mock) {
        (Some(_), Some(_)) | (None, None) => Err(Vec::new()),
        (None, Some(m)) => Ok(BackendPlan::Mock(MockBackend {
            status: m.status,
            headers: m.headers.clone(),
            body: m.body.clone(),
        })),
        (Some(h), None) => {
            let address = subst(".http.address", &h.address);
            let path = subst(".http.path", &h.path);
            let parsed = address.and_then(|addr| {
                backend_address(&addr, h, admin)
                    .map_err(|m| err(".http.address", format!("`{addr}`: {m}")))
            });
            let path = path.and_then(|p| {
                check_backend_path(&p, template, target.params)
                    .map_err(|m| err(".http.path", m))?;
                Ok(p)
            });
            // Its errors came from `check_backend`.
            let tls = crate::tls::of_backend(&a.file, h).map_err(|_| Vec::new())?;
            match (parsed, path) {
                (Ok((host, port)), Ok(path)) => {
                    let next = clusters.len();
                    let cluster = clusters
                        .entry((h.scheme, host.clone(), port, tls))
                        .or_insert_with(|| cluster_name(h.scheme, &host, port, next))
                        .clone();
                    Ok(BackendPlan::Http(HttpBackend {
                        cluster,
                        path,
                        method: h.method,
                        timeout_ms: h.timeout,
                        params: target.params.to_vec(),
                    }))
                }
                (parsed, path) => {
                    let mut errs = Vec::new();
                    // A variable-free field's error came from `check_backend`.
                    if h.address.contains('#') {
                        errs.extend(parsed.err());
                    }
                    if h.path.contains('#') {
                        errs.extend(path.err());
                    }
                    Err(errs)
                }
            }
        }
    }
}

/// Replaces every `#name#` with its value; an unset variable is an error.
pub fn substitute(text: &str, vars: Option<&BTreeMap<String, String>>) -> Result<String, String> {
    let pieces: Vec<&str> = text.split('#').collect();
    if pieces.len().is_multiple_of(2) {
        return Err(format!("`{text}` has an unterminated `#variable#`"));
    }
    let mut out = String::with_capacity(text.len());
    for (i, piece) in pieces.iter().enumerate() {
        if i % 2 == 0 {
            out.push_str(piece);
            continue;
        }
        check_var_name(piece)?;
        match vars.and_then(|v| v.get(*piece)) {
            Some(value) => out.push_str(value),
            None => return Err(format!("variable #{piece}# has no value")),
        }
    }
    Ok(out)
}

/// A backend's address parsed and checked against internal addresses.
pub fn backend_address(
    addr: &str,
    h: &HttpBackendDef,
    admin: &Admin,
) -> Result<(String, u16), String> {
    let (host, port) = parse_address(addr, h.scheme)?;
    crate::ssrf::check(&host, port, h.allow_internal_address, admin)?;
    Ok((host, port))
}

pub fn parse_address(addr: &str, scheme: Scheme) -> Result<(String, u16), String> {
    if addr.contains("://") || addr.contains('/') {
        return Err("must be `host[:port]` (the scheme and path are separate fields)".into());
    }
    let default_port = match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed `[` in IPv6 address")?;
        (h, after.strip_prefix(':'))
    } else {
        match addr.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or(format!("port `{p}` is not 1-65535"))?,
        None => default_port,
    };
    let valid_host = !host.is_empty()
        && (host.parse::<std::net::IpAddr>().is_ok()
            || host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if !valid_host {
        return Err(format!("`{host}` is not a host name or IP address"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

pub fn authority(host: &str, port: u16, scheme: Scheme) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match (scheme, port) {
        (Scheme::Http, 80) | (Scheme::Https, 443) => host,
        _ => format!("{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_several_variables_in_one_field() {
        let vars: BTreeMap<String, String> = [
            ("host".to_string(), "10.0.0.1".to_string()),
            ("ver".to_string(), "v2".to_string()),
        ]
        .into();
        assert_eq!(substitute("#host#:80", Some(&vars)).unwrap(), "10.0.0.1:80");
        assert_eq!(
            substitute("/#ver#/x/#ver#", Some(&vars)).unwrap(),
            "/v2/x/v2"
        );
        assert!(substitute("/#nope#", Some(&vars))
            .unwrap_err()
            .contains("#nope#"));
        assert!(substitute("/#open", Some(&vars)).is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("a.example.com", Scheme::Https).unwrap(),
            ("a.example.com".into(), 443)
        );
        assert_eq!(
            parse_address("127.0.0.1:9000", Scheme::Http).unwrap(),
            ("127.0.0.1".into(), 9000)
        );
        assert_eq!(
            parse_address("[::1]:81", Scheme::Http).unwrap(),
            ("::1".into(), 81)
        );
        for bad in ["http://x", "x:0", "x:99999", "", "a b", "x/y"] {
            assert!(parse_address(bad, Scheme::Http).is_err(), "{bad}");
        }
        assert_eq!(authority("::1", 81, Scheme::Http), "[::1]:81");
        assert_eq!(authority("a", 80, Scheme::Http), "a");
    }
}
