//! Backends: document `servers`, Huawei `x-apigateway-backend` and backend
//! policies, Alibaba `x-aliyun-apigateway-backend`.

use pylon_filter::plan::{ConditionTest, Effect};
use serde_json::Value;

use super::params::huawei_backend_params;
use super::reader::Obj;
use super::Ctx;
use crate::defs::{
    BackendDef, ConditionDef, HttpBackendDef, MockBackendDef, PolicyDef, Scheme, SystemCondition,
    Text,
};
use crate::openapi::report::{Level, Reports};
use crate::tls::BackendTlsDef;

/// `http[s]://host[:port][/base]` → backend and base path.
pub fn parse_backend_url(url: &str) -> Option<(HttpBackendDef, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return None,
    };
    let (address, base) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if address.is_empty() {
        return None;
    }
    Some((
        HttpBackendDef {
            address: address.to_string(),
            scheme,
            path: String::new(),
            method: None,
            timeout: 5000,
            allow_internal_address: false,
            tls: None,
        },
        base.to_string(),
    ))
}

pub(super) fn server_backend(
    servers: &Value,
    r: &mut Reports,
    ptr: &str,
) -> Option<(HttpBackendDef, String)> {
    let url = servers.get(0)?.get("url")?.as_str()?;
    if servers.as_array().is_some_and(|s| s.len() > 1) {
        r.push(
            Level::Note,
            ptr,
            "only the first server is used as the backend",
        );
    }
    if url.contains('{') {
        r.push(
            Level::Unsupported,
            &format!("{ptr}/0/url"),
            "server variables are not supported",
        );
        return None;
    }
    let found = parse_backend_url(url);
    if found.is_none() {
        r.push(
            Level::Note,
            &format!("{ptr}/0/url"),
            format!("`{url}` names no backend host; give --backend"),
        );
    }
    found
}

/// Pylon's `x-pylon-tls` on a backend endpoint (paths only).
fn backend_tls(r: &mut Reports, o: &mut Obj) -> Option<BackendTlsDef> {
    let v = o.get("x-pylon-tls")?;
    match serde_json::from_value(v.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            o.unsupported(r, "x-pylon-tls", format!("{e}; ignored"));
            None
        }
    }
}

/// The endpoint of a Huawei backend (or policy backend) object.
fn huawei_endpoint(ctx: &mut Ctx, o: &mut Obj, kind: &str) -> Option<BackendDef> {
    let mut b = BackendDef {
        http: None,
        mock: None,
        params: Vec::new(),
    };
    match kind {
        "HTTP" => {
            let at = o.at("httpEndpoints");
            let mut e = Obj::new(o.get("httpEndpoints"), at.clone());
            let Some(address) = e.str("address") else {
                return ctx.r.refuse(&at, "no address; API left out");
            };
            let scheme = match e.str("scheme").map(|s| s.to_ascii_lowercase()).as_deref() {
                Some("https") => Scheme::Https,
                _ => Scheme::Http,
            };
            let method = e
                .str("method")
                .filter(|m| m != "ANY")
                .and_then(|m| serde_json::from_value(Value::String(m.to_ascii_uppercase())).ok());
            b.http = Some(HttpBackendDef {
                address,
                scheme,
                path: e.str("path").unwrap_or_else(|| "/".into()),
                method,
                timeout: e.num("timeout").unwrap_or(5000),
                allow_internal_address: e.flag("x-pylon-allow-internal-address"),
                tls: backend_tls(&mut ctx.r, &mut e),
            });
            let _ = e.get("description");
            if e.str("retryCount").is_some_and(|r| r != "-1" && r != "0") {
                let at = e.at("retryCount");
                ctx.r
                    .push(Level::Unsupported, &at, "backend retries are not supported");
            }
            // Mutual TLS toward the backend (user guide §8.4.1): the console
            // keeps the client certificate; Pylon needs its files.
            let client = b
                .http
                .as_ref()
                .and_then(|h| h.tls.as_ref())
                .is_some_and(|t| t.cert.is_some());
            if e.flag("enableClientSsl") && !client {
                e.unsupported(&mut ctx.r, "enableClientSsl", "the document holds no client certificate: add backend.http.tls.cert and .key (pem paths)");
            }
            e.finish(&mut ctx.r);
        }
        "MOCK" => {
            let mut e = Obj::new(o.get("mockEndpoints"), o.at("mockEndpoints"));
            b.mock = Some(MockBackendDef {
                status: e.num("x-pylon-status").unwrap_or(200),
                headers: e.json("x-pylon-headers").unwrap_or_default(),
                body: e.str("result-content").unwrap_or_default(),
            });
            let _ = e.get("description");
            e.finish(&mut ctx.r);
        }
        other => {
            let what = match other {
                "HTTP-VPC" | "HTTP-VPC-MEMBER-GROUP" => {
                    "VPC channels (load balancing over a channel's members) are not supported"
                }
                "FUNCTION" => "FunctionGraph backends are not supported",
                _ => "unknown backend type",
            };
            ctx.r.push(
                Level::Refused,
                &o.at("type"),
                format!("`{other}`: {what}; left out"),
            );
            for k in [
                "httpVpcEndpoints",
                "httpVpcMemberGroupEndpoints",
                "functionEndpoints",
            ] {
                o.used.insert(k);
            }
            return None;
        }
    }
    Some(b)
}

