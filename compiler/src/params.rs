//! Request parameters, backend parameters and policy backends' conditions:
//! the Huawei user guide's naming rules (§5.2.1) and every cross-reference, checked with
//! located errors; the filter's own loaders check the rest (patterns,
//! defaults against constraints, addresses), so both agree on what is valid.

use pylon_filter::params::{self, Param};
use pylon_filter::path_template::PathTemplate;
use pylon_filter::plan::{
    AuthKind, BackendParamPlan, ConditionOn, ConditionPlan, ConditionTest, Location, Method,
    ParamPlan, ParamSource, ParamType, PolicyPlan, RequestMode, SystemParam,
};
use pylon_filter::policy::{Conditions, MAX_CONDITIONS, MAX_POLICIES};

use crate::defs::{ApiDef, BackendDef, Located, SystemCondition};
use crate::error::DefError;
use crate::names::check_param_name;

/// Headers the gateway and Envoy own: a backend parameter may not set them.
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
];

struct At<'a> {
    a: &'a Located<ApiDef>,
    object: String,
}

impl At<'_> {
    fn err(&self, field: &str, msg: impl Into<String>) -> DefError {
        DefError::new(&self.a.file, &self.object, field, msg)
    }
}

fn at(a: &Located<ApiDef>) -> At<'_> {
    At {
        a,
        object: format!("api '{}'", a.def.name),
    }
}

/// One name per location (header names are caseless).
fn check_unique<'a>(
    taken: impl IntoIterator<Item = (Location, &'a str)>,
    name: &str,
    location: Location,
) -> Result<(), String> {
    let same = |other: &str| match location {
        Location::Header => other.eq_ignore_ascii_case(name),
        _ => other == name,
    };
    if taken.into_iter().any(|(l, n)| l == location && same(n)) {
        return Err(format!(
            "{} parameter `{name}` is given twice",
            location.as_str()
        ));
    }
    Ok(())
}

/// The API's declared request parameters, checked.
pub fn lower_params(
    a: &Located<ApiDef>,
    template: &PathTemplate,
    errs: &mut Vec<DefError>,
) -> Vec<ParamPlan> {
    let at = at(a);
    let in_path = template.params_with_greedy();
    let mut out: Vec<ParamPlan> = Vec::new();
    for (i, p) in a.def.parameters.iter().enumerate() {
        let field = |f: &str| format!("parameters[{i}].{f}");
        let before = errs.len();
        if let Err(m) = check_param_name(&p.name, p.location) {
            errs.push(at.err(&field("name"), m));
        }
        let lower = p.name.to_ascii_lowercase();
        if p.location == Location::Header && (lower == "authorization" || lower == "x-auth-token") {
            errs.push(at.err(
                &field("name"),
                format!(
                    "header parameter `{}` is reserved for authentication",
                    p.name
                ),
            ));
        }
        let taken = out.iter().map(|o| (o.location, o.name.as_str()));
        if let Err(m) = check_unique(taken, &p.name, p.location) {
            errs.push(at.err(&field("name"), m));
        }
        if p.location == Location::Path {
            if !in_path.iter().any(|(n, _)| *n == p.name) {
                errs.push(at.err(
                    &field("name"),
                    format!(
                        "path parameter `{}` is not in the path `{}`",
                        p.name, a.def.path
                    ),
                ));
            }
            if p.default.is_some() {
                errs.push(at.err(&field("default"), "path parameters are always required"));
            }
        } else if a.def.request_mode == RequestMode::Passthrough {
            errs.push(at.err(
                &field("in"),
                "passthrough mode forwards query and headers untouched: declare path parameters only",
            ));
        }
        if p.required && p.default.is_some() {
            errs.push(at.err(
                &field("default"),
                "a default applies to optional parameters only",
            ));
        }
        match p.kind {
            ParamType::String if p.min.is_some() || p.max.is_some() => errs.push(at.err(
                &field("min"),
                "min/max bound numbers; use min_length/max_length",
            )),
            ParamType::Number if p.min_length.is_some() || p.max_length.is_some() => {
                errs.push(at.err(
                    &field("min_length"),
                    "min_length/max_length bound strings; use min/max",
                ))
            }
            _ => {}
        }
        if let (Some(lo), Some(hi)) = (p.min_length, p.max_length) {
            if lo > hi {
                errs.push(at.err(&field("min_length"), "is greater than max_length"));
            }
        }
        // `.nan` and `.inf` are YAML numbers, but the plan (JSON) would carry
        // them as null: the bound would silently vanish.
        for (name, bound) in [("min", p.min), ("max", p.max)] {
            if bound.is_some_and(|b| !b.is_finite()) {
                errs.push(at.err(&field(name), "must be a finite number"));
            }
        }
        if let (Some(lo), Some(hi)) = (p.min, p.max) {
            if lo > hi {
                errs.push(at.err(&field("min"), "is greater than max"));
            }
        }
        let plan = ParamPlan {
            name: p.name.clone(),
            location: p.location,
            kind: p.kind,
            required: p.required || p.location == Location::Path,
            default: p.default.as_ref().map(|d| d.0.clone()),
            min_length: p.min_length,
            max_length: p.max_length,
            min: p.min,
            max: p.max,
            allowed: p.allowed.iter().map(|v| v.0.clone()).collect(),
            pattern: p.pattern.clone(),
        };
        // The filter's own checks: the pattern, then the default against
        // the parameter's rules.
        if errs.len() == before {
            let without_default = ParamPlan {
                default: None,
                ..plan.clone()
            };
            if let Err(m) = Param::compile(&without_default, &in_path) {
                errs.push(at.err(&field("pattern"), m));
            } else if let Err(m) = Param::compile(&plan, &in_path) {
                errs.push(at.err(&field("default"), m));
            }
        }
        out.push(plan);
    }
    out
}

