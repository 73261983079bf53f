//! Plan + clusters → a complete Envoy bootstrap (YAML).
//!
//! Envoy does what it is good at: listener, virtual hosts per group domain,
//! clusters, timeouts, path normalisation, request ids. The filter picks the
//! API and sets `x-pylon-cluster`; one route per virtual host sends the
//! request to that cluster (`cluster_header` is a hash lookup, so routing
//! cost does not grow with the number of APIs). A request the filter did not
//! route meets the fail-closed direct response.

use pylon_filter::response::{
    Context, EnvoyMatch, EnvoyReply, Template, DEFAULT_BODY, ENVOY_REPLIES,
};
use pylon_filter::seal;
use serde_json::{json, Value};

use crate::defs::Scheme;
use crate::lower::{Cluster, Compiled};

pub struct Listen<'a> {
    pub address: &'a str,
    pub port: u16,
    pub admin_address: &'a str,
    pub admin_port: u16,
    pub trusted_hops: u32,
    /// Where the output goes: the HTTPS listener's SDS files are there.
    pub out_dir: &'a std::path::Path,
}

/// Upper bound for a backend timeout (Huawei user guide: 600000 ms); the filter sets the
/// per-API value with `x-envoy-upstream-rq-timeout-ms`. The WebSocket route
/// keeps it (the filter sets every upgrade's timeout); the backend route
/// applies the plan's `route_timeout_ms` when it has one (`route_timeout`).
const ROUTE_TIMEOUT: &str = "600s";

/// Envoy's limit on a request's head (request line and headers): the
/// product's 32 KiB URI plus 128 KiB of headers (Huawei user guide §6.3.3),
/// plus 4 KiB for the request line and up to 100 headers' separators. The
/// filter applies the exact limits (`filter/src/limits.rs`); whatever Envoy
/// refuses beyond this breaks them anyway and is answered 494.
const MAX_REQUEST_HEADERS_KB: u32 = 32 + 128 + 4;

/// Slow clients: a connection must deliver a request's headers within this
/// time, else Envoy closes it (slowloris).
const REQUEST_HEADERS_TIMEOUT: &str = "10s";
/// The whole request (a 12 MiB body at ~330 kbit/s) must arrive within this.
const REQUEST_TIMEOUT: &str = "300s";
/// A stream with no bytes either way; above ROUTE_TIMEOUT so the longest
/// backend timeout (600 s) is the one that answers.
const STREAM_IDLE_TIMEOUT: &str = "610s";
/// A keep-alive connection with no request in flight.
const CONNECTION_IDLE_TIMEOUT: &str = "60s";

/// The backend route's timeout: the plan's `route_timeout_ms`, which the
/// filter then leaves unset on requests whose API has that timeout.
fn route_timeout(plan_ms: Option<u32>) -> String {
    match plan_ms {
        Some(ms) if ms % 1000 == 0 => format!("{}s", ms / 1000),
        Some(ms) => format!("{}.{:03}s", ms / 1000, ms % 1000),
        None => ROUTE_TIMEOUT.to_string(),
    }
}

