//! Connection workers: a few threads, each running a single-threaded runtime of its
//! own, that serve the connections handed to them (in turn) from first byte to last.
//!
//! On a multi-threaded runtime a ready socket wakes a second thread to look for work
//! it will not find, and a connection's requests move between threads; on two cores
//! that halved the rate of one busy connection. Here a connection stays on the
//! thread that got it, like an nginx worker's. The accept loops, the feed and the
//! operator endpoints stay on the main runtime; what a request hands to
//! `spawn_blocking` runs on its worker's blocking pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// Work to start on a worker, inside its runtime (it spawns the connection's task).
pub type Job = Box<dyn FnOnce() + Send>;

pub struct Workers {
    queues: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

impl Workers {
    /// `n` worker threads (at least one). They end when the `Workers` is dropped,
    /// dropping the connections still open then.
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let mut queues = Vec::new();
        for i in 0..n.max(1) {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("conn-worker-{i}"))
                .spawn(move || {
                    rt.block_on(async move {
                        while let Some(job) = rx.recv().await {
                            job();
                        }
                    })
                })?;
            queues.push(tx);
        }
        Ok(Workers {
            queues,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `job` on the next worker in turn.
    pub fn run(&self, job: Job) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        if let Err(e) = self.queues[i].send(job) {
            tracing::error!(
                worker = i,
                "a connection worker is gone; its connection is dropped"
            );
            drop(e);
        }
    }

    /// The number of CPUs, the default.
    pub fn default_count() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_turn_on_runtimes_of_their_own() {
        let workers = Workers::start(2).expect("start");
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            workers.run(Box::new(move || {
                let name = std::thread::current().name().map(str::to_owned);
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    let _ = tx.send(name);
                });
            }));
        }
        let mut names: Vec<_> = (0..4)
            .map(|_| rx.recv().expect("ran").expect("named"))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "conn-worker-0",
                "conn-worker-0",
                "conn-worker-1",
                "conn-worker-1"
            ]
        );
    }
}