/// A request parameter a backend parameter or condition can name: declared,
/// or a path parameter of the request path.
fn request_param(
    name: &str,
    declared: &[ParamPlan],
    template: &PathTemplate,
) -> Option<(Location, bool)> {
    // Resolved as the filter resolves them.
    let names = declared.iter().map(|p| (p.location, p.name.as_str()));
    if let Some(p) = params::find_by(names, name).map(|i| &declared[i]) {
        // Present whenever the request is: required, or with a default.
        return Some((p.location, p.required || p.default.is_some()));
    }
    template
        .params()
        .any(|n| n == name)
        .then_some((Location::Path, true))
}

/// Checks a backend's `params` (`prefix` is `backend` or
/// `policies[i].backend`) and returns them as the plan has them.
pub fn lower_backend_params(
    a: &Located<ApiDef>,
    prefix: &str,
    backend: &BackendDef,
    declared: &[ParamPlan],
    template: &PathTemplate,
    errs: &mut Vec<DefError>,
) -> Vec<BackendParamPlan> {
    let at = at(a);
    if backend.mock.is_some() && !backend.params.is_empty() {
        errs.push(at.err(
            &format!("{prefix}.params"),
            "a mock backend takes no parameters",
        ));
        return Vec::new();
    }
    if backend.http.is_some() && a.def.cors && a.def.method == Method::Options {
        errs.push(at.err(
            &format!("{prefix}.http"),
            "a CORS preflight API (method OPTIONS, cors: true) answers with a mock backend",
        ));
    }
    let backend_path = backend.http.as_ref().map_or("", |h| h.path.as_str());
    let mut out: Vec<BackendParamPlan> = Vec::new();
    for (i, p) in backend.params.iter().enumerate() {
        let field = |f: &str| format!("{prefix}.params[{i}].{f}");
        if let Err(m) = check_param_name(&p.name, p.location) {
            errs.push(at.err(&field("name"), m));
        }
        if p.location == Location::Header {
            let lower = p.name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str())
                || lower.starts_with("x-envoy-")
                || lower.starts_with("x-pylon-")
            {
                errs.push(at.err(
                    &field("name"),
                    format!("header `{}` belongs to Envoy and the gateway", p.name),
                ));
            }
        }
        let taken = out.iter().map(|o| (o.location, o.name.as_str()));
        if let Err(m) = check_unique(taken, &p.name, p.location) {
            errs.push(at.err(&field("name"), m));
        }
        let placeholders = backend_path.matches(&format!("{{{}}}", p.name)).count();
        if p.location == Location::Path && placeholders == 0 {
            errs.push(at.err(
                &field("name"),
                format!(
                    "backend path parameter `{}` must appear as `{{{}}}` in the backend path",
                    p.name, p.name
                ),
            ));
        }
        if p.location == Location::Path && placeholders > 1 {
            errs.push(at.err(
                &format!("{prefix}.http.path"),
                format!(
                    "uses backend path parameter `{{{}}}` more than once",
                    p.name
                ),
            ));
        }
        let value = match (&p.from, &p.constant, p.system) {
            (Some(from), None, None) => {
                match request_param(from, declared, template) {
                    None => errs.push(at.err(
                        &field("from"),
                        format!("`{from}` is not a declared request parameter or a path parameter"),
                    )),
                    Some((loc, _)) if a.def.request_mode == RequestMode::Passthrough && loc != Location::Path => {
                        errs.push(at.err(&field("from"), "passthrough mode maps path parameters only"))
                    }
                    Some((_, false)) if p.location == Location::Path => errs.push(at.err(
                        &field("from"),
                        format!("`{from}` may be absent: a path parameter needs it required or with a default"),
                    )),
                    Some(_) => {}
                }
                ParamSource::Request(from.clone())
            }
            (None, Some(c), None) => {
                if c.0.chars().any(char::is_control) {
                    errs.push(at.err(&field("constant"), "may not contain control characters"));
                }
                ParamSource::Constant(c.0.clone())
            }
            (None, None, Some(s)) => {
                let needs = match s {
                    SystemParam::AppId => Some((AuthKind::App, "appId", "app")),
                    SystemParam::Account => Some((AuthKind::Iam, "account", "iam")),
                    _ => None,
                };
                if let Some((auth, what, kind)) = needs {
                    if a.def.auth != auth {
                        errs.push(at.err(
                            &field("system"),
                            format!("{what} is only known for `auth: {kind}` APIs"),
                        ));
                    }
                }
                ParamSource::System(s)
            }
            _ => {
                errs.push(at.err(
                    &format!("{prefix}.params[{i}]"),
                    "give exactly one of `from`, `constant` or `system`",
                ));
                continue;
            }
        };
        out.push(BackendParamPlan {
            name: p.name.clone(),
            location: p.location,
            value,
        });
    }
    out
}

