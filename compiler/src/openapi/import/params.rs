//! Request parameters and backend parameters (Huawei REQUEST / CONSTANT /
//! SYSTEM origins, Alibaba constant and system parameters).

use std::collections::BTreeSet;

use pylon_filter::plan::{Location, ParamType, SystemParam};
use serde_json::Value;

use super::operation::deref;
use super::reader::{text, Obj};
use super::Ctx;
use crate::defs::{BackendParamDef, ParamDef, Text};
use crate::names::check_param_name;
use crate::openapi::report::{Level, Reports};
use crate::openapi::ALIYUN_SYSTEM;

fn location(s: &str) -> Option<Location> {
    match s.to_ascii_lowercase().as_str() {
        "path" => Some(Location::Path),
        "query" => Some(Location::Query),
        "header" => Some(Location::Header),
        _ => None,
    }
}

/// A request parameter, and its Alibaba backend mapping if it has one.
pub(super) fn parameter(
    ctx: &mut Ctx,
    p: &Value,
    ptr: &str,
) -> Option<(ParamDef, Option<BackendParamDef>)> {
    let mut o = Obj::new(Some(p), ptr.to_string());
    let name = o.str("name").unwrap_or_default();
    let Some(loc) = o.str("in").as_deref().and_then(location) else {
        let at = o.at("in");
        let what = p.get("in").map(text).unwrap_or_default();
        ctx.r.push(
            Level::Unsupported,
            &at,
            format!("`{name}` in `{what}`: only path, query and header parameters are checked; the body is forwarded as received"),
        );
        return None;
    };
    // Pylon's parameter names follow Huawei user guide §5.2.1 (table 5-6);
    // declaring one outside that rule would make the whole import fail to
    // compile, so that parameter alone is left undeclared (Ory's published
    // client API has a 34-character query parameter).
    if let Err(m) = check_param_name(&name, loc) {
        ctx.r.push(
            Level::Unsupported,
            &o.at("name"),
            format!("{m}; parameter not declared, so not checked"),
        );
        return None;
    }
    // Swagger 2.0 keeps the schema on the parameter, OpenAPI 3 under `schema`.
    let (schema_val, schema_ptr) = if ctx.v3 {
        let (s, _) = match p.get("schema") {
            Some(s) => deref(ctx.doc, s),
            None => (&Value::Null, None),
        };
        (Some(s), format!("{ptr}/schema"))
    } else {
        (Some(p), ptr.to_string())
    };
    let mut s = if ctx.v3 {
        o.used.insert("schema");
        Obj::new(schema_val, schema_ptr)
    } else {
        Obj {
            map: None,
            ptr: String::new(),
            used: BTreeSet::new(),
        }
    };
    let sch: &mut Obj = if ctx.v3 { &mut s } else { &mut o };
    let ty = sch.str("type").unwrap_or_else(|| "string".into());
    let kind = match ty.as_str() {
        "string" => ParamType::String,
        "number" => ParamType::Number,
        "integer" => {
            let at = sch.at("type");
            ctx.r.push(
                Level::Unsupported,
                &at,
                "integer is checked as a number: decimals are not refused",
            );
            ParamType::Number
        }
        other => {
            let at = sch.at("type");
            ctx.r.push(
                Level::Unsupported,
                &at,
                format!("type `{other}` is checked as a string"),
            );
            ParamType::String
        }
    };
    let num = |v: Option<&Value>| v.and_then(|v| text(v).parse::<f64>().ok());
    let u32v = |v: Option<&Value>| v.and_then(|v| text(v).parse::<u32>().ok());
    let mut def = ParamDef {
        name: name.clone(),
        location: loc,
        kind,
        required: false,
        default: sch.get("default").map(|v| Text(text(v))),
        min_length: u32v(sch.get("minLength")),
        max_length: u32v(sch.get("maxLength")),
        min: num(sch.get("minimum")),
        max: num(sch.get("maximum")),
        allowed: sch
            .get("enum")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| Text(text(v))).collect())
            .unwrap_or_default(),
        pattern: sch.str("pattern"),
        description: String::new(),
    };
    let _ = sch.get("description");
    if ctx.v3 {
        s.finish(&mut ctx.r);
    }
    def.required = o.flag("required") || loc == Location::Path;
    def.description = o.str("description").unwrap_or_default();
    if let Some(e) = o.str("x-aliyun-apigateway-enum") {
        def.allowed = e.split(',').map(|v| Text(v.trim().to_string())).collect();
    }
    if o.str("x-apigateway-pass-through").as_deref() == Some("never") {
        o.unsupported(
            &mut ctx.r,
            "x-apigateway-pass-through",
            "Pylon forwards declared parameters; `never` is not honoured",
        );
    }
    let map = match (
        o.str("x-aliyun-apigateway-backend-name"),
        o.str("x-aliyun-apigateway-backend-location")
            .as_deref()
            .and_then(location),
    ) {
        (None, None) => None,
        (bn, bl) => Some(BackendParamDef {
            name: bn.unwrap_or_else(|| name.clone()),
            location: bl.unwrap_or(loc),
            from: Some(name.clone()),
            constant: None,
            system: None,
            description: String::new(),
        }),
    };
    if ctx.v3 {
        for k in ["style", "explode"] {
            if p.get(k).is_some() {
                let at = o.at(k);
                ctx.r
                    .push(Level::Note, &at, "values are read as single strings");
                o.used.insert(k);
            }
        }
    }
    o.finish(&mut ctx.r);
    Some((def, map))
}

