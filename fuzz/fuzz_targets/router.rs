//! Routing structures built from arbitrary definitions: the host index
//! (exact, `*.` wildcard, default group), path templates (`{p}`, `{p+}`,
//! prefix mode) in the path trie, looked up with arbitrary hosts and paths.
//!
//! Input: lines; `D domain` adds a domain (group = line number), `*` sets
//! the default group, `T[p] M template` adds an API (`p` = prefix mode, M
//! a method digit), `H host` and `P M stage path` look up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon_filter::path_template::{check_param_name, PathTemplate};
use pylon_filter::plan::{MatchMode, Method};
use pylon_filter::router::{strip_port, ApiIndex, HostIndex};

fn method(m: &str) -> Method {
    let i = m.bytes().next().unwrap_or(0) as usize;
    Method::ALL[i % Method::ALL.len()]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut hosts = HostIndex::default();
    let mut index = ApiIndex::default();
    let mut apis = 0u32;
    for (n, line) in text.lines().enumerate().take(64) {
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        match cmd {
            "D" => hosts.insert(rest, n as u32),
            "*" => hosts.set_default(n as u32),
            "H" => {
                let _ = strip_port(rest);
                let _ = hosts.lookup(rest);
            }
            "T" | "Tp" => {
                let mode = if cmd == "Tp" {
                    MatchMode::Prefix
                } else {
                    MatchMode::Exact
                };
                let (m, template) = rest.split_once(' ').unwrap_or(("", rest));
                if let Ok(t) = PathTemplate::parse(template, mode) {
                    for (name, _) in t.params_with_greedy() {
                        assert!(check_param_name(name).is_ok(), "{template:?}: {name:?}");
                    }
                    index.insert(&t, mode, method(m), apis, u64::MAX >> (n % 64));
                    apis += 1;
                }
            }
            "P" => {
                let mut parts = rest.splitn(3, ' ');
                let m = parts.next().unwrap_or("");
                let stage = parts.next().unwrap_or("").len() as u16 % 64;
                let path = parts.next().unwrap_or("");
                if let Some(found) = index.lookup(path, method(m), stage) {
                    assert!(found.api < apis);
                    assert!(path.ends_with(found.remainder));
                }
            }
            _ => {}
        }
    }
});
