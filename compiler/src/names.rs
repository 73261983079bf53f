//! Every naming rule of the definitions in one place: what a group, API,
//! environment, variable, app, account, policy or header may be called, and
//! the stable ids derived from names. (Envoy resource names — clusters,
//! virtual hosts — are the emitter's: `emit/`.)

use pylon_filter::plan::Location;
use sha2::{Digest, Sha256};

/// A stable 32-hex-digit API id, like the products' ids.
pub fn api_id(group: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{group}/{name}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Group and API names: 1-64 letters, digits, `-` and `_`, starting with a letter.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name `{name}` must be 1-64 letters, digits, `-` or `_`, starting with a letter"
        ))
    }
}

/// Huawei user guide §5.5.1: environment names are 3-64 letters, digits and `_`, starting with a letter.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && (3..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "environment name `{name}` must be 3-64 letters, digits or `_`, starting with a letter"
        ))
    }
}

/// Huawei user guide §5.5.1: variable names are 3-32 letters, digits, `-` and `_`, starting with a letter.
pub fn check_var_name(name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && (3..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "variable name `{name}` must be 3-32 letters, digits, `-` or `_`, starting with a letter"
        ))
    }
}

pub fn check_domain(d: &str) -> Result<(), String> {
    let host = d.strip_prefix("*.").unwrap_or(d);
    let ok = !host.is_empty()
        && host.len() <= 255
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{d}` is not a domain name or a `*.domain` wildcard"
        ))
    }
}

pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !name_ok {
        return Err(format!("`{name}` is not a valid header name"));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err("header value may not contain line breaks".into());
    }
    Ok(())
}

/// Parameter names (Huawei user guide §5.2.1, table 5-6), shared by request
/// and backend parameters.
pub fn check_param_name(name: &str, location: Location) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(format!(
            "name `{name}` must be 1-32 letters, digits, `-`, `_` or `.`, starting with a letter"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("x-apig-") || lower.starts_with("x-sdk-") || lower == "x-stage" {
        return Err(format!(
            "`{name}`: names starting with x-apig- or x-sdk-, and x-stage, belong to the gateway"
        ));
    }
    if location == Location::Header && name.contains('_') {
        return Err(format!("header parameter `{name}` may not contain `_`"));
    }
    Ok(())
}

/// App names: 1-64 letters, digits, `-` or `_`.
pub fn valid_name(name: &str) -> bool {
    valid_token(name, 1, 64)
}

pub fn valid_token(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A stable 32-hex-digit app id (`$context.appId`).
pub fn app_id(name: &str) -> String {
    let digest = Sha256::digest(format!("app/{name}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_ids_are_stable_hex() {
        let id = api_id("shop", "get-item");
        assert_eq!(id.len(), 32);
        assert_eq!(id, api_id("shop", "get-item"));
        assert_ne!(id, api_id("shop", "get-items"));
    }
}
