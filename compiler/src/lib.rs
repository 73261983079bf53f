//! The Pylon compiler as a library: API definitions in, Envoy configuration
//! and the filter's plan out. The `pylon` binary (`main.rs`) only parses
//! arguments and calls `commands`.

pub mod acls;
pub mod apps;
pub mod audit;
pub mod bindings;
pub mod call;
pub mod check;
pub mod commands;
pub mod defs;
pub mod emit;
pub mod envoy_admin;
pub mod error;
pub mod files;
pub mod lower;
pub mod names;
pub mod observability;
pub mod openapi;
pub mod params;
pub mod publish;
pub mod release_store;
pub mod resolve;
pub mod ssrf;
pub mod throttles;
pub mod tls;
