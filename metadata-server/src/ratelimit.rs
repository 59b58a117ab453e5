//! Per-caller rate limiting: a token bucket per resolved instance (or per peer address
//! for callers we cannot place), refilled continuously. Bounded: when the table is
//! full, buckets that are full again (idle callers) are dropped. The clock is passed in.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;
use uuid::Uuid;

/// Whom a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    Instance(Uuid),
    Peer(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct RateLimiter<K = RateKey> {
    per_second: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Copy> RateLimiter<K> {
    /// `per_second` sustained, `burst` at once; `max_keys` buckets at most.
    pub fn new(per_second: f64, burst: u32, max_keys: usize) -> Self {
        RateLimiter {
            per_second: per_second.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when `key` may make a request at `now`, else the seconds to wait.
    pub fn check(&self, key: K, now: Instant) -> Result<(), u64> {
        let mut g = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() >= self.max_keys && !g.contains_key(&key) {
            let (rate, burst) = (self.per_second, self.burst);
            g.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
            });
            if g.len() >= self.max_keys {
                // Still full of active callers: refuse newcomers rather than grow.
                return Err(1);
            }
        }
        let b = g.entry(key).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills() {
        let rl = RateLimiter::<u32>::new(2.0, 3, 10);
        let t = Instant::now();
        assert!(rl.check(1, t).is_ok());
        assert!(rl.check(1, t).is_ok());
        assert!(rl.check(1, t).is_ok());
        assert_eq!(rl.check(1, t), Err(1));
        assert!(rl.check(2, t).is_ok(), "other keys have their own bucket");
        assert!(rl.check(1, t + Duration::from_millis(600)).is_ok());
    }

    #[test]
    fn table_is_bounded() {
        let rl = RateLimiter::<u32>::new(1.0, 1, 2);
        let t = Instant::now();
        assert!(rl.check(1, t).is_ok());
        assert!(rl.check(2, t).is_ok());
        assert!(rl.check(3, t).is_err());
        assert!(
            rl.check(3, t + Duration::from_secs(5)).is_ok(),
            "idle buckets are dropped"
        );
    }
}