pub fn bootstrap(compiled: &Compiled, plan_json: &str, wasm_path: &str, listen: &Listen) -> Value {
    let body_limit = compiled.plan.max_body_bytes;
    let timeout = route_timeout(compiled.plan.route_timeout_ms);
    let mut vhosts: Vec<Value> = compiled
        .plan
        .groups
        .iter()
        .filter(|g| !g.domains.is_empty())
        .map(|g| {
            vhost(
                &format!("group_{}", g.name),
                g.domains.iter().map(String::as_str).collect(),
                body_limit,
                &timeout,
            )
        })
        .collect();
    // Hosts no group claims: the default group, or a gateway NOT_FOUND.
    vhosts.push(vhost("default", vec!["*"], body_limit, &timeout));

    let http = json!({
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "pylon",
                        "codec_type": "AUTO",
                        // The filter normalises the path for routing and
                        // keeps the path as sent for signatures, which cover
                        // it byte for byte (filter/src/request_path.rs).
                        // Every request the router sees has a :path the
                        // filter built.
                        "normalize_path": false,
                        "merge_slashes": false,
                        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
                        "use_remote_address": true,
                        // X-Forwarded-For entries from this many proxies in
                        // front are trusted; the client address is the next one.
                        "xff_num_trusted_hops": listen.trusted_hops,
                        // Envoy makes a fresh id for every request.
                        // Each pass through a Pylon gateway adds `Via:
                        // pylon`; the filter refuses a request past 10 (a
                        // backend that loops back to the gateway).
                        "via": ::pylon_filter::request_head::VIA,
                        "generate_request_id": true,
                        "preserve_external_request_id": false,
                        "always_set_request_id_in_response": true,
                        // The product's request limits, and slow clients.
                        "max_request_headers_kb": MAX_REQUEST_HEADERS_KB,
                        "request_headers_timeout": REQUEST_HEADERS_TIMEOUT,
                        "request_timeout": REQUEST_TIMEOUT,
                        "stream_idle_timeout": STREAM_IDLE_TIMEOUT,
                        "common_http_protocol_options": {
                            "idle_timeout": CONNECTION_IDLE_TIMEOUT,
                            // CGI-style backends read `X_App_Id` as
                            // `X-App-Id`: a caller's underscore spelling could
                            // shadow a header the gateway sets. (Signers leave
                            // such headers unsigned.)
                            "headers_with_underscores_action": "DROP_HEADER",
                        },
                        // What Envoy answers itself is a gateway response too.
                        "local_reply_config": local_reply_config(),
                        "access_log": crate::observability::access_log(compiled.access_log.as_deref()),
                        // Every client is external: Envoy then replaces any
                        // client-sent x-request-id and drops x-envoy-* headers.
                        "internal_address_config": {"cidr_ranges": [{"address_prefix": "255.255.255.255", "prefix_len": 32}]},
                        // Match domains without the port, but leave the Host
                        // header as sent: APP signatures cover it.
                        "route_config": {
                            "name": "pylon",
                            "ignore_port_in_host_matching": true,
                            "virtual_hosts": vhosts,
                        },
                        // WebSocket upgrades reach the filter, which lets
                        // through only those to APIs that declare them.
                        "upgrade_configs": [{"upgrade_type": "websocket"}],
                        "http_filters": [
                            pylon_filter(plan_json, wasm_path),
                            buffer_filter(compiled.plan.max_body_bytes),
                            router_filter(),
                        ],
                    },
    });
    let mut listeners = Vec::new();
    // Plain HTTP has its own listener while any API is called over it.
    if compiled.tls.plain {
        listeners.push(json!({
            "name": "pylon",
            "address": socket(listen.address, listen.port),
            "filter_chains": [{"filters": [http]}],
        }));
    }
    listeners.extend(crate::tls::listener(&compiled.tls, &http, listen.out_dir));
    json!({
        // Certificates come through SDS, which needs a node name.
        "node": {"id": "pylon", "cluster": "pylon"},
        "admin": {"address": socket(listen.admin_address, listen.admin_port)},
        "stats_config": crate::observability::stats_config(),
        "static_resources": {
            "listeners": listeners,
            "clusters": compiled.clusters.iter().map(cluster).collect::<Vec<_>>(),
        },
    })
}

/// Envoy's own replies (431, 400, 426, upgrades, a failed VM…) reshaped
/// into gateway responses with the filter's default body, from the filter's
/// table of them. Replies the filter sends carry no response code details,
/// so no mapper touches them; every Envoy reply gets an `x-request-id` (the
/// request's, or a fresh one when Envoy refused the request before making
/// one) and the same id in the body.
fn local_reply_config() -> Value {
    json!({"mappers": ENVOY_REPLIES.iter().map(reply_mapper).collect::<Vec<_>>()})
}

