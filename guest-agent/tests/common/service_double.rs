//! `ServiceDouble`: a TEST DOUBLE of the metadata service on loopback, serving the
//! files of `compute`'s service view. It is not the `metadata-server` crate; it only
//! has the behaviours these tests steer (token modes, transient 503s, no
//! `/openstack`, the password endpoint) and records what the agent asked.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "test-double-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    /// `PUT /latest/api/token` answers a token; GETs without it still work.
    Optional,
    /// GETs without the token get 401.
    Required,
    /// The token PUT answers this status (403, 404, 405: fall back to plain GETs).
    Refused(u16),
}

#[derive(Debug, Clone)]
pub struct Behaviour {
    pub token: TokenMode,
    /// Answer this many requests with 503 first (to exercise retries).
    pub fail_first: usize,
    /// Serve `/openstack` at all (else only the EC2 tree).
    pub openstack: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            token: TokenMode::Optional,
            fail_first: 0,
            openstack: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub token: bool,
    pub status: u16,
}

struct State {
    files: HashMap<String, Bytes>,
    behaviour: Behaviour,
    fails_left: usize,
    password: Option<Bytes>,
    seen: Vec<Seen>,
}

pub struct ServiceDouble {
    pub url: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServiceDouble {
    pub fn start(instance: &compute::Instance, behaviour: Behaviour) -> Self {
        Self::start_on("127.0.0.1:0", instance, behaviour)
    }

    /// Listens on `addr` (in whatever network namespace this process is in).
    pub fn start_on(addr: &str, instance: &compute::Instance, behaviour: Behaviour) -> Self {
        let tree = compute::render_service(instance, &compute::Settings::default());
        let mut files = HashMap::new();
        for (path, entry) in tree.walk() {
            match entry {
                compute::metadata::Entry::Dir(d) => {
                    if let Some(l) = &d.listing {
                        files.insert(path, l.clone());
                    }
                }
                compute::metadata::Entry::File(f) => {
                    files.insert(path, f.body.with_seed("c2VlZA=="));
                }
                compute::metadata::Entry::Password | compute::metadata::Entry::Live(_) => {}
            }
        }
        let fails_left = behaviour.fail_first;
        let state = Arc::new(Mutex::new(State {
            files,
            behaviour,
            fails_left,
            password: None,
            seen: Vec::new(),
        }));
        let listener = std::net::TcpListener::bind(addr).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let st = st.clone();
                            tokio::spawn(async move {
                                let svc = hyper::service::service_fn(move |req| {
                                    let st = st.clone();
                                    async move { Ok::<_, std::convert::Infallible>(handle(req, &st).await) }
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        ServiceDouble {
            url,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("lock").seen.clone()
    }

    pub fn password(&self) -> Option<Bytes> {
        self.state.lock().expect("lock").password.clone()
    }
}

impl Drop for ServiceDouble {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: &Mutex<State>,
) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let token = req
        .headers()
        .get("x-aws-ec2-metadata-token")
        .and_then(|v| v.to_str().ok())
        == Some(TOKEN);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut st = state.lock().expect("lock");
    let (status, out) = answer(&mut st, &method, &path, token, body);
    st.seen.push(Seen {
        method,
        path,
        token,
        status: status.as_u16(),
    });
    Response::builder()
        .status(status)
        .body(Full::new(out))
        .expect("response")
}

fn answer(
    st: &mut State,
    method: &str,
    path: &str,
    token: bool,
    body: Bytes,
) -> (StatusCode, Bytes) {
    let none = Bytes::new();
    if st.fails_left > 0 {
        st.fails_left -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, none);
    }
    if path == "/latest/api/token" && method == "PUT" {
        return match st.behaviour.token {
            TokenMode::Refused(s) => (StatusCode::from_u16(s).expect("status"), none),
            _ => (StatusCode::OK, Bytes::from_static(TOKEN.as_bytes())),
        };
    }
    if st.behaviour.token == TokenMode::Required && !token {
        return (StatusCode::UNAUTHORIZED, none);
    }
    let key = path.trim_matches('/').to_owned();
    if key.starts_with("openstack") && !st.behaviour.openstack {
        return (StatusCode::NOT_FOUND, none);
    }
    if key.starts_with("openstack/") && key.ends_with("/password") {
        return match method {
            "POST" if st.password.is_some() => (StatusCode::CONFLICT, none),
            "POST" => {
                st.password = Some(body);
                (StatusCode::OK, none)
            }
            _ => (StatusCode::OK, st.password.clone().unwrap_or_default()),
        };
    }
    if method != "GET" {
        return (StatusCode::METHOD_NOT_ALLOWED, none);
    }
    let key = if key.is_empty() || key.starts_with("openstack") {
        key
    } else {
        format!("ec2/{key}")
    };
    match st.files.get(&key) {
        Some(b) => (StatusCode::OK, b.clone()),
        None => (StatusCode::NOT_FOUND, none),
    }
}
