//! Extractors whose rejections are [`ApiError`]s (so every malformed request gets the same error body),
//! and [`CallContext`], what a downstream call carries from the HTTP request.

use std::str::FromStr;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use crate::error::ApiError;
use crate::middleware::RequestId;
use crate::model_api::anthropic_error::AnthropicError;
use crate::model_api::openai_error::OpenAiError;
use proto::ids::IdError;

/// A JSON object body: 400 for a syntax error, 415 without `Content-Type: application/json`, 413 when
/// too large, 422 when it is not an object (serde's derived structs would read an array as the fields'
/// values in order) or does not fit the expected shape.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        // Checked for syntax only, not built into a tree: a prompt is read once, into `T`.
        let axum::Json(raw) = axum::Json::<Box<RawValue>>::from_request(request, state).await?;
        let unprocessable = |message: String| ApiError::BodyRejected {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message,
        };
        if !raw.get().starts_with('{') {
            return Err(unprocessable("the body must be a JSON object".to_string()));
        }
        serde_json::from_str(raw.get())
            .map(JsonBody)
            .map_err(|error| unprocessable(error.to_string()))
    }
}

/// A query string; a bad value is a 400 naming the parameter.
#[derive(Debug, FromRequestParts)]
#[from_request(via(Query), rejection(ApiError))]
pub struct QueryParams<T>(pub T);

/// Path parameters; a bad value is a 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(Path), rejection(ApiError))]
pub struct PathParams<T>(pub T);

/// A typed id as the path's one parameter, checked for its form (`proto::ids`): a malformed id is a 400
/// naming the form it should have, before any service is asked.
#[derive(Debug)]
pub struct PathId<T>(pub T);

impl<S, T> FromRequestParts<S> for PathId<T>
where
    S: Send + Sync,
    T: FromStr<Err = IdError>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathId<T>, ApiError> {
        let PathParams(text) = PathParams::<String>::from_request_parts(parts, state).await?;
        text.parse()
            .map(PathId)
            .map_err(|error: IdError| ApiError::InvalidRequest(format!("Invalid URL: {error}")))
    }
}

/// The caller's `Authorization` header (forwarded as is: billing-svc decides) and the request id. Every
/// route that takes it needs a key, and takes it before its query or body: a call without the header is
/// answered 401 before its input is read, so a client learns nothing of a route it may not use.
#[derive(Debug, Clone)]
pub struct CallContext {
    authorization: AsciiMetadataValue,
    request_id: Option<AsciiMetadataValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for CallContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<CallContext, ApiError> {
        let value = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::MissingAuthorization)?;
        // `to_str` admits visible ASCII only; metadata alone would let obs-text bytes through.
        let text = value
            .to_str()
            .map_err(|_| ApiError::MalformedAuthorization)?;
        let authorization =
            AsciiMetadataValue::try_from(text).map_err(|_| ApiError::MalformedAuthorization)?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .and_then(|id| AsciiMetadataValue::try_from(id.0.as_bytes()).ok());
        Ok(CallContext {
            authorization,
            request_id,
        })
    }
}

impl CallContext {
    /// Wraps a message with `authorization` and `x-request-id` metadata.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        self.annotate(request.metadata_mut());
        request
    }

    fn annotate(&self, metadata: &mut MetadataMap) {
        metadata.insert("authorization", self.authorization.clone());
        if let Some(request_id) = &self.request_id {
            metadata.insert("x-request-id", request_id.clone());
        }
    }
}

/// [`CallContext`] whose rejection comes out in OpenAI's error shape, for `/v1/*`.
#[derive(Debug, Clone)]
pub struct OpenAiCallContext(pub CallContext);

impl<S: Send + Sync> FromRequestParts<S> for OpenAiCallContext {
    type Rejection = OpenAiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<OpenAiCallContext, OpenAiError> {
        CallContext::from_request_parts(parts, state)
            .await
            .map(OpenAiCallContext)
            .map_err(OpenAiError)
    }
}

/// [`CallContext`] for Anthropic's API: the key in `x-api-key` (as Anthropic's SDKs send it) or in
/// `Authorization: Bearer`; rejections in Anthropic's error shape.
#[derive(Debug, Clone)]
pub struct AnthropicCallContext(pub CallContext);

impl<S: Send + Sync> FromRequestParts<S> for AnthropicCallContext {
    type Rejection = AnthropicError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<AnthropicCallContext, AnthropicError> {
        if let Some(key) = parts.headers.get("x-api-key") {
            let key = key
                .to_str()
                .map_err(|_| AnthropicError(ApiError::MalformedAuthorization))?;
            let authorization = AsciiMetadataValue::try_from(format!("Bearer {}", key.trim()))
                .map_err(|_| AnthropicError(ApiError::MalformedAuthorization))?;
            let request_id = parts
                .extensions
                .get::<RequestId>()
                .and_then(|id| AsciiMetadataValue::try_from(id.0.as_bytes()).ok());
            return Ok(AnthropicCallContext(CallContext {
                authorization,
                request_id,
            }));
        }
        CallContext::from_request_parts(parts, state)
            .await
            .map(AnthropicCallContext)
            .map_err(AnthropicError)
    }
}

