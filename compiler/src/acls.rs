//! Access control policies: entries checked (their bindings are resolved
//! in `bindings.rs`).

use std::collections::HashSet;

use pylon_filter::acl::{IpRange, MAX_ENTRIES};
use pylon_filter::plan::{AclKind, AclPlan};

use crate::defs::Defs;
use crate::error::DefError;

pub fn lower_acls(defs: &Defs, errs: &mut Vec<DefError>) -> Vec<AclPlan> {
    let mut names = HashSet::new();
    let mut plans = Vec::new();
    for acl in &defs.acls {
        let object = format!("acl '{}'", acl.def.name);
        let err = |field: &str, msg: String| DefError::new(&acl.file, &object, field, msg);
        if !crate::names::valid_name(&acl.def.name) {
            errs.push(err(
                "name",
                "must be 1-64 letters, digits, `-` or `_`".into(),
            ));
        } else if !names.insert(acl.def.name.as_str()) {
            errs.push(err("name", "another acl has this name".into()));
        }
        if acl.def.values.is_empty() || acl.def.values.len() > MAX_ENTRIES {
            errs.push(err("values", format!("give 1-{MAX_ENTRIES} entries")));
        }
        for (i, v) in acl.def.values.iter().enumerate() {
            let field = format!("values[{i}]");
            match acl.def.kind {
                AclKind::Ip => {
                    if let Err(m) = IpRange::parse(v) {
                        errs.push(err(&field, m));
                    }
                }
                AclKind::Account if !crate::names::valid_name(v) => {
                    errs.push(err(&field, format!("`{v}` is not an account name")));
                }
                AclKind::Account => {}
            }
        }
        plans.push(AclPlan {
            name: acl.def.name.clone(),
            kind: acl.def.kind,
            action: acl.def.action,
            values: acl.def.values.clone(),
        });
    }
    plans
}
