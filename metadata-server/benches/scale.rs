//! Memory and lookup time with 100,000 instances loaded (run with
//! `cargo bench -p metadata-server --bench scale`). Prints numbers; asserts nothing.
//!
//! Builds the instance set (each document parsed, validated and kept compact, as the
//! server loads them), then answers `meta_data.json` for instances picked at random:
//! the first request of an instance renders its tree (cold), later ones hit the
//! bounded cache (warm). Also, over a small working set and over all instances, the
//! lookup alone (address to the entry's handle, the entry not read: the index should
//! not grow slower with the number of instances) and identification (the lookup, the
//! request's checks and a reference taken on the entry, which reads the entry's line
//! from memory once the set outgrows the CPU cache). The working-set and all-instances
//! loops of these two alternate over [`ROUNDS`] rounds, the one going first changing
//! every round, and their medians are printed: on a shared VM one loop alone can be
//! twice as slow as the same loop a moment later.
//! Resident memory is read from /proc/self/statm. CACHE_MIB sets the render cache
//! (default 64).

use bytes::Bytes;
use compute::{Instance, Settings};
use http::{HeaderMap, Method};
use metadata_server::answer::{Outcome, RequestParts, Responder, TokenMode};
use metadata_server::cache::RenderCache;
use metadata_server::identity::{identify, IdentityConfig, Peer};
use metadata_server::store::{Document, InstanceSet};
use metadata_server::token::TokenAuthority;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn ip_of(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i + 1)
}

