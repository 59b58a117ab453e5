//! `POST /v3/auth/tokens` (201, the token in `X-Subject-Token`, the body
//! keystoneauth reads: user, project, roles, expiry, catalog), `GET` (validate
//! `X-Subject-Token` with a valid `X-Auth-Token`), `DELETE` (501: tokens are not
//! stored, so they end by expiring, or all at once when the key is replaced).

use super::{DOMAIN_ID, DOMAIN_NAME};
use crate::auth::token::TokenClaims;
use crate::auth::{context, now_secs, password, AuthContext};
use crate::{ApiError, ApiResponse, Call};
use base64::Engine;
use compute_store::StoreError;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
struct Body {
    auth: Auth,
}

#[derive(Debug, Deserialize)]
struct Auth {
    identity: Identity,
    #[serde(default)]
    scope: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Identity {
    methods: Vec<String>,
    #[serde(default)]
    password: Option<PasswordMethod>,
    #[serde(default)]
    token: Option<TokenMethod>,
}

#[derive(Debug, Deserialize)]
struct PasswordMethod {
    user: UserRef,
}

#[derive(Debug, Deserialize)]
struct TokenMethod {
    id: String,
}

#[derive(Debug, Deserialize)]
struct UserRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain: Option<DomainRef>,
    password: String,
}

#[derive(Debug, Deserialize)]
struct DomainRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// Whether a domain reference names the one domain.
fn is_default(d: &Option<DomainRef>) -> bool {
    match d {
        None => true,
        Some(d) => {
            d.id.as_deref().is_none_or(|i| i == DOMAIN_ID)
                && d.name.as_deref().is_none_or(|n| n == DOMAIN_NAME)
        }
    }
}

fn unauthorized(why: &str) -> ApiError {
    tracing::info!(reason = why, "authentication refused");
    ApiError::Unauthorized
}

