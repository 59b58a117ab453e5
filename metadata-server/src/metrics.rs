//! Counters for `/metrics` in Prometheus' text format: requests by route and status,
//! a latency histogram and the security-relevant events. Routes are a small fixed set
//! of labels (never raw paths), so the series count stays bounded.

use compute::metadata::MetadataPath;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// Every route label, in the order of the counters.
const ROUTES: [&str; 16] = [
    "invalid",
    "ec2_versions",
    "openstack_versions",
    "token",
    "ec2_meta_data",
    "ec2_user_data",
    "ec2_dynamic",
    "openstack_meta_data",
    "openstack_network_data",
    "openstack_user_data",
    "openstack_password",
    "openstack_vendor_data",
    "openstack_vendor_data2",
    "openstack_content",
    "openstack_other",
    "ec2_other",
];

/// Statuses counted one by one; anything else is counted as its class (`5xx`...).
const STATUSES: [u16; 14] = [
    200, 304, 400, 401, 403, 404, 405, 408, 409, 413, 429, 431, 500, 503,
];
const SLOTS: usize = STATUSES.len() + 5;

fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|s| *s == status)
        .unwrap_or_else(|| STATUSES.len() + usize::from(status / 100).clamp(1, 5) - 1)
}

fn slot_label(slot: usize) -> String {
    match STATUSES.get(slot) {
        Some(s) => s.to_string(),
        None => format!("{}xx", slot - STATUSES.len() + 1),
    }
}

/// What `/metrics` reads at the moment it is asked.
pub struct Gauges<'a> {
    pub instances: usize,
    pub cached_trees: usize,
    /// What the cached trees are charged, in bytes.
    pub cached_tree_bytes: usize,
    pub waiters: usize,
    pub feed: Option<&'a crate::feed::FeedStatus>,
    /// Access-log lines written and dropped (the queue was full).
    pub access_log: &'a crate::accesslog::LogCounters,
}

/// Lock-free: one counter per (route, status slot), in a few shards that threads
/// pick by a number of their own, so that two cores counting requests do not keep
/// writing the same cache lines. `/metrics` sums the shards.
#[derive(Default)]
pub struct Metrics {
    shards: [Counters; COUNTER_SHARDS],
}

const COUNTER_SHARDS: usize = 4;

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed) % COUNTER_SHARDS;
}

/// One shard's counters, on cache lines of their own.
#[derive(Default)]
#[repr(align(128))]
struct Counters {
    requests: [[AtomicU64; SLOTS]; ROUTES.len()],
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
    // The first five segments (enough to tell every label apart: the longest exact
    // pattern has four), without allocating.
    let mut buf = [""; 5];
    let segs = path.segments();
    for (slot, seg) in buf.iter_mut().zip(segs) {
        *slot = seg.as_str();
    }
    match &buf[..segs.len().min(buf.len())] {
        ["ec2"] => "ec2_versions",
        ["openstack"] => "openstack_versions",
        ["ec2", "latest", "api", "token"] => "token",
        ["ec2", _, "meta-data", ..] => "ec2_meta_data",
        ["ec2", _, "user-data"] => "ec2_user_data",
        ["ec2", _, "dynamic", ..] => "ec2_dynamic",
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
    fn mine(&self) -> &Counters {
        &self.shards[SHARD.with(|s| *s)]
    }

    fn sum(&self, counter: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| counter(s).load(Ordering::Relaxed))
            .sum()
    }

