//! Images in process (Glance v2 over a SQLite state folder): a create is
//! `queued` with its properties, projects see their own images and public ones
//! only, the list filters (`name`, `id=in:`, `limit`, `marker`), and deletes
//! (refused while an instance uses the image). Uploads go through the sockets:
//! the real-client test sends them.

mod common;

use common::Harness;
use compute_api::auth::AuthMode;
use compute_api::Service;
use compute_store::{HostSpec, Image, Role, Visibility};
use http::Method;
use serde_json::{json, Value};

fn req(h: &Harness, token: &str, method: Method, path: &str, body: &str) -> (u16, Value) {
    let a = h.call(
        Service::Image,
        method,
        path,
        &[("x-auth-token", token)],
        body,
    );
    (a.status, a.body)
}

fn stored(id: &str, owner: &str, visibility: Visibility) -> Image {
    Image {
        id: id.into(),
        name: id.into(),
        format: "raw".into(),
        size: 1,
        virtual_size: 1,
        checksum: "ab".into(),
        has_kernel: false,
        has_ramdisk: false,
        cmdline: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        owner: owner.into(),
        visibility,
    }
}

#[test]
fn images_are_per_project_unless_public_and_lists_filter() {
    let h = Harness::new(AuthMode::Keystone);
    h.user("alice", "alpha", Role::Member);
    h.user("bob", "beta", Role::Member);
    h.user("root", "alpha", Role::Admin);
    let (alice, bob, root) = (
        h.token("alice", "alpha"),
        h.token("bob", "beta"),
        h.token("root", "alpha"),
    );
    let s = h.store();
    s.add_image(&stored(
        "11111111-0000-0000-0000-000000000001",
        "default",
        Visibility::Public,
    ))
    .expect("public");
    s.add_image(&stored(
        "11111111-0000-0000-0000-000000000002",
        "alpha-id",
        Visibility::Private,
    ))
    .expect("private");

    let (status, made) = req(
        &h,
        &alice,
        Method::POST,
        "/v2/images",
        r#"{"name":"up","disk_format":"qcow2","container_format":"bare",
            "owner_specified.openstack.md5":"","tags":["a"],"min_ram":64}"#,
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["status"], "queued");
    assert_eq!(made["checksum"], Value::Null);
    assert_eq!(made["visibility"], "shared");
    assert_eq!(made["owner"], "alpha-id");
    assert_eq!(made["owner_specified.openstack.md5"], "");
    assert_eq!(made["min_ram"], 64);
    let queued = made["id"].as_str().expect("id").to_owned();

    let ids = |token: &str, path: &str| -> Vec<String> {
        let (status, body) = req(&h, token, Method::GET, path, "");
        assert_eq!(status, 200, "{path}: {body}");
        body["images"]
            .as_array()
            .expect("images")
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let alices = ids(&alice, "/v2/images");
    assert_eq!(alices.len(), 3, "{alices:?}");
    let bobs = ids(&bob, "/v2/images");
    assert_eq!(bobs, ["11111111-0000-0000-0000-000000000001"]);
    for id in [&queued, "11111111-0000-0000-0000-000000000002"] {
        let (status, _) = req(&h, &bob, Method::GET, &format!("/v2/images/{id}"), "");
        assert_eq!(status, 404, "bob sees no image of alpha's");
    }
    assert_eq!(
        ids(&alice, "/v2/images?name=up"),
        std::slice::from_ref(&queued),
        "a queued image is listed"
    );
    assert_eq!(
        ids(
            &alice,
            "/v2/images?id=in:11111111-0000-0000-0000-000000000001,11111111-0000-0000-0000-000000000002"
        )
        .len(),
        2
    );
    let first = ids(&alice, "/v2/images?limit=1");
    assert_eq!(first.len(), 1);
    let (_, page) = req(&h, &alice, Method::GET, "/v2/images?limit=1", "");
    assert!(
        page["next"].as_str().is_some_and(|n| n.contains(&first[0])),
        "{page}"
    );
    let second = ids(&alice, &format!("/v2/images?limit=1&marker={}", first[0]));
    assert_eq!(second.len(), 1);
    assert_ne!(second, first);
    assert_eq!(
        req(&h, &alice, Method::GET, "/v2/images?marker=nope", "").0,
        400
    );
    assert_eq!(
        req(&h, &alice, Method::GET, "/v2/images?limit=x", "").0,
        400
    );

    // Only admins make public images; read-only keys are refused.
    let (status, _) = req(
        &h,
        &alice,
        Method::POST,
        "/v2/images",
        r#"{"name":"p","visibility":"public"}"#,
    );
    assert_eq!(status, 403);
    let (status, _) = req(
        &h,
        &root,
        Method::POST,
        "/v2/images",
        r#"{"name":"p","visibility":"public"}"#,
    );
    assert_eq!(status, 201);
    let (status, _) = req(
        &h,
        &alice,
        Method::POST,
        "/v2/images",
        r#"{"name":"x","status":"active"}"#,
    );
    assert_eq!(status, 400);
    let (status, _) = req(
        &h,
        &alice,
        Method::POST,
        "/v2/images",
        r#"{"name":"x","disk_format":"vhd"}"#,
    );
    assert_eq!(status, 400);
    let (status, _) = req(&h, &alice, Method::POST, "/v2/images", "[1]");
    assert_eq!(status, 400);

    // Deletes: bob may not delete the public image; alice deletes her queued one.
    let (status, _) = req(
        &h,
        &bob,
        Method::DELETE,
        "/v2/images/11111111-0000-0000-0000-000000000001",
        "",
    );
    assert_eq!(status, 403);
    assert_eq!(
        req(
            &h,
            &alice,
            Method::DELETE,
            &format!("/v2/images/{queued}"),
            ""
        )
        .0,
        204
    );
    assert_eq!(
        req(&h, &alice, Method::GET, &format!("/v2/images/{queued}"), "").0,
        404
    );
}

