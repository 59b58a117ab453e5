//! The change feed: revisions on every change, tombstones, catch-ups by revision,
//! purged tombstones, and waiting for a change.

use crate::{add, register, uuid, Backend, Fixture, HOST};
use compute::lifecycle::State;
use compute_store::{Catchup, Change, FaultChange};
use std::time::{Duration, Instant};

fn changes(c: Catchup) -> (u64, Vec<Change>) {
    match c {
        Catchup::Changes { rev, changes } => (rev, changes),
        other => panic!("expected changes, got {other:?}"),
    }
}

fn every_change_takes_the_next_revision_and_deletions_leave_tombstones(f: Fixture) {
    let mut s = f.store_with_host();
    let mut feed = f.feed();
    let r0 = feed.rev().expect("rev");
    let a = add(s.as_mut(), 1, "a");
    assert_eq!(a.rev, r0 + 1);
    let b = add(s.as_mut(), 2, "b");
    assert_eq!(b.rev, r0 + 2);
    s.set_state(
        &a.uuid,
        State::building().spawned(),
        FaultChange::Clear,
        "t",
    )
    .expect("state");
    s.set_runtime(&b.uuid, Some(7), None).expect("runtime");
    assert_eq!(s.instance_by_uuid(&a.uuid).expect("a").rev, r0 + 3);
    assert_eq!(s.instance_by_uuid(&b.uuid).expect("b").rev, r0 + 4);
    s.delete_instance(&a.uuid).expect("delete");
    assert_eq!(feed.rev().expect("rev"), r0 + 5);
    assert_eq!(
        f.sql(&format!(
            "SELECT host, rev FROM tombstones WHERE uuid = '{}'",
            a.uuid
        )),
        format!("{HOST}|{}", r0 + 5)
    );

    let snap = feed.snapshot(None).expect("snapshot");
    assert_eq!(snap.rev, r0 + 5);
    assert_eq!(snap.documents.len(), 1);
    assert_eq!(snap.documents[0].uuid, b.uuid);
    assert_eq!(snap.documents[0].vm_state, "building");

    let (rev, all) = changes(feed.changes_since(r0, None).expect("since r0"));
    assert_eq!(rev, r0 + 5);
    let seen: Vec<(String, u64, bool)> = all
        .iter()
        .map(|c| {
            (
                c.uuid().to_owned(),
                c.rev(),
                matches!(c, Change::Delete { .. }),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (b.uuid.clone(), r0 + 4, false),
            (a.uuid.clone(), r0 + 5, true)
        ],
        "one change per instance, the newest, oldest first"
    );
    let (rev, none) = changes(feed.changes_since(r0 + 5, None).expect("caught up"));
    assert_eq!((rev, none.len()), (r0 + 5, 0));
    let (_, one) = changes(feed.changes_since(r0 + 4, None).expect("last"));
    assert!(
        matches!(&one[..], [Change::Delete { uuid, host, .. }] if *uuid == a.uuid && host == HOST)
    );

    // Reinserting the same uuid removes its tombstone: it is an upsert again.
    let again = add(s.as_mut(), 1, "a");
    let (_, last) = changes(feed.changes_since(r0 + 5, None).expect("again"));
    assert!(matches!(&last[..], [Change::Upsert(d)] if d.uuid == again.uuid && d.rev == again.rev));
}

fn a_host_follows_only_its_instances(f: Fixture) {
    let mut s = f.store_with_host();
    register(s.as_ref(), "h2", 64, 65536, 1000);
    let r0 = f.feed().rev().expect("rev");
    let a = crate::try_add(s.as_mut(), &uuid(1), "a", "m1.tiny", Some(HOST)).expect("a");
    let b = crate::try_add(s.as_mut(), &uuid(2), "b", "m1.tiny", Some("h2")).expect("b");
    s.delete_instance(&b.uuid).expect("delete b");
    let mut feed = f.feed();
    let mine = feed.snapshot(Some(HOST)).expect("snapshot");
    assert_eq!(
        mine.documents.iter().map(|d| &d.uuid).collect::<Vec<_>>(),
        [&a.uuid]
    );
    let (_, h1) = changes(feed.changes_since(r0, Some(HOST)).expect("h1"));
    assert_eq!(h1.len(), 1);
    let (rev, h2) = changes(feed.changes_since(r0, Some("h2")).expect("h2"));
    assert!(matches!(&h2[..], [Change::Delete { uuid, .. }] if *uuid == b.uuid));
    assert_eq!(
        rev,
        r0 + 3,
        "the revision is the database's, not the host's"
    );
}

fn purged_tombstones_send_old_consumers_to_a_snapshot(f: Fixture) {
    let mut s = f.store_with_host();
    let mut feed = f.feed();
    let r0 = feed.rev().expect("rev");
    let a = add(s.as_mut(), 1, "a");
    s.delete_instance(&a.uuid).expect("delete");
    let deleted_at = feed.rev().expect("rev");
    assert_eq!(
        s.purge_tombstones(Duration::from_secs(3600))
            .expect("none old"),
        0
    );
    assert_eq!(s.purge_tombstones(Duration::ZERO).expect("purge"), 1);
    assert_eq!(f.sql("SELECT COUNT(*) FROM tombstones"), "0");
    assert_eq!(
        feed.changes_since(r0, None).expect("old"),
        Catchup::SnapshotNeeded {
            purged_through: deleted_at
        }
    );
    let (rev, none) = changes(feed.changes_since(deleted_at, None).expect("recent"));
    assert_eq!((rev, none.len()), (deleted_at, 0));
}

fn a_waiter_wakes_on_a_change_and_times_out_without_one(f: Fixture) {
    let mut s = f.store_with_host();
    let mut feed = f.feed();
    let r0 = feed.rev().expect("rev");
    let started = Instant::now();
    assert!(!feed
        .wait_for_change(r0, None, Duration::from_millis(300))
        .expect("wait"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    // A change before the wait: no sleep at all.
    add(s.as_mut(), 1, "a");
    let started = Instant::now();
    assert!(feed
        .wait_for_change(r0, None, Duration::from_secs(10))
        .expect("wait"));
    assert!(started.elapsed() < Duration::from_secs(2));
    // A change during the wait, from another connection.
    let r1 = feed.rev().expect("rev");
    let writer = {
        let mut s = f.store();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            add(s.as_mut(), 2, "b");
        })
    };
    let started = Instant::now();
    assert!(feed
        .wait_for_change(r1, Some(HOST), Duration::from_secs(20))
        .expect("wait"));
    let waited = started.elapsed();
    writer.join().expect("writer");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(feed.rev().expect("rev") > r1);
}

fn a_waiter_for_one_host_sleeps_through_others(f: Fixture) {
    let s = f.store_with_host();
    register(s.as_ref(), "h2", 64, 65536, 1000);
    let mut feed = f.feed();
    let r0 = feed.rev().expect("rev");
    let writer = {
        let mut s = f.store();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            crate::try_add(s.as_mut(), &uuid(1), "b", "m1.tiny", Some("h2")).expect("on h2");
        })
    };
    // The change is after r0 but for h2: the waiter for h1 sleeps through it...
    let started = Instant::now();
    assert!(!feed
        .wait_for_change(r0, Some(HOST), Duration::from_millis(1500))
        .expect("wait"));
    assert!(started.elapsed() >= Duration::from_millis(1500));
    writer.join().expect("writer");
    // ...and a waiter behind the database's revision returns at once (it catches up).
    assert!(feed
        .wait_for_change(r0, Some(HOST), Duration::from_secs(5))
        .expect("wait"));
}

