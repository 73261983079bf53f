//! Declared request parameters (the Huawei user guide's 入参定义): where each is read
//! from, and what a valid value is. Values are decoded once here; where
//! they go next is `mapping`'s business.

use std::borrow::Cow;

use regex_lite::Regex;

use crate::percent;
use crate::plan::{Location, ParamPlan, ParamType};
use crate::request_head::RequestHead;

/// No parameter value the gateway reads may be longer than this (bytes,
/// decoded), declared limit or not.
pub const MAX_VALUE_BYTES: usize = 4096;

#[derive(Debug)]
pub struct Param {
    /// As declared; lower-case for headers (header names are caseless).
    pub name: String,
    pub location: Location,
    /// For path parameters: the position among the request path's parameters.
    pub path_index: usize,
    /// A `{name+}` path parameter (several segments).
    pub greedy: bool,
    kind: ParamType,
    required: bool,
    default: Option<String>,
    min_length: Option<u32>,
    max_length: Option<u32>,
    min: Option<f64>,
    max: Option<f64>,
    allowed: Vec<String>,
    pattern: Option<Regex>,
}

/// The request's query string, split once into raw pairs.
#[derive(Debug, Default)]
pub struct Query<'a> {
    /// As received, without the `?`.
    pub raw: &'a str,
    /// `(raw pair, raw key, raw value)`; `a` and `a=` both have value "".
    pub pairs: Vec<(&'a str, &'a str, &'a str)>,
}

impl<'a> Query<'a> {
    /// `query` without its leading `?`.
    pub fn parse(query: &'a str) -> Query<'a> {
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (p, k, v)
            })
            .collect();
        Query { raw: query, pairs }
    }

    /// Whether a raw key is `name` once decoded.
    pub fn key_is(raw: &str, name: &str) -> bool {
        raw == name || percent::decode_query(raw).is_some_and(|k| k == name)
    }

    /// The first raw value under `name` (a repeated key gives its first).
    fn first(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(_, k, _)| Query::key_is(k, name))
            .map(|(_, _, v)| *v)
    }
}

/// The declared parameter a backend parameter or condition names: the one
/// of exactly that name, else a header parameter of that name in any case.
pub fn find(params: &[Param], name: &str) -> Option<usize> {
    find_by(params.iter().map(|p| (p.location, p.name.as_str())), name)
}

/// `find` over `(location, name)` pairs, for the compiler's plan types.
pub fn find_by<'a>(
    params: impl Iterator<Item = (Location, &'a str)> + Clone,
    name: &str,
) -> Option<usize> {
    params.clone().position(|(_, n)| n == name).or_else(|| {
        params
            .into_iter()
            .position(|(l, n)| l == Location::Header && n.eq_ignore_ascii_case(name))
    })
}

/// A parameter the request does not satisfy; the message names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

/// Decoded values, by declared parameter; `None` = absent (and no default).
pub type Values<'a> = Vec<Option<Cow<'a, str>>>;