/// The text of an optional header; a value that is not visible ASCII is a 400 naming the header.
pub fn header_text(
    headers: &axum::http::HeaderMap,
    name: &str,
) -> Result<Option<String>, ApiError> {
    headers
        .get(name)
        .map(|value| {
            value.to_str().map(str::to_string).map_err(|_| {
                ApiError::InvalidRequest(format!("the `{name}` header must be visible ASCII"))
            })
        })
        .transpose()
}

/// Names the customer's own end user of a call, on every model API (BILLING.md, "End users").
pub const END_USER_HEADER: &str = "x-end-user-id";

/// The longest end user id recorded (BILLING.md, "End users"): a label's limit.
const MAX_END_USER_CHARS: usize = proto::labels::MAX_LABEL_CHARS;

/// The end user recorded on a call's usage record (BILLING.md, "End users"): the `x-end-user-id` header
/// when sent (at most 128 characters, else 400), else the id the request body names (`user`,
/// `metadata.user_id`) as it is when at most 128 characters, else its SHA-256 in hex; empty for none.
pub fn end_user_id(
    headers: &axum::http::HeaderMap,
    named_in_body: Option<&str>,
) -> Result<String, ApiError> {
    use sha2::{Digest, Sha256};
    if let Some(header) = header_text(headers, END_USER_HEADER)? {
        if header.chars().count() > MAX_END_USER_CHARS {
            return Err(ApiError::InvalidRequest(format!(
                "the `{END_USER_HEADER}` header is longer than {MAX_END_USER_CHARS} characters"
            )));
        }
        return Ok(header);
    }
    Ok(match named_in_body {
        None => String::new(),
        Some(id) if id.chars().count() <= MAX_END_USER_CHARS => id.to_string(),
        Some(id) => hex::encode(Sha256::digest(id.as_bytes())),
    })
}

/// Reads `value` as `T` if it is a JSON object, refusing any other JSON value: serde's derived structs
/// would also take an array of the fields' values, in order.
fn from_object<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    match value {
        Value::Object(_) => serde_json::from_value(value),
        _ => Err(serde::de::Error::custom("expected a JSON object")),
    }
}

/// Deserializes an optional nested object with [`from_object`]. For
/// `#[serde(default, deserialize_with = "...")]`.
pub fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Option::<Value>::deserialize(deserializer)?
        .map(from_object)
        .transpose()
        .map_err(serde::de::Error::custom)
}

/// Deserializes an optional array of objects, each with [`from_object`]. For
/// `#[serde(default, deserialize_with = "...")]`.
pub fn optional_objects<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Option::<Vec<Value>>::deserialize(deserializer)?
        .map(|values| values.into_iter().map(from_object).collect())
        .transpose()
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use axum::body::Body;

    use super::*;
    use crate::routes::execute::ExecuteBody;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Named {
        name: String,
    }

    async fn read<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, (StatusCode, String)> {
        let request = Request::builder()
            .method("POST")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        match JsonBody::<T>::from_request(request, &()).await {
            Ok(JsonBody(value)) => Ok(value),
            Err(ApiError::BodyRejected { status, message }) => Err((status, message)),
            Err(other) => panic!("unexpected rejection {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_body_must_be_an_object_of_the_expected_shape() {
        let named: Named = read(" \n{\"name\": \"ops\"} ").await.unwrap();
        assert_eq!(named.name, "ops");
        // serde's derived struct would take ["ops"] as `name`.
        for (body, status) in [
            (r#"["ops"]"#, StatusCode::UNPROCESSABLE_ENTITY),
            (r#""ops""#, StatusCode::UNPROCESSABLE_ENTITY),
            (r#"{"name": 1}"#, StatusCode::UNPROCESSABLE_ENTITY),
            (
                r#"{"name": "ops", "extra": 1}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (r#"{"name": "#, StatusCode::BAD_REQUEST),
        ] {
            let rejected = read::<Named>(body).await.unwrap_err();
            assert_eq!(rejected.0, status, "{body}: {}", rejected.1);
        }
    }

    #[tokio::test]
    async fn each_message_of_a_conversation_must_be_an_object() {
        let body: ExecuteBody = read(r#"{"messages": [{"role": "user", "content": "Hi"}]}"#)
            .await
            .unwrap();
        assert_eq!(body.messages.map(|messages| messages.len()), Some(1));
        let (status, message) = read::<ExecuteBody>(r#"{"messages": [["user", "Hi"]]}"#)
            .await
            .unwrap_err();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(message.contains("expected a JSON object"), "{message}");
        let body: ExecuteBody = read(r#"{"prompt": "Hi", "messages": null}"#).await.unwrap();
        assert!(body.messages.is_none());
    }
}
