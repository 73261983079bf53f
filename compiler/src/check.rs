//! Check: the rules each definition must follow on its own (names, ranges,
//! templates), and clashes between definitions of one kind. Errors are
//! collected and located; nothing is built here but the complete response
//! sets.

use std::collections::BTreeMap;

use pylon_filter::path_template::{PathTemplate, Segment};
use pylon_filter::plan::{BackendParamPlan, Location, ResponseSpec, RELEASE};
use pylon_filter::response::{default_set, Template, DEFAULT_SET};
use pylon_filter::router::MAX_STAGES;

use crate::defs::{ApiDef, BackendDef, Defs, GroupDef, Located};
use crate::error::DefError;
use crate::names::{check_env_name, check_header, check_var_name};
use crate::resolve::backend_address;
use crate::ssrf::Admin;

pub fn check_environments(defs: &Defs, errs: &mut Vec<DefError>) -> Vec<String> {
    let mut stages = vec![RELEASE.to_string()];
    for e in &defs.environments {
        let object = format!("environment '{}'", e.def.name);
        if let Err(m) = check_env_name(&e.def.name) {
            errs.push(DefError::new(&e.file, &object, "name", m));
        } else if stages.contains(&e.def.name) {
            let m = if e.def.name == RELEASE {
                "RELEASE always exists and is not declared".to_string()
            } else {
                "another environment has this name".to_string()
            };
            errs.push(DefError::new(&e.file, &object, "name", m));
        } else {
            stages.push(e.def.name.clone());
        }
    }
    if stages.len() > MAX_STAGES {
        let file = &defs.environments[MAX_STAGES - 1].file;
        errs.push(DefError::new(
            file,
            "environments",
            "",
            format!("at most {MAX_STAGES} environments"),
        ));
    }
    stages
}

pub fn check_variables(g: &Located<GroupDef>, stages: &[String], errs: &mut Vec<DefError>) {
    let object = format!("group '{}'", g.def.name);
    for (env, vars) in &g.def.variables {
        if !stages.contains(env) {
            errs.push(DefError::new(
                &g.file,
                &object,
                &format!("variables.{env}"),
                format!("no environment named '{env}' is defined"),
            ));
        }
        for (name, value) in vars {
            let field = format!("variables.{env}.{name}");
            if let Err(m) = check_var_name(name) {
                errs.push(DefError::new(&g.file, &object, &field, m));
            }
            if value.is_empty() || value.len() > 255 {
                errs.push(DefError::new(
                    &g.file,
                    &object,
                    &field,
                    "value must be 1-255 characters",
                ));
            }
        }
    }
}

/// The group's response sets, each complete: the product defaults + overrides.
pub fn response_sets(
    g: &Located<GroupDef>,
    errs: &mut Vec<DefError>,
) -> BTreeMap<String, pylon_filter::plan::ResponseSet> {
    let object = format!("group '{}'", g.def.name);
    let mut sets = BTreeMap::new();
    sets.insert(DEFAULT_SET.to_string(), default_set());
    for (set_name, overrides) in &g.def.responses {
        // A custom set starts from the group's `default` set as overridden.
        let mut set = g
            .def
            .responses
            .get(DEFAULT_SET)
            .filter(|_| set_name != DEFAULT_SET)
            .map(|d| apply_overrides(default_set(), d))
            .unwrap_or_else(default_set);
        set = apply_overrides(set, overrides);
        for (kind, def) in overrides {
            let field = format!("responses.{set_name}.{}", kind.as_str());
            if let Some(s) = def.status {
                if !(200..=599).contains(&s) {
                    errs.push(DefError::new(
                        &g.file,
                        &object,
                        &format!("{field}.status"),
                        "status must be 200-599",
                    ));
                }
            }
            if let Some(body) = &def.body {
                if let Err(m) = Template::parse(body) {
                    errs.push(DefError::new(&g.file, &object, &format!("{field}.body"), m));
                }
            }
            for (k, v) in &def.headers {
                if let Err(m) = check_header(k, v) {
                    errs.push(DefError::new(
                        &g.file,
                        &object,
                        &format!("{field}.headers.{k}"),
                        m,
                    ));
                }
            }
        }
        sets.insert(set_name.clone(), set);
    }
    sets
}

