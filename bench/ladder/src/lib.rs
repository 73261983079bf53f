//! Benchmark only (`make bench`, bench/ladder.py): a proxy-wasm filter that
//! makes the host calls a Pylon pass-through request makes, and no gateway
//! work. Its plugin configuration is a rung number; rung `n` makes the calls
//! of rungs 1..=n. Measured one rung after another in bare Envoy, the
//! differences say what each kind of host call costs through V8, and the
//! top rung against Pylon itself says what Pylon's own Wasm code costs.
//!
//! The calls per rung mirror `filter/src/adapter.rs` on a pass-through
//! request (docs/BENCHMARKS.md, "Host calls per request"):
//! 1. read the request headers (`get_header_map_pairs`);
//! 2. read the clock three times (request, response, end of request);
//! 3. the default limit: shared-data get and compare-and-swap set;
//! 4. forward: set `:path` and the cluster header;
//! 5. the backend timeout header;
//! 6. read the response `:status`;
//! 7. metrics: one counter increment, two histogram records;
//! 8. access-log fields: five filter-state properties.

use std::cell::Cell;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { rung: 0, metrics: None }) });
}}

const KEY: &str = "pylon.ladder.default|bench/svc3";

struct Root {
    rung: u8,
    /// Counter and two histograms, defined once per VM as Pylon does.
    metrics: Option<[u32; 3]>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.rung = std::str::from_utf8(&config)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if self.rung >= 7 {
            let define = |kind, name: &str| hostcalls::define_metric(kind, name).unwrap();
            self.metrics = Some([
                define(MetricType::Counter, "ladder_requests;api=svc3;class=2xx"),
                define(MetricType::Histogram, "ladder_request_ms;api=svc3"),
                define(MetricType::Histogram, "ladder_backend_ms;api=svc3"),
            ]);
        }
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            rung: self.rung,
            metrics: self.metrics,
            status: Cell::new(0),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    rung: u8,
    metrics: Option<[u32; 3]>,
    status: Cell<usize>,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _n: usize, _end: bool) -> Action {
        if self.rung >= 1 {
            let headers = self.get_http_request_headers_bytes();
            std::hint::black_box(headers);
        }
        if self.rung >= 2 {
            std::hint::black_box(hostcalls::get_current_time().unwrap());
        }
        if self.rung >= 3 {
            // One counter bumped by compare-and-swap, as throttle.rs does.
            // One 24-byte entry, as a slot holding one live counter.
            let (value, cas) = hostcalls::get_shared_data(KEY).unwrap();
            let mut entry = [0u8; 24];
            entry[0] = value.map_or(0, |v| v[0].wrapping_add(1));
            hostcalls::set_shared_data(KEY, Some(&entry), cas).ok();
        }
        if self.rung >= 4 {
            let set = |name, value| {
                hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value)).unwrap()
            };
            set(":path", "/items/42");
            set("x-pylon-cluster", "backend");
        }
        if self.rung >= 5 {
            hostcalls::set_map_value(
                MapType::HttpRequestHeaders,
                "x-envoy-upstream-rq-timeout-ms",
                Some("5000"),
            )
            .unwrap();
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _end: bool) -> Action {
        if self.rung >= 2 {
            std::hint::black_box(hostcalls::get_current_time().unwrap());
        }
        if self.rung >= 6 {
            let status = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status");
            self.status.set(status.unwrap().map_or(0, |s| s.len()));
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.rung >= 2 {
            std::hint::black_box(hostcalls::get_current_time().unwrap());
        }
        if let (true, Some([count, total, backend])) = (self.rung >= 7, self.metrics) {
            hostcalls::increment_metric(count, 1).ok();
            hostcalls::record_metric(total, 1).ok();
            hostcalls::record_metric(backend, 1).ok();
        }
        if self.rung >= 8 {
            for (key, value) in [
                ("pylon_path", "/svc3/items/42"),
                ("pylon_api_id", "0123456789abcdef0123456789abcdef"),
                ("pylon_api", "svc3"),
                ("pylon_group", "bench"),
                ("pylon_stage", "RELEASE"),
            ] {
                hostcalls::set_property(vec![key], Some(value.as_bytes())).ok();
            }
        }
    }
}
