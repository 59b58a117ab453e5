//! Tests of [`super::FileBatch`] on real files in a temporary folder.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn new_file(path: PathBuf, contents: &[u8], mode: u32) -> NewFile {
    NewFile {
        path,
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

#[test]
fn unchanged_files_are_not_touched_and_changes_are_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let mut batch = FileBatch::new();
    let ta = pending(
        batch
            .stage(new_file(a.clone(), b"one\n", 0o644))
            .expect("stage"),
    );
    let tb = pending(
        batch
            .stage(new_file(b.clone(), b"two\n", 0o600))
            .expect("stage"),
    );
    assert!(!a.exists(), "nothing is written before the commit");
    let r = batch.commit();
    assert!(matches!(r[&ta], Ok(Written::Replaced)), "{r:?}");
    assert!(matches!(r[&tb], Ok(Written::Replaced)), "{r:?}");
    assert_eq!(fs::read(&a).expect("a"), b"one\n");
    assert_eq!(fs::metadata(&b).expect("b").mode() & 0o7777, 0o600);
    assert!(batch.is_empty());

    let (sa, sb) = (stamp(&a), stamp(&b));
    let me = fs::metadata(&a).expect("a");
    let same_owner = NewFile {
        owner: Some((me.uid(), me.gid())),
        ..new_file(a.clone(), b"one\n", 0o644)
    };
    assert_eq!(batch.stage(same_owner).expect("stage"), Staged::Unchanged);
    assert_eq!(
        batch
            .stage(new_file(b.clone(), b"two\n", 0o600))
            .expect("stage"),
        Staged::Unchanged
    );
    assert!(batch.commit().is_empty());
    assert_eq!((stamp(&a), stamp(&b)), (sa, sb), "inode, mtime, ctime kept");

    // Same bytes, other mode: replaced. Same size, other bytes: replaced.
    let t1 = pending(
        batch
            .stage(new_file(a.clone(), b"one\n", 0o640))
            .expect("stage"),
    );
    let t2 = pending(
        batch
            .stage(new_file(b.clone(), b"TWO\n", 0o600))
            .expect("stage"),
    );
    let r = batch.commit();
    assert!(r[&t1].is_ok() && r[&t2].is_ok(), "{r:?}");
    assert_ne!(stamp(&a).0, sa.0, "a new inode: renamed into place");
    assert_eq!(fs::metadata(&a).expect("a").mode() & 0o7777, 0o640);
    assert_eq!(fs::read(&b).expect("b"), b"TWO\n");
    // An owner that differs forces a rewrite too.
    let other_owner = NewFile {
        owner: Some((me.uid() + 1, me.gid())),
        ..new_file(a.clone(), b"one\n", 0o640)
    };
    assert!(matches!(batch.stage(other_owner), Ok(Staged::Pending(_))));
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_later_stage_supersedes_and_pending_shows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("motd");
    fs::write(&p, b"old").expect("write");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut batch = FileBatch::new();
    let first = pending(
        batch
            .stage(new_file(p.clone(), b"new", 0o644))
            .expect("stage"),
    );
    assert_eq!(
        batch.pending(&p).map(|f| &f.contents[..]),
        Some(&b"new"[..])
    );
    // Back to what is on disk: the earlier wish is dropped, nothing written.
    let before = stamp(&p);
    assert_eq!(
        batch
            .stage(new_file(p.clone(), b"old", 0o644))
            .expect("stage"),
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
    let work = pending(
        batch
            .stage(new_file(dir.path().join("work"), b"w", 0o644))
            .expect("stage"),
    );
    let doomed = pending(
        batch
            .stage(new_file(sub.join("doomed"), b"d", 0o644))
            .expect("stage"),
    );
    let done = pending(
        batch
            .stage_after(new_file(dir.path().join("work.done"), b"", 0o600), &[work])
            .expect("stage"),
    );
    let not_done = pending(
        batch
            .stage_after(
                new_file(dir.path().join("doomed.done"), b"", 0o600),
                &[work, doomed],
            )
            .expect("stage"),
    );
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
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["work", "work.done"], "no marker, no temporary file");
    // A ticket of an earlier commit counts as done.
    let later = batch
        .stage_after(new_file(dir.path().join("later"), b"", 0o600), &[work])
        .expect("stage");
    assert!(matches!(
        batch.commit()[&pending(later)],
        Ok(Written::Replaced)
    ));
}

#[test]
fn failures_keep_the_old_file_and_spare_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = dir.path().join("kept");
    fs::write(&kept, b"old").expect("write");
    let gone_dir = dir.path().join("gone");
    fs::create_dir(&gone_dir).expect("mkdir");
    let in_gone = gone_dir.join("f");
    let ok = dir.path().join("ok");
    let mut batch = FileBatch::new();
    let t_kept = pending(
        batch
            .stage(new_file(kept.clone(), b"new", 0o644))
            .expect("stage"),
    );
    let t_gone = pending(batch.stage(new_file(in_gone, b"x", 0o644)).expect("stage"));
    let t_ok = pending(
        batch
            .stage(new_file(ok.clone(), b"fine", 0o644))
            .expect("stage"),
    );
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
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["kept", "ok"], "no temporary file left behind");

    assert!(matches!(
        batch.stage(new_file(dir.path().into(), b"", 0o644)),
        Err(FileBatchError::IsFolder { .. })
    ));
    assert!(matches!(
        batch.stage(new_file("relative".into(), b"", 0o644)),
        Err(FileBatchError::BadPath { .. })
    ));
}