fn doc(i: u32) -> Vec<u8> {
    let uuid = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
    let ip = ip_of(i);
    format!(
        r#"{{"uuid": "{uuid}", "name": "vm-{i}", "project_id": "p{}", "meta": {{"role": "web"}},
        "keys": [{{"name": "k", "type": "ssh", "data": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx{i:08} op@host"}}],
        "user_data": "I2Nsb3VkLWNvbmZpZwpwYWNrYWdlczogW25naW54XQo=",
        "network": {{"links": [{{"id": "tap{i}", "vif_id": "v{i}", "type": "ovs", "mtu": 1500, "ethernet_mac_address": "fa:16:3e:{:02x}:{:02x}:{:02x}"}}],
          "networks": [{{"id": "network0", "type": "ipv4", "link": "tap{i}", "network_id": "n", "ip_address": "{ip}", "netmask": "255.0.0.0",
            "routes": [{{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}}], "services": [{{"type": "dns", "address": "10.0.0.2"}}]}}],
          "services": [{{"type": "dns", "address": "10.0.0.2"}}]}}}}"#,
        i % 100,
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    )
    .into_bytes()
}

/// A small deterministic generator (xorshift) so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Mean time of `f` over `calls` instances picked at random among the first `span`.
fn per_call(calls: u32, span: u32, rng: &mut Rng, f: impl Fn(u32)) -> Duration {
    let t = Instant::now();
    for _ in 0..calls {
        f((rng.next() % u64::from(span)) as u32);
    }
    t.elapsed() / calls
}

/// Rounds of each alternated pair of loops.
const ROUNDS: usize = 7;

/// Medians of `f`'s mean time over a working set of `hot` and over all `n`
/// instances (`calls` each), alternated over [`ROUNDS`] rounds, and the median of
/// the rounds' all/working-set ratios.
fn hot_and_all(
    calls: u32,
    hot: u32,
    n: u32,
    rng: &mut Rng,
    f: impl Fn(u32),
) -> (Duration, Duration, f64) {
    let (mut hots, mut alls, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (h, a) = if round % 2 == 0 {
            let h = per_call(calls, hot, rng, &f);
            (h, per_call(calls, n, rng, &f))
        } else {
            let a = per_call(calls, n, rng, &f);
            (per_call(calls, hot, rng, &f), a)
        };
        hots.push(h);
        alls.push(a);
        ratios.push(a.as_secs_f64() / h.as_secs_f64().max(f64::MIN_POSITIVE));
    }
    hots.sort();
    alls.sort();
    ratios.sort_by(f64::total_cmp);
    (hots[ROUNDS / 2], alls[ROUNDS / 2], ratios[ROUNDS / 2])
}

fn run(n: u32, cache_bytes: usize) {
    let base = rss_mib();
    let t = Instant::now();
    let documents: Vec<Document> = (0..n)
        .map(|i| Document::new(&Instance::from_json(&doc(i)).expect("valid doc")))
        .collect();
    let set = InstanceSet::build(documents, None).expect("set");
    let load = t.elapsed();
    let loaded = rss_mib();
    let responder = Responder {
        cache: RenderCache::new(Arc::new(Settings::default()), cache_bytes),
        tokens: TokenAuthority::new([0; 32]),
        token_mode: TokenMode::Optional,
        token_mode_for: Default::default(),
        dynamic_vendor_data: false,
    };
    let config = IdentityConfig::default();
    let headers = HeaderMap::new();
    let body = Bytes::new();
    let path = compute::metadata::MetadataPath::parse("/openstack/latest/meta_data.json");
    let answer = |i: u32| {
        // A fresh memo: every request pays the shared cache, as from a new connection.
        let mut memo = metadata_server::cache::TreeMemo::default();
        let who = identify(&config, &set, Peer::Addr(IpAddr::V4(ip_of(i))), &headers);
        let req = RequestParts {
            method: &Method::GET,
            path: path.as_ref(),
            headers: &headers,
            body: &body,
        };
        match responder.answer(req, &who, 0, &mut memo) {
            Outcome::Reply(r) => assert_eq!(r.status, 200),
            _ => panic!("unexpected outcome"),
        }
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Cold: instances never asked before (each renders its tree once).
    let cold_n = 20_000.min(n);
    let t = Instant::now();
    for i in 0..cold_n {
        answer(i);
    }
    let cold = t.elapsed() / cold_n;
    let after_cold = rss_mib();
    // Warm: the same small working set whatever n is (flat per request?).
    let hot = 500.min(n).max(1);
    for i in 0..hot {
        answer(i);
    }
    let warm = per_call(200_000, hot, &mut rng, answer);
    // Random over all instances: mostly cache misses once n exceeds the cache.
    let spread = per_call(20_000, n, &mut rng, answer);
    // Identification alone: a hot few against all of them.
    let who = |i: u32| {
        let w = identify(&config, &set, Peer::Addr(IpAddr::V4(ip_of(i))), &headers);
        std::hint::black_box(w.instance().map(|e| e.generation));
    };
    let (id_warm, id_spread, id_ratio) = hot_and_all(200_000, hot, n, &mut rng, who);
    // The index alone: address to the entry's handle, the entry itself not read.
    let find = |i: u32| {
        let e = set.by_ip(&IpAddr::V4(ip_of(i)));
        std::hint::black_box(e.map(Arc::as_ptr));
    };
    let (find_warm, find_spread, find_ratio) = hot_and_all(1_000_000, hot, n, &mut rng, find);
    println!(
        "instances {n:>7}  load {:>6.2}s  rss: instances {:>7.1} MiB ({:>5.0} B each), +cache({} trees) {:>6.1} MiB  \
         answer: warm {:>6.2} us, cold(render) {:>6.1} us, uniform-random {:>6.1} us  \
         lookup: warm {:>5.3} us, uniform-random {:>5.3} us ({:.2}x)  \
         identify: warm {:>5.3} us, uniform-random {:>5.3} us ({:.2}x)",
        load.as_secs_f64(),
        loaded - base,
        (loaded - base) * 1024.0 * 1024.0 / f64::from(n),
        responder.cache.len(),
        after_cold - loaded,
        warm.as_nanos() as f64 / 1000.0,
        cold.as_nanos() as f64 / 1000.0,
        spread.as_nanos() as f64 / 1000.0,
        find_warm.as_nanos() as f64 / 1000.0,
        find_spread.as_nanos() as f64 / 1000.0,
        find_ratio,
        id_warm.as_nanos() as f64 / 1000.0,
        id_spread.as_nanos() as f64 / 1000.0,
        id_ratio,
    );
}

fn main() {
    let cache_mib: usize = std::env::var("CACHE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this file too,
    // unoptimised: there, a small run only checks that it still works.
    let sizes: &[u32] = if std::env::args().any(|a| a == "--bench") {
        &[1_000, 100_000]
    } else {
        &[1_000]
    };
    for &n in sizes {
        run(n, cache_mib << 20);
    }
}
