//! The work queue: per host, oldest first, taken once, finished once.

use crate::{Fixture, HOST};
use compute_store::{StoreError, WorkAction, WorkOutcome, WorkState};
use std::collections::HashSet;
use std::sync::{Arc, Barrier};

fn work_is_taken_oldest_first_per_host_and_finished_once(f: Fixture) {
    let s = f.store_with_host();
    assert_eq!(s.take_work(HOST).expect("empty"), None);
    let a = s.enqueue(HOST, "u1", &WorkAction::Boot).expect("enqueue");
    let b = s
        .enqueue(HOST, "u1", &WorkAction::Stop { timeout_secs: 30 })
        .expect("enqueue");
    let other = s.enqueue("h9", "u2", &WorkAction::Delete).expect("enqueue");
    assert!(a < b);
    let w = s.work(a).expect("work");
    assert_eq!((w.state, w.started_at), (WorkState::Queued, None));
    assert!(w.created_at.ends_with('Z'), "{}", w.created_at);

    let first = s.take_work(HOST).expect("take").expect("one");
    assert_eq!(
        (first.id, first.action, first.state),
        (a, WorkAction::Boot, WorkState::Running)
    );
    assert!(first.started_at.is_some());
    let second = s.take_work(HOST).expect("take").expect("two");
    assert_eq!(second.action, WorkAction::Stop { timeout_secs: 30 });
    assert_eq!(
        s.take_work(HOST).expect("take"),
        None,
        "h9's work is not h1's"
    );

    s.finish_work(a, &WorkOutcome::Done).expect("done");
    s.finish_work(b, &WorkOutcome::Failed("QEMU exited".into()))
        .expect("failed");
    assert_eq!(s.work(a).expect("a").state, WorkState::Done);
    let failed = s.work(b).expect("b");
    assert_eq!(failed.state, WorkState::Failed("QEMU exited".into()));
    assert!(failed.finished_at.is_some());
    let err = s.finish_work(a, &WorkOutcome::Done).expect_err("twice");
    assert_eq!(
        err.to_string(),
        format!("work item {a} is done, not running: only running work can be finished")
    );
    assert!(matches!(
        s.finish_work(other, &WorkOutcome::Done),
        Err(StoreError::WorkNotRunning { .. })
    ));
    assert!(matches!(s.work(999_999), Err(StoreError::NotFound { .. })));
}

fn running_work_of_a_restarted_agent_is_queued_again(f: Fixture) {
    let s = f.store_with_host();
    let a = s
        .enqueue(HOST, "u1", &WorkAction::Reboot { hard: true })
        .expect("enqueue");
    s.take_work(HOST).expect("take").expect("taken");
    assert_eq!(s.requeue_running(HOST).expect("requeue"), 1);
    let again = s.take_work(HOST).expect("take").expect("again");
    assert_eq!(
        (again.id, again.action),
        (a, WorkAction::Reboot { hard: true })
    );
}

fn concurrent_takers_never_get_the_same_item(f: Fixture) {
    let s = f.store_with_host();
    let n = 24;
    for i in 0..n {
        s.enqueue(HOST, &format!("u{i}"), &WorkAction::Start)
            .expect("enqueue");
    }
    let takers = 4;
    let barrier = Arc::new(Barrier::new(takers));
    let handles: Vec<_> = (0..takers)
        .map(|_| {
            let s = f.store();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut got = Vec::new();
                while let Some(w) = s.take_work(HOST).expect("take") {
                    got.push(w.id);
                }
                got
            })
        })
        .collect();
    let all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("taker"))
        .collect();
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!((all.len(), unique.len()), (n, n));
}

crate::both!(
    work_is_taken_oldest_first_per_host_and_finished_once,
    running_work_of_a_restarted_agent_is_queued_again,
    concurrent_takers_never_get_the_same_item,
);