fn reply_mapper(reply: &EnvoyReply) -> Value {
    let own = "response.code_details != ''".to_string();
    let expression = match reply.when {
        EnvoyMatch::Status(s) => format!("{own} && response.code == {s}"),
        EnvoyMatch::Details(d) => format!("{own} && response.code_details.startsWith('{d}')"),
        EnvoyMatch::OtherClientError => format!("{own} && response.code < 500"),
        EnvoyMatch::Other => own,
    };
    let mut mapper = json!({
        "filter": {"extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                "expression": expression,
            },
        }},
        // Envoy applies overwrites in order, so the request's id wins over a
        // fresh one; it is empty (so skipped) when Envoy refused the request
        // before giving it an id.
        "headers_to_add": [
            {"header": {"key": "x-request-id", "value": "%UNIQUE_ID%"},
             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
            {"header": {"key": "x-request-id", "value": "%REQ(X-REQUEST-ID)%"},
             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
        ],
        "body_format_override": {
            "text_format_source": {"inline_string": reply_body(reply)},
            "content_type": "application/json",
        },
    });
    if let Some(status) = reply.status() {
        mapper["status_code"] = json!(status);
    }
    mapper
}

/// The filter's default body for this error, as an Envoy format string.
fn reply_body(reply: &EnvoyReply) -> String {
    const ID: &str = "PYLON-REQUEST-ID";
    let template = Template::parse(DEFAULT_BODY).expect("the default body parses");
    let ctx = Context {
        request_id: ID,
        ..Default::default()
    };
    let body = template.render(&reply.error, &ctx);
    // `%` would start an Envoy command; no gateway message holds one.
    debug_assert!(!body.contains('%'), "{body}");
    body.replace(ID, "%RESP(X-REQUEST-ID)%")
}

fn pylon_filter(plan_json: &str, wasm_path: &str) -> Value {
    json!({
        "name": "pylon",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "pylon",
                "root_id": "pylon",
                // Never fail open. A plan that does not load stops Envoy from
                // starting; a VM that crashes at runtime fails that request
                // closed (503) and is replaced for the next ones.
                "failure_policy": "FAIL_RELOAD",
                "vm_config": {
                    "vm_id": "pylon",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_path}},
                    // The key that opens the plan's sealed secrets comes from
                    // Envoy's own environment; config_dump shows these names,
                    // never their values.
                    "environment_variables": {
                        "host_env_keys": [seal::KEY_ENV, seal::PREVIOUS_KEY_ENV],
                    },
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plan_json,
                },
            },
        },
    })
}

/// Holds each request from the router until its body is complete, so the
/// Pylon filter can verify a signed body before any byte reaches a backend;
/// larger bodies than the gateway's limit are answered 413.
fn buffer_filter(max_body_bytes: u64) -> Value {
    json!({
        "name": "envoy.filters.http.buffer",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": max_body_bytes.min(u32::MAX as u64),
        },
    })
}

fn router_filter() -> Value {
    json!({
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            "suppress_envoy_headers": true,
        },
    })
}

fn socket(address: &str, port: u16) -> Value {
    json!({"socket_address": {"address": address, "port_value": port}})
}

fn vhost(name: &str, domains: Vec<&str>, body_limit: u64, backend_timeout: &str) -> Value {
    json!({
        "name": name,
        "domains": domains,
        // The filter holds a signed or chunked body until it is complete.
        "request_body_buffer_limit": body_limit,
        "routes": [
            {
                // A WebSocket upgrade the filter let through: its frames are
                // no body to hold (the filter checked the request at its
                // headers), so the buffer filter stands aside.
                "name": "pylon_websocket",
                "match": {"prefix": "/", "headers": [
                    {"name": "x-pylon-cluster", "present_match": true},
                    {"name": "upgrade", "string_match": {"exact": "websocket", "ignore_case": true}},
                ]},
                "route": {
                    "cluster_header": "x-pylon-cluster",
                    "auto_host_rewrite": true,
                    "timeout": ROUTE_TIMEOUT,
                },
                "request_headers_to_remove": ["x-pylon-cluster"],
                "typed_per_filter_config": {"envoy.filters.http.buffer": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
                    "disabled": true,
                }},
            },
            {
                "name": "pylon_backend",
                "match": {"prefix": "/", "headers": [{"name": "x-pylon-cluster", "present_match": true}]},
                "route": {
                    "cluster_header": "x-pylon-cluster",
                    // Host becomes the endpoint's `hostname`: the backend address.
                    "auto_host_rewrite": true,
                    "timeout": backend_timeout,
                },
                "request_headers_to_remove": ["x-pylon-cluster"],
            },
            {
                // Reached only if the filter did not route the request.
                "name": "pylon_fail_closed",
                "match": {"prefix": "/"},
                "direct_response": {
                    "status": 500,
                    "body": {"inline_string": "{\"error_code\":\"APIG.0606\",\"error_msg\":\"Failed to load the API configurations\"}"},
                },
                "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"}}],
            },
        ],
    })
}