#[test]
fn an_image_in_use_cannot_be_deleted() {
    let h = Harness::new(AuthMode::Keystone);
    h.user("alice", "alpha", Role::Member);
    let alice = h.token("alice", "alpha");
    let s = h.store();
    s.register_host(&HostSpec {
        name: "h1".into(),
        capacity: compute::placement::Resources {
            vcpus: 8,
            ram_mb: 8192,
            disk_gb: 100,
        },
        ratios: None,
    })
    .expect("host");
    let id = "11111111-0000-0000-0000-000000000003";
    s.add_image(&stored(id, "alpha-id", Visibility::Private))
        .expect("image");
    let mv = "compute 2.96";
    let a = h.call(
        Service::Compute,
        Method::POST,
        "/v2.1/servers",
        &[("x-auth-token", &alice), ("openstack-api-version", mv)],
        &json!({"server": {"name": "vm", "imageRef": id, "flavorRef": "1", "networks": "auto"}})
            .to_string(),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    let (status, body) = req(&h, &alice, Method::DELETE, &format!("/v2/images/{id}"), "");
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("in use"), "{body}");
}

fn patch(h: &Harness, token: &str, id: &str, ops: Value) -> (u16, Value) {
    let a = h.call(
        Service::Image,
        Method::PATCH,
        &format!("/v2/images/{id}"),
        &[
            ("x-auth-token", token),
            (
                "content-type",
                "application/openstack-images-v2.1-json-patch",
            ),
        ],
        &ops.to_string(),
    );
    (a.status, a.body)
}

