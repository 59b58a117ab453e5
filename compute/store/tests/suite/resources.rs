//! Flavors, images and keypairs.

use crate::{add, Fixture};
use compute::flavor::Flavor;
use compute::keypair::Keypair;
use compute_store::{FlavorRecord, Image, StoreError};

fn flavors_default_custom_and_kept(f: Fixture) {
    let s = f.store();
    let names: Vec<String> = s
        .flavors()
        .expect("flavors")
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(
        names,
        ["m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"]
    );
    let custom = Flavor {
        name: "c1".into(),
        vcpus: 1,
        ram_mb: 128,
        disk_gb: 1,
        ephemeral_gb: 1,
        swap_mb: 64,
    };
    s.add_flavor(&custom).expect("add");
    assert!(matches!(
        s.add_flavor(&custom),
        Err(StoreError::Exists { .. })
    ));
    drop(s);
    let s = f.store();
    assert_eq!(s.flavor("c1").expect("kept"), custom);
    assert!(matches!(s.flavor("nope"), Err(StoreError::NotFound { .. })));
    s.delete_flavor("c1").expect("delete");
    assert!(matches!(
        s.delete_flavor("c1"),
        Err(StoreError::NotFound { .. })
    ));
}

fn image(id: &str, name: &str) -> Image {
    Image {
        id: id.into(),
        name: name.into(),
        format: "qcow2".into(),
        size: 5 << 30,
        virtual_size: 10 << 30,
        checksum: "x".into(),
        has_kernel: true,
        has_ramdisk: false,
        cmdline: Some("console=ttyS0".into()),
        created_at: "2024-01-01T00:00:00Z".into(),
        owner: compute_store::DEFAULT_PROJECT_ID.into(),
        visibility: compute_store::Visibility::Public,
    }
}

fn images_resolve_by_name_and_in_use_cannot_be_deleted(f: Fixture) {
    let mut s = f.store_with_host();
    let img = image("img", "cirros");
    s.add_image(&img).expect("add");
    s.add_image(&image("img2", "twin")).expect("add");
    s.add_image(&image("img3", "twin")).expect("add");
    assert_eq!(s.image("cirros").expect("by name"), img);
    assert_eq!(s.images().expect("all").len(), 3);
    assert!(matches!(s.image("twin"), Err(StoreError::Ambiguous { .. })));
    assert_eq!(s.image("img3").expect("by id").name, "twin");
    add(s.as_mut(), 1, "web");
    assert!(matches!(
        s.delete_image("img"),
        Err(StoreError::ImageInUse { count: 1, .. })
    ));
    assert_eq!(f.sql("SELECT COUNT(*) FROM images"), "3", "nothing deleted");
    s.delete_image("img2").expect("unused");
    assert!(matches!(s.image("img2"), Err(StoreError::NotFound { .. })));
}

fn keypairs_are_per_user_and_unique_by_name(f: Fixture) {
    let s = f.store();
    let k = Keypair {
        name: "ops".into(),
        public_key: "ssh-ed25519 AAAA ops".into(),
        fingerprint: "aa:bb".into(),
    };
    let made = s.add_keypair("u1", &k, "t1").expect("add");
    assert_eq!((made.user_id.as_str(), &made.keypair), ("u1", &k));
    assert!(matches!(
        s.add_keypair("u1", &k, "t2"),
        Err(StoreError::Exists { .. })
    ));
    let theirs = s.add_keypair("u2", &k, "t3").expect("another user's");
    assert_ne!(theirs.id, made.id);
    assert_eq!(s.keypair("u1", "ops").expect("get"), made);
    assert_eq!(s.keypairs("u1").expect("all"), vec![made]);
    assert!(matches!(
        s.keypair("u3", "ops"),
        Err(StoreError::NotFound { .. })
    ));
    s.delete_keypair("u1", "ops").expect("delete");
    assert!(matches!(
        s.delete_keypair("u1", "ops"),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.keypairs("u2").expect("kept").len(), 1);
}

fn flavors_have_ids_access_descriptions_and_extra_specs(f: Fixture) {
    let mut s = f.store();
    let ids: Vec<String> = s
        .flavor_records()
        .expect("records")
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5"], "Nova's ids");
    let mut rec = FlavorRecord::public(
        "0b2a",
        Flavor {
            name: "private".into(),
            vcpus: 2,
            ram_mb: 256,
            disk_gb: 2,
            ephemeral_gb: 0,
            swap_mb: 0,
        },
    );
    rec.is_public = false;
    rec.description = Some("for some".into());
    rec.extra_specs
        .insert("hw:cpu_policy".into(), "shared".into());
    s.create_flavor(&rec).expect("create");
    assert!(matches!(
        s.create_flavor(&rec),
        Err(StoreError::Exists { .. })
    ));
    let mut same_id = rec.clone();
    same_id.flavor.name = "other".into();
    assert!(matches!(
        s.create_flavor(&same_id),
        Err(StoreError::Exists { .. })
    ));
    assert_eq!(s.flavor_record("0b2a").expect("by id"), rec);
    assert_eq!(s.flavor_record("private").expect("by name"), rec);
    assert_eq!(s.flavor("0b2a").expect("flavor by id").name, "private");
    let more = [
        ("a".to_owned(), "1".to_owned()),
        ("hw:cpu_policy".to_owned(), "dedicated".to_owned()),
    ]
    .into_iter()
    .collect();
    let all = s.set_flavor_extra_specs("0b2a", &more).expect("set");
    assert_eq!(all, more, "merged, replaced");
    assert!(matches!(
        s.set_flavor_extra_specs("nope", &more),
        Err(StoreError::NotFound { .. })
    ));
    s.delete_flavor_extra_spec("0b2a", "a")
        .expect("delete spec");
    assert!(matches!(
        s.delete_flavor_extra_spec("0b2a", "a"),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        s.flavor_records()
            .expect("all")
            .iter()
            .find(|f| f.id == "0b2a")
            .map(|f| f.extra_specs.len()),
        Some(1),
        "listed with its specs"
    );
    s.delete_flavor_by_id("0b2a").expect("delete");
    assert!(matches!(
        s.delete_flavor_by_id("0b2a"),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        f.sql("SELECT COUNT(*) FROM flavor_extra_specs"),
        "0",
        "specs went with it"
    );
    // Made again: no specs come back.
    let mut bare = rec.clone();
    bare.extra_specs.clear();
    s.create_flavor(&bare).expect("again");
    assert!(s
        .flavor_record("0b2a")
        .expect("again")
        .extra_specs
        .is_empty());
}

crate::both!(
    flavors_default_custom_and_kept,
    images_resolve_by_name_and_in_use_cannot_be_deleted,
    keypairs_are_per_user_and_unique_by_name,
    flavors_have_ids_access_descriptions_and_extra_specs,
);