impl Param {
    /// `path_params` are the request path's parameter names in order.
    pub fn compile(p: &ParamPlan, path_params: &[(&str, bool)]) -> Result<Param, String> {
        let at = |m: String| format!("parameter {}: {m}", p.name);
        let (path_index, greedy) = match p.location {
            Location::Path => path_params
                .iter()
                .enumerate()
                .find(|(_, (n, _))| *n == p.name)
                .map(|(i, (_, g))| (i, *g))
                .ok_or_else(|| at("not in the request path".into()))?,
            _ => (0, false),
        };
        let pattern = p
            .pattern
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| at(format!("bad pattern: {e}")))?;
        let name = match p.location {
            Location::Header => p.name.to_ascii_lowercase(),
            _ => p.name.clone(),
        };
        let param = Param {
            name,
            location: p.location,
            path_index,
            greedy,
            kind: p.kind,
            // A path parameter is there whenever the path matched.
            required: p.required || p.location == Location::Path,
            default: p.default.clone(),
            min_length: p.min_length,
            max_length: p.max_length,
            min: p.min,
            max: p.max,
            allowed: p.allowed.clone(),
            pattern,
        };
        if let Some(d) = &param.default {
            param.check(d).map_err(|e| at(format!("default {}", e.0)))?;
        }
        Ok(param)
    }

    /// A path parameter nobody declared: any one segment (or more, `+`).
    pub fn implicit(name: &str, path_index: usize, greedy: bool) -> Param {
        let plain = ParamPlan::new(name, Location::Path);
        let mut p = Param::compile(&plain, &[(name, greedy)]).expect("no rules to break");
        p.path_index = path_index;
        p
    }

    /// The raw value as sent, if any.
    fn raw<'a>(
        &self,
        path: &[&'a str],
        query: &Query<'a>,
        head: &'a RequestHead,
    ) -> Option<&'a str> {
        match self.location {
            Location::Path => path.get(self.path_index).copied(),
            Location::Query => query.first(&self.name),
            Location::Header => head.get(&self.name),
        }
    }

    /// The decoded value (with the default applied), or why it is refused.
    pub fn value<'a>(
        &'a self,
        path: &[&'a str],
        query: &Query<'a>,
        head: &'a RequestHead,
    ) -> Result<Option<Cow<'a, str>>, Invalid> {
        // A header value that is not UTF-8 is not "absent" (its default
        // would stand in for it while the bytes went on): it is refused.
        if self.location == Location::Header && head.is_opaque(&self.name) {
            return Err(self.invalid("is not valid UTF-8"));
        }
        // One value is checked; the backend would get every one (and may
        // read another), so a declared parameter comes once at most.
        let repeated = match self.location {
            Location::Path => false,
            Location::Query => query
                .pairs
                .iter()
                .filter(|(_, k, _)| Query::key_is(k, &self.name))
                .nth(1)
                .is_some(),
            Location::Header => head.repeated(&self.name),
        };
        if repeated {
            return Err(self.invalid("is sent more than once"));
        }
        let Some(raw) = self.raw(path, query, head) else {
            if self.required {
                return Err(self.invalid("is required"));
            }
            return Ok(self.default.as_deref().map(Cow::Borrowed));
        };
        let decoded = match self.location {
            Location::Path => percent::decode_path(raw),
            Location::Query => percent::decode_query(raw),
            Location::Header => Some(Cow::Borrowed(raw)),
        };
        let value = decoded.ok_or_else(|| self.invalid("is not valid UTF-8 once decoded"))?;
        self.check(&value).map_err(|e| self.invalid(&e.0))?;
        Ok(Some(value))
    }

    fn invalid(&self, what: &str) -> Invalid {
        Invalid(format!(
            "parameter '{}' ({}) {what}",
            self.name,
            self.location.as_str()
        ))
    }

    fn check(&self, v: &str) -> Result<(), Invalid> {
        let fail = |m: String| Err(Invalid(m));
        if v.len() > MAX_VALUE_BYTES {
            return fail(format!("is longer than {MAX_VALUE_BYTES} bytes"));
        }
        // CR, LF, NUL and friends never belong in a value: they are how
        // headers get injected.
        if v.chars().any(char::is_control) {
            return fail("contains control characters".into());
        }
        match self.kind {
            ParamType::Number => {
                let n = parse_number(v).ok_or_else(|| Invalid("is not a number".into()))?;
                if self.min.is_some_and(|min| n < min) || self.max.is_some_and(|max| n > max) {
                    return fail(match (self.min, self.max) {
                        (Some(lo), Some(hi)) => format!("must be between {lo} and {hi}"),
                        (Some(lo), None) => format!("must be at least {lo}"),
                        (None, hi) => format!("must be at most {}", hi.unwrap_or_default()),
                    });
                }
            }
            ParamType::String => {
                let chars = v.chars().count() as u32;
                if self.min_length.is_some_and(|m| chars < m) {
                    return fail(format!(
                        "must be at least {} characters",
                        self.min_length.unwrap_or(0)
                    ));
                }
                if self.max_length.is_some_and(|m| chars > m) {
                    return fail(format!(
                        "must be at most {} characters",
                        self.max_length.unwrap_or(0)
                    ));
                }
            }
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|a| a == v) {
            return fail(format!("must be one of {}", self.allowed.join(", ")));
        }
        if self.pattern.as_ref().is_some_and(|p| !p.is_match(v)) {
            return fail("does not match the required pattern".into());
        }
        Ok(())
    }
}

