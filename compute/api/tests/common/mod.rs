//! The harness of the in-process API tests: an [`Api`] over a SQLite state folder
//! in a temp dir, requests straight to `Api::respond` (no sockets), users and
//! projects made in the store, tokens from the Identity API.
// Each test file uses its own part of the harness.
#![allow(dead_code)]

use bytes::Bytes;
use compute_api::auth::token::TokenSigner;
use compute_api::auth::{AuthMode, Authenticator};
use compute_api::pool::StorePool;
use compute_api::{Api, Incoming, Limits, PublicUrls, Service};
use compute_store::{Location, ProjectRecord, Role, RoleAssignment, UserRecord};
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Harness {
    pub _dir: tempfile::TempDir,
    pub api: Arc<Api>,
    pub rt: tokio::runtime::Runtime,
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Harness {
    pub fn new(mode: AuthMode) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = Arc::new(StorePool::new(
            Location::StateDir(dir.path().to_owned()),
            "10.0.0.0/24".parse().expect("cidr"),
            4,
        ));
        pool.check().expect("store");
        let api = Arc::new(Api {
            pool,
            auth: Authenticator {
                mode,
                signer: TokenSigner::new([9; 32]),
            },
            token_lifetime: Duration::from_secs(3600),
            public: PublicUrls::default(),
            limits: Limits::default(),
            bound: vec![
                (Service::Compute, "127.0.0.1:8774".parse().expect("addr")),
                (Service::Image, "127.0.0.1:9292".parse().expect("addr")),
                (Service::Identity, "127.0.0.1:5000".parse().expect("addr")),
            ],
            agent: None,
            shutdown_timeout: Duration::from_secs(60),
            state_dir: dir.path().to_owned(),
            posted_passwords: None,
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        Harness { _dir: dir, api, rt }
    }

    pub fn store(&self) -> Box<dyn compute_store::Store> {
        compute_store::open_store(
            &Location::StateDir(self._dir.path().to_owned()),
            "10.0.0.0/24".parse().expect("cidr"),
        )
        .expect("store")
    }

    /// A user with `role` on a new project; its name is its password.
    pub fn user(&self, name: &str, project: &str, role: Role) {
        let s = self.store();
        if s.project(project).is_err() {
            s.add_project(&ProjectRecord {
                id: format!("{project}-id"),
                name: project.into(),
                description: None,
                enabled: true,
                created_at: "t".into(),
            })
            .expect("project");
        }
        s.add_user(&UserRecord {
            id: format!("{name}-id"),
            name: name.into(),
            password_hash: Some(compute_api::auth::password::hash(name).expect("hash")),
            enabled: true,
            created_at: "t".into(),
        })
        .expect("user");
        s.add_role(&RoleAssignment {
            user_id: format!("{name}-id"),
            project_id: format!("{project}-id"),
            role,
        })
        .expect("role");
    }

    pub fn call(
        &self,
        service: Service,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("api.test:8774"));
        for (k, v) in headers {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        if !body.is_empty() && !h.contains_key("content-type") {
            h.insert("content-type", HeaderValue::from_static("application/json"));
        }
        let incoming = Incoming {
            service,
            method,
            uri: path.parse().expect("uri"),
            headers: h,
            body: Bytes::from(body.to_owned()),
        };
        let reply = self.rt.block_on(self.api.respond(incoming));
        let status = reply.status().as_u16();
        let headers = reply.headers().clone();
        let bytes = self
            .rt
            .block_on(reply.into_body().collect())
            .expect("body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn compute(&self, method: Method, path: &str, version: &str, body: &str) -> Answer {
        let mv = format!("compute {version}");
        self.call(
            Service::Compute,
            method,
            path,
            &[("openstack-api-version", &mv)],
            body,
        )
    }

    /// A token for `user` scoped to `project`.
    pub fn token(&self, user: &str, project: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": user}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let a = self.call(
            Service::Identity,
            Method::POST,
            "/v3/auth/tokens",
            &[],
            &body.to_string(),
        );
        assert_eq!(a.status, 201, "{}", a.body);
        a.headers["x-subject-token"]
            .to_str()
            .expect("token")
            .to_owned()
    }
}

pub fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers.get(name).and_then(|v| v.to_str().ok())
}
