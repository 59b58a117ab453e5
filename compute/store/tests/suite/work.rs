//! The work queue: per host, oldest first, taken once, finished once.

use crate::{Fixture, HOST};
use compute_store::{StoreError, WorkAction, WorkOutcome, WorkState};
use std::collections::HashSet;
use std::sync::{Arc, Barrier};

fn work_is_taken_oldest_first_per_host_and_finished_once(f: Fixture) {
    let s = f.store_with_host();
    assert_eq!(s.take_work(HOST).expect("empty"), None);
    let a = s
        .enqueue(HOST, "u1", &WorkAction::Boot { config_drive: true })
        .expect("enqueue");
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
        (
            a,
            WorkAction::Boot { config_drive: true },
            WorkState::Running
        )
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

fn outputs_come_back_and_the_queue_lists_what_waits(f: Fixture) {
    let s = f.store_with_host();
    let a = s
        .enqueue(HOST, "u1", &WorkAction::ConsoleLog { length: Some(5) })
        .expect("enqueue");
    let b = s
        .enqueue(
            HOST,
            "u1",
            &WorkAction::Snapshot {
                image_name: "snap".into(),
            },
        )
        .expect("enqueue");
    let queued: Vec<u64> = s
        .queued_work(HOST)
        .expect("queued")
        .iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(queued, vec![a, b]);
    assert!(s.queued_work("h9").expect("queued").is_empty());
    let w = s.take_work(HOST).expect("take").expect("a");
    assert_eq!(w.action, WorkAction::ConsoleLog { length: Some(5) });
    assert_eq!(s.queued_work(HOST).expect("queued").len(), 1, "taken: gone");
    s.finish_work(a, &WorkOutcome::Output("line 1\nline 2\n".into()))
        .expect("done");
    let done = s.work(a).expect("a");
    assert_eq!(
        (done.state, done.output.as_deref()),
        (WorkState::Done, Some("line 1\nline 2\n"))
    );
    s.take_work(HOST).expect("take").expect("b");
    s.finish_work(b, &WorkOutcome::Failed("no disk".into()))
        .expect("failed");
    assert_eq!(
        s.work(b).expect("b").output,
        None,
        "a failure has no output"
    );
    // A boot queued before config_drive existed reads as one with a drive.
    assert_eq!(
        serde_json::from_str::<WorkAction>(r#"{"action":"boot"}"#).expect("old boot"),
        WorkAction::Boot { config_drive: true }
    );
}

fn an_instance_and_its_boot_are_recorded_together(f: Fixture) {
    let mut s = f.store_with_host();
    let flavor = s.flavor("m1.tiny").expect("flavor");
    let doc = |_, _| Ok("{}".to_owned());
    let new = |uuid: &'static str, host| compute_store::NewInstance {
        uuid,
        name: "vm",
        flavor: &flavor,
        image_id: "img",
        key_name: None,
        project_id: compute_store::DEFAULT_PROJECT_ID,
        user_id: compute_store::OPERATOR_USER_ID,
        now: "2024-01-01T00:00:00Z",
        host,
        up_timeout: compute::placement::DEFAULT_UP_TIMEOUT,
        mac_candidates: vec![[0, 0, 1], [0, 0, 2]],
        document: &doc,
    };
    let boot = WorkAction::Boot {
        config_drive: false,
    };
    let (rec, id) = s
        .insert_instance_with_work(&new("u-1", None), &boot)
        .expect("insert");
    let w = s.work(id).expect("work");
    assert_eq!(
        (w.host.as_str(), w.uuid.as_str(), &w.action, &w.state),
        (HOST, "u-1", &boot, &WorkState::Queued)
    );
    assert_eq!(rec.host, HOST);
    // A refused placement queues nothing either.
    let err = s
        .insert_instance_with_work(&new("u-2", Some("nowhere")), &boot)
        .expect_err("no such host");
    assert!(matches!(err, StoreError::Placement(_)), "{err}");
    assert_eq!(s.queued_work(HOST).expect("queued").len(), 1);
    assert_eq!(f.sql("SELECT COUNT(*) FROM work"), "1");
}

crate::both!(
    outputs_come_back_and_the_queue_lists_what_waits,
    an_instance_and_its_boot_are_recorded_together,
    work_is_taken_oldest_first_per_host_and_finished_once,
    running_work_of_a_restarted_agent_is_queued_again,
    concurrent_takers_never_get_the_same_item,
);
