//! Who is calling (Huawei user guide, APP authentication; Alibaba quick
//! start): the AppKey or AK claimed, Huawei and Alibaba signatures
//! (correct, tampered or as sent), AppCodes in headers and query, against
//! the apps and accounts of the fuzz plan.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon_filter::app_auth::{app_code, signature_needs_body, strip_app_code_param, AuthPolicy};
use pylon_filter::plan::AppCodeMode;
use pylon_filter::request_head::RequestHead;
use pylon_fuzz::{gateway, FuzzRequest, Signing};

fuzz_target!(|data: &[u8]| {
    let Some(req) = FuzzRequest::parse(data) else {
        return;
    };
    let gw = gateway();
    let head = req.head();
    let _ = signature_needs_body(&head);
    let _ = app_code(&head);
    let _ = gw.apps.claimed(&head);
    let _ = gw.accounts.claimed(&head);
    let bits = req.flags;
    let policy = AuthPolicy {
        allow_hmac_sha1: bits & 1 != 0,
        app_code: match bits >> 1 & 3 {
            0 => AppCodeMode::Disabled,
            1 => AppCodeMode::Https,
            _ => AppCodeMode::HttpAllowed,
        },
        https: bits & 8 != 0,
    };
    let app = gw.apps.authenticate(&head, &req.body, req.now_ms, policy);
    if let Ok(caller) = &app {
        let _ = gw.apps.get(caller.app);
    }
    let account = gw
        .accounts
        .authenticate_account(&head, &req.body, req.now_ms);
    if let Ok(a) = account {
        let _ = gw.accounts.get(a);
    }
    // A tampered signature never passes.
    if let Signing::HuaweiTampered { .. } = req.signing {
        assert!(
            app.is_err() && account.is_err(),
            "tampered signature accepted"
        );
    }
    // An AppCode in the query never reaches the backend.
    let stripped = strip_app_code_param(head.path());
    let after = RequestHead::new(vec![(":path".into(), stripped.into_owned())]);
    assert_eq!(app_code(&after), None, "AppCode left in {:?}", head.path());
});
