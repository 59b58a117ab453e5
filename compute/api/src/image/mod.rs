//! The Image API (Glance v2, `http://HOST:9292`): version discovery at `/` (300, as
//! Glance) and `/versions` (200). The images themselves come below `/v2` as a
//! module of their own, with a line per path in [`resource`].

use crate::{pick, ApiError, ApiRequest, ApiResponse, Route, Target};
use http::{Method, StatusCode};
use serde_json::json;

pub mod images;
pub mod patch;
pub mod records;
pub mod update;
pub mod upload;

/// The route of a path below `/v2`, if it has one.
pub fn resource(segs: &[&str]) -> Option<Route> {
    use Method as M;
    let private = |methods| {
        Some(Route {
            methods,
            public: false,
        })
    };
    match segs {
        ["images"] => private(&[(M::GET, images::list), (M::POST, images::create)]),
        ["images", _] => private(&[
            (M::GET, images::show),
            (M::PATCH, update::patch),
            (M::DELETE, images::delete),
        ]),
        ["images", _, "tags", _] => {
            private(&[(M::PUT, update::add_tag), (M::DELETE, update::delete_tag)])
        }
        _ => None,
    }
}

fn versions(req: &ApiRequest, status: StatusCode) -> ApiResponse {
    ApiResponse::with(
        status,
        json!({"versions": [{
            "id": "v2.17",
            "status": "CURRENT",
            "links": [{"rel": "self", "href": format!("{}/v2/", req.urls.image)}],
        }]}),
    )
}

pub(crate) fn prepare(req: &mut ApiRequest) -> Result<Target, ApiError> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let get = req.method == Method::GET || req.method == Method::HEAD;
    match segs.as_slice() {
        [] if get => Ok(Target::Answer(Ok(versions(
            req,
            StatusCode::MULTIPLE_CHOICES,
        )))),
        ["versions"] if get => Ok(Target::Answer(Ok(versions(req, StatusCode::OK)))),
        [] | ["versions"] => Err(ApiError::BadMethod {
            method: req.method.to_string(),
            path: format!("/{}", segs.join("/")),
        }),
        ["v2", rest @ ..] => match resource(rest) {
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