fn cluster(c: &Cluster) -> Value {
    let is_ip = c.host.parse::<std::net::IpAddr>().is_ok();
    let mut v = json!({
        "name": c.name,
        "type": if is_ip { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": "2s",
        "dns_lookup_family": "V4_PREFERRED",
        "load_assignment": {
            "cluster_name": c.name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": socket(&c.host, c.port),
                "hostname": c.authority,
            }}]}],
        },
    });
    if c.scheme == Scheme::Https {
        v["transport_socket"] = crate::tls::upstream_context(&c.host, &c.tls);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use pylon_filter::plan::BackendPlan;

    /// The filter leaves the timeout header off exactly where the backend
    /// route applies the plan's `route_timeout_ms`: both must say the same,
    /// and it must be the timeout an API without one gets.
    #[test]
    fn the_backend_route_applies_the_plans_route_timeout_the_default_one() {
        let compiled = crate::lower::lower_yaml(
            "route-timeout",
            "groups:\n  - {name: g, default: true}\napis:\n  \
             - {name: a, group: g, method: GET, path: /a, backend: {http: {address: \"10.0.0.5:80\", path: /a}}, publish: [RELEASE]}\n",
        );
        let BackendPlan::Http(h) = &compiled.plan.groups[0].apis[0].stages["RELEASE"] else {
            panic!("an HTTP backend")
        };
        assert_eq!(compiled.plan.route_timeout_ms, Some(h.timeout_ms));
        let listen = Listen {
            address: "127.0.0.1",
            port: 8080,
            admin_address: "127.0.0.1",
            admin_port: 9901,
            trusted_hops: 0,
            out_dir: std::path::Path::new("/out"),
        };
        let config = bootstrap(&compiled, "{}", "/x.wasm", &listen);
        let hcm = &config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        let vhosts = hcm["route_config"]["virtual_hosts"].as_array().unwrap();
        assert!(!vhosts.is_empty());
        for vhost in vhosts {
            let route = |name: &str| {
                let routes = vhost["routes"].as_array().unwrap();
                routes.iter().find(|r| r["name"] == name).unwrap()["route"].clone()
            };
            assert_eq!(route("pylon_backend")["timeout"], "5s");
            // Upgrades: the filter sets every timeout; the route only bounds.
            assert_eq!(route("pylon_websocket")["timeout"], ROUTE_TIMEOUT);
        }
    }

    #[test]
    fn a_route_timeout_is_an_envoy_duration() {
        assert_eq!(route_timeout(Some(5000)), "5s");
        assert_eq!(route_timeout(Some(300)), "0.300s");
        assert_eq!(route_timeout(Some(61_050)), "61.050s");
        assert_eq!(route_timeout(None), ROUTE_TIMEOUT);
    }

    #[test]
    fn envoy_replies_get_the_filters_default_body() {
        let config = local_reply_config();
        let mappers = config["mappers"].as_array().unwrap();
        assert_eq!(mappers.len(), ENVOY_REPLIES.len());
        let headers = &mappers[1];
        assert!(
            headers["filter"]["extension_filter"]["typed_config"]["expression"]
                .as_str()
                .unwrap()
                .ends_with("response.code == 431")
        );
        assert_eq!(headers["status_code"], 494);
        let body = &headers["body_format_override"];
        assert_eq!(body["content_type"], "application/json");
        assert_eq!(
            body["text_format_source"]["inline_string"],
            r#"{"error_code":"APIG.0201","error_msg":"Request headers too large","request_id":"%RESP(X-REQUEST-ID)%"}"#
        );
        // The catch-alls keep Envoy's status.
        assert!(mappers.last().unwrap().get("status_code").is_none());
    }
}
