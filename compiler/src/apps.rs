//! Apps: names, AppKeys, secrets resolved at compile time.

use std::collections::HashMap;
use std::path::Path;

use pylon_filter::plan::{AccountPlan, AppPlan};

use crate::defs::{Defs, SecretDef};
use crate::error::DefError;
use crate::names::{app_id, valid_name, valid_token};

/// Checks the apps and reads their secrets (their authorizations are
/// resolved in `bindings.rs`).
pub fn lower_apps(defs: &Defs, errs: &mut Vec<DefError>) -> Vec<AppPlan> {
    let mut names: HashMap<&str, ()> = HashMap::new();
    let mut keys: HashMap<&str, &str> = HashMap::new();
    let mut apps = Vec::new();
    let mut all_codes = std::collections::HashSet::new();
    for app in &defs.apps {
        let object = format!("app '{}'", app.def.name);
        let err = |field: &str, msg: String| DefError::new(&app.file, &object, field, msg);
        if !valid_name(&app.def.name) {
            errs.push(err(
                "name",
                "must be 1-64 letters, digits, `-` or `_`".into(),
            ));
        }
        if names.insert(&app.def.name, ()).is_some() {
            errs.push(err("name", "another app has this name".into()));
        }
        if !valid_token(&app.def.key, 8, 64) {
            errs.push(err(
                "key",
                "AppKey must be 8-64 letters, digits, `-` or `_`".into(),
            ));
        } else if let Some(other) = keys.insert(&app.def.key, &app.def.name) {
            errs.push(err(
                "key",
                format!("app '{other}' already uses this AppKey"),
            ));
        }
        let secret = match checked_secret(&app.file, &app.def.secret, "AppSecret", 8, 64) {
            Ok(s) => s,
            Err(m) => {
                errs.push(err("secret", m));
                continue;
            }
        };
        if app.def.codes.len() > 5 {
            errs.push(err("codes", "an app has at most 5 AppCodes".into()));
        }
        let mut resolved = Vec::new();
        for (i, code) in app.def.codes.iter().enumerate() {
            let field = format!("codes[{i}]");
            match checked_secret(&app.file, code, "AppCode", 16, 180) {
                Ok(c) if all_codes.insert(c.clone()) => resolved.push(c),
                Ok(_) => errs.push(err(&field, "this AppCode is already used".into())),
                Err(m) => errs.push(err(&field, m)),
            }
        }
        apps.push(AppPlan {
            id: app_id(&app.def.name),
            name: app.def.name.clone(),
            key: app.def.key.clone(),
            secret,
            codes: resolved,
        });
    }
    apps
}

/// Checks the accounts and reads their secret keys.
pub fn lower_accounts(defs: &Defs, errs: &mut Vec<DefError>) -> Vec<AccountPlan> {
    let mut seen_names = std::collections::HashSet::new();
    let mut seen_aks = std::collections::HashSet::new();
    let mut accounts = Vec::new();
    for acc in &defs.accounts {
        let object = format!("account '{}'", acc.def.name);
        let err = |field: &str, msg: &str| DefError::new(&acc.file, &object, field, msg);
        if !valid_name(&acc.def.name) {
            errs.push(err("name", "must be 1-64 letters, digits, `-` or `_`"));
        } else if !seen_names.insert(acc.def.name.as_str()) {
            errs.push(err("name", "another account has this name"));
        }
        if !valid_token(&acc.def.ak, 8, 64) {
            errs.push(err("ak", "AK must be 8-64 letters, digits, `-` or `_`"));
        } else if !seen_aks.insert(acc.def.ak.as_str()) {
            errs.push(err("ak", "another account uses this AK"));
        }
        let sk = checked_secret(&acc.file, &acc.def.sk, "SK", 8, 64);
        match sk {
            Ok(sk) => accounts.push(AccountPlan {
                id: app_id(&format!("account/{}", acc.def.name)),
                name: acc.def.name.clone(),
                ak: acc.def.ak.clone(),
                sk,
            }),
            Err(m) => errs.push(err("sk", &m)),
        }
    }
    accounts
}

/// A secret (AppSecret, SK or AppCode) read and checked: `min..=max`
/// printable characters without spaces. Errors never include the value.
fn checked_secret(
    file: &Path,
    secret: &SecretDef,
    what: &str,
    min: usize,
    max: usize,
) -> Result<String, String> {
    let value = read_secret(file, secret)?;
    if (min..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value)
    } else {
        Err(format!(
            "{what} must be {min}-{max} printable characters without spaces"
        ))
    }
}

/// A secret's value, inline or from an environment variable or a file
/// (relative to the definition file); errors never include the value.
fn read_secret(file: &Path, secret: &SecretDef) -> Result<String, String> {
    Ok(match secret {
        SecretDef::Inline(s) => s.clone(),
        SecretDef::Env { env } => {
            std::env::var(env).map_err(|_| format!("environment variable {env} is not set"))?
        }
        SecretDef::File { file: name } => {
            let path = file.parent().unwrap_or(Path::new(".")).join(name);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            text.trim_end_matches(['\n', '\r']).to_string()
        }
    })
}

/// Fresh credentials for `pylon app new`: 32 hex digits of AppKey and 64 of
/// AppSecret, from the operating system's random source.
pub fn new_credentials() -> std::io::Result<(String, String)> {
    use std::io::Read;
    let mut bytes = [0u8; 48];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    Ok((hex(&bytes[..16]), hex(&bytes[16..])))
}
