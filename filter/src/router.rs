//! Request → group → API matching, in time independent of the number of APIs.
//!
//! Hosts resolve through a hash map (exact names) and a suffix map
//! (`*.example.com`, longest suffix wins). Paths walk a segment trie: literal
//! children by hash, then one `{param}` child, then a `{name+}` tail. A full
//! (exact-mode) match beats any prefix match; among prefix matches the
//! deepest wins; literal segments beat parameters.

use std::collections::HashMap;

use crate::path_template::{PathTemplate, Segment};
use crate::plan::{MatchMode, Method};

/// Host header → group index.
#[derive(Debug, Default)]
pub struct HostIndex {
    exact: HashMap<String, u32>,
    /// Key is the suffix including its leading dot: `.example.com`.
    wildcard: HashMap<String, u32>,
    default: Option<u32>,
}

impl HostIndex {
    pub fn insert(&mut self, domain: &str, group: u32) {
        let domain = domain.to_ascii_lowercase();
        match domain.strip_prefix('*') {
            Some(suffix) => self.wildcard.insert(suffix.to_string(), group),
            None => self.exact.insert(domain, group),
        };
    }

    pub fn set_default(&mut self, group: u32) {
        self.default = Some(group);
    }

    pub fn lookup(&self, host: &str) -> Option<u32> {
        let host = strip_port(host);
        let lowered;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = host.to_ascii_lowercase();
            lowered.as_str()
        } else {
            host
        };
        if let Some(&g) = self.exact.get(host) {
            return Some(g);
        }
        if !self.wildcard.is_empty() {
            // Longest suffix first: try each `.label...` tail left to right.
            for (i, _) in host.match_indices('.') {
                if let Some(&g) = self.wildcard.get(&host[i..]) {
                    return Some(g);
                }
            }
        }
        self.default
    }
}

/// `host:port` or `[v6]:port` → host.
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: `[::1]:8080` → `::1`
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rfind(':') {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
        _ => host,
    }
}

/// The client's IP address from Envoy's `source.address` (`ip:port`,
/// `[v6]:port`), without an IPv6 zone id: Envoy keeps the `%1` of an
/// X-Forwarded-For entry, and `2001:db8::1%1` is the address 2001:db8::1 for
/// IP access control and the source IP limit (Huawei user guide §5.4, §5.3),
/// which a caller must not escape by writing `%2`, `%3`…
pub fn client_ip(address: &str) -> &str {
    let ip = strip_port(address);
    ip.split_once('%').map_or(ip, |(ip, _zone)| ip)
}

/// APIs registered at one trie node, with the stages each is published to.
#[derive(Debug, Default)]
struct Slot {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    method: Method,
    api: u32,
    /// Bit i set: published to stage i.
    stages: u64,
}

impl Slot {
    /// The API for this method and stage; a specific method beats `ANY`.
    fn pick(&self, method: Method, stage: u16) -> Option<u32> {
        let on_stage = |e: &&Entry| e.stages & (1u64 << stage) != 0;
        let specific = self
            .entries
            .iter()
            .filter(on_stage)
            .find(|e| e.method == method);
        specific
            .or_else(|| {
                self.entries
                    .iter()
                    .filter(on_stage)
                    .find(|e| e.method == Method::Any)
            })
            .map(|e| e.api)
    }
}

#[derive(Debug, Default)]
struct Node {
    literals: HashMap<Box<str>, u32>,
    param: Option<u32>,
    exact: Option<Slot>,
    prefix: Option<Slot>,
    greedy: Option<Slot>,
}

/// The result of a path match.
#[derive(Debug, PartialEq, Eq)]
pub struct PathMatch<'p> {
    pub api: u32,
    /// Path parameter values in template order (raw, still percent-encoded).
    pub params: Vec<&'p str>,
    /// Prefix mode: the unmatched rest of the path, with its leading `/`.
    pub remainder: &'p str,
}

/// Path trie of one group.
#[derive(Debug)]
pub struct ApiIndex {
    nodes: Vec<Node>,
}

/// Most stages one plan may declare (stage sets are a 64-bit mask).
pub const MAX_STAGES: usize = 64;

/// Longest path (in segments) the router walks; deeper requests are not found.
const MAX_SEGMENTS: usize = 128;

impl Default for ApiIndex {
    fn default() -> Self {
        ApiIndex {
            nodes: vec![Node::default()],
        }
    }
}

