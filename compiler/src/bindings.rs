//! The one binding resolver: app authorizations (Huawei user guide §5.2.4),
//! access control bindings (§5.4.1) and throttling bindings (§5.3.1) all
//! name an API of a group and the environments it is published to. They are
//! resolved here, against the definitions, into one table per API that the
//! plan is then built from; nothing patches an already-built plan.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::defs::{Defs, GrantDef};
use crate::error::DefError;

/// What is bound to one API, per environment.
#[derive(Debug, Default)]
pub struct Bound {
    /// Environment → the apps authorized there, sorted.
    pub authorized: BTreeMap<String, Vec<String>>,
    /// Environment → the access control policies bound there.
    pub acls: BTreeMap<String, Vec<String>>,
    /// Environment → the throttling policy bound there.
    pub throttles: BTreeMap<String, String>,
}

/// The groups, and the environments each API is published to. An API that
/// is defined twice is known by its first definition (the second is an
/// error of its own).
pub struct Published<'d> {
    groups: HashSet<&'d str>,
    apis: HashMap<(&'d str, &'d str), Vec<&'d str>>,
}

impl<'d> Published<'d> {
    pub fn new(defs: &'d Defs, stages: &[String]) -> Published<'d> {
        let groups: HashSet<&str> = defs.groups.iter().map(|g| g.def.name.as_str()).collect();
        let mut apis = HashMap::new();
        for a in &defs.apis {
            if !groups.contains(a.def.group.as_str()) {
                continue;
            }
            let envs = a
                .def
                .publish
                .iter()
                .filter(|e| stages.contains(e))
                .map(String::as_str)
                .collect();
            apis.entry((a.def.group.as_str(), a.def.name.as_str()))
                .or_insert(envs);
        }
        Published { groups, apis }
    }
}

/// How a kind of binding names its unknown group or API: apps point at
/// `authorizations[i].group` or `.api`, policies at `bindings[i]`.
#[derive(Clone, Copy)]
enum Fields {
    Split,
    Whole,
}

/// All bindings of the definitions, by `(group, api)`.
#[derive(Debug, Default)]
pub struct Bindings(HashMap<(String, String), Bound>);

impl Bindings {
    /// The API's bindings (the first API of that name takes them).
    pub fn take(&mut self, group: &str, api: &str) -> Bound {
        self.0
            .remove(&(group.to_string(), api.to_string()))
            .unwrap_or_default()
    }

