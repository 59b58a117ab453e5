//! Connection workers: a few threads, each running a single-threaded runtime of its
//! own, that serve the connections handed to them from first byte to last.
//!
//! On a multi-threaded runtime a ready socket wakes a second thread to look for work
//! it will not find, and a connection's requests move between threads; on two cores
//! that halved the rate of one busy connection. Here a connection stays on the
//! thread that got it, like an nginx worker's. The accept loops, the feed and the
//! operator endpoints stay on the main runtime; what a request hands to
//! `spawn_blocking` runs on its worker's blocking pool.
//!
//! Pinned (the default), worker k runs only on the k-th CPU the process may use, and
//! a connection goes to a worker of the CPU its packets arrive on (the socket's
//! `SO_INCOMING_CPU`, which the accept loop reads): a client and the worker that
//! answers it then take turns on one CPU instead of each keeping a CPU busy for the
//! other's requests. Unpinned, or for a connection from a CPU without a worker,
//! workers take connections in turn.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// Work to start on a worker, inside its runtime (it spawns the connection's task).
pub type Job = Box<dyn FnOnce() + Send>;

pub struct Workers {
    queues: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
    /// By CPU number: the workers pinned to that CPU (all empty when unpinned).
    on_cpu: Vec<Vec<usize>>,
}

impl Workers {
    /// `n` worker threads (at least one), pinned one to each CPU the process may run
    /// on (in turn, when there are more workers than CPUs) when `pin` and there are
    /// workers for all of them. They end when the `Workers` is dropped, dropping the
    /// connections still open then.
    pub fn start(n: usize, pin: bool) -> std::io::Result<Workers> {
        let cpus = if pin {
            pinning_cpus(n.max(1))
        } else {
            Vec::new()
        };
        let mut queues = Vec::new();
        let mut on_cpu: Vec<Vec<usize>> = Vec::new();
        for i in 0..n.max(1) {
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            if let Some(c) = cpu {
                if on_cpu.len() <= c {
                    on_cpu.resize(c + 1, Vec::new());
                }
                on_cpu[c].push(i);
            }
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("conn-worker-{i}"))
                .spawn(move || {
                    if let Some(c) = cpu {
                        pin_to(c);
                    }
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
            on_cpu,
        })
    }

    /// Runs `job` on a worker pinned to `cpu` (the CPU the connection's packets
    /// arrive on), or on the next worker in turn when there is none.
    pub fn run(&self, cpu: Option<u32>, job: Job) {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let pinned = cpu
            .and_then(|c| self.on_cpu.get(usize::try_from(c).ok()?))
            .filter(|ws| !ws.is_empty());
        let i = match pinned {
            Some(ws) => ws[turn % ws.len()],
            None => turn % self.queues.len(),
        };
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

/// The CPUs `n` workers are pinned to: every CPU the process may run on, or none
/// when the workers are fewer (a CPU quota, or `--workers` below the CPU count):
/// pinned to a few of many CPUs, they could not leave a busy one, and most
/// connections would arrive elsewhere anyway.
fn pinning_cpus(n: usize) -> Vec<usize> {
    let cpus = allowed_cpus();
    if n < cpus.len() {
        tracing::info!(
            workers = n,
            cpus = cpus.len(),
            "fewer workers than CPUs; the workers are not pinned"
        );
        return Vec::new();
    }
    cpus
}

/// The CPUs this process may run on, in order (empty when that cannot be read).
fn allowed_cpus() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| set.is_set(c))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the CPUs this process may use; workers are not pinned");
            Vec::new()
        }
    }
}

/// Pins the calling thread to `cpu`; a failure leaves it to the scheduler (its
/// connections are still served, only not beside their packets).
fn pin_to(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        tracing::warn!(cpu, error = %e, "a connection worker could not be pinned to its CPU");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_turn_on_runtimes_of_their_own() {
        let workers = Workers::start(2, false).expect("start");
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            workers.run(
                Some(0),
                Box::new(move || {
                    let name = std::thread::current().name().map(str::to_owned);
                    tokio::spawn(async move {
                        tokio::task::yield_now().await;
                        let _ = tx.send(name);
                    });
                }),
            );
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

    #[test]
    fn pinned_a_connection_is_served_on_the_cpu_its_packets_came_in_on() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty(), "this process may run somewhere");
        // More workers than CPUs: each CPU gets several, and every one of them
        // runs where it is pinned.
        let workers = Workers::start(cpus.len() * 2, true).expect("start");
        let (tx, rx) = std::sync::mpsc::channel();
        for round in 0..20 {
            for &c in &cpus {
                let tx = tx.clone();
                let cpu = u32::try_from(c).expect("a CPU number");
                workers.run(
                    Some(cpu),
                    Box::new(move || {
                        let _ = tx.send((round, c, rustix::thread::sched_getcpu()));
                    }),
                );
            }
        }
        for _ in 0..20 * cpus.len() {
            let (round, wanted, ran_on) = rx.recv().expect("ran");
            assert_eq!(
                ran_on, wanted,
                "round {round}: served on the connection's CPU"
            );
        }
        // Fewer workers than CPUs: none pinned, every connection served in turn.
        if cpus.len() > 1 {
            let few = Workers::start(cpus.len() - 1, true).expect("start");
            assert!(few.on_cpu.iter().all(Vec::is_empty));
        }
        // A CPU without a worker (or none known) still gets served, in turn.
        let tx2 = tx.clone();
        workers.run(
            Some(u32::MAX),
            Box::new(move || {
                let _ = tx2.send((9, 0, 0));
            }),
        );
        workers.run(
            None,
            Box::new(move || {
                let _ = tx.send((9, 0, 0));
            }),
        );
        assert_eq!(rx.recv().expect("ran").0, 9);
        assert_eq!(rx.recv().expect("ran").0, 9);
    }
}
