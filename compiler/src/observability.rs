//! What the compiler adds to Envoy's configuration so an operator can see
//! the gateway (Huawei user guide §1.2 "监控告警"): stats tags that turn the
//! filter's `;label=value` stat names into Prometheus labels, and a JSON
//! access log fed by the filter's filter-state fields.

use pylon_filter::metrics::{tag_regex, LABELS};
use serde_json::{json, Map, Value};

/// Where the access log goes unless the definitions say otherwise.
pub const DEFAULT_ACCESS_LOG: &str = "/dev/stdout";

/// `stats_config` for the bootstrap: one tag per metric label
/// (`filter/src/metrics.rs`). Envoy cuts the first group out of the stat
/// name and keeps the second as the label's value.
pub fn stats_config() -> Value {
    let tags: Vec<Value> = LABELS
        .iter()
        .map(|l| json!({"tag_name": l, "regex": tag_regex(l)}))
        .collect();
    json!({"stats_tags": tags})
}

/// The access log's fields, documented in README "Monitoring". The filter's
/// fields are filter state it sets when the request ends (absent ones are
/// `null`); the rest is what Envoy measured. No header is logged but the
/// Envoy-made request id and the method, and the path goes without its
/// query: credentials (signatures, AppCodes) never reach the log.
pub const ACCESS_LOG_FIELDS: [(&str, &str); 18] = [
    ("time", "%START_TIME%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("api_id", "%FILTER_STATE(wasm.pylon_api_id:PLAIN)%"),
    ("api", "%FILTER_STATE(wasm.pylon_api:PLAIN)%"),
    ("group", "%FILTER_STATE(wasm.pylon_group:PLAIN)%"),
    ("stage", "%FILTER_STATE(wasm.pylon_stage:PLAIN)%"),
    ("app_id", "%FILTER_STATE(wasm.pylon_app_id:PLAIN)%"),
    ("account", "%FILTER_STATE(wasm.pylon_account:PLAIN)%"),
    ("client_address", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%FILTER_STATE(wasm.pylon_path:PLAIN)%"),
    ("status", "%RESPONSE_CODE%"),
    ("error_code", "%FILTER_STATE(wasm.pylon_error_code:PLAIN)%"),
    ("duration_ms", "%DURATION%"),
    (
        "backend_duration_ms",
        "%COMMON_DURATION(US_TX_BEG:US_RX_BEG:ms)%",
    ),
    ("bytes_in", "%BYTES_RECEIVED%"),
    ("bytes_out", "%BYTES_SENT%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
];

/// The connection manager's `access_log`: one JSON line per request to
/// `path` (`None`: no access log).
pub fn access_log(path: Option<&str>) -> Value {
    let Some(path) = path else {
        return json!([]);
    };
    let fields: Map<String, Value> = ACCESS_LOG_FIELDS
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": {"json_format": fields},
        },
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_gets_a_tag() {
        let tags = stats_config()["stats_tags"].as_array().unwrap().clone();
        assert_eq!(tags.len(), LABELS.len());
        assert_eq!(tags[0]["tag_name"], "api");
    }

    #[test]
    fn the_access_log_writes_one_json_line_per_request_or_nothing() {
        let log = access_log(Some("/var/log/pylon.json"));
        assert_eq!(log[0]["typed_config"]["path"], "/var/log/pylon.json");
        let fields = &log[0]["typed_config"]["log_format"]["json_format"];
        assert_eq!(
            fields["error_code"],
            "%FILTER_STATE(wasm.pylon_error_code:PLAIN)%"
        );
        assert_eq!(access_log(None), json!([]));
    }

    /// The filter writes its log fields only when a log reads them.
    #[test]
    fn the_plan_says_whether_an_access_log_reads_the_fields() {
        let lowered = |gateway: &str| {
            let yaml = format!("{gateway}groups:\n  - {{name: g, default: true}}\n");
            crate::lower::lower_yaml(&format!("obs-{}", gateway.len()), &yaml)
        };
        let default = lowered("");
        assert!(default.plan.access_log);
        assert_eq!(default.access_log.as_deref(), Some(DEFAULT_ACCESS_LOG));
        let off = lowered("gateway:\n  access_log: \"off\"\n");
        assert!(!off.plan.access_log);
        assert_eq!(off.access_log, None);
    }

    #[test]
    fn the_access_log_reads_no_credential_header() {
        for (_, v) in ACCESS_LOG_FIELDS {
            let v = v.to_ascii_lowercase();
            assert!(!v.contains("authorization") && !v.contains("signature"));
            assert!(!v.contains("appcode") && !v.contains(":path"));
        }
    }
}