fn a_feed_needs_a_database_at_its_version(f: Fixture) {
    if f.backend == Backend::Sqlite {
        let err = compute_store::open_feed(&f.location)
            .err()
            .expect("no database yet");
        assert!(
            err.to_string().starts_with("cannot open the database "),
            "{err}"
        );
    }
    let _ = f.store();
    f.exec("UPDATE schema_version SET version = 99");
    let err = compute_store::open_feed(&f.location).err().expect("newer");
    let text = err.to_string();
    assert!(
        text.contains("schema version 99, newer than this binary knows (5)"),
        "{text}"
    );
    f.exec("UPDATE schema_version SET version = 1");
    let err = compute_store::open_feed(&f.location).err().expect("older");
    assert!(
        err.to_string()
            .contains("schema version 1, older than this binary needs (5)"),
        "{err}"
    );
}

crate::both!(
    every_change_takes_the_next_revision_and_deletions_leave_tombstones,
    purged_tombstones_send_old_consumers_to_a_snapshot,
    a_waiter_wakes_on_a_change_and_times_out_without_one,
    a_feed_needs_a_database_at_its_version,
);

// Several hosts share a database on PostgreSQL only (a state folder has one).
crate::postgres_only!(
    a_host_follows_only_its_instances,
    a_waiter_for_one_host_sleeps_through_others,
);
