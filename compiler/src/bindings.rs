//! Policy bindings: the API a binding names and the environments it is
//! published to, with located errors for the rest.

use pylon_filter::plan::{ApiPlan, GroupPlan};

use crate::defs::GrantDef;
use crate::error::DefError;

/// Calls `apply(api, environment)` for every environment of every binding
/// that names a published API; `apply` may refuse with a message.
pub fn bind(
    bindings: &[GrantDef],
    groups: &mut [GroupPlan],
    err: &dyn Fn(&str, String) -> DefError,
    errs: &mut Vec<DefError>,
    mut apply: impl FnMut(&mut ApiPlan, &str) -> Result<(), String>,
) {
    for (i, b) in bindings.iter().enumerate() {
        let field = format!("bindings[{i}]");
        let Some(api) = groups
            .iter_mut()
            .find(|g| g.name == b.group)
            .and_then(|g| g.apis.iter_mut().find(|a| a.name == b.api))
        else {
            errs.push(err(
                &field,
                format!("no API '{}' in group '{}'", b.api, b.group),
            ));
            continue;
        };
        for (j, env) in b.environments.iter().enumerate() {
            let env_field = format!("{field}.environments[{j}]");
            let outcome = if api.stages.contains_key(env) {
                apply(api, env)
            } else {
                Err(format!("api '{}' is not published to '{env}'", b.api))
            };
            if let Err(m) = outcome {
                errs.push(err(&env_field, m));
            }
        }
    }
}
