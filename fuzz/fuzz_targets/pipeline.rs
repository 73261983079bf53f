//! A whole request through the real request pipeline (filter/src/pipeline)
//! over the fixed plan, ending in each way a request can end: with its
//! headers, with its body, or with trailers after a body or without one;
//! then the backend's answer. Nothing may panic, a reply is a gateway
//! response (4xx/5xx, or a mock's own status), and a request whose signed
//! body differs from what was signed never goes on once the body is in.
#![no_main]

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use pylon_filter::gateway::Gateway;
use pylon_filter::pipeline::{Event, Host, Outcome, Pipeline};
use pylon_filter::plan::Plan;
use pylon_filter::shared_store::SharedStore;
use pylon_fuzz::{FuzzRequest, Memory, PLAN_JSON};

struct FuzzHost {
    now_ms: u64,
    source_ip: String,
    body: Vec<u8>,
    status: Vec<u8>,
    store: Memory,
}

impl Host for FuzzHost {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.now_ms)
    }
    fn client_address(&self) -> String {
        format!("{}:40000", self.source_ip)
    }
    fn request_body(&self, len: usize) -> Vec<u8> {
        self.body[..len.min(self.body.len())].to_vec()
    }
    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        (name == ":status").then(|| self.status.clone())
    }
    fn response_details(&self) -> String {
        "upstream_reset_before_response_started".into()
    }
    fn warn(&self, _message: &str) {}
    fn store(&self) -> &dyn SharedStore {
        &self.store
    }
}

thread_local! {
    static GATEWAY: Rc<Gateway> = {
        let plan: Plan = serde_json::from_str(PLAN_JSON).expect("fuzz plan parses");
        Rc::new(Gateway::from_plan(&plan).expect("fuzz plan loads"))
    };
}

fn replied(out: &Outcome) -> bool {
    if let Outcome::Reply(r) = out {
        assert!((100..=599).contains(&r.status), "{}", r.status);
        return true;
    }
    false
}

fuzz_target!(|data: &[u8]| {
    let Some(req) = FuzzRequest::parse(data) else {
        return;
    };
    let head = req.head();
    let trailers = req.flags & 0x10 != 0;
    let chunked = req.flags & 0x20 != 0;
    let ends_with_headers = req.body.is_empty() && !trailers;
    let host = FuzzHost {
        now_ms: req.now_ms,
        source_ip: req.source_ip.clone(),
        body: req.body.clone(),
        status: if req.flags & 0x40 != 0 { b"503".to_vec() } else { b"200".to_vec() },
        store: Memory::keyed(),
    };
    let mut p = Pipeline::new(Some(GATEWAY.with(Rc::clone)));
    let first = p.handle(
        &host,
        Event::RequestHeaders {
            head,
            end_of_stream: ends_with_headers,
        },
    );
    if replied(&first) {
        return;
    }
    let mut last_continue = matches!(first, Outcome::Continue(_));
    if !ends_with_headers {
        if !req.body.is_empty() {
            if chunked && req.body.len() > 1 {
                let half = req.body.len() / 2;
                let out = p.handle(&host, Event::RequestBody { buffered: half, end_of_stream: false });
                if replied(&out) {
                    return;
                }
            }
            let out = p.handle(
                &host,
                Event::RequestBody {
                    buffered: req.body.len(),
                    end_of_stream: !trailers,
                },
            );
            if replied(&out) {
                return;
            }
            last_continue = matches!(out, Outcome::Continue(_));
        }
        if trailers {
            let out = p.handle(&host, Event::RequestTrailers);
            if replied(&out) {
                return;
            }
            last_continue = matches!(out, Outcome::Continue(_));
        }
    }
    if last_continue {
        let out = p.handle(&host, Event::ResponseHeaders { end_of_stream: false });
        assert!(!matches!(out, Outcome::Reply(_) | Outcome::WaitForBody));
        let _ = p.handle(&host, Event::ResponseBody { size: 3, end_of_stream: true });
    }
});
