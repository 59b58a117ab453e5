//! Tests of [`super::FileBatch`] on real files in a temporary folder.

use super::super::testing::{mode, names};
use super::*;
use std::os::unix::fs::PermissionsExt;

fn new_file(path: &Path, contents: &[u8], mode: u32) -> NewFile {
    NewFile {
        path: path.to_owned(),
        contents: contents.to_vec(),
        mode,
        owner: None,
    }
}

fn stamp(p: &Path) -> (u64, i64, i64, i64, i64) {
    let m = fs::metadata(p).expect("stat");
    (
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    )
}

fn pending(s: Staged) -> Ticket {
    match s {
        Staged::Pending(t) => t,
        Staged::Unchanged => panic!("expected a pending write"),
    }
}

/// Stages `path` after `after`, which must be a change.
fn change(
    batch: &mut FileBatch,
    path: &Path,
    contents: &[u8],
    mode: u32,
    after: &[Ticket],
) -> Ticket {
    pending(
        batch
            .stage_after(new_file(path, contents, mode), after)
            .expect("stage"),
    )
}

#[test]
fn unchanged_files_are_not_touched_and_changes_are_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let mut batch = FileBatch::new();
    let ta = change(&mut batch, &a, b"one\n", 0o644, &[]);
    let tb = change(&mut batch, &b, b"two\n", 0o600, &[]);
    assert!(!a.exists(), "nothing is written before the commit");
    let r = batch.commit();
    assert!(matches!(r[&ta], Ok(Written::Replaced)), "{r:?}");
    assert!(matches!(r[&tb], Ok(Written::Replaced)), "{r:?}");
    assert_eq!(fs::read(&a).expect("a"), b"one\n");
    assert_eq!(mode(&b), 0o600);
    assert!(batch.is_empty());

    let (sa, sb) = (stamp(&a), stamp(&b));
    let me = fs::metadata(&a).expect("a");
    let same_owner = NewFile {
        owner: Some((me.uid(), me.gid())),
        ..new_file(&a, b"one\n", 0o644)
    };
    assert_eq!(batch.stage(same_owner).expect("stage"), Staged::Unchanged);
    assert_eq!(
        batch.stage(new_file(&b, b"two\n", 0o600)).expect("stage"),
        Staged::Unchanged
    );
    assert!(batch.commit().is_empty());
    assert_eq!((stamp(&a), stamp(&b)), (sa, sb), "inode, mtime, ctime kept");

    // Same bytes, other mode: replaced. Same size, other bytes: replaced.
    let t1 = change(&mut batch, &a, b"one\n", 0o640, &[]);
    let t2 = change(&mut batch, &b, b"TWO\n", 0o600, &[]);
    let r = batch.commit();
    assert!(r[&t1].is_ok() && r[&t2].is_ok(), "{r:?}");
    assert_ne!(stamp(&a).0, sa.0, "a new inode: renamed into place");
    assert_eq!(mode(&a), 0o640);
    assert_eq!(fs::read(&b).expect("b"), b"TWO\n");
    // An owner that differs forces a rewrite too.
    let other_owner = NewFile {
        owner: Some((me.uid() + 1, me.gid())),
        ..new_file(&a, b"one\n", 0o640)
    };
    assert!(matches!(batch.stage(other_owner), Ok(Staged::Pending(_))));
    assert_eq!(names(dir.path()), ["a", "b"], "no temporary file left");
}

#[test]
fn a_later_stage_supersedes_and_pending_shows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("motd");
    fs::write(&p, b"old").expect("write");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut batch = FileBatch::new();
    let first = change(&mut batch, &p, b"new", 0o644, &[]);
    assert_eq!(
        batch.pending(&p).map(|f| &f.contents[..]),
        Some(&b"new"[..])
    );
    // Back to what is on disk: the earlier wish is dropped, nothing written.
    let before = stamp(&p);
    assert_eq!(
        batch.stage(new_file(&p, b"old", 0o644)).expect("stage"),
        Staged::Unchanged
    );
    assert_eq!(batch.pending(&p), None);
    let r = batch.commit();
    assert!(matches!(r[&first], Ok(Written::Superseded)), "{r:?}");
    assert_eq!(
        (fs::read(&p).expect("read"), stamp(&p)),
        (b"old".to_vec(), before)
    );
}

#[test]
fn a_file_staged_after_others_waits_for_them_and_needs_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).expect("mkdir");
    let mut batch = FileBatch::new();
    let at = |name: &str| dir.path().join(name);
    let work = change(&mut batch, &at("work"), b"w", 0o644, &[]);
    let doomed = change(&mut batch, &sub.join("doomed"), b"d", 0o644, &[]);
    let done = change(&mut batch, &at("work.done"), b"", 0o600, &[work]);
    let not_done = change(&mut batch, &at("doomed.done"), b"", 0o600, &[work, doomed]);
    fs::remove_dir(&sub).expect("rmdir");
    let r = batch.commit();
    assert!(matches!(r[&work], Ok(Written::Replaced)), "{r:?}");
    assert!(matches!(r[&done], Ok(Written::Replaced)), "{r:?}");
    assert!(
        matches!(r[&doomed], Err(FileBatchError::Temp { .. })),
        "{r:?}"
    );
    assert!(
        matches!(r[&not_done], Err(FileBatchError::Prerequisite { .. })),
        "{r:?}"
    );
    assert_eq!(
        names(dir.path()),
        ["work", "work.done"],
        "no marker, no temporary file"
    );
    // A ticket of an earlier commit counts as done.
    let later = change(&mut batch, &at("later"), b"", 0o600, &[work]);
    assert!(matches!(batch.commit()[&later], Ok(Written::Replaced)));
}

#[test]
fn failures_keep_the_old_file_and_spare_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = dir.path().join("kept");
    fs::write(&kept, b"old").expect("write");
    let gone_dir = dir.path().join("gone");
    fs::create_dir(&gone_dir).expect("mkdir");
    let ok = dir.path().join("ok");
    let mut batch = FileBatch::new();
    let t_kept = change(&mut batch, &kept, b"new", 0o644, &[]);
    let t_gone = change(&mut batch, &gone_dir.join("f"), b"x", 0o644, &[]);
    let t_ok = change(&mut batch, &ok, b"fine", 0o644, &[]);
    // Between staging and commit the world changes: the target becomes a
    // non-empty folder (the rename fails) and a parent folder disappears (the
    // temporary file cannot be made).
    fs::remove_file(&kept).expect("rm");
    fs::create_dir(&kept).expect("mkdir");
    fs::write(kept.join("inside"), b"old").expect("write");
    fs::remove_dir(&gone_dir).expect("rmdir");
    let r = batch.commit();
    assert!(
        matches!(r[&t_kept], Err(FileBatchError::Rename { .. })),
        "{r:?}"
    );
    assert!(
        matches!(r[&t_gone], Err(FileBatchError::Temp { .. })),
        "{r:?}"
    );
    assert!(matches!(r[&t_ok], Ok(Written::Replaced)), "{r:?}");
    assert_eq!(fs::read(kept.join("inside")).expect("intact"), b"old");
    assert_eq!(fs::read(&ok).expect("ok"), b"fine");
    assert_eq!(
        names(dir.path()),
        ["kept", "ok"],
        "no temporary file left behind"
    );

    assert!(matches!(
        batch.stage(new_file(dir.path(), b"", 0o644)),
        Err(FileBatchError::IsFolder { .. })
    ));
    assert!(matches!(
        batch.stage(new_file(Path::new("relative"), b"", 0o644)),
        Err(FileBatchError::BadPath { .. })
    ));
}
