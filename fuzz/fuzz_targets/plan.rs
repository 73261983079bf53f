//! Plan loading as the filter does it at configuration time: arbitrary
//! bytes as JSON into `Plan`, then `Gateway::from_plan`; a plan that loads
//! then answers a few requests, counting them against its rate limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon_filter::gateway::{Caller, Gateway, Request};
use pylon_filter::plan::Plan;
use pylon_filter::request_head::RequestHead;
use pylon_filter::response::Context;
use pylon_filter::throttle;
use pylon_fuzz::{Memory, NOW_MS};

fuzz_target!(|data: &[u8]| {
    let Ok(plan) = serde_json::from_slice::<Plan>(data) else {
        return;
    };
    let Ok(gw) = Gateway::from_plan(&plan) else {
        return;
    };
    let store = Memory::keyed();
    let hosts: Vec<&str> = plan
        .groups
        .iter()
        .flat_map(|g| g.domains.iter().map(String::as_str))
        .take(3)
        .chain(["x"])
        .collect();
    // Bounded: a big plan must not turn one input into a timeout.
    for host in hosts {
        for g in plan.groups.iter().take(4) {
            for a in g.apis.iter().take(8) {
                let path = a.path.replace(['{', '}', '+'], "");
                for stage in plan.stages.iter().take(3) {
                    let r = Request {
                        method: "GET",
                        host,
                        path: &path,
                        stage,
                    };
                    let head = RequestHead::new(vec![
                        (":method".into(), "GET".into()),
                        (":path".into(), path.clone()),
                    ]);
                    match gw.route(&r) {
                        Ok(routed) => {
                            let h = routed.handle;
                            let counters =
                                gw.view(h).counters(Some("app"), Some("user"), Some("::1"));
                            let _ = throttle::admit(&store, NOW_MS, &counters);
                            let _ = gw.dispatch(&routed, &head, &Caller::default());
                        }
                        Err((scope, err)) => {
                            let _ = gw.render_error(scope, &err, &Context::default());
                        }
                    }
                }
            }
        }
    }
});
