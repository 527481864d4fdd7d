//! `/v1/audit`: the audit log as a transparency log (issue 15).
//!
//! - `GET /v1/audit/key` (no key): the verifier key of the log's signed checkpoints, in C2SP
//!   note form, as `pivault-verify --key` takes it;
//! - `GET /v1/audit/checkpoints/latest` (no key): the newest signed checkpoint (404
//!   `audit_checkpoint_not_found` before the first);
//! - `POST /v1/audit/checkpoints` (`admin`): signs one now;
//! - `GET /v1/audit/entries/{seq}/proof?checkpoint=N` (`admin`, `dpo`): an entry's inclusion
//!   proof, against checkpoint N or the newest one that covers it;
//! - `GET /v1/audit/consistency?from=A&to=B` (`admin`, `dpo`): the proof that checkpoint B
//!   extends checkpoint A.
//!
//! The key and the checkpoints are public: a checkpoint is a signed commitment to sizes and
//! roots and holds no entry. A proof carries its entry's bytes (actor, action, subject id,
//! purpose…), so it is for the privacy office (`admin`, `dpo`); a subject gets the proofs of
//! their own access history with the result of an access request (`GET /v1/dsr/{id}/result`).
//! Checked offline with `pivault-verify` or `pivault audit verify-proof`.

use super::{bad_query, invalid_parameter};
use crate::error::ApiError;
use crate::extract::{ApiPath, Auth};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use pivault_core::dsr::ROLE_DPO;
use pivault_core::values::format_timestamp;
use pivault_core::{CoreError, Principal, ROLE_ADMIN};
use pivault_verify::{ConsistencyBundle, InclusionBundle};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The `/v1/audit` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(key))
        .routes(routes!(latest_checkpoint))
        .routes(routes!(sign_checkpoint))
        .routes(routes!(inclusion_proof))
        .routes(routes!(consistency_proof))
}

/// `Ok` for the roles that read audit proofs: `admin`, and `dpo`, the data protection
/// officer who audits the handling of PI (PIPL Art. 52, Art. 54).
///
/// # Errors
/// `Forbidden` (`role_required`) otherwise.
pub fn require_proof_reader(p: &Principal) -> Result<(), CoreError> {
    if p.has_role(ROLE_ADMIN) || p.has_role(ROLE_DPO) {
        Ok(())
    } else {
        Err(CoreError::Forbidden {
            code: "role_required",
            message: "audit proofs need the admin or dpo role",
        })
    }
}

/// `GET /v1/audit/key` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditKeyOut {
    /// The C2SP signed-note verifier key, `<origin>+<key id hex>+<base64 of 0x01 and the
    /// Ed25519 public key>`: what `pivault-verify --key` takes.
    pub key: String,
    /// The log's origin: the first line of its checkpoints and the key's name.
    pub origin: String,
    /// `Ed25519`.
    pub algorithm: &'static str,
}

/// The verifier key of the audit log's signed checkpoints (no key needed).
#[utoipa::path(get, path = "/audit/key", tag = "audit",
    responses((status = 200, description = "The key", body = AuditKeyOut)),
    security(()))]
async fn key(State(s): State<AppState>) -> Result<Json<AuditKeyOut>, ApiError> {
    let key = s.vault.audit_verifier_key()?;
    let origin = key.split('+').next().unwrap_or_default().to_string();
    Ok(Json(AuditKeyOut {
        key,
        origin,
        algorithm: "Ed25519",
    }))
}

/// A signed checkpoint of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointOut {
    /// Its number, from 1, in the order checkpoints were signed.
    pub id: i64,
    /// When it was signed, RFC 3339.
    pub at: String,
    /// Entries it covers, over every shard.
    pub size: i64,
    /// The C2SP signed note: origin, size, root over the shard heads, one `shard K SIZE ROOT`
    /// line per shard, a blank line and the Ed25519 signature line.
    pub note: String,
}

impl From<pivault_core::CheckpointRow> for CheckpointOut {
    fn from(c: pivault_core::CheckpointRow) -> Self {
        Self {
            id: c.id,
            at: format_timestamp(c.at),
            size: c.size,
            note: c.note,
        }
    }
}

/// The newest signed checkpoint (no key needed).
#[utoipa::path(get, path = "/audit/checkpoints/latest", tag = "audit",
    responses(
        (status = 200, description = "The checkpoint", body = CheckpointOut),
        (status = 404, description = "No checkpoint was signed yet"),
    ),
    security(()))]
async fn latest_checkpoint(State(s): State<AppState>) -> Result<Json<CheckpointOut>, ApiError> {
    let c = s
        .vault
        .latest_checkpoint()
        .await?
        .ok_or(CoreError::NotFound("audit_checkpoint"))?;
    Ok(Json(CheckpointOut::from(c)))
}