/// The user a password proves, or 401 (the same time spent either way).
fn by_password(call: &Call<'_>, m: &PasswordMethod) -> Result<String, ApiError> {
    let u = &m.user;
    if !is_default(&u.domain) {
        password::verify(&u.password, None);
        return Err(unauthorized("unknown domain"));
    }
    let key = match (&u.id, &u.name) {
        (Some(id), _) => id.as_str(),
        (None, Some(name)) => name.as_str(),
        (None, None) => {
            return Err(ApiError::BadRequest(
                "Expecting to find id or name in user.".into(),
            ))
        }
    };
    let found = match call.store.user(key) {
        Ok(user) if u.id.as_ref().is_none_or(|i| *i == user.id) => Some(user),
        Ok(_) | Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let hash = found.as_ref().and_then(|u| u.password_hash.as_deref());
    if !password::verify(&u.password, hash) {
        return Err(unauthorized("wrong user or password"));
    }
    match found {
        Some(user) if user.enabled => Ok(user.id),
        _ => Err(unauthorized("user disabled")),
    }
}

/// The project a scope names (`None`: unscoped).
fn scoped_project(call: &Call<'_>, scope: &Option<Value>) -> Result<Option<String>, ApiError> {
    let Some(scope) = scope else {
        return Ok(None);
    };
    if scope == "unscoped" {
        return Ok(None);
    }
    let Some(project) = scope.get("project") else {
        return Err(ApiError::BadRequest(
            "Only project scope is supported (no domain or system scope).".into(),
        ));
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let domain = project.get("domain").map(|d| DomainRef {
        id: text(d.get("id")),
        name: text(d.get("name")),
    });
    let key = match (text(project.get("id")), text(project.get("name"))) {
        (Some(id), _) => id,
        (None, Some(name)) if is_default(&domain) => name,
        (None, Some(_)) => return Err(unauthorized("unknown domain")),
        (None, None) => {
            return Err(ApiError::BadRequest(
                "Expecting to find id or name in project.".into(),
            ))
        }
    };
    match call.store.project(&key) {
        Ok(p) => Ok(Some(p.id)),
        Err(StoreError::NotFound { .. }) => Err(unauthorized("unknown project")),
        Err(e) => Err(e.into()),
    }
}

/// RFC 3339 with microseconds, as Keystone writes times.
fn keystone_time(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn catalog(call: &Call<'_>) -> Value {
    let urls = &call.req.urls;
    let service = |kind: &str, name: &str, url: &str| {
        let endpoints: Vec<Value> = ["public", "internal", "admin"]
            .iter()
            .map(|interface| {
                json!({"id": format!("{name}-{interface}"), "interface": interface,
                    "region_id": "RegionOne", "region": "RegionOne", "url": url})
            })
            .collect();
        json!({"type": kind, "name": name, "id": name, "endpoints": endpoints})
    };
    json!([
        service("compute", "nova", &urls.compute),
        service("image", "glance", &urls.image),
        service("identity", "keystone", &urls.identity),
    ])
}

/// The token body keystoneauth reads.
fn token_body(
    call: &Call<'_>,
    claims: &TokenClaims,
    user_name: &str,
    scope: Option<&AuthContext>,
) -> Value {
    let mut token = json!({
        "methods": claims.methods,
        "user": {"id": claims.user_id, "name": user_name,
            "domain": {"id": DOMAIN_ID, "name": DOMAIN_NAME}, "password_expires_at": null},
        "audit_ids": [claims.audit_id],
        "issued_at": keystone_time(claims.issued_at),
        "expires_at": keystone_time(claims.expires_at),
    });
    if let Some(ctx) = scope {
        token["project"] = json!({"id": ctx.project_id, "name": ctx.project_name,
            "domain": {"id": DOMAIN_ID, "name": DOMAIN_NAME}});
        token["is_domain"] = json!(false);
        token["roles"] = ctx
            .roles
            .iter()
            .map(|r| json!({"id": r.as_str(), "name": r.as_str()}))
            .collect();
        token["catalog"] = catalog(call);
    }
    json!({ "token": token })
}

/// `POST /v3/auth/tokens`.
pub fn issue(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let body: Body = call.req.json()?;
    let id = &body.auth.identity;
    let (user_id, methods) = match id.methods.as_slice() {
        [m] if m == "password" => {
            let p = id.password.as_ref().ok_or_else(|| {
                ApiError::BadRequest("Expecting to find password in identity.".into())
            })?;
            (by_password(call, p)?, vec!["password".to_owned()])
        }
        [m] if m == "token" => {
            let t = id.token.as_ref().ok_or_else(|| {
                ApiError::BadRequest("Expecting to find token in identity.".into())
            })?;
            let claims = call.api.auth.check(call.store, &t.id)?;
            (claims.user_id, claims.methods)
        }
        _ => {
            return Err(ApiError::BadRequest(
                "Only the password and token methods are supported, one at a time.".into(),
            ))
        }
    };
    let project = scoped_project(call, &body.auth.scope)?;
    let ctx = match &project {
        Some(p) => Some(context(call.store, &user_id, p).map_err(|e| match e {
            ApiError::Unauthorized => unauthorized("no role on the project"),
            other => other,
        })?),
        None => None,
    };
    let user = call.store.user(&user_id)?;
    let now = now_secs();
    let mut audit = [0u8; 16];
    getrandom::getrandom(&mut audit).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let claims = TokenClaims {
        user_id: user.id.clone(),
        project_id: project,
        methods,
        issued_at: now,
        expires_at: now + call.api.token_lifetime.as_secs(),
        audit_id: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(audit),
    };
    let token = call.api.auth.signer.sign(&claims);
    tracing::info!(user = user.name, project = ?claims.project_id, "token issued");
    Ok(ApiResponse::with(
        StatusCode::CREATED,
        token_body(call, &claims, &user.name, ctx.as_ref()),
    )
    .header("x-subject-token", token))
}

fn header<'a>(call: &'a Call<'_>, name: &str) -> Option<&'a str> {
    call.req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `GET /v3/auth/tokens`: the subject token's body, if the caller's token is good.
pub fn validate(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let caller = header(call, "x-auth-token").ok_or(ApiError::Unauthorized)?;
    call.api.auth.check(call.store, caller)?;
    let subject = header(call, "x-subject-token")
        .ok_or_else(|| ApiError::BadRequest("X-Subject-Token is missing.".into()))?
        .to_owned();
    let claims = call
        .api
        .auth
        .check(call.store, &subject)
        .map_err(|_| ApiError::NotFound("Could not find token.".into()))?;
    let user = call.store.user(&claims.user_id)?;
    let ctx = match &claims.project_id {
        Some(p) => Some(context(call.store, &claims.user_id, p)?),
        None => None,
    };
    Ok(
        ApiResponse::ok(token_body(call, &claims, &user.name, ctx.as_ref()))
            .header("x-subject-token", subject),
    )
}

/// `DELETE /v3/auth/tokens`.
pub fn revoke(_call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    Err(ApiError::NotImplemented(
        "Tokens are not revoked one by one: they expire, and replacing the token key ends them all."
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_keystones() {
        assert_eq!(super::keystone_time(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            super::keystone_time(1_900_000_000),
            "2030-03-17T17:46:40.000000Z"
        );
    }
}
