//! The backend request (Huawei user guide §5.2.1, 后端服务参数): its path, query and
//! headers, built from the backend's parameters — request parameters moved
//! to another place or name, constants, system values — and the API's
//! request mode (what happens to parameters nobody declared).
//!
//! Values a caller controls never change the request's shape: they are
//! percent-encoded into the path and query with the Huawei user guide's rules, refused
//! in a path when they would add or climb segments, and refused anywhere
//! with control characters (`params`).

use crate::params::{Invalid, Param, Query, Values};
use crate::percent;
use crate::plan::{BackendParamPlan, Location, ParamSource, RequestMode, SystemParam};
use crate::request_head::RequestHead;

/// Headers `mapping` mode keeps although nobody declares them: the
/// request's framing, content negotiation, and what Envoy and the gateway
/// add themselves.
const PROTOCOL_HEADERS: [&str; 17] = [
    "host",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "expect",
    "te",
    "connection",
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-charset",
    "user-agent",
    "origin",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
];

fn is_protocol_header(name: &str) -> bool {
    name.starts_with(':')
        || name.starts_with("x-envoy-")
        || name.starts_with("x-pylon-")
        || PROTOCOL_HEADERS.contains(&name)
}

#[derive(Debug)]
enum Source {
    /// Index of a declared request parameter.
    Request(usize),
    /// Already encoded for where it goes.
    Constant(String),
    System(SystemParam),
}

#[derive(Debug)]
enum PathPart {
    Text(String),
    Value(Source),
}

/// One backend's parameters, compiled.
#[derive(Debug)]
pub struct Mapping {
    mode: RequestMode,
    path: Vec<PathPart>,
    /// `(encoded name, source)`.
    query: Vec<(String, Source)>,
    /// `(lower-case name, source)`.
    headers: Vec<(String, Source)>,
    /// Per declared parameter: taken from where the caller put it.
    moved: Vec<bool>,
}

/// What the gateway knows about the call, for system parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct System<'a> {
    pub source_ip: &'a str,
    pub stage: &'a str,
    pub api_id: &'a str,
    pub app_id: Option<&'a str>,
    pub request_id: &'a str,
    pub account: Option<&'a str>,
    /// `http` or `https`, of the client's connection.
    pub protocol: &'a str,
    /// The host the client named, port removed.
    pub domain: &'a str,
}

impl System<'_> {
    fn get(&self, p: SystemParam) -> Option<&str> {
        match p {
            SystemParam::SourceIp => Some(self.source_ip),
            SystemParam::Stage => Some(self.stage),
            SystemParam::ApiId => Some(self.api_id),
            SystemParam::AppId => self.app_id,
            SystemParam::RequestId => Some(self.request_id),
            SystemParam::Account => self.account,
            SystemParam::Protocol => Some(self.protocol),
            SystemParam::Domain => Some(self.domain),
        }
    }
}

/// The request as it goes to the backend. Header changes apply in order;
/// `None` removes.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub path: String,
    pub headers: Vec<(String, Option<String>)>,
}

/// What one request offers the mapping.
#[derive(Debug)]
pub struct Incoming<'a, 'v> {
    /// Declared parameters' values (default applied), by index.
    pub values: &'a Values<'v>,
    /// The request path's parameters, raw, in order.
    pub path_params: &'a [&'a str],
    /// What a prefix match left over, appended to the backend path.
    pub remainder: &'a str,
    pub query: &'a Query<'a>,
    pub head: &'a RequestHead,
}