impl ApiIndex {
    pub fn insert(
        &mut self,
        template: &PathTemplate,
        mode: MatchMode,
        method: Method,
        api: u32,
        stages: u64,
    ) {
        let mut at = 0usize;
        let mut greedy = false;
        for seg in &template.segments {
            at = match seg {
                Segment::Literal(lit) => match self.nodes[at].literals.get(lit.as_str()) {
                    Some(&n) => n as usize,
                    None => {
                        let n = self.push();
                        self.nodes[at]
                            .literals
                            .insert(lit.as_str().into(), n as u32);
                        n
                    }
                },
                Segment::Param(_) => match self.nodes[at].param {
                    Some(n) => n as usize,
                    None => {
                        let n = self.push();
                        self.nodes[at].param = Some(n as u32);
                        n
                    }
                },
                Segment::Greedy(_) => {
                    greedy = true;
                    at
                }
            };
        }
        let node = &mut self.nodes[at];
        let slot = if greedy {
            &mut node.greedy
        } else if mode == MatchMode::Prefix {
            &mut node.prefix
        } else {
            &mut node.exact
        };
        slot.get_or_insert_with(Slot::default).entries.push(Entry {
            method,
            api,
            stages,
        });
    }

    fn push(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// Matches `path` (no query string) for `method` on `stage`.
    pub fn lookup<'p>(&self, path: &'p str, method: Method, stage: u16) -> Option<PathMatch<'p>> {
        let rest = path.strip_prefix('/')?;
        // Byte offset of each segment in `path`.
        let mut starts: Vec<usize> = Vec::with_capacity(8);
        if !rest.is_empty() {
            starts.push(1);
            starts.extend(rest.match_indices('/').map(|(i, _)| i + 2));
        }
        if starts.len() > MAX_SEGMENTS {
            return None;
        }
        let walk = Walk {
            index: self,
            path,
            starts: &starts,
            method,
            stage,
        };
        let mut params = Vec::new();
        let mut best_prefix = None;
        walk.search(0, 0, &mut params, &mut best_prefix)
            .or_else(|| best_prefix.map(|(m, _)| m))
    }
}

struct Walk<'a, 'p> {
    index: &'a ApiIndex,
    path: &'p str,
    starts: &'a [usize],
    method: Method,
    stage: u16,
}

