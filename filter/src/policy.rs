//! Policy backends' conditions (Huawei user guide table 5-10): which request a policy
//! backend takes. Policies are tried in order and the first that holds wins
//! (§8.3.15); the API's backend takes the rest.

use std::borrow::Cow;
use std::net::IpAddr;

use regex_lite::Regex;

use crate::acl::IpRange;
use crate::plan::{ConditionOn, ConditionPlan, ConditionTest, Effect};

/// Seed: at most 5 policy backends per API, 5 conditions each.
pub const MAX_POLICIES: usize = 5;
pub const MAX_CONDITIONS: usize = 5;

#[derive(Debug)]
pub struct Conditions {
    effect: Effect,
    conditions: Vec<Condition>,
}

#[derive(Debug)]
enum Condition {
    Source(Vec<IpRange>),
    /// Index of a declared request parameter.
    Param(usize, Test),
    ReqPath(Test),
    ReqMethod(Test),
}

#[derive(Debug)]
enum Test {
    Equal(String),
    Enum(Vec<String>),
    Pattern(Regex),
}

impl Test {
    fn compile(test: Option<ConditionTest>, values: &[String]) -> Result<Test, String> {
        let one = || match values {
            [v] => Ok(v.clone()),
            _ => Err(format!("takes one value, not {}", values.len())),
        };
        Ok(match test {
            Some(ConditionTest::Equal) => Test::Equal(one()?),
            Some(ConditionTest::Enum) if !values.is_empty() => Test::Enum(values.to_vec()),
            Some(ConditionTest::Enum) => return Err("enum needs at least one value".into()),
            // The whole value must be one the expression matches (Huawei
            // user guide §5.2.1, policy backend conditions: `[0-5]` is a
            // range of values, so `35` does not match it).
            Some(ConditionTest::Pattern) => Test::Pattern(
                Regex::new(&format!("^(?:{})$", one()?))
                    .map_err(|e| format!("bad pattern: {e}"))?,
            ),
            None => return Err("needs a condition type (equal, enum or pattern)".into()),
        })
    }

    fn holds(&self, v: &str) -> bool {
        match self {
            Test::Equal(want) => v == want,
            Test::Enum(any) => any.iter().any(|a| a == v),
            Test::Pattern(re) => re.is_match(v),
        }
    }
}

/// What conditions look at, for one request.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a, 'v> {
    /// Declared parameters' values, by index (default applied).
    pub values: &'a [Option<Cow<'v, str>>],
    pub source_ip: Option<IpAddr>,
    /// The request path without the query.
    pub path: &'a str,
    pub method: &'a str,
}

