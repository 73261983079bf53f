//! Emitters: one resolved model (`lower::Compiled`), several targets.

pub mod bootstrap;
pub mod istio;
pub mod xds;
