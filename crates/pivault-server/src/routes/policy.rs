//! `GET /v1/policy`: the policy in force.

use crate::extract::Auth;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The policy route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(policy))
}

/// A purpose of the policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurposeOut {
    /// Purpose id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Policy clause.
    pub clause: String,
    /// Legal basis.
    pub legal_basis: &'static str,
    /// PIPL article of the legal basis.
    pub article: &'static str,
    /// Categories the purpose may use.
    pub categories: Vec<String>,
    /// Needs a separate consent.
    pub separate_consent: bool,
}

/// A category of the policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryOut {
    /// Category key.
    pub key: String,
    /// Name.
    pub name: String,
    /// Sensitivity.
    pub sensitivity: &'static str,
    /// Value type.
    pub value_type: &'static str,
}

/// `GET /v1/policy` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyOut {
    /// Policy id.
    pub id: String,
    /// Version.
    pub version: String,
    /// Content hash.
    pub hash: String,
    /// Where PI is stored.
    pub storage_region: String,
    /// Purposes.
    pub purposes: Vec<PurposeOut>,
    /// Categories.
    pub categories: Vec<CategoryOut>,
}

/// The policy in force: purposes and categories.
#[utoipa::path(get, path = "/policy", tag = "policy",
    responses((status = 200, description = "The policy", body = PolicyOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn policy(State(s): State<AppState>, Auth(_): Auth) -> Json<PolicyOut> {
    let p = s.vault.policy();
    Json(PolicyOut {
        id: p.id().to_string(),
        version: p.version().to_string(),
        hash: p.hash().to_string(),
        storage_region: p.storage_region().to_string(),
        purposes: p
            .purposes()
            .iter()
            .map(|x| PurposeOut {
                id: x.id.clone(),
                name: x.name.clone(),
                clause: x.clause.clone(),
                legal_basis: x.legal_basis.as_str(),
                article: x.legal_basis.pipl_article(),
                categories: x.categories.clone(),
                separate_consent: x.separate_consent,
            })
            .collect(),
        categories: p
            .categories()
            .iter()
            .map(|c| CategoryOut {
                key: c.key.clone(),
                name: c.name.clone(),
                sensitivity: c.sensitivity.as_str(),
                value_type: c.value_type.as_str(),
            })
            .collect(),
    })
}