/// Policy backends without their per-environment backends (the caller adds
/// those), checked.
pub fn lower_policies(
    a: &Located<ApiDef>,
    declared: &[ParamPlan],
    template: &PathTemplate,
    errs: &mut Vec<DefError>,
) -> Vec<PolicyPlan> {
    let at = at(a);
    if a.def.policies.len() > MAX_POLICIES {
        errs.push(at.err(
            "policies",
            format!("at most {MAX_POLICIES} policy backends besides the default"),
        ));
    }
    let mut out: Vec<PolicyPlan> = Vec::new();
    for (i, p) in a.def.policies.iter().enumerate() {
        let field = |f: &str| format!("policies[{i}].{f}");
        if out.iter().any(|o| o.name == p.name) {
            errs.push(at.err(
                &field("name"),
                format!("another policy is named `{}`", p.name),
            ));
        }
        let before = errs.len();
        let mut conditions = Vec::new();
        for (j, c) in p.conditions.iter().enumerate() {
            let cfield = |f: &str| field(&format!("conditions[{j}].{f}"));
            let split =
                |v: &str| -> Vec<String> { v.split(',').map(|s| s.trim().to_string()).collect() };
            let (on, values) = match (&c.source, &c.param, c.system) {
                (Some(src), None, None) => {
                    if c.test.is_some() || c.value.is_some() {
                        errs.push(at.err(
                            &cfield("source"),
                            "a source condition takes its addresses in `source` and no `type` or `value`",
                        ));
                    }
                    (ConditionOn::Source, split(&src.0))
                }
                (None, Some(param), None) => {
                    if request_param(param, declared, template).is_none() {
                        errs.push(at.err(
                            &cfield("param"),
                            format!(
                                "`{param}` is not a declared request parameter or a path parameter"
                            ),
                        ));
                    }
                    (ConditionOn::Param(param.clone()), Vec::new())
                }
                (None, None, Some(SystemCondition::ReqPath)) => (ConditionOn::ReqPath, Vec::new()),
                (None, None, Some(SystemCondition::ReqMethod)) => {
                    (ConditionOn::ReqMethod, Vec::new())
                }
                _ => {
                    errs.push(at.err(
                        &field(&format!("conditions[{j}]")),
                        "give exactly one of `source`, `param` or `system`",
                    ));
                    continue;
                }
            };
            let values = match (&on, &c.value) {
                (ConditionOn::Source, _) => values,
                (_, None) => {
                    errs.push(at.err(&cfield("value"), "is required"));
                    Vec::new()
                }
                (_, Some(v)) => match c.test {
                    Some(ConditionTest::Enum) => split(&v.0),
                    _ => vec![v.0.clone()],
                },
            };
            conditions.push(ConditionPlan {
                on,
                test: c.test,
                values,
            });
        }
        if !(1..=MAX_CONDITIONS).contains(&p.conditions.len()) {
            errs.push(at.err(
                &field("conditions"),
                format!("needs 1-{MAX_CONDITIONS} conditions"),
            ));
        }
        // The filter's own checks, one condition at a time so each error
        // names its condition: types, patterns, addresses. (Parameter names
        // were checked above.)
        if errs.len() == before {
            for (j, c) in conditions.iter().enumerate() {
                let Err(m) = Conditions::compile(p.effect, std::slice::from_ref(c), |_| Some(0))
                else {
                    continue;
                };
                let m = m.strip_prefix("condition 1: ").unwrap_or(&m).to_string();
                let part = match (&c.on, c.test) {
                    (ConditionOn::Source, _) => "source",
                    (_, None) | (ConditionOn::ReqMethod, Some(ConditionTest::Pattern)) => "type",
                    _ => "value",
                };
                errs.push(at.err(&field(&format!("conditions[{j}].{part}")), m));
            }
        }
        out.push(PolicyPlan {
            name: p.name.clone(),
            effect: p.effect,
            conditions,
            stages: Default::default(),
        });
    }
    out
}
