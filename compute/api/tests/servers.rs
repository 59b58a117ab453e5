//! Servers in process, over a SQLite state folder with one registered host and no
//! agent running: what the API records and queues, who sees what (another
//! project's server is a 404, an admin sees all with `all_tenants`), the
//! lifecycle's 409s in Nova's words, the shapes per microversion, the list
//! filters and pages, metadata, the posted password, and refusals as 400s.

mod common;

use common::Harness;
use compute_api::auth::AuthMode;
use compute_api::Service;
use compute_store::{HostSpec, Image, Role, Visibility, WorkAction};
use http::Method;
use serde_json::{json, Value};

struct Cloud {
    h: Harness,
    alice: String,
    bob: String,
    admin: String,
}

fn image(id: &str, owner: &str, visibility: Visibility) -> Image {
    Image {
        id: id.into(),
        name: id.into(),
        format: "qcow2".into(),
        size: 1,
        virtual_size: 1 << 20,
        checksum: "x".into(),
        has_kernel: false,
        has_ramdisk: false,
        cmdline: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        owner: owner.into(),
        visibility,
    }
}

fn cloud() -> Cloud {
    let h = Harness::new(AuthMode::Keystone);
    h.user("alice", "alpha", Role::Member);
    h.user("bob", "beta", Role::Member);
    h.user("root", "alpha", Role::Admin);
    let s = h.store();
    s.register_host(&HostSpec {
        name: "h1".into(),
        capacity: compute::placement::Resources {
            vcpus: 64,
            ram_mb: 1 << 20,
            disk_gb: 10_000,
        },
        ratios: None,
    })
    .expect("host");
    s.add_image(&image("img-public", "default", Visibility::Public))
        .expect("image");
    s.add_image(&image("img-alpha", "alpha-id", Visibility::Private))
        .expect("image");
    Cloud {
        alice: h.token("alice", "alpha"),
        bob: h.token("bob", "beta"),
        admin: h.token("root", "alpha"),
        h,
    }
}

impl Cloud {
    fn req(&self, token: &str, method: Method, path: &str, mv: &str, body: &str) -> (u16, Value) {
        let mv = format!("compute {mv}");
        let a = self.h.call(
            Service::Compute,
            method,
            &format!("/v2.1{path}"),
            &[("x-auth-token", token), ("openstack-api-version", &mv)],
            body,
        );
        (a.status, a.body)
    }