    /// Calls `apply(bound, api, environment)` for every environment of every
    /// grant that names a published API; `apply` may refuse with a message.
    fn bind(
        &mut self,
        published: &Published,
        grants: &[GrantDef],
        (list, fields): (&str, Fields),
        err: &dyn Fn(&str, String) -> DefError,
        errs: &mut Vec<DefError>,
        mut apply: impl FnMut(&mut Bound, &str, &str) -> Result<(), String>,
    ) {
        for (i, g) in grants.iter().enumerate() {
            let field = format!("{list}[{i}]");
            let envs = published.apis.get(&(g.group.as_str(), g.api.as_str()));
            let unknown = match (fields, envs) {
                (_, Some(_)) => None,
                (Fields::Whole, None) => Some((
                    field.clone(),
                    format!("no API '{}' in group '{}'", g.api, g.group),
                )),
                (Fields::Split, None) if !published.groups.contains(g.group.as_str()) => Some((
                    format!("{field}.group"),
                    format!("no group named '{}'", g.group),
                )),
                (Fields::Split, None) => Some((
                    format!("{field}.api"),
                    format!("group '{}' has no API named '{}'", g.group, g.api),
                )),
            };
            if let Some((field, message)) = unknown {
                errs.push(err(&field, message));
                continue;
            }
            let envs = envs.expect("known API");
            let bound = self.0.entry((g.group.clone(), g.api.clone())).or_default();
            for (j, env) in g.environments.iter().enumerate() {
                let outcome = if envs.contains(&env.as_str()) {
                    apply(bound, &g.api, env)
                } else {
                    Err(format!("api '{}' is not published to '{env}'", g.api))
                };
                if let Err(m) = outcome {
                    errs.push(err(&format!("{field}.environments[{j}]"), m));
                }
            }
        }
    }
}

/// Resolves every binding of the definitions; errors are located at the
/// app or policy that names what does not exist.
pub fn resolve(defs: &Defs, published: &Published, errs: &mut Vec<DefError>) -> Bindings {
    let mut table = Bindings::default();
    for app in &defs.apps {
        let object = format!("app '{}'", app.def.name);
        let err = |field: &str, msg: String| DefError::new(&app.file, &object, field, msg);
        let grants = &app.def.authorizations;
        let list = ("authorizations", Fields::Split);
        table.bind(published, grants, list, &err, errs, |bound, _, env| {
            let allowed = bound.authorized.entry(env.to_string()).or_default();
            if !allowed.contains(&app.def.name) {
                allowed.push(app.def.name.clone());
                allowed.sort();
            }
            Ok(())
        });
    }
    for acl in &defs.acls {
        let object = format!("acl '{}'", acl.def.name);
        let err = |field: &str, msg: String| DefError::new(&acl.file, &object, field, msg);
        let list = ("bindings", Fields::Whole);
        table.bind(
            published,
            &acl.def.bindings,
            list,
            &err,
            errs,
            |bound, api, env| {
                // At most one policy of each type per API and environment
                // (Huawei user guide §5.4.1).
                let bound = bound.acls.entry(env.to_string()).or_default();
                let same_kind = bound.iter().find(|other| {
                    defs.acls
                        .iter()
                        .any(|d| &d.def.name == *other && d.def.kind == acl.def.kind)
                });
                if let Some(other) = same_kind {
                    return Err(format!(
                        "api '{api}' already has acl '{other}' of this type in '{env}'"
                    ));
                }
                bound.push(acl.def.name.clone());
                Ok(())
            },
        );
    }
    for t in &defs.throttles {
        let object = format!("throttle '{}'", t.def.name);
        let err = |field: &str, msg: String| DefError::new(&t.file, &object, field, msg);
        let list = ("bindings", Fields::Whole);
        table.bind(
            published,
            &t.def.bindings,
            list,
            &err,
            errs,
            |bound, api, env| {
                if let Some(other) = bound.throttles.get(env) {
                    return Err(format!(
                        "api '{api}' already has throttle '{other}' in '{env}'"
                    ));
                }
                bound.throttles.insert(env.to_string(), t.def.name.clone());
                Ok(())
            },
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: &str = r#"
environments:
  - name: TEST
groups:
  - name: shop
apis:
  - name: items
    group: shop
    method: GET
    path: /items
    backend: { mock: { body: "ok" } }
    publish: [RELEASE]
apps:
  - name: web
    key: web-key-0001
    secret: web-secret-0001
    authorizations:
      - { group: shop, api: items, environments: [RELEASE, TEST] }
      - { group: shop, api: nope, environments: [RELEASE] }
      - { group: mall, api: items, environments: [RELEASE] }
acls:
  - name: office
    type: ip
    action: allow
    values: ["10.0.0.0/8"]
    bindings:
      - { group: shop, api: items, environments: [RELEASE] }
      - { group: mall, api: items, environments: [RELEASE] }
throttles:
  - name: std
    api_limit: 10
    interval: 1
    unit: second
    bindings:
      - { group: shop, api: items, environments: [RELEASE] }
  - name: other
    api_limit: 10
    interval: 1
    unit: second
    bindings:
      - { group: shop, api: items, environments: [RELEASE] }
"#;

    #[test]
    fn one_resolver_binds_apps_acls_and_throttles_and_locates_what_it_cannot() {
        let dir = std::env::temp_dir().join(format!("pylon-bindings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("defs.yaml"), DEFS).unwrap();
        let defs = crate::defs::load(std::slice::from_ref(&dir)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let stages = vec!["RELEASE".to_string(), "TEST".to_string()];
        let mut errs = Vec::new();
        let mut table = resolve(&defs, &Published::new(&defs, &stages), &mut errs);

        let bound = table.take("shop", "items");
        assert_eq!(bound.authorized["RELEASE"], ["web"]);
        assert!(
            !bound.authorized.contains_key("TEST"),
            "not published there"
        );
        assert_eq!(bound.acls["RELEASE"], ["office"]);
        assert_eq!(bound.throttles["RELEASE"], "std", "the first binding wins");
        assert!(table.take("shop", "items").acls.is_empty(), "taken once");

        let said: Vec<String> = errs
            .iter()
            .map(|e| format!("{}.{}: {}", e.object, e.field, e.message))
            .collect();
        for want in [
            "app 'web'.authorizations[0].environments[1]: api 'items' is not published to 'TEST'",
            "app 'web'.authorizations[1].api: group 'shop' has no API named 'nope'",
            "app 'web'.authorizations[2].group: no group named 'mall'",
            "acl 'office'.bindings[1]: no API 'items' in group 'mall'",
            "throttle 'other'.bindings[0].environments[0]: api 'items' already has throttle 'std' in 'RELEASE'",
        ] {
            assert!(said.iter().any(|s| s == want), "no `{want}` in {said:#?}");
        }
        assert_eq!(said.len(), 5, "{said:#?}");
    }
}
