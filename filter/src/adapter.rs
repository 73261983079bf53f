//! The proxy-wasm adapter: translates Envoy's callbacks into pipeline
//! events (`pipeline/`) and the pipeline's outcomes into host calls. No
//! gateway decision lives here, and nothing else touches proxy-wasm.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::SystemTime;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

use crate::gateway::Gateway;
use crate::metrics::{self, Kind, Op, Series};
use crate::nonce;
use crate::pipeline::{CallAnswer, Event, HeaderOp, Host, Outcome, Pipeline};
use crate::plan::Plan;
use crate::request_head::RequestHead;
use crate::shared_store::SharedStore;
use crate::slot_table;
use crate::throttle;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(PylonRoot { gateway: None, metric_ids: Rc::default() }) });
}}

struct PylonRoot {
    gateway: Option<Rc<Gateway>>,
    /// This VM's metric ids, defined at a series' first use: defining all
    /// series of 10,000 APIs up front would create stats never used.
    /// Keys are plan indexes, so each plan gets a fresh table.
    metric_ids: MetricIds,
}

type MetricIds = Rc<RefCell<HashMap<Series, u32>>>;

impl Context for PylonRoot {}

impl RootContext for PylonRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let loaded = self
            .get_plugin_configuration()
            .ok_or_else(|| "no plugin configuration".to_string())
            .and_then(|bytes| serde_json::from_slice::<Plan>(&bytes).map_err(|e| e.to_string()))
            .and_then(|mut plan| {
                // Secrets arrive sealed; the key is in Envoy's environment
                // (host_env_keys), which WASI's environ exposes to the VM.
                let keys = crate::seal::keys_from(|name| std::env::var(name).ok())?;
                crate::seal::open_plan(&mut plan, &keys)?;
                Gateway::from_plan(&plan).map(|gw| (plan, gw))
            })
            .and_then(|loaded| {
                // Counter and nonce slots are keyed by a secret all workers
                // share (WASI random_get, which Envoy provides).
                let mut candidate = [0u8; slot_table::SECRET_LEN];
                getrandom::fill(&mut candidate).map_err(|e| format!("no randomness: {e}"))?;
                slot_table::install_secret(&HostStore(self), &candidate)?;
                Ok(loaded)
            });
        match loaded {
            Ok((plan, gw)) => {
                // Only apps sign with X-Ca-Nonce: no apps, no nonce store.
                if !plan.apps.is_empty() {
                    nonce::prepare(&HostStore(self));
                }
                throttle::prepare(&HostStore(self), &plan.throttles);
                self.gateway = Some(Rc::new(gw));
                self.metric_ids = Rc::default();
                true
            }
            Err(e) => {
                // Fail closed: Envoy rejects the plugin, and should a request
                // still arrive it is answered 500 without reaching a backend.
                proxy_wasm::hostcalls::log(
                    LogLevel::Critical,
                    &format!("pylon: configuration rejected: {e}"),
                )
                .ok();
                self.gateway = None;
                false
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(PylonHttp {
            pipeline: Pipeline::new(self.gateway.clone()),
            call: None,
            gateway: self.gateway.clone(),
            metric_ids: self.metric_ids.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct PylonHttp {
    pipeline: Pipeline,
    /// The token of the pipeline's call-out in flight.
    call: Option<u32>,
    gateway: Option<Rc<Gateway>>,
    metric_ids: MetricIds,
}

/// The host's shared data (one store per Envoy process, all workers).
struct HostStore<'a>(&'a dyn Context);

impl SharedStore for HostStore<'_> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.0.get_shared_data(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        self.0.set_shared_data(key, Some(value), cas).is_ok()
    }
}

/// Envoy as the pipeline sees it, for one callback: each method is one host
/// call, but the clock is read once (authentication and throttling both ask
/// for it; within one callback it is one instant).
#[derive(Default)]
struct Envoy {
    now: Cell<Option<SystemTime>>,
}

impl SharedStore for Envoy {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}

impl Host for Envoy {
    fn now(&self) -> SystemTime {
        if let Some(now) = self.now.get() {
            return now;
        }
        let now = hostcalls::get_current_time().unwrap();
        self.now.set(Some(now));
        now
    }

    fn client_address(&self) -> String {
        hostcalls::get_property(vec!["source", "address"])
            .unwrap()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    }

    fn request_body(&self, len: usize) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::HttpRequestBody, 0, len)
            .unwrap()
            .unwrap_or_default()
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name).unwrap()
    }

    fn response_details(&self) -> String {
        hostcalls::get_property(vec!["response", "code_details"])
            .unwrap()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    }

    fn warn(&self, message: &str) {
        hostcalls::log(LogLevel::Warn, message).ok();
    }

    fn store(&self) -> &dyn SharedStore {
        self
    }
}

