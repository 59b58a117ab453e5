//! How long the renderer takes for one instance: the whole service tree, the drive
//! files, and one lookup in a rendered tree (the server's per-request work).

use compute::metadata::MetadataPath;
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
        c.bench_function(&format!("render_service/{name}"), |b| {
            b.iter(|| render_service(black_box(&instance), black_box(&settings)))
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
