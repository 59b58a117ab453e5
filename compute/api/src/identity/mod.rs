//! The Identity API (a small Keystone v3, `http://HOST:5000`): version discovery at
//! `/` (300, as Keystone) and `/v3`, and tokens ([`tokens`]): the password method
//! (and the token method, to scope again), project scope by id or by name in the
//! `Default` domain, the catalog of the three services. Users, projects and role
//! assignments are made with the `compute` command line (`user-create`,
//! `project-create`, `role-add`), not through this API.

pub mod tokens;

use crate::{pick, ApiError, ApiRequest, ApiResponse, Route, Target};
use http::{Method, StatusCode};
use serde_json::{json, Value};

/// The one domain.
pub const DOMAIN_ID: &str = "default";
pub const DOMAIN_NAME: &str = "Default";

/// The route of a path below `/v3`, if it has one.
pub fn resource(segs: &[&str]) -> Option<Route> {
    use Method as M;
    match segs {
        ["auth", "tokens"] => Some(Route {
            methods: &[
                (M::POST, tokens::issue),
                (M::GET, tokens::validate),
                (M::DELETE, tokens::revoke),
            ],
            // POST needs no token; GET checks both tokens itself.
            public: true,
        }),
        _ => None,
    }
}

fn entry(req: &ApiRequest) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/", req.urls.identity)}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

pub(crate) fn prepare(req: &mut ApiRequest) -> Result<Target, ApiError> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let get = req.method == Method::GET || req.method == Method::HEAD;
    match segs.as_slice() {
        [] if get => {
            let e = entry(req);
            let location = format!("{}/", req.urls.identity);
            Ok(Target::Answer(Ok(ApiResponse::with(
                StatusCode::MULTIPLE_CHOICES,
                json!({"versions": {"values": [e]}}),
            )
            .header("location", location))))
        }
        ["v3"] if get => Ok(Target::Answer(Ok(ApiResponse::ok(
            json!({"version": entry(req)}),
        )))),
        [] | ["v3"] => Err(ApiError::BadMethod {
            method: req.method.to_string(),
            path: format!("/{}", segs.join("/")),
        }),
        ["v3", rest @ ..] => match resource(rest) {
            Some(route) => {
                req.segments.remove(0);
                pick(route, &req.method, &req.segments)
            }
            None => Err(ApiError::NotFound(
                "The resource could not be found.".into(),
            )),
        },
        _ => Err(ApiError::NotFound(
            "The resource could not be found.".into(),
        )),
    }
}
