//! Who is asking. [`AuthContext`] is what a handler knows of its caller: user,
//! project, roles. [`Authenticator`] turns a request's `X-Auth-Token` into one: in
//! `keystone` mode by checking the token's signature and expiry, then the store
//! (the user still enabled, the project too, the roles it holds there now: a
//! disabled user or a withdrawn role ends its tokens at their next use); in
//! `noauth` mode every request is the operator in the default project.

pub mod key;
pub mod password;
pub mod token;

use crate::error::ApiError;
use compute_store::{Role, Store, StoreError};
use token::{TokenClaims, TokenSigner};

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    pub user_id: String,
    pub user_name: String,
    pub project_id: String,
    pub project_name: String,
    pub roles: Vec<Role>,
}

impl AuthContext {
    /// Admins see and manage every project's resources and the flavors.
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    /// The `noauth` caller: the operator, admin of the default project.
    pub fn operator() -> AuthContext {
        AuthContext {
            user_id: compute_store::OPERATOR_USER_ID.into(),
            user_name: compute_store::OPERATOR_USER_NAME.into(),
            project_id: compute_store::DEFAULT_PROJECT_ID.into(),
            project_name: compute_store::DEFAULT_PROJECT_NAME.into(),
            roles: vec![Role::Admin],
        }
    }

    /// Refuses a non-admin with Nova's policy message for `rule`.
    pub fn require_admin(&self, rule: &str) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::policy(rule))
        }
    }
}

/// How requests prove who they are.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// Tokens from our Identity service.
    Keystone,
    /// No checks: every request is [`AuthContext::operator`].
    NoAuth,
}

/// Turns tokens into callers.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub mode: AuthMode,
    pub signer: TokenSigner,
}

/// The current time in Unix seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Authenticator {
    /// The caller of a request bearing `token` (the `X-Auth-Token` header).
    pub fn authenticate(
        &self,
        store: &dyn Store,
        token: Option<&str>,
    ) -> Result<AuthContext, ApiError> {
        if let AuthMode::NoAuth = self.mode {
            return Ok(AuthContext::operator());
        }
        let token = token.ok_or(ApiError::Unauthorized)?;
        let claims = self.signer.verify(token, now_secs()).map_err(|e| {
            tracing::info!(reason = %e, "token refused");
            ApiError::Unauthorized
        })?;
        let project = claims.project_id.clone().ok_or(ApiError::Unauthorized)?;
        context(store, &claims.user_id, &project)
    }

    /// The claims of a token for Identity's own calls (scoped or not), with the
    /// user still enabled.
    pub fn check(&self, store: &dyn Store, token: &str) -> Result<TokenClaims, ApiError> {
        let claims = self
            .signer
            .verify(token, now_secs())
            .map_err(|_| ApiError::Unauthorized)?;
        let user = store.user(&claims.user_id).map_err(not_found_is_401)?;
        if !user.enabled {
            return Err(ApiError::Unauthorized);
        }
        if let Some(p) = &claims.project_id {
            context(store, &claims.user_id, p)?;
        }
        Ok(claims)
    }
}

fn not_found_is_401(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } => ApiError::Unauthorized,
        other => ApiError::from_store(other),
    }
}

/// The caller `user_id` acting in `project_id` as the store says now: both enabled,
/// with at least one role there; else 401.
pub fn context(
    store: &dyn Store,
    user_id: &str,
    project_id: &str,
) -> Result<AuthContext, ApiError> {
    let user = store.user(user_id).map_err(not_found_is_401)?;
    let project = store.project(project_id).map_err(not_found_is_401)?;
    if !user.enabled || !project.enabled || user.id != user_id || project.id != project_id {
        return Err(ApiError::Unauthorized);
    }
    let roles = store.roles_of(user_id, project_id)?;
    if roles.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    Ok(AuthContext {
        user_id: user.id,
        user_name: user.name,
        project_id: project.id,
        project_name: project.name,
        roles,
    })
}