impl Mapping {
    pub fn compile(
        backend_path: &str,
        params: &[BackendParamPlan],
        declared: &[Param],
        mode: RequestMode,
    ) -> Result<Mapping, String> {
        let mut moved = vec![false; declared.len()];
        let mut source = |p: &BackendParamPlan| -> Result<Source, String> {
            Ok(match &p.value {
                ParamSource::Request(from) => {
                    let i = crate::params::find(declared, from).ok_or_else(|| {
                        format!(
                            "backend parameter {}: `{from}` is not a declared request parameter",
                            p.name
                        )
                    })?;
                    moved[i] = true;
                    Source::Request(i)
                }
                ParamSource::Constant(v) => Source::Constant(match p.location {
                    Location::Path => encoded(v, percent::PATH),
                    Location::Query => encoded(v, percent::QUERY),
                    Location::Header => v.clone(),
                }),
                ParamSource::System(s) => Source::System(*s),
            })
        };
        let mut in_path = Vec::new();
        let mut query = Vec::new();
        let mut headers = Vec::new();
        for p in params {
            let s = source(p)?;
            match p.location {
                Location::Path => in_path.push((p.name.as_str(), Some(s))),
                Location::Query => query.push((encoded(&p.name, percent::QUERY), s)),
                Location::Header => headers.push((p.name.to_ascii_lowercase(), s)),
            }
        }
        let mut path = Vec::new();
        let mut rest = backend_path;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|c| open + c)
                .ok_or_else(|| format!("backend path `{backend_path}` has an unclosed `{{`"))?;
            if open > 0 {
                path.push(PathPart::Text(rest[..open].to_string()));
            }
            let name = rest[open + 1..close].trim_end_matches('+');
            // A backend path parameter, else the request path parameter of
            // that name (taken as is, under the same name).
            let part = match in_path.iter_mut().find(|(n, _)| *n == name) {
                Some((_, s)) => s
                    .take()
                    .ok_or_else(|| format!("backend path uses `{{{name}}}` twice"))?,
                None => match declared
                    .iter()
                    .position(|p| p.location == Location::Path && p.name == name)
                {
                    Some(i) => Source::Request(i),
                    None => {
                        return Err(format!(
                            "backend path uses `{{{name}}}`, which is neither a backend path parameter nor a request path parameter"
                        ))
                    }
                },
            };
            path.push(PathPart::Value(part));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            path.push(PathPart::Text(rest.to_string()));
        }
        if let Some((name, _)) = in_path.iter().find(|(_, s)| s.is_some()) {
            return Err(format!(
                "backend path parameter {name} does not appear in the backend path `{backend_path}`"
            ));
        }
        Ok(Mapping {
            mode,
            path,
            query,
            headers,
            moved,
        })
    }

    /// Whether a system parameter the backend receives is the client address.
    pub fn needs_source_ip(&self) -> bool {
        let is_ip = |s: &Source| matches!(s, Source::System(SystemParam::SourceIp));
        self.query.iter().any(|(_, s)| is_ip(s))
            || self.headers.iter().any(|(_, s)| is_ip(s))
            || self
                .path
                .iter()
                .any(|p| matches!(p, PathPart::Value(s) if is_ip(s)))
    }

    pub fn build(
        &self,
        declared: &[Param],
        req: &Incoming,
        sys: &System,
    ) -> Result<Rewrite, Invalid> {
        let value = |s: &Source| -> Option<String> {
            match s {
                Source::Request(i) => req.values[*i].as_deref().map(str::to_string),
                Source::Constant(c) => Some(c.clone()),
                Source::System(p) => sys.get(*p).map(str::to_string),
            }
        };
        let mut path = String::with_capacity(64 + req.query.pairs.len() * 16);
        for part in &self.path {
            match part {
                PathPart::Text(t) => path.push_str(t),
                PathPart::Value(Source::Request(i)) if declared[*i].location == Location::Path => {
                    // A path parameter stays as the caller encoded it, once
                    // each of its segments is checked.
                    let p = &declared[*i];
                    let raw = req.path_params.get(p.path_index).copied().unwrap_or("");
                    for seg in raw.split('/') {
                        let v = percent::decode_path(seg).ok_or_else(|| not_utf8(&p.name))?;
                        check_segment(&v, &p.name)?;
                    }
                    path.push_str(raw);
                }
                PathPart::Value(Source::Constant(c)) => path.push_str(c),
                PathPart::Value(s) => {
                    let v = value(s).unwrap_or_default();
                    let name = match s {
                        Source::Request(i) => declared[*i].name.as_str(),
                        _ => "",
                    };
                    check_segment(&v, name)?;
                    percent::push_encoded(&mut path, &v, percent::PATH);
                }
            }
        }
        if !req.remainder.is_empty() {
            // The remainder goes on as sent, so it is held to the rule of a
            // path parameter: no segment may climb out of the backend path,
            // encoded (`..%2f`, `%2e%2e`, `%5c`) or not.
            for seg in req.remainder.split('/').filter(|s| !s.is_empty()) {
                let v = percent::decode_path(seg).ok_or_else(|| not_utf8("path"))?;
                check_segment(&v, "path")?;
            }
            if path.ends_with('/') {
                path.pop();
            }
            path.push_str(req.remainder);
        }
        if path.is_empty() {
            path.push('/');
        }
        self.build_query(&mut path, declared, req, &value);
        let headers = self.build_headers(declared, req, &value);
        Ok(Rewrite { path, headers })
    }

    fn build_query(
        &self,
        out: &mut String,
        declared: &[Param],
        req: &Incoming,
        value: &dyn Fn(&Source) -> Option<String>,
    ) {
        // Nothing to take out or add: the caller's query as sent, byte for byte.
        let untouched = self.query.is_empty()
            && self.mode != RequestMode::Mapping
            && !declared.iter().any(|p| p.location == Location::Query);
        if untouched {
            if !req.query.raw.is_empty() {
                out.push('?');
                out.push_str(req.query.raw);
            }
            return;
        }
        let mut sep = '?';
        let mut push = |out: &mut String, pair: &dyn Fn(&mut String)| {
            out.push(sep);
            sep = '&';
            pair(out);
        };
        let declared_query = |raw_key: &str| {
            declared
                .iter()
                .position(|p| p.location == Location::Query && Query::key_is(raw_key, &p.name))
        };
        for (raw, k, _) in &req.query.pairs {
            // The backend's own parameters replace whatever the caller sent
            // under their names.
            if self.query.iter().any(|(n, _)| Query::key_is(k, n)) {
                continue;
            }
            let keep = match (self.mode, declared_query(k)) {
                (RequestMode::Passthrough, _) => true,
                (_, Some(i)) => !self.moved[i],
                (RequestMode::MappingPassthrough, None) => true,
                (RequestMode::Mapping, None) => false,
            };
            if keep {
                push(out, &|o: &mut String| o.push_str(raw));
            }
        }
        for (i, p) in declared.iter().enumerate() {
            // A default the caller did not send, where the caller would have.
            if p.location == Location::Query
                && !self.moved[i]
                && !req
                    .query
                    .pairs
                    .iter()
                    .any(|(_, k, _)| Query::key_is(k, &p.name))
            {
                if let Some(v) = &req.values[i] {
                    push(out, &|o: &mut String| pair(o, &p.name, v));
                }
            }
        }
        for (name, s) in &self.query {
            if let Some(v) = value(s) {
                push(out, &|o: &mut String| {
                    o.push_str(name);
                    o.push('=');
                    match s {
                        Source::Constant(c) => o.push_str(c),
                        _ => percent::push_encoded(o, &v, percent::QUERY),
                    }
                });
            }
        }
    }

    fn build_headers(
        &self,
        declared: &[Param],
        req: &Incoming,
        value: &dyn Fn(&Source) -> Option<String>,
    ) -> Vec<(String, Option<String>)> {
        let mut ops: Vec<(String, Option<String>)> = Vec::new();
        let declared_header = |name: &str| {
            declared
                .iter()
                .position(|p| p.location == Location::Header && p.name == name)
        };
        match self.mode {
            RequestMode::Passthrough => {}
            RequestMode::MappingPassthrough => {
                for (i, p) in declared.iter().enumerate() {
                    if self.moved[i]
                        && p.location == Location::Header
                        && req.head.get(&p.name).is_some()
                    {
                        ops.push((p.name.clone(), None));
                    }
                }
            }
            RequestMode::Mapping => {
                for name in req.head.names() {
                    let keep = is_protocol_header(name)
                        || declared_header(name).is_some_and(|i| !self.moved[i]);
                    if !keep && !ops.iter().any(|(n, _)| n == name) {
                        ops.push((name.to_string(), None));
                    }
                }
            }
        }
        if self.mode != RequestMode::Passthrough {
            for (i, p) in declared.iter().enumerate() {
                if p.location == Location::Header
                    && !self.moved[i]
                    && req.head.get(&p.name).is_none()
                {
                    if let Some(v) = &req.values[i] {
                        ops.push((p.name.clone(), Some(v.to_string())));
                    }
                }
            }
        }
        // Set (or, without a value, removed): a caller cannot supply them.
        for (name, s) in &self.headers {
            ops.push((name.clone(), value(s)));
        }
        ops
    }
}