    fn create(&self, token: &str, name: &str, extra: Value) -> String {
        let mut server = json!({"name": name, "imageRef": "img-public", "flavorRef": "1",
            "networks": "auto"});
        if let (Some(s), Some(e)) = (server.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        let (status, body) = self.req(
            token,
            Method::POST,
            "/servers",
            "2.96",
            &json!({ "server": server }).to_string(),
        );
        assert_eq!(status, 202, "{body}");
        body["server"]["id"].as_str().expect("id").to_owned()
    }
}

#[test]
fn a_create_records_and_queues_the_boot_and_shows_it_building() {
    let c = cloud();
    let user_data = base64_of(b"#!/bin/sh\necho hi\n");
    let id = c.create(
        &c.alice,
        "vm1",
        json!({"metadata": {"role": "web"}, "user_data": user_data, "config_drive": true,
            "min_count": 1, "max_count": 1,
            "block_device_mapping_v2": [{"uuid": "img-public", "boot_index": 0,
                "source_type": "image", "destination_type": "local", "delete_on_termination": true}]}),
    );
    let (status, shown) = c.req(&c.alice, Method::GET, &format!("/servers/{id}"), "2.96", "");
    assert_eq!(status, 200);
    let s = &shown["server"];
    assert_eq!(s["status"], "BUILD");
    assert_eq!(s["OS-EXT-STS:vm_state"], "building");
    assert_eq!(s["OS-EXT-STS:task_state"], "spawning");
    assert_eq!(s["OS-EXT-STS:power_state"], 0);
    assert_eq!(s["addresses"], json!({}));
    assert_eq!(s["metadata"], json!({"role": "web"}));
    assert_eq!(s["tenant_id"], "alpha-id");
    assert_eq!(s["user_id"], "alice-id");
    assert_eq!(s["image"]["id"], "img-public");
    assert_eq!(s["flavor"]["original_name"], "m1.tiny");
    assert_eq!(s["config_drive"], "True");
    assert_eq!(s["pinned_availability_zone"], Value::Null);
    assert!(
        s.get("OS-EXT-SRV-ATTR:host").is_none(),
        "admin-only fields hidden"
    );
    // Before 2.47 the flavor is its id and link.
    let (_, old) = c.req(&c.alice, Method::GET, &format!("/servers/{id}"), "2.1", "");
    assert_eq!(old["server"]["flavor"]["id"], "1");
    assert!(old["server"].get("locked").is_none());
    // The boot is queued for the host, with the document the guest will get.
    let store = c.h.store();
    let work = store.queued_work("h1").expect("work");
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].uuid, id);
    assert!(matches!(
        work[0].action,
        WorkAction::Boot { config_drive: true }
    ));
    let rec = store.instance_by_uuid(&id).expect("record");
    assert!(
        rec.document.contains("\"role\":\"web\""),
        "{}",
        rec.document
    );
    assert!(rec.document.contains(&user_data), "{}", rec.document);
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn another_project_gets_404_and_an_admin_sees_all_tenants() {
    let c = cloud();
    let id = c.create(&c.alice, "vm1", json!({}));
    let bob_id = c.create(&c.bob, "vm-b", json!({}));
    for (method, path, body) in [
        (Method::GET, format!("/servers/{id}"), ""),
        (Method::DELETE, format!("/servers/{id}"), ""),
        (
            Method::PUT,
            format!("/servers/{id}"),
            r#"{"server":{"name":"x"}}"#,
        ),
        (
            Method::POST,
            format!("/servers/{id}/action"),
            r#"{"os-stop":null}"#,
        ),
        (Method::GET, format!("/servers/{id}/metadata"), ""),
        (Method::GET, format!("/servers/{id}/os-server-password"), ""),
    ] {
        let (status, body) = c.req(&c.bob, method.clone(), &path, "2.96", body);
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(
            body["itemNotFound"]["message"],
            format!("Instance {id} could not be found.")
        );
    }
    let (_, bobs) = c.req(&c.bob, Method::GET, "/servers/detail", "2.96", "");
    let ids: Vec<&str> = bobs["servers"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, [bob_id.as_str()]);
    let (status, _) = c.req(&c.bob, Method::GET, "/servers?all_tenants=True", "2.96", "");
    assert_eq!(status, 403, "all_tenants is for admins");
    let (_, own) = c.req(&c.admin, Method::GET, "/servers", "2.96", "");
    assert_eq!(own["servers"].as_array().map(Vec::len), Some(1));
    let (_, all) = c.req(
        &c.admin,
        Method::GET,
        "/servers/detail?all_tenants=True",
        "2.96",
        "",
    );
    assert_eq!(all["servers"].as_array().map(Vec::len), Some(2));
    assert!(all["servers"][0].get("OS-EXT-SRV-ATTR:host").is_some());
    // The admin may act on another project's server.
    let (status, _) = c.req(
        &c.admin,
        Method::GET,
        &format!("/servers/{bob_id}"),
        "2.96",
        "",
    );
    assert_eq!(status, 200);
    // A project's private image is not another's to boot.
    let (status, body) = c.req(
        &c.bob,
        Method::POST,
        "/servers",
        "2.96",
        r#"{"server":{"name":"x","imageRef":"img-alpha","flavorRef":"1","networks":"auto"}}"#,
    );
    assert_eq!(status, 400, "{body}");
    c.create(&c.alice, "vm-private", json!({"imageRef": "img-alpha"}));
}

