//! Throttling policies: the Huawei user guide's ordering rules between limits, special
//! apps and tenants (their bindings, one policy per API and environment, are
//! resolved in `bindings.rs`).

use std::collections::HashSet;

use pylon_filter::plan::ThrottlePlan;

use crate::defs::{Defs, TimeUnit};
use crate::error::DefError;

pub fn lower_throttles(defs: &Defs, errs: &mut Vec<DefError>) -> Vec<ThrottlePlan> {
    let mut names = HashSet::new();
    let app_names: HashSet<&str> = defs.apps.iter().map(|a| a.def.name.as_str()).collect();
    let account_names: HashSet<&str> = defs.accounts.iter().map(|a| a.def.name.as_str()).collect();
    let mut plans = Vec::new();
    for t in &defs.throttles {
        let d = &t.def;
        let object = format!("throttle '{}'", d.name);
        let err = |field: &str, msg: String| DefError::new(&t.file, &object, field, msg);
        if !crate::names::valid_name(&d.name) {
            errs.push(err(
                "name",
                "must be 1-64 letters, digits, `-` or `_`".into(),
            ));
        } else if !names.insert(d.name.as_str()) {
            errs.push(err("name", "another throttle has this name".into()));
        }
        if d.interval == 0 {
            errs.push(err("interval", "must be at least 1".into()));
        }
        if d.api_limit == 0 {
            errs.push(err("api_limit", "must be at least 1".into()));
        }
        // Seed: user ≤ API, app ≤ user (≤ API without a user limit), IP ≤ API.
        let over = |field: &str, value: Option<u64>, cap: u64, cap_name: &str| {
            value
                .filter(|v| *v > cap)
                .map(|v| err(field, format!("{v} exceeds {cap_name} {cap}")))
        };
        errs.extend(over("user_limit", d.user_limit, d.api_limit, "api_limit"));
        errs.extend(over(
            "app_limit",
            d.app_limit,
            d.user_limit.unwrap_or(d.api_limit),
            if d.user_limit.is_some() {
                "user_limit"
            } else {
                "api_limit"
            },
        ));
        errs.extend(over("ip_limit", d.ip_limit, d.api_limit, "api_limit"));
        // Huawei user guide §5.3.3: a special threshold is a positive integer.
        let zero = |field: String, limit: u64| {
            (limit == 0).then(|| err(&field, "must be a positive integer".into()))
        };
        for (app, limit) in &d.special_apps {
            errs.extend(zero(format!("special_apps.{app}"), *limit));
            errs.extend(over(
                &format!("special_apps.{app}"),
                Some(*limit),
                d.api_limit,
                "api_limit",
            ));
            if !app_names.contains(app.as_str()) {
                errs.push(err(
                    &format!("special_apps.{app}"),
                    format!("no app named '{app}'"),
                ));
            }
        }
        for (user, limit) in &d.special_users {
            errs.extend(zero(format!("special_users.{user}"), *limit));
            errs.extend(over(
                &format!("special_users.{user}"),
                Some(*limit),
                d.api_limit,
                "api_limit",
            ));
            if !account_names.contains(user.as_str()) {
                errs.push(err(
                    &format!("special_users.{user}"),
                    format!("no account named '{user}'"),
                ));
            }
        }
        let (unit_ms, unit) = match d.unit {
            TimeUnit::Second => (1_000, "second"),
            TimeUnit::Minute => (60_000, "minute"),
            TimeUnit::Hour => (3_600_000, "hour"),
            TimeUnit::Day => (86_400_000, "day"),
        };
        plans.push(ThrottlePlan {
            name: d.name.clone(),
            window_ms: unit_ms * d.interval.max(1),
            label: format!("{} {unit}", d.interval),
            api_limit: d.api_limit,
            user_limit: d.user_limit,
            app_limit: d.app_limit,
            ip_limit: d.ip_limit,
            shared: d.shared,
            special_apps: d.special_apps.clone(),
            special_users: d.special_users.clone(),
        });
    }
    plans
}
