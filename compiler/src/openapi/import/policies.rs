//! Group-wide definitions: security schemes (Huawei `x-apigateway-auth-type`),
//! throttling and access-control policies (`x-apigateway-ratelimits`,
//! `x-apigateway-access-controls`) and gateway responses.

use std::collections::BTreeMap;

use pylon_filter::plan::{AclAction, AclKind, AppCodeMode, AuthKind};
use pylon_filter::response::ErrorType;
use serde_json::Value;

use super::reader::{text, Obj};
use super::Ctx;
use crate::defs::{AclDef, ResponseDef, ThrottleDef, TimeUnit};
use crate::openapi::escape;
use crate::openapi::report::{Level, Reports};

pub(super) fn security_scheme(
    r: &mut Reports,
    name: &str,
    s: &Value,
    ptr: &str,
) -> Option<(AuthKind, AppCodeMode)> {
    let mut o = Obj::new(Some(s), ptr.to_string());
    let _ = (o.get("type"), o.get("in"), o.get("name"));
    let code = match o
        .get("x-apigateway-auth-opt")
        .and_then(|v| v.get("appcode-auth-type"))
    {
        Some(v) if v == "header" => AppCodeMode::Https,
        _ => AppCodeMode::Disabled,
    };
    let kind = match o.str("x-apigateway-auth-type").as_deref() {
        Some("AppSigv1") => Some((AuthKind::App, code)),
        Some("IAM") => Some((AuthKind::Iam, code)),
        Some("IAM_NONE") => {
            r.push(
                Level::Note,
                &o.at("x-apigateway-auth-type"),
                "IAM_NONE taken as IAM",
            );
            Some((AuthKind::Iam, code))
        }
        Some(other) => {
            o.unsupported(
                r,
                "x-apigateway-auth-type",
                format!(
                    "`{other}` (custom authorizer) is not supported; APIs using it are refused"
                ),
            );
            None
        }
        // Huawei's exporters name the schemes; a plain document keeps the names.
        None => match name {
            "apig-auth-app" => Some((AuthKind::App, AppCodeMode::Disabled)),
            "apig-auth-app-header" => Some((AuthKind::App, AppCodeMode::Https)),
            "apig-auth-iam" => Some((AuthKind::Iam, AppCodeMode::Disabled)),
            _ => None,
        },
    };
    if o.get("x-apigateway-authorizer").is_some() {
        o.unsupported(
            r,
            "x-apigateway-authorizer",
            "custom authorizers are not supported",
        );
    }
    if kind.is_some() {
        let _ = (o.get("description"), o.get("x-apigateway-auth-opt"));
        o.finish(r);
    }
    kind
}

pub(super) fn throttle(r: &mut Reports, name: &str, t: &Value, ptr: &str) -> Option<ThrottleDef> {
    let mut o = Obj::new(Some(t), ptr.to_string());
    let unit = match o.str("unit").map(|u| u.to_ascii_uppercase()).as_deref() {
        Some("SECOND") => TimeUnit::Second,
        Some("MINUTE") => TimeUnit::Minute,
        Some("HOUR") => TimeUnit::Hour,
        Some("DAY") => TimeUnit::Day,
        other => {
            return r.refuse(
                &o.at("unit"),
                format!("unit {other:?} is not SECOND, MINUTE, HOUR or DAY; policy left out"),
            );
        }
    };
    let Some(api_limit) = o.num("api-limit") else {
        return r.refuse(&o.at("api-limit"), "missing; policy left out");
    };
    let mut def = ThrottleDef {
        name: name.to_string(),
        description: o.str("description").unwrap_or_default(),
        unit,
        interval: o.num("interval").unwrap_or(1),
        api_limit,
        user_limit: o.num("user-limit"),
        app_limit: o.num("app-limit"),
        ip_limit: o.num("ip-limit"),
        shared: o.flag("shared"),
        special_apps: BTreeMap::new(),
        special_users: BTreeMap::new(),
        bindings: Vec::new(),
    };
    for (at, s) in o.items("special") {
        let (Some(kind), Some(limit), Some(inst)) = (
            s.get("type").map(text),
            s.get("limit").and_then(|v| text(v).parse::<u64>().ok()),
            s.get("instance").map(text),
        ) else {
            r.push(
                Level::Refused,
                &at,
                "needs type, limit and instance; left out",
            );
            continue;
        };
        match kind.as_str() {
            "APP" => {
                def.special_apps.insert(inst, limit);
            }
            "USER" => {
                def.special_users.insert(inst, limit);
            }
            other => r.push(
                Level::Refused,
                &at,
                format!("type `{other}` is not APP or USER; left out"),
            ),
        }
    }
    o.finish(r);
    Some(def)
}

pub(super) fn acl(r: &mut Reports, name: &str, a: &Value, ptr: &str) -> Option<AclDef> {
    let mut o = Obj::new(Some(a), ptr.to_string());
    let action = match o.str("acl-type").as_deref() {
        Some("PERMIT") => AclAction::Allow,
        Some("DENY") => AclAction::Deny,
        other => {
            return r.refuse(
                &o.at("acl-type"),
                format!("{other:?} is not PERMIT or DENY; policy left out"),
            );
        }
    };
    // Huawei's DOMAIN is an account (a Huawei Cloud "domain" is a tenant).
    let kind = match o.str("entity-type").as_deref() {
        Some("IP") | None => AclKind::Ip,
        Some("DOMAIN") => AclKind::Account,
        Some(other) => {
            return r.refuse(
                &o.at("entity-type"),
                format!("`{other}` is not IP or DOMAIN; policy left out"),
            );
        }
    };
    let values = o
        .str("value")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let description = o.str("description").unwrap_or_default();
    o.finish(r);
    Some(AclDef {
        name: name.to_string(),
        description,
        kind,
        action,
        values,
        bindings: Vec::new(),
    })
}

pub(super) fn responses(ctx: &mut Ctx, v: &Value, ptr: &str) {
    let Some(sets) = v.as_object() else { return };
    for (set, types) in sets {
        let entry = ctx.responses.entry(set.clone()).or_default();
        for (ty, resp) in types.as_object().into_iter().flatten() {
            let at = format!("{ptr}/{}/{}", escape(set), escape(ty));
            let Ok(kind) = serde_json::from_value::<ErrorType>(Value::String(ty.clone())) else {
                ctx.r.push(
                    Level::Refused,
                    &at,
                    format!("`{ty}` is not a gateway error type; left out"),
                );
                continue;
            };
            let mut o = Obj::new(Some(resp), at.clone());
            let status = o.num::<u16>("status");
            let body = match o.get("body") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Object(m)) => {
                    if m.len() > 1 {
                        ctx.r.push(Level::Unsupported, &format!("{at}/body"), "one body per error type: the application/json one (else the first) is kept");
                    }
                    m.get("application/json")
                        .or_else(|| m.values().next())
                        .map(text)
                }
                _ => None,
            };
            let headers = o.json("x-pylon-headers").unwrap_or_default();
            let _ = o.get("default");
            o.finish(&mut ctx.r);
            entry.insert(
                kind,
                ResponseDef {
                    status,
                    body,
                    headers,
                },
            );
        }
    }
    // `default: {}` is the set that always exists.
    ctx.responses
        .retain(|k, v| !(k == "default" && v.is_empty()));
}
