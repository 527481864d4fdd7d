//! `/v1/keys`: API-key administration for the `admin` role (issue 11): list, create, revoke and
//! rotate. A token is returned once, at creation or rotation; a listing never holds a token or
//! its hash. Every change is audited in its own transaction, and a revoked key is refused on
//! every instance within 100 ms (401 `api_key_revoked`; an expired one: 401 `api_key_expired`).

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Auth, RequestId};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pivault_core::values::format_timestamp;
use pivault_core::{ApiKeyInfo, CoreError, Expiry, NewApiKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The `/v1/keys` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
        .routes(routes!(rotate))
}

/// An API key as listed: never the token or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    /// Public key id (16 hex characters: the middle part of the token `pvk.<id>.<secret>`).
    pub key_id: String,
    /// Principal name.
    pub principal: String,
    /// Roles (`app`, `admin`, `support`, `dpo`, `security`).
    pub roles: Vec<String>,
    /// Purposes it may use (policy §8.1).
    pub purposes: Vec<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Expiry, RFC 3339 (`null`: none).
    pub expires_at: Option<String>,
    /// Revocation time, RFC 3339 (`null`: not revoked).
    pub revoked_at: Option<String>,
    /// The key that replaced it at a rotation.
    pub replaced_by: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub state: &'static str,
}

impl From<ApiKeyInfo> for ApiKeyOut {
    fn from(k: ApiKeyInfo) -> Self {
        Self {
            key_id: k.key_id,
            principal: k.principal,
            roles: k.roles,
            purposes: k.purposes,
            created_at: format_timestamp(k.created_at),
            expires_at: k.expires_at.map(format_timestamp),
            revoked_at: k.revoked_at.map(format_timestamp),
            replaced_by: k.replaced_by,
            state: k.state,
        }
    }
}

/// `GET /v1/keys` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyListOut {
    /// Every key, oldest first.
    pub keys: Vec<ApiKeyOut>,
}

/// A key just created or rotated, with its token (shown once; only its SHA-256 is stored).
#[derive(Debug, Serialize, ToSchema)]
pub struct NewKeyOut {
    /// The key.
    pub key: ApiKeyOut,
    /// `pvk.<key_id>.<secret>`: send it as `Authorization: Bearer <token>`.
    pub token: String,
}

impl From<NewApiKey> for NewKeyOut {
    fn from(k: NewApiKey) -> Self {
        Self {
            key: k.info.into(),
            token: k.token,
        }
    }
}

/// `POST /v1/keys` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    /// Principal name: 1-128 characters of `A-Z a-z 0-9 _ . : -`.
    pub principal: String,
    /// Roles, at least one (default `["app"]`; `[]` is refused with `roles_empty`).
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Purposes it may use, declared in the policy.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// Lifetime: a number and `s`, `m`, `h` or `d` (e.g. `90d`), at most 10 years.
    #[serde(default)]
    pub expires_in: Option<String>,
    /// Expiry instant, RFC 3339 (instead of `expires_in`).
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `POST /v1/keys/{id}/rotate` body (`{}` for the defaults).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyBody {
    /// How long the old token keeps working, e.g. `1h` (default: revoked at once; at most
    /// 30 days).
    #[serde(default)]
    pub grace: Option<String>,
    /// The new key's lifetime (default: the old key's lifetime again, or none).
    #[serde(default)]
    pub expires_in: Option<String>,
    /// The new key's expiry instant, RFC 3339.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// Every API key (admin), never a token or its hash.
#[utoipa::path(get, path = "/keys", tag = "keys",
    responses((status = 200, description = "Every API key", body = KeyListOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn list(State(s): State<AppState>, Auth(p): Auth) -> Result<Json<KeyListOut>, ApiError> {
    let keys = s.vault.list_api_keys(&p).await?;
    Ok(Json(KeyListOut {
        keys: keys.into_iter().map(Into::into).collect(),
    }))
}

/// Creates an API key (admin); the token is in the answer, once.
#[utoipa::path(post, path = "/keys", tag = "keys",
    request_body = CreateKeyBody,
    responses((status = 201, description = "Created; the token is shown once", body = NewKeyOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> Result<(StatusCode, Json<NewKeyOut>), ApiError> {
    let expiry = Expiry::from_fields(body.expires_in.as_deref(), body.expires_at.as_deref())?;
    let roles = body
        .roles
        .unwrap_or_else(|| vec![pivault_core::ROLE_APP.into()]);
    let k = s
        .vault
        .create_api_key_as(&p, &body.principal, &roles, &body.purposes, expiry)
        .await?;
    Ok((StatusCode::CREATED, Json(k.into())))
}

/// Revokes an API key (admin): refused on every instance within 100 ms.
#[utoipa::path(post, path = "/keys/{id}/revoke", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 200, description = "The key, revoked", body = ApiKeyOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn revoke(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ApiKeyOut>, ApiError> {
    Ok(Json(
        s.vault
            .revoke_api_key(&p, &id, rid.as_deref())
            .await?
            .into(),
    ))
}

/// Rotates an API key (admin): a new token for the same principal; the old one is revoked at
/// once or when the grace period ends.
#[utoipa::path(post, path = "/keys/{id}/rotate", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    request_body = RotateKeyBody,
    responses((status = 201, description = "The new key; the token is shown once", body = NewKeyOut),
        (status = 409, description = "The key is revoked, expired or already rotated: it cannot be rotated")),
    security(("bearer" = []), ("api_key" = [])))]
async fn rotate(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RotateKeyBody>,
) -> Result<(StatusCode, Json<NewKeyOut>), ApiError> {
    let grace = match body.grace.as_deref() {
        None => 0,
        Some(g) => match Expiry::parse_in(g).map_err(|_| {
            CoreError::invalid(
                "grace",
                "expiry_invalid",
                "a number and s, m, h or d, e.g. 1h",
            )
        })? {
            Expiry::In(secs) => secs,
            _ => 0,
        },
    };
    let expiry = Expiry::from_fields(body.expires_in.as_deref(), body.expires_at.as_deref())?;
    let k = s
        .vault
        .rotate_api_key(&p, &id, grace, expiry, rid.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(k.into())))
}