pub(super) fn huawei_backend(ctx: &mut Ctx, v: &Value, ptr: &str) -> Option<BackendDef> {
    let mut o = Obj::new(Some(v), ptr.to_string());
    let kind = o.str("type").unwrap_or_else(|| "HTTP".into());
    let mut b = huawei_endpoint(ctx, &mut o, &kind)?;
    huawei_backend_params(&mut ctx.r, &mut o, "parameters", &mut b.params);
    o.finish(&mut ctx.r);
    Some(b)
}

pub(super) fn policy(ctx: &mut Ctx, v: &Value, ptr: &str) -> Option<PolicyDef> {
    let mut o = Obj::new(Some(v), ptr.to_string());
    let name = o.str("name").unwrap_or_default();
    let kind = o.str("type").unwrap_or_else(|| "HTTP".into());
    let effect = match o.str("effectMode").as_deref() {
        Some("ALL") => Effect::All,
        _ => Effect::Any,
    };
    let mut backend = huawei_endpoint(ctx, &mut o, &kind)?;
    huawei_backend_params(&mut ctx.r, &mut o, "parameters", &mut backend.params);
    let mut conditions = Vec::new();
    for (at, c) in o.items("conditions") {
        let mut c = Obj::new(Some(c), at.clone());
        let value = c.str("value").map(Text);
        // Real exports write `exact` and `param` where the guide says `equal`
        // and `request`; both are read.
        let test = match c.str("type").as_deref() {
            Some("equal") | Some("exact") => Some(ConditionTest::Equal),
            Some("enum") => Some(ConditionTest::Enum),
            Some("pattern") => Some(ConditionTest::Pattern),
            None | Some("") => None,
            Some(other) => {
                return ctx.r.refuse(
                    &c.at("type"),
                    format!("`{other}` is not equal, enum or pattern; policy left out"),
                );
            }
        };
        let parameter = c
            .str("parameter")
            .or_else(|| c.str("parameter_name"))
            .unwrap_or_default();
        let cond = match c.str("origin").as_deref() {
            Some("source") => ConditionDef {
                source: value,
                param: None,
                system: None,
                test: None,
                value: None,
            },
            Some("request") | Some("param") => ConditionDef {
                source: None,
                param: Some(parameter),
                system: None,
                test,
                value,
            },
            Some("system") => {
                let system = match parameter.as_str() {
                    "reqPath" => SystemCondition::ReqPath,
                    "reqMethod" => SystemCondition::ReqMethod,
                    other => {
                        return ctx.r.refuse(
                            &c.at("parameter"),
                            format!(
                                "system condition on `{other}` is not supported; policy left out"
                            ),
                        );
                    }
                };
                ConditionDef {
                    source: None,
                    param: None,
                    system: Some(system),
                    test,
                    value,
                }
            }
            other => {
                return ctx.r.refuse(
                    &c.at("origin"),
                    format!("condition origin {other:?} is not supported; policy left out"),
                );
            }
        };
        c.finish(&mut ctx.r);
        conditions.push(cond);
    }
    o.finish(&mut ctx.r);
    Some(PolicyDef {
        name,
        effect,
        conditions,
        backend,
    })
}

pub(super) fn aliyun_backend(
    ctx: &mut Ctx,
    v: &Value,
    ptr: &str,
    api_path: &str,
) -> Option<BackendDef> {
    let mut o = Obj::new(Some(v), ptr.to_string());
    let kind = o.str("type").unwrap_or_else(|| "HTTP".into());
    let mut b = BackendDef {
        http: None,
        mock: None,
        params: Vec::new(),
    };
    match kind.as_str() {
        "HTTP" => {
            let address = o.str("address").unwrap_or_default();
            let (mut h, base) = parse_backend_url(&address)
                .or_else(|| parse_backend_url(&format!("http://{address}")))?;
            h.path = o.str("path").unwrap_or_else(|| format!("{base}{api_path}"));
            h.method = o
                .str("method")
                .filter(|m| !m.eq_ignore_ascii_case("any"))
                .and_then(|m| serde_json::from_value(Value::String(m.to_ascii_uppercase())).ok());
            h.timeout = o.num("timeout").unwrap_or(5000);
            h.allow_internal_address = o.flag("x-pylon-allow-internal-address");
            h.tls = backend_tls(&mut ctx.r, &mut o);
            b.http = Some(h);
        }
        "MOCK" => {
            b.mock = Some(MockBackendDef {
                status: o.num("mockStatusCode").unwrap_or(200),
                headers: o.json("x-pylon-headers").unwrap_or_default(),
                body: o.str("mockResult").unwrap_or_default(),
            });
        }
        other => {
            return ctx.r.refuse(&o.at("type"), format!("`{other}` backends (VPC, Function Compute, OSS, EventBridge) are not supported; API left out"));
        }
    }
    o.finish(&mut ctx.r);
    Some(b)
}