/// Signs a checkpoint of every shard's head now (admin).
#[utoipa::path(post, path = "/audit/checkpoints", tag = "audit",
    responses((status = 201, description = "The checkpoint signed", body = CheckpointOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn sign_checkpoint(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<(StatusCode, Json<CheckpointOut>), ApiError> {
    if !p.has_role(ROLE_ADMIN) {
        return Err(CoreError::Forbidden {
            code: "role_required",
            message: "signing a checkpoint needs the admin role",
        }
        .into());
    }
    let c = s.vault.sign_checkpoint(false).await?;
    Ok((StatusCode::CREATED, Json(CheckpointOut::from(c))))
}

/// `GET /v1/audit/entries/{seq}/proof` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// The checkpoint (its number) to prove inclusion in; absent: the newest that covers the
    /// entry (one is signed when none does yet).
    pub checkpoint: Option<i64>,
}

/// An audit entry's inclusion proof (mirror of [`pivault_verify::InclusionBundle`]).
#[derive(ToSchema)]
#[schema(as = InclusionBundle)]
#[allow(dead_code)]
pub struct InclusionBundleDoc {
    /// The entry's bytes (standard base64), exactly as hashed into its shard's tree.
    pub leaf: String,
    /// The shard whose tree holds the entry.
    pub shard: u32,
    /// Its 0-based leaf index in that shard's tree.
    pub index: u64,
    /// The audit path from the leaf up (RFC 9162 §2.1.3), each hash 64 hex digits.
    pub proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note) the path leads to.
    pub checkpoint: String,
}

/// The inclusion proof of audit entry `seq` (admin, dpo): check it offline with
/// `pivault-verify inclusion FILE --key KEY`.
#[utoipa::path(get, path = "/audit/entries/{seq}/proof", tag = "audit",
    params(("seq" = i64, Path, description = "The entry's sequence number"), ProofQuery),
    responses(
        (status = 200, description = "The inclusion bundle", body = InclusionBundleDoc),
        (status = 404, description = "No such entry or checkpoint"),
        (status = 409, description = "The checkpoint named does not cover the entry"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn inclusion_proof(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(seq): ApiPath<i64>,
    q: Result<Query<ProofQuery>, QueryRejection>,
) -> Result<Json<InclusionBundle>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    require_proof_reader(&p)?;
    if q.checkpoint.is_some_and(|c| c < 1) {
        return Err(invalid_parameter(
            "checkpoint",
            "checkpoint numbers start at 1",
        ));
    }
    Ok(Json(s.vault.inclusion_proof(seq, q.checkpoint).await?))
}

/// `GET /v1/audit/consistency` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The earlier checkpoint's number.
    pub from: i64,
    /// The later checkpoint's number (≥ `from`).
    pub to: i64,
}

/// One shard's consistency proof (mirror of [`pivault_verify::ShardProof`]).
#[derive(ToSchema)]
#[schema(as = ShardProof)]
#[allow(dead_code)]
pub struct ShardProofDoc {
    /// The shard.
    pub shard: u32,
    /// The RFC 9162 §2.1.4 proof from the shard's size in `old` to its size in `new`, each
    /// hash 64 hex digits.
    pub proof: Vec<String>,
}

/// A consistency proof between two checkpoints (mirror of
/// [`pivault_verify::ConsistencyBundle`]).
#[derive(ToSchema)]
#[schema(as = ConsistencyBundle)]
#[allow(dead_code)]
pub struct ConsistencyBundleDoc {
    /// The earlier checkpoint (signed note).
    pub old: String,
    /// The later checkpoint (signed note).
    pub new: String,
    /// One proof per shard of the earlier checkpoint.
    pub proofs: Vec<ShardProofDoc>,
}

/// The proof that checkpoint `to` extends checkpoint `from`, shard by shard (admin, dpo):
/// check it offline with `pivault-verify consistency FILE --key KEY`.
#[utoipa::path(get, path = "/audit/consistency", tag = "audit",
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The consistency bundle", body = ConsistencyBundleDoc),
        (status = 404, description = "No such checkpoint"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn consistency_proof(
    State(s): State<AppState>,
    Auth(p): Auth,
    q: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<ConsistencyBundle>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    require_proof_reader(&p)?;
    for (field, v) in [("from", q.from), ("to", q.to)] {
        if v < 1 {
            return Err(invalid_parameter(field, "checkpoint numbers start at 1"));
        }
    }
    Ok(Json(s.vault.consistency_proof(q.from, q.to).await?))
}

/// The inclusion proofs of an access package's `access_history` entries (newest first, at
/// most [`MAX_PACKAGE_PROOFS`]), for `GET /v1/dsr/{id}/result`: each entry's `seq` proven
/// against the newest checkpoint that covers it.
///
/// # Errors
/// As [`pivault_core::Vault::inclusion_proof`].
pub async fn package_proofs(
    vault: &pivault_core::Vault,
    history: &[serde_json::Value],
) -> Result<Vec<InclusionBundle>, CoreError> {
    let mut seqs: Vec<i64> = history
        .iter()
        .filter_map(|e| e.get("seq").and_then(serde_json::Value::as_i64))
        .collect();
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    seqs.dedup();
    seqs.truncate(MAX_PACKAGE_PROOFS);
    let mut out = Vec::with_capacity(seqs.len());
    for seq in seqs {
        out.push(vault.inclusion_proof(seq, None).await?);
    }
    Ok(out)
}

/// Most inclusion proofs added to one access package.
pub const MAX_PACKAGE_PROOFS: usize = 50;
