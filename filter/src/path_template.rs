//! API request path templates: `/users/{id}/files/{rest+}`.
//!
//! Seed rules: `{}` names a whole segment (never part of one); a trailing
//! `{name+}` matches one or more segments and is allowed in exact mode only;
//! paths are case-sensitive. Prefix-mode templates match whole segments, so a
//! trailing `/` on them is cosmetic and dropped.

use crate::plan::MatchMode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: one or more trailing segments.
    Greedy(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    pub segments: Vec<Segment>,
}

impl PathTemplate {
    pub fn parse(path: &str, mode: MatchMode) -> Result<PathTemplate, String> {
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| format!("path `{path}` must start with `/`"))?;
        if path.len() > 512 {
            return Err("path is longer than 512 characters".into());
        }
        if path.contains(['?', '#', ' ']) {
            return Err(format!("path `{path}` may not contain `?`, `#` or spaces"));
        }
        let rest = match mode {
            MatchMode::Prefix => rest.strip_suffix('/').unwrap_or(rest),
            MatchMode::Exact => rest,
        };
        let mut segments = Vec::new();
        if rest.is_empty() {
            return Ok(PathTemplate { segments });
        }
        let raw: Vec<&str> = rest.split('/').collect();
        let mut seen = Vec::new();
        for (i, seg) in raw.iter().enumerate() {
            let parsed = parse_segment(seg).map_err(|e| format!("path `{path}`: {e}"))?;
            if let Segment::Param(name) | Segment::Greedy(name) = &parsed {
                if seen.contains(name) {
                    return Err(format!("path `{path}`: parameter `{name}` appears twice"));
                }
                seen.push(name.clone());
            }
            if let Segment::Greedy(name) = &parsed {
                if i + 1 != raw.len() {
                    return Err(format!(
                        "path `{path}`: `{{{name}+}}` must be the last segment"
                    ));
                }
                if mode == MatchMode::Prefix {
                    return Err(format!(
                        "path `{path}`: `{{{name}+}}` is only allowed with exact matching"
                    ));
                }
            }
            if let Segment::Literal(lit) = &parsed {
                if lit.is_empty() && i + 1 != raw.len() {
                    return Err(format!("path `{path}` has an empty segment (`//`)"));
                }
            }
            segments.push(parsed);
        }
        Ok(PathTemplate { segments })
    }

    /// All path parameters in order: `(name, greedy)`, greedy for `{name+}`.
    pub fn params_with_greedy(&self) -> Vec<(&str, bool)> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param(n) => Some((n.as_str(), false)),
                Segment::Greedy(n) => Some((n.as_str(), true)),
                Segment::Literal(_) => None,
            })
            .collect()
    }

    /// Names of all path parameters, in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(n) | Segment::Greedy(n) => Some(n.as_str()),
            Segment::Literal(_) => None,
        })
    }
}

fn parse_segment(seg: &str) -> Result<Segment, String> {
    if !seg.contains(['{', '}']) {
        return Ok(Segment::Literal(seg.to_string()));
    }
    let inner = seg
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| {
            format!("segment `{seg}`: a parameter must be a whole segment, like `{{id}}`")
        })?;
    let (name, greedy) = match inner.strip_suffix('+') {
        Some(n) => (n, true),
        None => (inner, false),
    };
    check_param_name(name).map_err(|e| format!("segment `{seg}`: {e}"))?;
    Ok(if greedy {
        Segment::Greedy(name.to_string())
    } else {
        Segment::Param(name.to_string())
    })
}

/// Seed: parameter names are 1–32 characters, start with a letter, then
/// letters, digits, `-`, `_` or `.`.
pub fn check_param_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok_first || !ok_rest || name.len() > 32 {
        return Err(format!(
            "parameter name `{name}` must be 1-32 letters, digits, `-`, `_` or `.`, starting with a letter"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, m: MatchMode) -> Result<Vec<Segment>, String> {
        PathTemplate::parse(s, m).map(|t| t.segments)
    }

    #[test]
    fn parses_literals_params_and_greedy() {
        assert_eq!(
            p("/users/{id}/files/{rest+}", MatchMode::Exact).unwrap(),
            vec![
                Segment::Literal("users".into()),
                Segment::Param("id".into()),
                Segment::Literal("files".into()),
                Segment::Greedy("rest".into()),
            ]
        );
        assert_eq!(p("/", MatchMode::Exact).unwrap(), vec![]);
    }

    #[test]
    fn prefix_trailing_slash_is_dropped_exact_keeps_it() {
        assert_eq!(
            p("/test/", MatchMode::Prefix).unwrap(),
            vec![Segment::Literal("test".into())]
        );
        assert_eq!(
            p("/test/", MatchMode::Exact).unwrap(),
            vec![Segment::Literal("test".into()), Segment::Literal("".into())]
        );
    }

    #[test]
    fn rejects_bad_templates() {
        for bad in [
            "users",
            "/abc{id}",
            "/{id}x",
            "/{p+}/more",
            "/{1d}",
            "/{a}/{a}",
            "/a//b",
            "/a?b",
        ] {
            assert!(p(bad, MatchMode::Exact).is_err(), "{bad} accepted");
        }
        assert!(p("/a/{p+}", MatchMode::Prefix).is_err());
    }
}