#[test]
fn images_change_by_json_patch_and_tags() {
    let h = Harness::new(AuthMode::Keystone);
    h.user("alice", "alpha", Role::Member);
    h.user("bob", "beta", Role::Member);
    h.user("root", "gamma", Role::Admin);
    let (alice, bob, root) = (
        h.token("alice", "alpha"),
        h.token("bob", "beta"),
        h.token("root", "gamma"),
    );
    let (_, made) = req(
        &h,
        &alice,
        Method::POST,
        "/v2/images",
        r#"{"name":"up","disk_format":"raw","container_format":"bare","visibility":"community"}"#,
    );
    let id = made["id"].as_str().expect("id").to_owned();
    let (status, body) = patch(
        &h,
        &alice,
        &id,
        json!([{"op": "add", "path": "/name", "value": "renamed"},
               {"op": "add", "path": "/protected", "value": true},
               {"op": "add", "path": "/os_distro", "value": "debian"},
               {"op": "add", "path": "/tags", "value": ["x"]},
               {"op": "replace", "path": "/min_disk", "value": 2}]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "renamed");
    assert_eq!(body["protected"], true);
    assert_eq!(body["os_distro"], "debian");
    assert_eq!(body["tags"], json!(["x"]));
    assert_eq!(body["min_disk"], 2);
    // Another project sees a community image but may not change it.
    let (status, body) = patch(
        &h,
        &bob,
        &id,
        json!([{"op": "add", "path": "/name", "value": "mine"}]),
    );
    assert_eq!(status, 403, "{body}");
    // Public is an admin's to give.
    let (status, _) = patch(
        &h,
        &alice,
        &id,
        json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
    );
    assert_eq!(status, 403);
    let (status, body) = patch(
        &h,
        &root,
        &id,
        json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
    );
    assert_eq!((status, body["visibility"].as_str()), (200, Some("public")));
    // A refused operation writes none of its batch.
    let (status, _) = patch(
        &h,
        &alice,
        &id,
        json!([{"op": "add", "path": "/name", "value": "half"},
               {"op": "remove", "path": "/missing"}]),
    );
    assert_eq!(status, 409);
    let (_, shown) = req(&h, &alice, Method::GET, &format!("/v2/images/{id}"), "");
    assert_eq!(shown["name"], "renamed");
    // The wrong media type, a read-only key, garbage: refused, never a 500.
    let a = h.call(
        Service::Image,
        Method::PATCH,
        &format!("/v2/images/{id}"),
        &[("x-auth-token", &alice)],
        "[]",
    );
    assert_eq!(a.status, 415, "{}", a.body);
    let (status, _) = patch(
        &h,
        &alice,
        &id,
        json!([{"op": "replace", "path": "/status", "value": "active"}]),
    );
    assert_eq!(status, 403);
    let (status, _) = patch(&h, &alice, &id, json!({"op": "add"}));
    assert_eq!(status, 400);
    // Tags one by one.
    let tag = |method: Method, t: &str| {
        req(&h, &alice, method, &format!("/v2/images/{id}/tags/{t}"), "").0
    };
    assert_eq!(tag(Method::PUT, "y"), 204);
    assert_eq!(tag(Method::PUT, "y"), 204, "twice is once");
    assert_eq!(tag(Method::DELETE, "x"), 204);
    assert_eq!(tag(Method::DELETE, "x"), 404);
    let (_, shown) = req(&h, &alice, Method::GET, &format!("/v2/images/{id}"), "");
    assert_eq!(shown["tags"], json!(["y"]));
    // Protected: no delete (403) until unprotected.
    let (status, _) = req(&h, &alice, Method::DELETE, &format!("/v2/images/{id}"), "");
    assert_eq!(status, 403);
    let (status, _) = patch(
        &h,
        &alice,
        &id,
        json!([{"op": "replace", "path": "/protected", "value": false}]),
    );
    assert_eq!(status, 200);
    let (status, _) = req(&h, &alice, Method::DELETE, &format!("/v2/images/{id}"), "");
    assert_eq!(status, 204);
}

#[test]
fn an_image_made_here_gets_a_record_when_changed() {
    let h = Harness::new(AuthMode::Keystone);
    h.user("alice", "alpha", Role::Member);
    let alice = h.token("alice", "alpha");
    let id = "11111111-0000-0000-0000-000000000009";
    h.store()
        .add_image(&stored(id, "alpha-id", Visibility::Private))
        .expect("image");
    let (status, body) = patch(
        &h,
        &alice,
        id,
        json!([{"op": "add", "path": "/name", "value": "snap"},
               {"op": "add", "path": "/visibility", "value": "shared"}]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "active");
    assert_eq!(body["os_hash_algo"], "sha256", "its own hash stays");
    // The store's image follows: the command line and boots see the new name.
    let image = h.store().image(id).expect("image");
    assert_eq!(
        (image.name.as_str(), image.visibility),
        ("snap", Visibility::Shared)
    );
}

#[test]
fn record_files_of_earlier_versions_move_into_the_store() {
    let h = Harness::new(AuthMode::Keystone);
    let dir = h._dir.path().join("api/images");
    std::fs::create_dir_all(&dir).expect("dir");
    let record = |id: &str, status: &str| {
        json!({"id": id, "name": "old", "disk_format": "raw", "container_format": "bare",
            "visibility": "shared", "owner": "p1", "min_disk": 0, "min_ram": 0,
            "protected": true, "tags": ["t"], "properties": {"k": "v"}, "status": status,
            "size": 3, "checksum": "md5", "os_hash_value": "sha512",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})
        .to_string()
    };
    let (a, b) = (
        "22222222-0000-0000-0000-000000000001",
        "22222222-0000-0000-0000-000000000002",
    );
    std::fs::write(dir.join(format!("{a}.json")), record(a, "active")).expect("a");
    std::fs::write(dir.join(format!("{b}.json")), record(b, "saving")).expect("b");
    std::fs::write(dir.join("junk.json"), "not json").expect("junk");
    let store = h.store();
    let moved =
        compute_api::image::records::move_legacy(store.as_ref(), h._dir.path()).expect("moved");
    assert_eq!(moved, 2);
    let ra = store.image_record(a).expect("a moved");
    assert_eq!(
        (ra.protected, ra.tags.clone(), ra.properties["k"].as_str()),
        (true, vec!["t".to_owned()], "v")
    );
    assert_eq!(
        store.image_record(b).expect("b moved").status,
        compute_store::ImageStatus::Killed,
        "an upload from before never ends now"
    );
    assert!(!dir.join(format!("{a}.json")).exists());
    assert!(dir.join("junk.json").exists(), "what is not a record stays");
    assert_eq!(
        compute_api::image::records::move_legacy(store.as_ref(), h._dir.path()).expect("again"),
        0
    );
}