    pub fn request(&self, route: &'static str, status: u16, took: Duration) {
        let c = self.mine();
        let r = ROUTES
            .iter()
            .position(|n| *n == route)
            .unwrap_or(ROUTES.len() - 1);
        c.requests[r][status_slot(status)].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS_SECONDS.iter().position(|b| secs <= *b) {
            c.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        c.latency_count.fetch_add(1, Ordering::Relaxed);
        c.latency_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn event(&self, event: Event) {
        let mine = self.mine();
        let c = match event {
            Event::IdentificationFailure => &mine.identification_failures,
            Event::SignatureMismatch => &mine.signature_mismatches,
            Event::Tokenless => &mine.tokenless,
            Event::Throttled => &mine.throttled,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, gauges: &Gauges<'_>) -> String {
        let mut out = String::new();
        out.push_str("# HELP metadata_requests_total Requests answered, by route and status.\n");
        out.push_str("# TYPE metadata_requests_total counter\n");
        for (r, route) in ROUTES.iter().enumerate() {
            for slot in 0..SLOTS {
                let n = self.sum(|c| &c.requests[r][slot]);
                if n > 0 {
                    let status = slot_label(slot);
                    let _ = writeln!(
                        out,
                        "metadata_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        out.push_str("# HELP metadata_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE metadata_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in BUCKETS_SECONDS.iter().enumerate() {
            cumulative += self.sum(|c| &c.buckets[i]);
            let _ = writeln!(
                out,
                "metadata_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        let count = self.sum(|c| &c.latency_count);
        let _ = writeln!(
            out,
            "metadata_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.sum(|c| &c.latency_sum_micros) as f64 / 1e6;
        let _ = writeln!(out, "metadata_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "metadata_request_duration_seconds_count {count}");
        let counters = [
            (
                "metadata_identification_failures_total",
                "Callers that could not be placed.",
                self.sum(|c| &c.identification_failures),
            ),
            (
                "metadata_signature_mismatches_total",
                "Signed proxy headers with a bad signature.",
                self.sum(|c| &c.signature_mismatches),
            ),
            (
                "metadata_tokenless_requests_total",
                "Requests from instances without an IMDSv2 token.",
                self.sum(|c| &c.tokenless),
            ),
            (
                "metadata_throttled_requests_total",
                "Requests refused by the rate limit.",
                self.sum(|c| &c.throttled),
            ),
        ];
        for (name, help, n) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}"
            );
        }
        let log = gauges.access_log;
        for (name, help, n) in [
            (
                "metadata_access_log_lines_total",
                "Access-log lines written.",
                log.written(),
            ),
            (
                "metadata_access_log_dropped_total",
                "Access-log lines dropped because the writer fell behind (its queue was full).",
                log.dropped(),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}"
            );
        }
        let mut gauge = |name: &str, help: &str, value: &dyn std::fmt::Display| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge("metadata_instances", "Instances loaded.", &gauges.instances);
        gauge(
            "metadata_cached_trees",
            "Rendered trees in the cache.",
            &gauges.cached_trees,
        );
        gauge(
            "metadata_cached_tree_bytes",
            "What the cached trees hold, about, in bytes.",
            &gauges.cached_tree_bytes,
        );
        gauge(
            "metadata_waiters",
            "Requests waiting for a change.",
            &gauges.waiters,
        );
        if let Some(feed) = gauges.feed {
            gauge(
                "metadata_feed_connected",
                "1 while the database answers the change feed.",
                &u8::from(feed.connected()),
            );
            gauge(
                "metadata_feed_lag_seconds",
                "Seconds since the feed last caught up with the database.",
                &feed.stale().as_secs_f64(),
            );
            gauge(
                "metadata_feed_rev",
                "The last database revision applied.",
                &feed.rev(),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_status() {
        let m = Metrics::default();
        m.request("token", 200, Duration::from_micros(50));
        m.request("token", 200, Duration::from_micros(50));
        m.request("ec2_other", 502, Duration::from_millis(2));
        m.request("ec2_other", 302, Duration::from_millis(2));
        let text = m.render(&Gauges {
            instances: 3,
            cached_trees: 1,
            cached_tree_bytes: 1,
            waiters: 0,
            feed: None,
            access_log: &Default::default(),
        });
        assert!(
            text.contains("metadata_requests_total{route=\"token\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("metadata_requests_total{route=\"ec2_other\",status=\"5xx\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("metadata_requests_total{route=\"ec2_other\",status=\"3xx\"} 1"),
            "{text}"
        );
        assert!(text.contains("metadata_request_duration_seconds_count 4"));
        assert!(text.contains("metadata_instances 3"));
    }

    #[test]
    fn every_label_is_countable() {
        for p in [
            "/",
            "/openstack",
            "/latest/api/token",
            "/openstack/latest/password",
            "/latest/dynamic/instance-identity/rsa2048",
            "/x/y",
        ] {
            let label = route_label(MetadataPath::parse(p).as_ref());
            assert!(ROUTES.contains(&label), "{label}");
        }
        assert_eq!(
            route_label(MetadataPath::parse("/2021-03-23/dynamic/instance-identity/").as_ref()),
            "ec2_dynamic"
        );
    }
}