#[test]
fn lists_filter_and_page_newest_first() {
    let c = cloud();
    let a = c.create(&c.alice, "web-1", json!({}));
    let b = c.create(&c.alice, "web-2", json!({}));
    let d = c.create(&c.alice, "db-1", json!({}));
    let names = |path: &str| -> Vec<String> {
        let (status, body) = c.req(&c.alice, Method::GET, path, "2.96", "");
        assert_eq!(status, 200, "{path}: {body}");
        body["servers"]
            .as_array()
            .expect("list")
            .iter()
            .map(|s| s["name"].as_str().expect("name").to_owned())
            .collect()
    };
    // Newest first, then by id (Nova's created_at desc, id desc): the three were
    // made within the same second or two, so the order is the ids'.
    let all = names("/servers");
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(sorted, ["db-1", "web-1", "web-2"]);
    let web: Vec<String> = all
        .iter()
        .filter(|n| n.starts_with("web"))
        .cloned()
        .collect();
    assert_eq!(names("/servers/detail?name=web"), web);
    assert_eq!(names("/servers/detail?status=BUILD"), all);
    assert!(names("/servers/detail?status=ACTIVE").is_empty());
    assert_eq!(
        names("/servers/detail?all_tenants=False&deleted=False&name=db-1"),
        ["db-1"]
    );
    let (_, page) = c.req(&c.alice, Method::GET, "/servers/detail?limit=2", "2.96", "");
    assert_eq!(page["servers"].as_array().map(Vec::len), Some(2));
    let second = page["servers"][1]["id"].as_str().expect("id");
    let next = page["servers_links"][0]["href"]
        .as_str()
        .expect("next link");
    assert!(next.contains(&format!("marker={second}")), "{next}");
    assert_eq!(
        names(&format!("/servers/detail?limit=2&marker={second}")),
        [all[2].clone()]
    );
    let (status, _) = c.req(&c.alice, Method::GET, "/servers?marker=nope", "2.96", "");
    assert_eq!(status, 400);
    let _ = (a, b, d);
}