impl<'p> Walk<'_, 'p> {
    fn segment(&self, d: usize) -> &'p str {
        let end = self.starts.get(d + 1).map_or(self.path.len(), |&s| s - 1);
        &self.path[self.starts[d]..end]
    }

    fn search(
        &self,
        node: u32,
        depth: usize,
        params: &mut Vec<&'p str>,
        best_prefix: &mut Option<(PathMatch<'p>, usize)>,
    ) -> Option<PathMatch<'p>> {
        let n = &self.index.nodes[node as usize];
        let end = depth == self.starts.len();
        if let Some(api) = n
            .prefix
            .as_ref()
            .and_then(|s| s.pick(self.method, self.stage))
        {
            if best_prefix.as_ref().is_none_or(|(_, d)| depth > *d) {
                let remainder = if end {
                    ""
                } else {
                    &self.path[self.starts[depth] - 1..]
                };
                let found = PathMatch {
                    api,
                    params: params.clone(),
                    remainder,
                };
                *best_prefix = Some((found, depth));
            }
        }
        if end {
            let api = n.exact.as_ref()?.pick(self.method, self.stage)?;
            return Some(PathMatch {
                api,
                params: params.clone(),
                remainder: "",
            });
        }
        let seg = self.segment(depth);
        if let Some(&child) = n.literals.get(seg) {
            if let found @ Some(_) = self.search(child, depth + 1, params, best_prefix) {
                return found;
            }
        }
        if let (Some(child), false) = (n.param, seg.is_empty()) {
            params.push(seg);
            if let found @ Some(_) = self.search(child, depth + 1, params, best_prefix) {
                return found;
            }
            params.pop();
        }
        let api = n.greedy.as_ref()?.pick(self.method, self.stage)?;
        let tail = &self.path[self.starts[depth]..];
        if tail.is_empty() {
            return None;
        }
        let mut params = params.clone();
        params.push(tail);
        Some(PathMatch {
            api,
            params,
            remainder: "",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_ip_has_neither_port_nor_zone_id() {
        assert_eq!(client_ip("192.0.2.7:51234"), "192.0.2.7");
        assert_eq!(client_ip("[2001:db8::1]:0"), "2001:db8::1");
        assert_eq!(client_ip("[2001:db8::1%1]:0"), "2001:db8::1");
        assert_eq!(client_ip("[fe80::1%eth0]:443"), "fe80::1");
        assert_eq!(client_ip("[::ffff:203.0.113.7%25]:0"), "::ffff:203.0.113.7");
        assert_eq!(client_ip("2001:db8::1%7"), "2001:db8::1");
    }

    const ALL: u64 = u64::MAX;

    fn index(apis: &[(&str, MatchMode, Method)]) -> ApiIndex {
        let mut idx = ApiIndex::default();
        for (i, (path, mode, method)) in apis.iter().enumerate() {
            let t = PathTemplate::parse(path, *mode).unwrap();
            idx.insert(&t, *mode, *method, i as u32, ALL);
        }
        idx
    }

    use MatchMode::{Exact, Prefix};
    use Method::{Any, Get, Post};

    #[test]
    fn exact_matches_only_the_whole_path() {
        let idx = index(&[("/a/b", Exact, Get)]);
        assert_eq!(idx.lookup("/a/b", Get, 0).unwrap().api, 0);
        assert!(idx.lookup("/a/b/c", Get, 0).is_none());
        assert!(idx.lookup("/a", Get, 0).is_none());
        assert!(idx.lookup("/a/b/", Get, 0).is_none());
        assert!(
            idx.lookup("/A/b", Get, 0).is_none(),
            "paths are case-sensitive"
        );
    }

    #[test]
    fn prefix_matches_whole_segments_and_keeps_the_remainder() {
        let idx = index(&[("/test/AA", Prefix, Get)]);
        let m = idx.lookup("/test/AA/CC/dd", Get, 0).unwrap();
        assert_eq!((m.api, m.remainder), (0, "/CC/dd"));
        assert_eq!(idx.lookup("/test/AA", Get, 0).unwrap().remainder, "");
        assert!(idx.lookup("/test/AACC", Get, 0).is_none());
    }

    #[test]
    fn deepest_prefix_wins_and_exact_beats_prefix() {
        let idx = index(&[
            ("/a", Prefix, Get),
            ("/a/b", Prefix, Get),
            ("/a/b/c", Exact, Get),
        ]);
        assert_eq!(idx.lookup("/a/x", Get, 0).unwrap().api, 0);
        assert_eq!(idx.lookup("/a/b/x", Get, 0).unwrap().api, 1);
        assert_eq!(idx.lookup("/a/b/c", Get, 0).unwrap().api, 2);
        let m = idx.lookup("/a/b/c/d", Get, 0).unwrap();
        assert_eq!((m.api, m.remainder), (1, "/c/d"));
    }

    #[test]
    fn params_capture_one_segment_and_literals_win() {
        let idx = index(&[
            ("/u/{id}", Exact, Get),
            ("/u/me", Exact, Get),
            ("/u/{id}/f/{rest+}", Exact, Get),
        ]);
        let m = idx.lookup("/u/42", Get, 0).unwrap();
        assert_eq!((m.api, m.params), (0, vec!["42"]));
        assert_eq!(idx.lookup("/u/me", Get, 0).unwrap().api, 1);
        let m = idx.lookup("/u/7/f/x/y%2Fz", Get, 0).unwrap();
        assert_eq!((m.api, m.params), (2, vec!["7", "x/y%2Fz"]));
        assert!(
            idx.lookup("/u/7/f", Get, 0).is_none(),
            "{{rest+}} needs one segment"
        );
        assert!(
            idx.lookup("/u/", Get, 0).is_none(),
            "empty segment is no parameter"
        );
    }

    #[test]
    fn backtracks_from_literal_to_param() {
        let idx = index(&[("/a/lit/x", Exact, Get), ("/a/{p}/y", Exact, Get)]);
        let m = idx.lookup("/a/lit/y", Get, 0).unwrap();
        assert_eq!((m.api, m.params), (1, vec!["lit"]));
    }

    #[test]
    fn method_specific_beats_any_and_missing_method_is_not_found() {
        let idx = index(&[("/m", Exact, Post), ("/m", Exact, Any), ("/p", Exact, Post)]);
        assert_eq!(idx.lookup("/m", Post, 0).unwrap().api, 0);
        assert_eq!(idx.lookup("/m", Get, 0).unwrap().api, 1);
        assert!(idx.lookup("/p", Get, 0).is_none());
    }

    #[test]
    fn stage_selects_among_same_route() {
        let mut idx = ApiIndex::default();
        let t = PathTemplate::parse("/s", Exact).unwrap();
        idx.insert(&t, Exact, Get, 0, 0b01);
        idx.insert(&t, Exact, Get, 1, 0b10);
        assert_eq!(idx.lookup("/s", Get, 0).unwrap().api, 0);
        assert_eq!(idx.lookup("/s", Get, 1).unwrap().api, 1);
        assert!(idx.lookup("/s", Get, 2).is_none());
    }

    #[test]
    fn root_path() {
        let idx = index(&[("/", Exact, Get)]);
        assert_eq!(idx.lookup("/", Get, 0).unwrap().api, 0);
        assert!(idx.lookup("/x", Get, 0).is_none());
    }

    #[test]
    fn hosts_exact_wildcard_default_and_ports() {
        let mut h = HostIndex::default();
        h.insert("api.example.com", 0);
        h.insert("*.example.com", 1);
        h.insert("*.deep.example.com", 2);
        assert_eq!(h.lookup("api.example.com:8080"), Some(0));
        assert_eq!(h.lookup("API.Example.com"), Some(0));
        assert_eq!(h.lookup("x.example.com"), Some(1));
        assert_eq!(h.lookup("a.b.example.com"), Some(1));
        assert_eq!(h.lookup("z.deep.example.com"), Some(2));
        assert_eq!(h.lookup("example.com"), None);
        h.set_default(9);
        assert_eq!(h.lookup("127.0.0.1:10000"), Some(9));
        assert_eq!(h.lookup("[::1]:80"), Some(9));
    }
}
