//! Flavors, images and keypairs.

use crate::{add, Fixture};
use compute::flavor::Flavor;
use compute::keypair::Keypair;
use compute_store::{Image, StoreError};

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

fn keypairs_are_unique_by_name(f: Fixture) {
    let s = f.store();
    let k = Keypair {
        name: "ops".into(),
        public_key: "ssh-ed25519 AAAA ops".into(),
        fingerprint: "aa:bb".into(),
    };
    s.add_keypair(&k).expect("add");
    assert!(matches!(s.add_keypair(&k), Err(StoreError::Exists { .. })));
    assert_eq!(s.keypair("ops").expect("get"), k);
    assert_eq!(s.keypairs().expect("all"), vec![k]);
    s.delete_keypair("ops").expect("delete");
    assert!(matches!(
        s.delete_keypair("ops"),
        Err(StoreError::NotFound { .. })
    ));
}

crate::both!(
    flavors_default_custom_and_kept,
    images_resolve_by_name_and_in_use_cannot_be_deleted,
    keypairs_are_unique_by_name,
);
