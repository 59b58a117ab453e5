//! How long the renderer takes for one instance: the whole service tree, a new tree's
//! first answer, the drive files, and one lookup in a built tree (the server's
//! per-request work).

use compute::metadata::{Ec2Version, MetadataPath, OpenStackVersion};
use compute::{render_drive, render_service, Instance, Settings};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn fixture(name: &str) -> Instance {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).expect("fixture");
    Instance::from_json(&bytes).expect("valid fixture")
}

fn bench(c: &mut Criterion) {
    let settings = Settings::default();
    for name in ["basic", "multinic"] {
        let instance = fixture(name);
        // The whole service tree, every version of both trees built.
        c.bench_function(&format!("full_tree/{name}"), |b| {
            b.iter(|| {
                let tree = render_service(black_box(&instance), black_box(&settings));
                let ec2 = Ec2Version::ALL.iter().map(|v| ["ec2", v.as_str()]);
                let os = OpenStackVersion::ALL
                    .iter()
                    .map(|v| ["openstack", v.as_str()]);
                ec2.chain(os).filter(|p| tree.lookup(p).is_some()).count()
            })
        });
        // A cold cache in the server: a new tree answering its first request.
        c.bench_function(&format!("first_request/{name}"), |b| {
            b.iter(|| {
                let tree = render_service(black_box(&instance), black_box(&settings));
                tree.lookup(&["openstack", "latest", "meta_data.json"])
                    .is_some()
            })
        });
        c.bench_function(&format!("render_drive/{name}"), |b| {
            b.iter(|| render_drive(black_box(&instance), black_box(&settings)))
        });
    }
    let bytes = std::fs::read(format!(
        "{}/tests/fixtures/multinic.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    c.bench_function("parse_and_validate/multinic", |b| {
        b.iter(|| Instance::from_json(black_box(&bytes)))
    });
    let tree = render_service(&fixture("multinic"), &settings);
    c.bench_function("lookup/openstack_latest_meta_data", |b| {
        b.iter(|| {
            let path =
                MetadataPath::parse(black_box("/openstack/latest/meta_data.json")).expect("path");
            tree.lookup(path.segments()).is_some()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