impl Context for PylonHttp {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body: usize, _: usize) {
        if self.call != Some(token) {
            return;
        }
        self.call = None;
        // Hosts answer a failed or timed-out call with no `:status`.
        // Bytes: the SDK's text getter panics on a value that is not UTF-8.
        let status = self.get_http_call_response_header_bytes(":status");
        let answer = match status {
            Some(status) => CallAnswer::Response {
                status: std::str::from_utf8(&status)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                body: self
                    .get_http_call_response_body(0, body)
                    .unwrap_or_default(),
            },
            None => CallAnswer::Failed,
        };
        if let Action::Continue = self.apply(Event::CallAnswer(answer), MapType::HttpRequestHeaders)
        {
            self.resume_http_request();
        }
    }
}

impl PylonHttp {
    /// The request is over: its access-log fields go to filter state
    /// (`wasm.pylon_*`, one host call each) and its series are counted
    /// (one host call each; `metrics::updates` says which).
    fn record(&self) {
        for (key, value) in self.pipeline.access_log() {
            hostcalls::set_property(vec![key], Some(value.as_bytes())).ok();
        }
        let (Some(summary), Some(gw)) = (self.pipeline.summary(&Envoy::default()), &self.gateway)
        else {
            return;
        };
        let mut ids = self.metric_ids.borrow_mut();
        metrics::updates(&summary, |series, op| {
            let id = match ids.get(&series) {
                Some(id) => *id,
                None => {
                    let kind = match series.metric.kind() {
                        Kind::Counter => MetricType::Counter,
                        Kind::Histogram => MetricType::Histogram,
                    };
                    let name = metrics::series_name(gw, series);
                    let Ok(id) = hostcalls::define_metric(kind, &name) else {
                        return;
                    };
                    ids.insert(series, id);
                    id
                }
            };
            match op {
                Op::Increment => hostcalls::increment_metric(id, 1),
                Op::Record(v) => hostcalls::record_metric(id, v),
            }
            .ok();
        });
    }

    /// Feeds one event to the pipeline and carries out its outcome;
    /// `headers` is the map the event's header changes apply to.
    fn apply(&mut self, event: Event, headers: MapType) -> Action {
        let mut called = None;
        let action = match self.pipeline.handle(&Envoy::default(), event) {
            Outcome::Continue(ops) => {
                for op in ops {
                    match op {
                        HeaderOp::Set(name, value) => {
                            hostcalls::set_map_value(headers, name, value.as_deref()).unwrap()
                        }
                        HeaderOp::Replace(all) => hostcalls::set_map_bytes(headers, all).unwrap(),
                    }
                }
                Action::Continue
            }
            Outcome::WaitForBody => Action::Pause,
            Outcome::Reply(r) => {
                hostcalls::send_http_response(r.status, r.headers, Some(r.body)).unwrap();
                Action::Pause
            }
            Outcome::CallOut(call) => {
                let headers: Vec<(&str, &str)> = call
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let body = Some(call.body.as_slice());
                called = Some(hostcalls::dispatch_http_call(
                    &call.cluster,
                    headers,
                    body,
                    Vec::new(),
                    call.timeout,
                ));
                Action::Pause
            }
            Outcome::ReplaceBody { size, with } => {
                hostcalls::set_buffer(BufferType::HttpResponseBody, 0, size, with).unwrap();
                Action::Continue
            }
        };
        match called {
            Some(Ok(token)) => self.call = Some(token),
            // The call could not even start: the pipeline hears a failure.
            Some(Err(_)) => {
                return self.apply(Event::CallAnswer(CallAnswer::Failed), headers);
            }
            None => {}
        }
        action
    }
}

impl HttpContext for PylonHttp {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        // Bytes: a value need not be UTF-8, and the SDK's text getters
        // panic on one that is not (request_head.rs says what it means).
        let head = RequestHead::from_bytes(self.get_http_request_headers_bytes());
        let event = Event::RequestHeaders {
            head,
            end_of_stream,
        };
        self.apply(event, MapType::HttpRequestHeaders)
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        let event = Event::RequestBody {
            buffered: size,
            end_of_stream,
        };
        self.apply(event, MapType::HttpRequestHeaders)
    }

    fn on_http_request_trailers(&mut self, _n: usize) -> Action {
        self.apply(Event::RequestTrailers, MapType::HttpRequestHeaders)
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        let event = Event::ResponseHeaders { end_of_stream };
        self.apply(event, MapType::HttpResponseHeaders)
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        let event = Event::ResponseBody {
            size,
            end_of_stream,
        };
        self.apply(event, MapType::HttpResponseHeaders)
    }

    fn on_log(&mut self) {
        self.record();
    }
}