fn encoded(v: &str, set: &'static percent_encoding::AsciiSet) -> String {
    let mut s = String::new();
    percent::push_encoded(&mut s, v, set);
    s
}

fn pair(out: &mut String, name: &str, v: &str) {
    percent::push_encoded(out, name, percent::QUERY);
    out.push('=');
    percent::push_encoded(out, v, percent::QUERY);
}

/// A caller's value as one path segment: it may not add segments (`/`,
/// `\`, whether sent encoded or not) or climb (`.`, `..`, also with
/// `;parameters` after them, which servlet containers strip before
/// resolving dot segments: `..;` climbs there).
fn check_segment(v: &str, name: &str) -> Result<(), Invalid> {
    let bare = v.split(';').next().unwrap_or(v);
    if v.contains(['/', '\\']) || bare == "." || bare == ".." || v.is_empty() {
        return Err(Invalid(format!(
            "parameter '{name}' (path) may not be empty, `.`, `..` or contain `/` or `\\`"
        )));
    }
    Ok(())
}

fn not_utf8(name: &str) -> Invalid {
    Invalid(format!("parameter '{name}' (path) is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ParamPlan;

    fn declared(name: &str, location: Location) -> Param {
        Param::compile(&ParamPlan::new(name, location), &[(name, false)]).unwrap()
    }

    fn param(name: &str, location: Location, value: ParamSource) -> BackendParamPlan {
        BackendParamPlan {
            name: name.into(),
            location,
            value,
        }
    }

    /// Builds the backend request for `path_params`, `query` and `headers`.
    fn build(
        m: &Mapping,
        d: &[Param],
        path_params: &[&str],
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Rewrite, Invalid> {
        let head = RequestHead::from_pairs(headers);
        let q = Query::parse(query);
        let values: Values = d
            .iter()
            .map(|p| p.value(path_params, &q, &head))
            .collect::<Result<_, _>>()?;
        let req = Incoming {
            values: &values,
            path_params,
            remainder: "",
            query: &q,
            head: &head,
        };
        m.build(d, &req, &System::default())
    }

    #[test]
    fn the_seeds_example() {
        let d = [
            declared("test01", Location::Path),
            declared("test02", Location::Header),
            declared("test03", Location::Query),
        ];
        let params = [
            param(
                "test01",
                Location::Header,
                ParamSource::Request("test01".into()),
            ),
            param(
                "test05",
                Location::Path,
                ParamSource::Request("test02".into()),
            ),
            param(
                "test03",
                Location::Header,
                ParamSource::Request("test03".into()),
            ),
        ];
        let m = Mapping::compile("/v1.0/{test05}", &params, &d, RequestMode::default()).unwrap();
        let rw = build(&m, &d, &["abc"], "test03=xyz", &[("test02", "def")]).unwrap();
        assert_eq!(rw.path, "/v1.0/def");
        assert_eq!(
            rw.headers,
            vec![
                ("test02".to_string(), None),
                ("test01".to_string(), Some("abc".to_string())),
                ("test03".to_string(), Some("xyz".to_string())),
            ]
        );
    }

    #[test]
    fn request_modes_treat_undeclared_parameters_differently() {
        let d = [declared("keep", Location::Query)];
        let headers = [
            ("x-other", "o"),
            ("content-type", "text/plain"),
            (":path", "/"),
        ];
        let run = |mode| {
            let m = Mapping::compile("/b", &[], &d, mode).unwrap();
            build(&m, &d, &[], "keep=1&other=2", &headers).unwrap()
        };
        let mapping = run(RequestMode::Mapping);
        assert_eq!(mapping.path, "/b?keep=1");
        assert_eq!(mapping.headers, vec![("x-other".to_string(), None)]);
        let forward = run(RequestMode::MappingPassthrough);
        assert_eq!(forward.path, "/b?keep=1&other=2");
        assert!(forward.headers.is_empty());
        let d: [Param; 0] = [];
        let m = Mapping::compile("/b", &[], &d, RequestMode::Passthrough).unwrap();
        let rw = build(&m, &d, &[], "a=%20x+y&a&&b=", &headers).unwrap();
        assert_eq!(rw.path, "/b?a=%20x+y&a&&b=", "as received, byte for byte");
    }

    #[test]
    fn caller_values_cannot_reshape_the_request() {
        let d = [declared("h", Location::Header)];
        let to_query = [param(
            "t",
            Location::Query,
            ParamSource::Request("h".into()),
        )];
        let m = Mapping::compile("/b", &to_query, &d, RequestMode::default()).unwrap();
        let rw = build(&m, &d, &[], "t=forged", &[("h", "x&admin=1#")]).unwrap();
        assert_eq!(rw.path, "/b?t=x%26admin%3D1%23");
        let to_path = [param("p", Location::Path, ParamSource::Request("h".into()))];
        let m = Mapping::compile("/b/{p}", &to_path, &d, RequestMode::default()).unwrap();
        for bad in ["..", ".", "a/b", "a\\b", ""] {
            assert!(build(&m, &d, &[], "", &[("h", bad)]).is_err(), "{bad:?}");
        }
        let rw = build(&m, &d, &[], "", &[("h", "a b?c")]).unwrap();
        assert_eq!(rw.path, "/b/a%20b%3Fc");
    }

    #[test]
    fn path_parameters_keep_the_callers_encoding() {
        let d = [declared("id", Location::Path)];
        let m = Mapping::compile("/b/{id}", &[], &d, RequestMode::default()).unwrap();
        assert_eq!(
            build(&m, &d, &["a%2Cb+c"], "", &[]).unwrap().path,
            "/b/a%2Cb+c"
        );
        for bad in ["a%2Fb", "%2e%2E", "a%5cb", "%FF"] {
            assert!(build(&m, &d, &[bad], "", &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_prefix_remainder_cannot_climb_out_of_the_backend_path() {
        let d: [Param; 0] = [];
        let m = Mapping::compile("/assets", &[], &d, RequestMode::default()).unwrap();
        let head = RequestHead::default();
        let q = Query::parse("");
        let values: Values = Vec::new();
        let with = |remainder: &'static str| {
            let req = Incoming {
                values: &values,
                path_params: &[],
                remainder,
                query: &q,
                head: &head,
            };
            m.build(&d, &req, &System::default())
        };
        assert_eq!(
            with("/css/a%20b.css").unwrap().path,
            "/assets/css/a%20b.css"
        );
        assert_eq!(with("/css/").unwrap().path, "/assets/css/");
        for bad in [
            "/..%2f..%2fadmin",
            "/..%2F..%2Fadmin",
            "/%2e%2E/x",
            "/a/..",
            "/a%5c..%5cb",
            "/a\\b",
            "/%FF",
            "/..;/admin",
            "/.;x/a",
            "/%2e%2e;jsessionid=1/admin",
        ] {
            assert!(with(bad).is_err(), "{bad}");
        }
        // A `;` elsewhere is an ordinary character.
        assert_eq!(with("/a;b/..c;").unwrap().path, "/assets/a;b/..c;");
    }

    #[test]
    fn compile_errors() {
        let d = [declared("q", Location::Query)];
        let unknown = [param(
            "x",
            Location::Header,
            ParamSource::Request("nope".into()),
        )];
        assert!(Mapping::compile("/b", &unknown, &d, RequestMode::default()).is_err());
        let unplaced = [param(
            "p",
            Location::Path,
            ParamSource::Constant("c".into()),
        )];
        assert!(Mapping::compile("/b", &unplaced, &d, RequestMode::default()).is_err());
        assert!(Mapping::compile("/b/{zz}", &[], &d, RequestMode::default()).is_err());
    }
}