#[test]
fn wrong_states_are_409_in_novas_words_and_a_delete_shows_at_once() {
    let c = cloud();
    let id = c.create(&c.alice, "vm1", json!({}));
    let act = |body: &str| {
        c.req(
            &c.alice,
            Method::POST,
            &format!("/servers/{id}/action"),
            "2.96",
            body,
        )
    };
    let (status, body) = act(r#"{"os-start":null}"#);
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["conflictingRequest"]["message"],
        format!("Cannot 'start' instance {id} while it is in task_state spawning")
    );
    let (status, _) = act(r#"{"changePassword":{"adminPass":"x"}}"#);
    assert_eq!(status, 409);
    let (status, body) = act(r#"{"reboot":{"type":"sideways"}}"#);
    assert_eq!(status, 400, "{body}");
    let (status, _) = act(r#"{"reboot":{}}"#);
    assert_eq!(status, 400);
    let (status, _) = act(r#"{"fly":null}"#);
    assert_eq!(status, 400);
    let (status, _) = act(r#"{"pause":null,"unpause":null}"#);
    assert_eq!(status, 400);
    // Deleting a building server is allowed; the task shows at once.
    let (status, _) = c.req(
        &c.alice,
        Method::DELETE,
        &format!("/servers/{id}"),
        "2.96",
        "",
    );
    assert_eq!(status, 204);
    let (_, shown) = c.req(&c.alice, Method::GET, &format!("/servers/{id}"), "2.96", "");
    assert_eq!(shown["server"]["OS-EXT-STS:task_state"], "deleting");
    let (status, body) = c.req(
        &c.alice,
        Method::DELETE,
        &format!("/servers/{id}"),
        "2.96",
        "",
    );
    assert_eq!(status, 409, "{body}");
    let queued = c.h.store().queued_work("h1").expect("work");
    assert!(queued
        .iter()
        .any(|w| w.action == WorkAction::Delete && w.uuid == id));
}

#[test]
fn metadata_calls_change_the_document_and_the_password_is_what_was_posted() {
    let c = cloud();
    let id = c.create(&c.alice, "vm1", json!({"metadata": {"a": "1"}}));
    let m = |method: Method, path: &str, body: &str| {
        c.req(
            &c.alice,
            method,
            &format!("/servers/{id}/metadata{path}"),
            "2.96",
            body,
        )
    };
    assert_eq!(m(Method::GET, "", "").1, json!({"metadata": {"a": "1"}}));
    assert_eq!(
        m(Method::POST, "", r#"{"metadata":{"b":"2"}}"#).1,
        json!({"metadata": {"a": "1", "b": "2"}})
    );
    assert_eq!(
        m(Method::PUT, "/c", r#"{"meta":{"c":"3"}}"#).1,
        json!({"meta": {"c": "3"}})
    );
    assert_eq!(m(Method::GET, "/c", "").1, json!({"meta": {"c": "3"}}));
    assert_eq!(m(Method::PUT, "/c", r#"{"meta":{"d":"3"}}"#).0, 400);
    assert_eq!(m(Method::DELETE, "/a", "").0, 204);
    assert_eq!(m(Method::DELETE, "/a", "").0, 404);
    assert_eq!(m(Method::GET, "/a", "").0, 404);
    assert_eq!(
        m(Method::PUT, "", r#"{"metadata":{"only":"this"}}"#).1,
        json!({"metadata": {"only": "this"}})
    );
    assert_eq!(m(Method::POST, "", r#"{"metadata":{"k":5}}"#).0, 400);
    let doc = c.h.store().instance_by_uuid(&id).expect("rec").document;
    assert!(doc.contains(r#""meta":{"only":"this"}"#), "{doc}");
    // Renamed through PUT /servers/{id}: the record and the document.
    let (status, body) = c.req(
        &c.alice,
        Method::PUT,
        &format!("/servers/{id}"),
        "2.96",
        r#"{"server":{"name":"renamed"}}"#,
    );
    assert_eq!(
        (status, body["server"]["name"].as_str()),
        (200, Some("renamed"))
    );
    assert_eq!(
        c.h.store().instance_by_uuid(&id).expect("rec").name,
        "renamed"
    );

    let pw = |method: Method| {
        c.req(
            &c.alice,
            method,
            &format!("/servers/{id}/os-server-password"),
            "2.96",
            "",
        )
    };
    assert_eq!(pw(Method::GET).1, json!({"password": ""}));
    c.h.store().set_password(&id, "c2VjcmV0").expect("posted");
    assert_eq!(pw(Method::GET).1, json!({"password": "c2VjcmV0"}));
    assert_eq!(pw(Method::DELETE).0, 204);
    assert_eq!(pw(Method::GET).1, json!({"password": ""}));
}

#[test]
fn bad_creates_are_400_with_the_reason_and_record_nothing() {
    let c = cloud();
    let too_long = "A".repeat(65536);
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"user_data": too_long}), "2.96", "65535"),
        (json!({"user_data": "not base64!"}), "2.96", "base 64"),
        (json!({"networks": [{"uuid": "net-1"}]}), "2.96", "networks"),
        (json!({"networks": null}), "2.96", "networks"),
        (
            json!({"imageRef": "", "block_device_mapping_v2": [{"source_type": "volume",
                "destination_type": "volume", "uuid": "v1", "boot_index": 0}]}),
            "2.96",
            "volumes",
        ),
        (json!({"key_name": "nope"}), "2.96", "key_name"),
        (json!({"flavorRef": "99"}), "2.96", "Flavor 99"),
        (json!({"imageRef": "nope"}), "2.96", "Image nope"),
        (json!({"max_count": 3}), "2.96", "one server"),
        (json!({"name": "  "}), "2.96", "name"),
        (json!({"metadata": {"k": 1}}), "2.96", "metadata"),
        (
            json!({"personality": [{"path": "/x", "contents": "eA=="}]}),
            "2.96",
            "personality",
        ),
    ];
    for (extra, mv, says) in cases {
        let mut server = json!({"name": "x", "imageRef": "img-public", "flavorRef": "1",
            "networks": "auto"});
        if let (Some(s), Some(e)) = (server.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                if v.is_null() {
                    s.remove(k);
                } else {
                    s.insert(k.clone(), v.clone());
                }
            }
        }
        let (status, body) = c.req(
            &c.alice,
            Method::POST,
            "/servers",
            mv,
            &json!({ "server": server }).to_string(),
        );
        assert_eq!(status, 400, "{extra}: {body}");
        let msg = body["badRequest"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(says), "{extra}: {msg}");
    }
    assert!(c.h.store().list_instances().expect("list").is_empty());
    // Before 2.37 networks may be left out; personality is still taken.
    let (status, body) = c.req(
        &c.alice,
        Method::POST,
        "/servers",
        "2.36",
        r#"{"server":{"name":"old","imageRef":"img-public","flavorRef":"1",
            "personality":[{"path":"/etc/motd","contents":"aGk="}]}}"#,
    );
    assert_eq!(status, 202, "{body}");
}
