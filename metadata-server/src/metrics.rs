//! Counters for `/metrics` in Prometheus' text format: requests by route and status,
//! a latency histogram and the security-relevant events. Routes are a small fixed set
//! of labels (never raw paths), so the series count stays bounded.

use compute::metadata::MetadataPath;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS_SECONDS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0,
];

/// Events counted besides requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A caller we could not place (unknown address, unknown signed instance).
    IdentificationFailure,
    /// Signed headers whose signature did not match.
    SignatureMismatch,
    /// A request from a known instance that carried no IMDSv2 token.
    Tokenless,
    /// A request refused with 429.
    Throttled,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    buckets: [AtomicU64; BUCKETS_SECONDS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    identification_failures: AtomicU64,
    signature_mismatches: AtomicU64,
    tokenless: AtomicU64,
    throttled: AtomicU64,
}

/// The label for a request path.
pub fn route_label(path: Option<&MetadataPath>) -> &'static str {
    let Some(path) = path else { return "invalid" };
    let s: Vec<&str> = path.segments().iter().map(String::as_str).collect();
    match s.as_slice() {
        ["ec2"] => "ec2_versions",
        ["openstack"] => "openstack_versions",
        ["ec2", "latest", "api", "token"] => "token",
        ["ec2", _, "meta-data", ..] => "ec2_meta_data",
        ["ec2", _, "user-data"] => "ec2_user_data",
        ["openstack", _, "meta_data.json"] => "openstack_meta_data",
        ["openstack", _, "network_data.json"] => "openstack_network_data",
        ["openstack", _, "user_data"] => "openstack_user_data",
        ["openstack", _, "password"] => "openstack_password",
        ["openstack", _, "vendor_data.json"] => "openstack_vendor_data",
        ["openstack", _, "vendor_data2.json"] => "openstack_vendor_data2",
        ["openstack", "content", ..] => "openstack_content",
        ["openstack", ..] => "openstack_other",
        _ => "ec2_other",
    }
}

impl Metrics {
    pub fn request(&self, route: &'static str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route, status))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS_SECONDS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn event(&self, event: Event) {
        let c = match event {
            Event::IdentificationFailure => &self.identification_failures,
            Event::SignatureMismatch => &self.signature_mismatches,
            Event::Tokenless => &self.tokenless,
            Event::Throttled => &self.throttled,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, instances: usize, cached_trees: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP metadata_requests_total Requests answered, by route and status.\n");
        out.push_str("# TYPE metadata_requests_total counter\n");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "metadata_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP metadata_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE metadata_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (b, c) in BUCKETS_SECONDS.iter().zip(&self.buckets) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "metadata_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "metadata_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "metadata_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "metadata_request_duration_seconds_count {count}");
        let counters = [
            (
                "metadata_identification_failures_total",
                "Callers that could not be placed.",
                &self.identification_failures,
            ),
            (
                "metadata_signature_mismatches_total",
                "Signed proxy headers with a bad signature.",
                &self.signature_mismatches,
            ),
            (
                "metadata_tokenless_requests_total",
                "Requests from instances without an IMDSv2 token.",
                &self.tokenless,
            ),
            (
                "metadata_throttled_requests_total",
                "Requests refused by the rate limit.",
                &self.throttled,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP metadata_instances Instances loaded.\n# TYPE metadata_instances gauge\nmetadata_instances {instances}");
        let _ = writeln!(
            out,
            "# HELP metadata_cached_trees Rendered trees in the cache.\n# TYPE metadata_cached_trees gauge\nmetadata_cached_trees {cached_trees}"
        );
        out
    }
}