/// `-12`, `3.5`, `0.25`: a plain decimal (no exponent, `inf` or `NaN`).
fn parse_number(v: &str) -> Option<f64> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if plain(int) && plain(frac) {
        v.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str, location: Location) -> ParamPlan {
        ParamPlan::new(name, location)
    }

    fn value(p: &Param, query: &str, head: &[(&str, &str)]) -> Result<Option<String>, String> {
        let head = RequestHead::from_pairs(head);
        let q = Query::parse(query);
        p.value(&["seg%20one"], &q, &head)
            .map(|v| v.map(|v| v.into_owned()))
            .map_err(|e| e.0)
    }

    #[test]
    fn reads_each_location_decoded() {
        let path = Param::compile(&plan("id", Location::Path), &[("id", false)]).unwrap();
        assert_eq!(value(&path, "", &[]).unwrap().unwrap(), "seg one");
        let q = Param::compile(&plan("q", Location::Query), &[]).unwrap();
        assert_eq!(value(&q, "x=1&q=a+b%21", &[]).unwrap().unwrap(), "a b!");
        assert_eq!(value(&q, "q", &[]).unwrap().unwrap(), "");
        assert_eq!(
            value(&q, "%71=encoded-key", &[]).unwrap().unwrap(),
            "encoded-key"
        );
        let h = Param::compile(&plan("X-Tenant", Location::Header), &[]).unwrap();
        assert_eq!(value(&h, "", &[("x-tenant", "t1")]).unwrap().unwrap(), "t1");
    }

    #[test]
    fn a_declared_parameter_comes_once() {
        // One value would be checked and the backend would get both.
        let q = Param::compile(&plan("n", Location::Query), &[]).unwrap();
        let err = value(&q, "n=3&n=999", &[]).unwrap_err();
        assert_eq!(err, "parameter 'n' (query) is sent more than once");
        assert!(value(&q, "n=3&%6E=999", &[]).is_err());
        let h = Param::compile(&plan("X-Tier", Location::Header), &[]).unwrap();
        let twice = [("x-tier", "basic"), ("x-tier", "admin")];
        assert!(value(&h, "", &twice).is_err());
    }

    #[test]
    fn required_default_and_absent() {
        let mut p = plan("q", Location::Query);
        let opt = Param::compile(&p, &[]).unwrap();
        assert_eq!(value(&opt, "", &[]).unwrap(), None);
        p.default = Some("dflt".into());
        assert_eq!(
            value(&Param::compile(&p, &[]).unwrap(), "", &[])
                .unwrap()
                .unwrap(),
            "dflt"
        );
        p.required = true;
        let err = value(&Param::compile(&p, &[]).unwrap(), "", &[]).unwrap_err();
        assert_eq!(err, "parameter 'q' (query) is required");
    }

    #[test]
    fn constraints() {
        let mut p = plan("n", Location::Query);
        p.kind = ParamType::Number;
        p.min = Some(1.0);
        p.max = Some(10.0);
        let n = Param::compile(&p, &[]).unwrap();
        assert!(value(&n, "n=5", &[]).is_ok());
        assert!(value(&n, "n=10.0", &[]).is_ok());
        assert!(value(&n, "n=11", &[])
            .unwrap_err()
            .contains("between 1 and 10"));
        for bad in ["abc", "1e3", "inf", "NaN", "", "0x1", "1."] {
            assert!(
                value(&n, &format!("n={bad}"), &[])
                    .unwrap_err()
                    .contains("not a number"),
                "{bad}"
            );
        }
        let mut p = plan("s", Location::Query);
        p.min_length = Some(2);
        p.max_length = Some(3);
        p.allowed = vec!["ab".into(), "abc".into(), "你好".into()];
        p.pattern = Some("^[a-z你好]+$".into());
        let s = Param::compile(&p, &[]).unwrap();
        assert!(value(&s, "s=ab", &[]).is_ok());
        assert!(
            value(&s, "s=%E4%BD%A0%E5%A5%BD", &[]).is_ok(),
            "length counts characters"
        );
        assert!(value(&s, "s=a", &[]).unwrap_err().contains("at least 2"));
        assert!(value(&s, "s=abcd", &[]).unwrap_err().contains("at most 3"));
        assert!(value(&s, "s=abd", &[]).unwrap_err().contains("one of"));
        let mut p = plan("s", Location::Query);
        p.pattern = Some("^[0-5]+$".into());
        let s = Param::compile(&p, &[]).unwrap();
        assert!(value(&s, "s=0125", &[]).is_ok());
        assert!(value(&s, "s=0129", &[]).unwrap_err().contains("pattern"));
    }

    #[test]
    fn refuses_injection_and_oversize() {
        let q = Param::compile(&plan("q", Location::Query), &[]).unwrap();
        for bad in ["a%0D%0AX-Evil:1", "a%0Ab", "a%00b", "%FF"] {
            assert!(value(&q, &format!("q={bad}"), &[]).is_err(), "{bad}");
        }
        let big = "a".repeat(MAX_VALUE_BYTES + 1);
        assert!(value(&q, &format!("q={big}"), &[])
            .unwrap_err()
            .contains("longer than"));
    }

    #[test]
    fn references_resolve_exactly_then_header_names_caselessly() {
        let params = [
            Param::compile(&plan("tier", Location::Query), &[]).unwrap(),
            Param::compile(&plan("Tier", Location::Query), &[]).unwrap(),
            Param::compile(&plan("X-Region", Location::Header), &[]).unwrap(),
        ];
        assert_eq!(find(&params, "Tier"), Some(1));
        assert_eq!(find(&params, "tier"), Some(0));
        assert_eq!(find(&params, "X-REGION"), Some(2));
        assert_eq!(find(&params, "TIER"), None);
    }

    #[test]
    fn compile_errors() {
        let mut p = plan("id", Location::Path);
        assert!(Param::compile(&p, &[("other", false)]).is_err());
        p = plan("q", Location::Query);
        p.pattern = Some("(".into());
        assert!(Param::compile(&p, &[]).unwrap_err().contains("bad pattern"));
        p.pattern = None;
        p.allowed = vec!["a".into()];
        p.default = Some("b".into());
        assert!(Param::compile(&p, &[]).unwrap_err().contains("default"));
    }
}