impl Conditions {
    /// `param_index` resolves a declared parameter's name to its index.
    pub fn compile(
        effect: Effect,
        plans: &[ConditionPlan],
        param_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Conditions, String> {
        if plans.is_empty() || plans.len() > MAX_CONDITIONS {
            return Err(format!("needs 1-{MAX_CONDITIONS} conditions"));
        }
        let conditions = plans
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let at = |e: String| format!("condition {}: {e}", i + 1);
                Ok(match &c.on {
                    ConditionOn::Source => Condition::Source(
                        c.values
                            .iter()
                            .map(|v| IpRange::parse(v))
                            .collect::<Result<_, _>>()
                            .map_err(at)?,
                    ),
                    ConditionOn::Param(name) => Condition::Param(
                        param_index(name)
                            .ok_or_else(|| at(format!("`{name}` is not a declared parameter")))?,
                        Test::compile(c.test, &c.values).map_err(at)?,
                    ),
                    ConditionOn::ReqPath => {
                        Condition::ReqPath(Test::compile(c.test, &c.values).map_err(at)?)
                    }
                    ConditionOn::ReqMethod => {
                        if c.test == Some(ConditionTest::Pattern) {
                            return Err(at("reqMethod takes equal or enum only".into()));
                        }
                        Condition::ReqMethod(Test::compile(c.test, &c.values).map_err(at)?)
                    }
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Conditions { effect, conditions })
    }

    /// Whether any condition reads the client address.
    pub fn needs_source_ip(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| matches!(c, Condition::Source(_)))
    }

    pub fn hold(&self, facts: &Facts) -> bool {
        let one = |c: &Condition| match c {
            Condition::Source(ranges) => facts
                .source_ip
                .is_some_and(|ip| ranges.iter().any(|r| r.contains(ip))),
            Condition::Param(i, test) => facts
                .values
                .get(*i)
                .and_then(|v| v.as_deref())
                .is_some_and(|v| test.holds(v)),
            Condition::ReqPath(test) => test.holds(facts.path),
            Condition::ReqMethod(test) => test.holds(facts.method),
        };
        match self.effect {
            Effect::Any => self.conditions.iter().any(one),
            Effect::All => self.conditions.iter().all(one),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(on: ConditionOn, test: Option<ConditionTest>, values: &[&str]) -> ConditionPlan {
        ConditionPlan {
            on,
            test,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn facts<'a>(values: &'a [Option<Cow<'a, str>>], ip: &str, path: &'a str) -> Facts<'a, 'a> {
        Facts {
            values,
            source_ip: ip.parse().ok(),
            path,
            method: "GET",
        }
    }

    #[test]
    fn each_condition_type_and_effect() {
        let index = |n: &str| (n == "tier").then_some(0);
        let plans = [
            cond(ConditionOn::Source, None, &["10.0.0.0/8", "192.0.2.7"]),
            cond(
                ConditionOn::Param("tier".into()),
                Some(ConditionTest::Enum),
                &["gold", "vip"],
            ),
            cond(
                ConditionOn::ReqPath,
                Some(ConditionTest::Pattern),
                &["/v1/.*"],
            ),
            cond(ConditionOn::ReqMethod, Some(ConditionTest::Equal), &["GET"]),
        ];
        let any = Conditions::compile(Effect::Any, &plans[..2], index).unwrap();
        let all = Conditions::compile(Effect::All, &plans, index).unwrap();
        let vip = [Some(Cow::Borrowed("vip"))];
        let none = [None];
        assert!(any.hold(&facts(&none, "10.1.2.3", "/x")));
        assert!(any.hold(&facts(&vip, "203.0.113.1", "/x")));
        assert!(!any.hold(&facts(&none, "203.0.113.1", "/x")));
        assert!(all.hold(&facts(&vip, "192.0.2.7", "/v1/a")));
        assert!(!all.hold(&facts(&vip, "192.0.2.7", "/v2/a")));
        assert!(!all.hold(&facts(&vip, "192.0.2.8", "/v1/a")));
        assert!(any.needs_source_ip());
    }

    #[test]
    fn a_pattern_must_match_the_whole_value() {
        let index = |n: &str| (n == "n").then_some(0);
        let plan = [cond(
            ConditionOn::Param("n".into()),
            Some(ConditionTest::Pattern),
            &["[0-5]"],
        )];
        let c = Conditions::compile(Effect::Any, &plan, index).unwrap();
        let holds = |v: &'static str| c.hold(&facts(&[Some(Cow::Borrowed(v))], "", "/"));
        assert!(holds("3"));
        assert!(!holds("35") && !holds("a3") && !holds(""));
        // Alternatives are anchored as a whole, not just the first and last.
        let plan = [cond(
            ConditionOn::Param("n".into()),
            Some(ConditionTest::Pattern),
            &["a|b"],
        )];
        let c = Conditions::compile(Effect::Any, &plan, index).unwrap();
        let holds = |v: &'static str| c.hold(&facts(&[Some(Cow::Borrowed(v))], "", "/"));
        assert!(holds("a") && holds("b") && !holds("ab") && !holds("xb"));
    }

    #[test]
    fn refuses_bad_conditions() {
        let index = |_: &str| None;
        let bad = [
            cond(
                ConditionOn::Param("x".into()),
                Some(ConditionTest::Equal),
                &["a"],
            ),
            cond(
                ConditionOn::ReqMethod,
                Some(ConditionTest::Pattern),
                &["G.*"],
            ),
            cond(ConditionOn::ReqPath, Some(ConditionTest::Pattern), &["("]),
            cond(
                ConditionOn::ReqPath,
                Some(ConditionTest::Equal),
                &["a", "b"],
            ),
            cond(ConditionOn::ReqPath, None, &["a"]),
            cond(ConditionOn::Source, None, &["not-an-ip"]),
        ];
        for c in bad {
            assert!(
                Conditions::compile(Effect::Any, std::slice::from_ref(&c), index).is_err(),
                "{c:?}"
            );
        }
        assert!(Conditions::compile(Effect::Any, &[], index).is_err());
    }
}
