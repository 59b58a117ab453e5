//! The Compute API (`http://HOST:8774`): version discovery at `/` and `/v2.1`,
//! then the resources below `/v2.1` (an optional project id segment after it, as
//! Nova routes, is accepted and ignored: the token's project scopes everything).
//!
//! The route table is [`resource`]: one line per path pattern with its methods.

pub mod flavors;
pub mod keypairs;
pub mod limits;
pub mod server_actions;
pub mod server_metadata;
pub mod server_view;
pub mod servers;
pub mod versions;

use crate::microversion::{self, ApiVersion};
use crate::{pick, ApiError, ApiRequest, Route, Target};
use http::Method;

/// The route of a path below `/v2.1`, if it has one.
pub fn resource(segs: &[&str]) -> Option<Route> {
    use Method as M;
    let private = |methods| {
        Some(Route {
            methods,
            public: false,
        })
    };
    match segs {
        ["flavors"] => private(&[(M::GET, flavors::list), (M::POST, flavors::create)]),
        ["flavors", "detail"] => private(&[(M::GET, flavors::list_detail)]),
        ["flavors", _] => private(&[(M::GET, flavors::show), (M::DELETE, flavors::delete)]),
        ["flavors", _, "os-extra_specs"] => private(&[
            (M::GET, flavors::extra_specs_list),
            (M::POST, flavors::extra_specs_set),
        ]),
        ["flavors", _, "os-extra_specs", _] => private(&[
            (M::GET, flavors::extra_spec_show),
            (M::PUT, flavors::extra_spec_update),
            (M::DELETE, flavors::extra_spec_delete),
        ]),
        ["flavors", _, "os-flavor-access"] => private(&[(M::GET, flavors::access_list)]),
        ["os-keypairs"] => private(&[(M::GET, keypairs::list), (M::POST, keypairs::create)]),
        ["os-keypairs", _] => private(&[(M::GET, keypairs::show), (M::DELETE, keypairs::delete)]),
        ["limits"] => private(&[(M::GET, limits::show)]),
        ["servers"] => private(&[(M::GET, servers::list), (M::POST, servers::create)]),
        ["servers", "detail"] => private(&[(M::GET, servers::list_detail)]),
        ["servers", _] => private(&[
            (M::GET, servers::show),
            (M::PUT, servers::update),
            (M::DELETE, servers::delete),
        ]),
        ["servers", _, "action"] => private(&[(M::POST, server_actions::act)]),
        ["servers", _, "metadata"] => private(&[
            (M::GET, server_metadata::list),
            (M::POST, server_metadata::update),
            (M::PUT, server_metadata::replace),
        ]),
        ["servers", _, "metadata", _] => private(&[
            (M::GET, server_metadata::show),
            (M::PUT, server_metadata::put_one),
            (M::DELETE, server_metadata::delete),
        ]),
        ["servers", _, "os-server-password"] => private(&[
            (M::GET, server_metadata::password),
            (M::DELETE, server_metadata::clear_password),
        ]),
        _ => None,
    }
}

/// The path's route, the project id segment skipped when there is one.
fn find(segs: &mut Vec<String>) -> Option<Route> {
    let view: Vec<&str> = segs.iter().map(String::as_str).collect();
    if let Some(r) = resource(&view) {
        return Some(r);
    }
    let r = resource(view.get(1..).unwrap_or(&[]))?;
    segs.remove(0);
    Some(r)
}

/// Routes a compute request; says the microversion it is served at when the path
/// is versioned.
pub(crate) fn prepare(req: &mut ApiRequest) -> (Option<ApiVersion>, Result<Target, ApiError>) {
    let first = req.segments.first().cloned();
    match first.as_deref() {
        None => (None, only_get(req, versions::root)),
        Some("v2.1") => {
            let version = match microversion::negotiate(&req.headers) {
                Ok(v) => v,
                Err(e @ microversion::VersionError::Malformed(_)) => {
                    return (None, Err(ApiError::BadRequest(e.to_string())))
                }
                Err(e @ microversion::VersionError::Unsupported(_)) => {
                    return (None, Err(ApiError::NotAcceptable(e.to_string())))
                }
            };
            req.version = version;
            req.segments.remove(0);
            if req.segments.is_empty() {
                return (Some(version), only_get(req, versions::v21));
            }
            let target = match find(&mut req.segments) {
                Some(route) => pick(route, &req.method, &req.segments),
                None => Err(not_found()),
            };
            (Some(version), target)
        }
        Some(_) => (None, Err(not_found())),
    }
}

fn only_get(
    req: &ApiRequest,
    doc: fn(&ApiRequest) -> crate::ApiResponse,
) -> Result<Target, ApiError> {
    if req.method == Method::GET || req.method == Method::HEAD {
        Ok(Target::Answer(Ok(doc(req))))
    } else {
        Err(ApiError::BadMethod {
            method: req.method.to_string(),
            path: format!("/{}", req.segments.join("/")),
        })
    }
}

/// Nova's answer for a path it has no route for.
pub fn not_found() -> ApiError {
    ApiError::NotFound("The resource could not be found.".into())
}

/// `limit` and `marker` of a list (`limit` at most 1000, Nova's
/// `max_limit`); `marker` is the last id of the previous page.
pub struct Page<'a> {
    pub limit: usize,
    pub marker: Option<&'a str>,
}

/// Nova's `max_limit`: no page is longer.
pub const MAX_LIMIT: usize = 1000;

impl<'a> Page<'a> {
    pub fn of(req: &'a ApiRequest) -> Result<Page<'a>, ApiError> {
        let limit = match req.query("limit") {
            None => MAX_LIMIT,
            Some(l) => match l.parse::<i64>() {
                Ok(n) if n >= 0 => (n as u64).min(MAX_LIMIT as u64) as usize,
                _ => {
                    return Err(ApiError::BadRequest(
                        "limit param must be an integer".into(),
                    ))
                }
            },
        };
        Ok(Page {
            limit,
            marker: req.query("marker"),
        })
    }

    /// The page of `items` after the marker (by `id`); an unknown marker is 400.
    pub fn apply<T>(&self, items: Vec<T>, id: impl Fn(&T) -> &str) -> Result<Vec<T>, ApiError> {
        let start = match self.marker {
            None => 0,
            Some(m) => match items.iter().position(|i| id(i) == m) {
                Some(p) => p + 1,
                None => return Err(ApiError::BadRequest(format!("marker [{m}] not found"))),
            },
        };
        Ok(items.into_iter().skip(start).take(self.limit).collect())
    }

    /// Whether a `next` link is due: the page is full and more may follow.
    pub fn full(&self, len: usize) -> bool {
        len == self.limit && self.limit > 0
    }
}
