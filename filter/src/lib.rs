//! Pylon: the gateway core (host-independent, unit-tested natively) and, for
//! `wasm32`, the thin proxy-wasm adapter that runs it inside Envoy.

pub mod acl;
pub mod aliyun_sign;
pub mod app_auth;
pub mod cors;
pub mod gateway;
pub mod huawei_sign;
pub mod limits;
pub mod mapping;
pub mod metrics;
pub mod nonce;
pub mod params;
pub mod path_template;
pub mod percent;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod protocol;
pub mod request_head;
pub mod request_path;
pub mod response;
pub mod router;
pub mod seal;
pub mod shared_store;
pub mod slot_table;
pub mod stage;
pub mod throttle;

#[cfg(target_arch = "wasm32")]
mod adapter;
