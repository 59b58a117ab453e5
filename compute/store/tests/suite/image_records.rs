//! The Image API's records: kept whole, changed under a lock, gone with their
//! image, abandoned uploads ended, and a version-4 database migrated.

use crate::Fixture;
use compute_store::{
    Image, ImageRecord, ImageStatus, StoreError, UploadLease, Visibility, DEFAULT_PROJECT_ID,
};

fn record(id: &str, status: ImageStatus) -> ImageRecord {
    ImageRecord {
        id: id.into(),
        name: Some("cirros".into()),
        disk_format: Some("qcow2".into()),
        container_format: Some("bare".into()),
        visibility: Visibility::Shared,
        owner: "p1".into(),
        min_disk: 1,
        min_ram: 64,
        protected: false,
        tags: vec!["a".into(), "b c".into()],
        properties: [("os_distro".to_owned(), "cirros".to_owned())].into(),
        status,
        size: None,
        checksum: None,
        os_hash_value: None,
        created_at: "2024-01-01T00:00:00Z".into(),
        updated_at: "2024-01-01T00:00:00Z".into(),
        lease: None,
    }
}

fn image(id: &str) -> Image {
    Image {
        id: id.into(),
        name: "cirros".into(),
        format: "qcow2".into(),
        size: 10,
        virtual_size: 20,
        checksum: "sha".into(),
        has_kernel: false,
        has_ramdisk: false,
        cmdline: None,
        created_at: "2024-01-01T00:00:00Z".into(),
        owner: DEFAULT_PROJECT_ID.into(),
        visibility: Visibility::Public,
    }
}

fn records_are_kept_whole_and_ids_are_unique(f: Fixture) {
    let s = f.store();
    let r = record("i1", ImageStatus::Queued);
    s.add_image_record(&r).expect("add");
    assert_eq!(s.image_record("i1").expect("read"), r);
    assert!(matches!(
        s.add_image_record(&r),
        Err(StoreError::Exists { .. })
    ));
    assert!(matches!(
        s.image_record("cirros"),
        Err(StoreError::NotFound { .. })
    ));
    let mut later = record("i0", ImageStatus::Killed);
    later.created_at = "2025-01-01T00:00:00Z".into();
    s.add_image_record(&later).expect("add");
    let ids: Vec<String> = s
        .image_records()
        .expect("all")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["i1", "i0"], "oldest first");
    assert!(s.delete_image_record("i1").expect("delete"));
    assert!(!s.delete_image_record("i1").expect("delete again"));
}

fn a_change_lands_whole_or_not_at_all(f: Fixture) {
    let mut s = f.store();
    s.add_image_record(&record("i1", ImageStatus::Queued))
        .expect("add");
    let written = s
        .update_image_record("i1", &mut |r| {
            r.status = ImageStatus::Saving;
            r.lease = Some(UploadLease {
                uploader: "host:1".into(),
                until: "2024-01-01T00:01:00Z".into(),
            });
            r.tags.push("new".into());
            r.properties.insert("k".into(), "v".into());
            r.id = "moved".into();
            Ok(())
        })
        .expect("update");
    assert_eq!(written.id, "i1", "the id stays");
    assert_eq!(s.image_record("i1").expect("read"), written);
    let refused = s.update_image_record("i1", &mut |r| {
        r.status = ImageStatus::Active;
        Err("not now".into())
    });
    let Err(StoreError::ImageRecordRefused { problem, .. }) = refused else {
        panic!("refused: {refused:?}");
    };
    assert_eq!(problem.to_string(), "not now");
    assert_eq!(
        s.image_record("i1").expect("read").status,
        ImageStatus::Saving,
        "nothing written"
    );
    assert!(matches!(
        s.update_image_record("nope", &mut |_| Ok(())),
        Err(StoreError::NotFound { .. })
    ));
}

