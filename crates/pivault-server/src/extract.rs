//! Extractors whose rejections are [`ApiError`]s with stable codes and no echoed input.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use bytes::Bytes;
use pivault_core::Principal;
use pivault_domain::Code;
use serde::de::DeserializeOwned;

/// A JSON body. Unlike `axum::Json`, its errors never include serde's message (which can
/// quote the offending value); they give the code, line and column only.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let mime = v.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json")
            });
        if !is_json {
            return Err(ApiError::new(
                Code::UnsupportedMediaType,
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(Code::BodyTooLarge, "the body is larger than 1 MiB")
            } else {
                ApiError::new(Code::BodyUnreadable, "the request body could not be read")
            }
        })?;
        serde_json::from_slice::<T>(&bytes).map(ApiJson).map_err(|e| {
            use serde_json::error::Category;
            let at = format!("line {} column {}", e.line(), e.column());
            match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                Code::MalformedJson,
                    format!("the body is not valid JSON (at {at})"),
                ),
                Category::Data => ApiError::new(
                Code::InvalidBody,
                    format!("the body does not match the schema: an unknown field, a missing field or a wrong type (at {at})"),
                ),
            }
        })
    }
}

/// Path parameters. Unlike `axum::extract::Path`, whose rejection is a plain-text 400 quoting
/// the segment, a segment that is not valid percent-encoded UTF-8 (or does not parse as `T`) is
/// 400 `invalid_path` in the JSON error shape, without the segment.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(t)) => Ok(Self(t)),
            // A route without the parameters its handler asks for: a programming error.
            Err(PathRejection::MissingPathParams(e)) => Err(ApiError::internal(e)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                use axum::extract::path::ErrorKind;
                // Say what was wrong, never the segment (it may be an identifier).
                let number = |t: &str| {
                    matches!(
                        t,
                        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize"
                    )
                };
                let message = match e.kind() {
                    ErrorKind::ParseErrorAtKey { expected_type, .. }
                    | ErrorKind::ParseErrorAtIndex { expected_type, .. }
                    | ErrorKind::ParseError { expected_type, .. }
                        if number(expected_type) =>
                    {
                        "a path segment is not a whole number in range"
                    }
                    ErrorKind::InvalidUtf8InPathParam { .. } => {
                        "a path segment is not valid percent-encoded UTF-8"
                    }
                    _ => "a path segment is malformed",
                };
                Err(ApiError::new(Code::InvalidPath, message))
            }
            Err(_) => Err(ApiError::new(
                Code::InvalidPath,
                "a path segment is not valid percent-encoded UTF-8",
            )),
        }
    }
}

/// The authenticated principal, from `Authorization: Bearer <key>` or `X-API-Key: <key>`.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let h = &parts.headers;
        let token = h
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .or_else(|| h.get("x-api-key").and_then(|v| v.to_str().ok()))
            .map(str::trim)
            .ok_or(pivault_core::CoreError::Unauthenticated)?;
        Ok(Self(state.vault.authenticate(token).await?))
    }
}

/// The request id set by the request-id layer.
#[derive(Debug, Clone)]
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        ))
    }
}