pub fn apply_overrides(
    mut set: pylon_filter::plan::ResponseSet,
    overrides: &BTreeMap<pylon_filter::response::ErrorType, crate::defs::ResponseDef>,
) -> pylon_filter::plan::ResponseSet {
    for (kind, def) in overrides {
        let base = set.get(kind).cloned();
        let spec = ResponseSpec {
            status: def.status.or(base.as_ref().and_then(|b| b.status)),
            body: def
                .body
                .clone()
                .or(base.map(|b| b.body))
                .unwrap_or_default(),
            headers: def.headers.clone(),
        };
        set.insert(*kind, spec);
    }
    set
}

/// The backend checks that do not depend on an environment: reported once,
/// even for an API published nowhere (or everywhere).
pub fn check_backend(
    a: &Located<ApiDef>,
    prefix: &str,
    backend: &BackendDef,
    params: &[BackendParamPlan],
    template: &PathTemplate,
    admin: &Admin,
) -> Vec<DefError> {
    let object = format!("api '{}'", a.def.name);
    let err = |field: &str, msg: String| {
        DefError::new(&a.file, &object, &format!("{prefix}{field}"), msg)
    };
    let mut errs = Vec::new();
    match (&backend.http, &backend.mock) {
        (Some(_), Some(_)) | (None, None) => {
            errs.push(err("", "give exactly one of `http` or `mock`".into()));
        }
        (None, Some(m)) => {
            if !(200..=599).contains(&m.status) {
                errs.push(err(".mock.status", "status must be 200-599".into()));
            }
            for (k, v) in &m.headers {
                if let Err(msg) = check_header(k, v) {
                    errs.push(err(&format!(".mock.headers.{k}"), msg));
                }
            }
        }
        (Some(h), None) => {
            if !(1..=600_000).contains(&h.timeout) {
                errs.push(err(".http.timeout", "timeout must be 1-600000 ms".into()));
            }
            if let Err((field, m)) = crate::tls::of_backend(&a.file, h) {
                errs.push(err(&format!(".http.{field}"), m));
            }
            // With a `#variable#` these are checked per environment.
            if !h.address.contains('#') {
                if let Err(m) = backend_address(&h.address, h, admin) {
                    errs.push(err(".http.address", format!("`{}`: {m}", h.address)));
                }
            }
            if !h.path.contains('#') {
                if let Err(m) = check_backend_path(&h.path, template, params) {
                    errs.push(err(".http.path", m));
                }
            }
        }
    }
    errs
}

/// `{name}` in a backend path takes a backend path parameter of that name,
/// else the request path parameter.
pub fn check_backend_path(
    path: &str,
    template: &PathTemplate,
    params: &[BackendParamPlan],
) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("backend path `{path}` must start with `/`"));
    }
    if path.contains(['?', '#', ' ', '\r', '\n']) {
        return Err(format!(
            "backend path `{path}` may not contain `?`, `#`, spaces or line breaks"
        ));
    }
    let backend_params = params;
    let params: Vec<&str> = template.params().collect();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("backend path `{path}` has an unclosed `{{`"))?;
        let name = rest[open + 1..open + close].trim_end_matches('+');
        let mapped = backend_params
            .iter()
            .any(|p| p.location == Location::Path && p.name == name);
        if !params.contains(&name) && !mapped {
            return Err(format!(
                "backend path uses `{{{name}}}`, but neither the request path `{}` nor the backend's path parameters have it",
                template_display(template)
            ));
        }
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("backend path `{path}` has a stray `}}`"));
    }
    Ok(())
}

pub fn template_display(t: &PathTemplate) -> String {
    let mut s = String::new();
    for seg in &t.segments {
        s.push('/');
        match seg {
            Segment::Literal(l) => s.push_str(l),
            Segment::Param(n) => s.push_str(&format!("{{{n}}}")),
            Segment::Greedy(n) => s.push_str(&format!("{{{n}+}}")),
        }
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// The route's shape with parameter names erased: `/a/{x}` and `/a/{y}` clash.
pub fn route_shape(t: &PathTemplate) -> String {
    let mut s = String::new();
    for seg in &t.segments {
        s.push('/');
        match seg {
            Segment::Literal(l) => s.push_str(l),
            Segment::Param(_) => s.push_str("{}"),
            Segment::Greedy(_) => s.push_str("{+}"),
        }
    }
    s
}
