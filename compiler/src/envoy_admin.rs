//! Asking a running Envoy (its admin port) whether it applied the live
//! files. Envoy validates an update itself and keeps its old configuration
//! when it refuses one (for example a plan whose sealed secrets do not open
//! with the key in Envoy's environment); `publish` must then not record a
//! publication callers never see.

use std::time::{Duration, Instant};

/// Envoy's counters of refused updates from the live files.
const REJECTED: [&str; 4] = [
    "cluster_manager.cds.update_rejected",
    "http.pylon.rds.pylon.update_rejected",
    "extension_config_discovery.http_filter.pylon.update_rejected",
    "listener_manager.lds.update_rejected",
];

pub struct Admin {
    base: String,
}

impl Admin {
    /// The admin endpoint, if an Envoy answers there.
    pub fn probe(host: &str, port: u16) -> Option<Admin> {
        let host = match host {
            "0.0.0.0" => "127.0.0.1",
            "::" => "::1",
            h => h,
        };
        let base = if host.contains(':') {
            format!("http://[{host}]:{port}")
        } else {
            format!("http://{host}:{port}")
        };
        let admin = Admin { base };
        admin.stats().ok().map(|_| admin)
    }

    fn stats(&self) -> Result<Vec<(String, String)>, String> {
        let text = ureq::get(&format!("{}/stats", self.base))
            .timeout(Duration::from_secs(2))
            .call()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|e| e.to_string())?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect())
    }

    /// Refused updates so far.
    pub fn rejected(&self) -> u64 {
        self.stats()
            .map(|s| {
                s.iter()
                    .filter(|(k, _)| REJECTED.contains(&k.as_str()))
                    .filter_map(|(_, v)| v.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Waits until Envoy reports every `(stat, version)`, or refuses an
    /// update (more rejections than `rejected_before`), or `within` passes.
    pub fn wait_applied(
        &self,
        versions: &[(&str, String)],
        rejected_before: u64,
        within: Duration,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let stats = self.stats()?;
            let rejected: u64 = stats
                .iter()
                .filter(|(k, _)| REJECTED.contains(&k.as_str()))
                .filter_map(|(_, v)| v.parse::<u64>().ok())
                .sum();
            if rejected > rejected_before {
                return Err("Envoy refused the update (see its log)".into());
            }
            let applied = versions
                .iter()
                .all(|(stat, v)| stats.iter().any(|(k, got)| k == stat && got == v));
            if applied {
                return Ok(());
            }
            if start.elapsed() > within {
                return Err(format!(
                    "the Envoy on the admin address did not apply the update within {} s \
                     (is it running on this live directory's envoy.yaml?)",
                    within.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