fn two_writers_both_land(f: Fixture) {
    f.store()
        .add_image_record(&record("i1", ImageStatus::Queued))
        .expect("add");
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let location = f.location.clone();
            std::thread::spawn(move || {
                let mut s =
                    compute_store::open_store(&location, crate::CIDR.parse().expect("cidr"))
                        .expect("store");
                for k in 0..5 {
                    s.update_image_record("i1", &mut |r| {
                        r.tags.push(format!("t{n}-{k}"));
                        Ok(())
                    })
                    .expect("update");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(f.store().image_record("i1").expect("read").tags.len(), 22);
}

fn abandoned_uploads_end_active_if_imported_else_killed(f: Fixture) {
    let mut s = f.store();
    let lease = |until: &str| {
        Some(UploadLease {
            uploader: "gone:1".into(),
            until: until.into(),
        })
    };
    for (id, until) in [
        ("stale", "2024-01-01T00:00:10Z"),
        ("imported", "2024-01-01T00:00:10Z"),
        ("live", "2024-01-01T00:05:00Z"),
    ] {
        let mut r = record(id, ImageStatus::Queued);
        s.add_image_record(&r).expect("add");
        r.status = ImageStatus::Saving;
        r.lease = lease(until);
        s.update_image_record(id, &mut |x| {
            *x = r.clone();
            Ok(())
        })
        .expect("claim");
    }
    // The import of "imported" committed before its uploader died.
    s.add_image(&image("imported")).expect("image");
    s.add_image_record(&record("queued", ImageStatus::Queued))
        .expect("add");
    let mut ended: Vec<(String, ImageStatus)> = s
        .end_abandoned_uploads("2024-01-01T00:01:00Z")
        .expect("end")
        .into_iter()
        .map(|r| {
            assert!(r.lease.is_none());
            (r.id, r.status)
        })
        .collect();
    ended.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ended,
        [
            ("imported".to_owned(), ImageStatus::Active),
            ("stale".to_owned(), ImageStatus::Killed)
        ]
    );
    let status = |id: &str| s.image_record(id).expect("read").status;
    assert_eq!(status("live"), ImageStatus::Saving);
    assert_eq!(status("queued"), ImageStatus::Queued);
    assert!(s
        .end_abandoned_uploads("2024-01-01T00:01:00Z")
        .expect("again")
        .is_empty());
}

fn deleting_an_image_forgets_its_record(f: Fixture) {
    let mut s = f.store();
    // As an upload leaves it: the record made first, the image imported after.
    s.add_image_record(&record("i1", ImageStatus::Active))
        .expect("record");
    s.add_image(&image("i1")).expect("image");
    s.delete_image("i1").expect("delete");
    assert!(matches!(
        s.image_record("i1"),
        Err(StoreError::NotFound { .. })
    ));
}

fn a_version_4_database_gets_the_records_table(f: Fixture) {
    let s = f.store();
    s.add_image(&image("old")).expect("image");
    drop(s);
    f.exec(
        "DROP TABLE image_records; DROP INDEX instances_page; DROP INDEX instances_project_page; \
         UPDATE schema_version SET version = 4",
    );
    let s = f.store();
    assert_eq!(
        f.sql("SELECT version FROM schema_version"),
        compute_store::SCHEMA_VERSION.to_string()
    );
    assert_eq!(s.image("old").expect("kept").name, "cirros");
    assert!(s.image_records().expect("records").is_empty());
    s.add_image_record(&record("new", ImageStatus::Queued))
        .expect("the table is there");
}

fn the_image_follows_its_records_name_and_visibility(f: Fixture) {
    let mut s = f.store();
    s.add_image_record(&record("i1", ImageStatus::Active))
        .expect("record");
    s.add_image(&image("i1")).expect("image");
    s.update_image_record("i1", &mut |r| {
        r.name = Some("renamed".into());
        r.visibility = Visibility::Private;
        Ok(())
    })
    .expect("update");
    let i = s.image("i1").expect("image");
    assert_eq!(
        (i.name.as_str(), i.visibility),
        ("renamed", Visibility::Private)
    );
    s.update_image_record("i1", &mut |r| {
        r.name = None;
        Ok(())
    })
    .expect("update");
    assert_eq!(
        s.image("i1").expect("image").name,
        "renamed",
        "no empty name"
    );
}

crate::both!(
    records_are_kept_whole_and_ids_are_unique,
    a_change_lands_whole_or_not_at_all,
    two_writers_both_land,
    abandoned_uploads_end_active_if_imported_else_killed,
    deleting_an_image_forgets_its_record,
    a_version_4_database_gets_the_records_table,
    the_image_follows_its_records_name_and_visibility,
);