fn system_from(name: &str) -> Option<SystemParam> {
    // Alibaba's system parameter names (CaClientIp and friends) first.
    match ALIYUN_SYSTEM.iter().find(|(_, ca)| *ca == name) {
        Some((s, _)) => Some(*s),
        None => serde_json::from_value(Value::String(name.to_string())).ok(),
    }
}

fn huawei_backend_param(r: &mut Reports, p: &Value, ptr: &str) -> Option<BackendParamDef> {
    let mut o = Obj::new(Some(p), ptr.to_string());
    let name = o.str("name").unwrap_or_default();
    let loc = o.str("in").as_deref().and_then(location);
    let value = o.str("value").unwrap_or_default();
    let mut def = BackendParamDef {
        name,
        location: loc.unwrap_or(Location::Header),
        from: None,
        constant: None,
        system: None,
        description: o.str("description").unwrap_or_default(),
    };
    if loc.is_none() {
        return r.refuse(
            &o.at("in"),
            "not header, query or path; backend parameter left out",
        );
    }
    match o.str("origin").map(|s| s.to_ascii_uppercase()).as_deref() {
        Some("REQUEST") => def.from = Some(value),
        Some("CONSTANT") => def.constant = Some(Text(value)),
        Some("SYSTEM") => match system_from(&value) {
            Some(s) => def.system = Some(s),
            None => {
                return r.refuse(
                    &o.at("value"),
                    format!("system parameter `{value}` is not one Pylon provides; left out"),
                );
            }
        },
        other => {
            return r.refuse(
                &o.at("origin"),
                format!("{other:?} is not REQUEST, CONSTANT or SYSTEM; left out"),
            );
        }
    }
    o.finish(r);
    Some(def)
}

/// The Huawei-style backend parameters listed at `key`, in order.
pub(super) fn huawei_backend_params(
    r: &mut Reports,
    o: &mut Obj,
    key: &'static str,
    into: &mut Vec<BackendParamDef>,
) {
    for (at, p) in o.items(key) {
        into.extend(huawei_backend_param(r, p, &at));
    }
}

pub(super) fn aliyun_backend_param(
    r: &mut Reports,
    p: &Value,
    ptr: &str,
    system: bool,
) -> Option<BackendParamDef> {
    let mut o = Obj::new(Some(p), ptr.to_string());
    let name = o.str("backendName").unwrap_or_default();
    let Some(loc) = o.str("location").as_deref().and_then(location) else {
        return r.refuse(&o.at("location"), "not header, query or path; left out");
    };
    let mut def = BackendParamDef {
        name,
        location: loc,
        from: None,
        constant: None,
        system: None,
        description: o.str("description").unwrap_or_default(),
    };
    if system {
        let sys = o.str("systemName").unwrap_or_default();
        match system_from(&sys) {
            Some(s) => def.system = Some(s),
            None => {
                return r.refuse(
                    &o.at("systemName"),
                    format!("`{sys}` is not a system parameter Pylon provides; left out"),
                );
            }
        }
    } else {
        def.constant = Some(Text(o.str("value").unwrap_or_default()));
    }
    o.finish(r);
    Some(def)
}
