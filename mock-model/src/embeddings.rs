//! `POST /v1/embeddings`: deterministic unit-length vectors, one per input, with honest usage.
//!
//! `input` is a string, an array of strings, an array of token ids or an array of token-id arrays (at most
//! [`MAX_INPUTS`], none empty). Each vector is drawn from a generator seeded by a hash of its input, so the
//! same input always gets the same vector, and normalised to length 1; a smaller `dimensions` (default
//! [`DEFAULT_DIMENSIONS`]) gives the renormalised prefix of a larger one, as OpenAI's shortened embeddings
//! do. `encoding_format` `base64` sends each vector as its little-endian `f32` bytes in standard base64.
//! Usage: `cl100k_base` tokens of the strings; a token array counts its length. The model name's
//! `fail-<status>` and `stall-<ms>` directives apply.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use crate::AppState;
use crate::behaviour::{Behaviour, Failure};
use crate::error::ApiError;
use crate::fields::Fields;
use crate::tokens;

/// The route, as recorded.
pub const PATH: &str = "/v1/embeddings";
/// Dimensions of a vector when the request does not say.
pub const DEFAULT_DIMENSIONS: i64 = 16;
/// The most dimensions a request may ask for.
pub const MAX_DIMENSIONS: i64 = 4096;
/// The most inputs one request may embed, as OpenAI allows.
pub const MAX_INPUTS: usize = 2048;

/// One input to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Input<'a> {
    Text(&'a str),
    Tokens(Vec<u32>),
}

impl Input<'_> {
    fn tokens(&self) -> u32 {
        match self {
            Input::Text(text) => tokens::count(text),
            Input::Tokens(ids) => tokens::saturate(ids.len()),
        }
    }

    /// FNV-1a over the input; texts and token arrays hash apart.
    fn seed(&self) -> u64 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0100_0000_01b3;
        let fold = |hash: u64, byte: u8| (hash ^ u64::from(byte)).wrapping_mul(PRIME);
        match self {
            Input::Text(text) => text.bytes().fold(fold(OFFSET, b'T'), fold),
            Input::Tokens(ids) => ids
                .iter()
                .flat_map(|id| id.to_le_bytes())
                .fold(fold(OFFSET, b'I'), fold),
        }
    }
}

/// `encoding_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EncodingFormat {
    Float,
    Base64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct EmbeddingRequest<'a> {
    model: &'a str,
    inputs: Vec<Input<'a>>,
    format: EncodingFormat,
    dimensions: usize,
}

#[derive(Debug, Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    usage: Usage,
}

#[derive(Debug, Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

/// A vector as floats, or as base64 of its little-endian `f32` bytes.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The handler.
pub async fn embeddings(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.embeddings.fetch_add(1, Ordering::Relaxed);
    match respond(&state, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn respond(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let body: Arc<Value> =
        Arc::new(serde_json::from_slice(body).map_err(|_| ApiError::unparsable_body())?);
    state.recorder.record(PATH, headers, Arc::clone(&body));
    let model = Fields::root(&body)?
        .string("model")?
        .ok_or_else(|| ApiError::missing("model"))?;
    let behaviour = Behaviour::from_model(model);
    if let Some(stall_ms) = behaviour.stall_ms {
        tokio::time::sleep(Duration::from_millis(stall_ms)).await;
    }
    if let Some(Failure::BeforeFirstToken { status }) = behaviour.failure {
        return Err(ApiError::injected(status));
    }
    let request = parse(&body)?;
    Ok(Json(answer(&request)).into_response())
}

fn parse(body: &Value) -> Result<EmbeddingRequest<'_>, ApiError> {
    let fields = Fields::root(body)?;
    let model = fields
        .string("model")?
        .ok_or_else(|| ApiError::missing("model"))?;
    let input = fields
        .get("input")
        .ok_or_else(|| ApiError::missing("input"))?;
    let format = match fields.string("encoding_format")? {
        None | Some("float") => EncodingFormat::Float,
        Some("base64") => EncodingFormat::Base64,
        Some(other) => {
            return Err(ApiError::invalid_value(
                "encoding_format",
                format!("Invalid value: '{other}'. Supported values are: 'float' and 'base64'."),
            ));
        }
    };
    let dimensions = fields
        .integer("dimensions", 1, MAX_DIMENSIONS)?
        .unwrap_or(DEFAULT_DIMENSIONS);
    Ok(EmbeddingRequest {
        model,
        inputs: parse_inputs(input)?,
        format,
        dimensions: usize::try_from(dimensions).unwrap_or(1),
    })
}

fn parse_inputs(input: &Value) -> Result<Vec<Input<'_>>, ApiError> {
    let invalid = || {
        ApiError::invalid_value(
            "input",
            "Invalid 'input': expected a non-empty string, an array of non-empty strings, an array of \
             token ids or an array of non-empty token-id arrays."
                .into(),
        )
    };
    let inputs = match input {
        Value::String(text) => vec![Input::Text(text)],
        Value::Array(items) if items.is_empty() => return Err(ApiError::empty_array("input")),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(Input::Text)
            .collect(),
        Value::Array(items) if items.iter().all(Value::is_number) => {
            vec![Input::Tokens(token_ids(items).ok_or_else(invalid)?)]
        }
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_array()
                    .and_then(|ids| token_ids(ids))
                    .map(Input::Tokens)
                    .ok_or_else(invalid)
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::invalid_type(
                "input",
                "a string or an array",
                input,
            ));
        }
    };
    if inputs.len() > MAX_INPUTS {
        return Err(ApiError::invalid_value(
            "input",
            format!(
                "Invalid 'input': array too long. Expected an array with maximum length {MAX_INPUTS}, \
                 but got an array with length {} instead.",
                inputs.len()
            ),
        ));
    }
    let empty = |input: &Input<'_>| match input {
        Input::Text(text) => text.is_empty(),
        Input::Tokens(ids) => ids.is_empty(),
    };
    if inputs.iter().any(empty) {
        return Err(invalid());
    }
    Ok(inputs)
}

/// Token ids, if every item is one.
fn token_ids(items: &[Value]) -> Option<Vec<u32>> {
    items
        .iter()
        .map(|item| item.as_u64().and_then(|id| u32::try_from(id).ok()))
        .collect()
}

fn answer<'a>(request: &EmbeddingRequest<'a>) -> EmbeddingList<'a> {
    let data = request
        .inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = vector(input.seed(), request.dimensions);
            Embedding {
                object: "embedding",
                index,
                embedding: match request.format {
                    EncodingFormat::Float => Vector::Float(vector),
                    EncodingFormat::Base64 => Vector::Base64(base64_of(&vector)),
                },
            }
        })
        .collect();
    let tokens: u64 = request
        .inputs
        .iter()
        .map(|input| u64::from(input.tokens()))
        .sum();
    EmbeddingList {
        object: "list",
        data,
        model: request.model,
        usage: Usage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    }
}

/// A unit vector of `dimensions` components drawn from `seed` (SplitMix64).
fn vector(seed: u64, dimensions: usize) -> Vec<f32> {
    let mut state = seed;
    let raw: Vec<f64> = (0..dimensions)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut mixed = state;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            mixed ^= mixed >> 31;
            // 53 random bits, mapped onto [-1, 1).
            (mixed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let norm = raw
        .iter()
        .map(|component| component * component)
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        raw.iter()
            .map(|component| (component / norm) as f32)
            .collect()
    } else {
        // Every component drew exactly 0 (practically never): still answer a unit vector.
        (0..dimensions)
            .map(|index| if index == 0 { 1.0 } else { 0.0 })
            .collect()
    }
}

fn base64_of(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn embed(body: Value) -> Value {
        let request = parse(&body).unwrap();
        serde_json::to_value(answer(&request)).unwrap()
    }

    fn floats(embedding: &Value) -> Vec<f32> {
        embedding
            .as_array()
            .unwrap()
            .iter()
            .map(|value| value.as_f64().unwrap() as f32)
            .collect()
    }

    fn length(vector: &[f32]) -> f64 {
        vector
            .iter()
            .map(|value| f64::from(*value).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn a_string_gets_one_unit_vector_of_the_default_dimensions() {
        let list = embed(json!({ "model": "text-embedding-3-small", "input": "Hello world" }));
        assert_eq!(list["object"], "list");
        assert_eq!(list["model"], "text-embedding-3-small");
        assert_eq!(list["data"][0]["object"], "embedding");
        assert_eq!(list["data"][0]["index"], json!(0));
        let vector = floats(&list["data"][0]["embedding"]);
        assert_eq!(vector.len(), 16);
        assert!((length(&vector) - 1.0).abs() < 1e-5);
        assert_eq!(
            list["usage"],
            json!({ "prompt_tokens": 2, "total_tokens": 2 })
        );
    }

    #[test]
    fn the_same_input_gets_the_same_vector_and_others_differ() {
        let list =
            embed(json!({ "model": "m", "input": ["a cat", "a dog", "a cat"], "dimensions": 8 }));
        let vectors: Vec<Vec<f32>> = (0..3)
            .map(|i| floats(&list["data"][i]["embedding"]))
            .collect();
        assert_eq!(vectors[0], vectors[2]);
        assert_ne!(vectors[0], vectors[1]);
        assert!(vectors.iter().all(|vector| vector.len() == 8));
        assert_eq!(list["data"][2]["index"], json!(2));
    }

    #[test]
    fn base64_is_the_little_endian_f32_bytes_of_the_float_vector() {
        let body = |format: &str| json!({ "model": "m", "input": "x", "dimensions": 5, "encoding_format": format });
        let floats = floats(&embed(body("float"))["data"][0]["embedding"]);
        let encoded = embed(body("base64"))["data"][0]["embedding"]
            .as_str()
            .unwrap()
            .to_owned();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap()))
            .collect();
        assert_eq!(decoded, floats);
    }

    #[test]
    fn token_inputs_count_their_length() {
        let one = embed(json!({ "model": "m", "input": [1, 2, 3] }));
        assert_eq!(one["data"].as_array().unwrap().len(), 1);
        assert_eq!(one["usage"]["prompt_tokens"], json!(3));
        let two = embed(json!({ "model": "m", "input": [[1, 2], [3, 4, 5]] }));
        assert_eq!(two["data"].as_array().unwrap().len(), 2);
        assert_eq!(two["usage"]["total_tokens"], json!(5));
    }

    #[test]
    fn malformed_requests_are_refused() {
        let cases = [
            ("no input", json!({ "model": "m" })),
            ("no model", json!({ "input": "x" })),
            ("empty array", json!({ "model": "m", "input": [] })),
            ("empty string", json!({ "model": "m", "input": "" })),
            ("mixed array", json!({ "model": "m", "input": ["x", 1] })),
            ("negative token", json!({ "model": "m", "input": [-1] })),
            ("object", json!({ "model": "m", "input": { "text": "x" } })),
            (
                "unknown format",
                json!({ "model": "m", "input": "x", "encoding_format": "hex" }),
            ),
            (
                "zero dimensions",
                json!({ "model": "m", "input": "x", "dimensions": 0 }),
            ),
            (
                "too many dimensions",
                json!({ "model": "m", "input": "x", "dimensions": 4097 }),
            ),
        ];
        for (case, body) in cases {
            assert!(
                matches!(parse(&body), Err(ApiError::InvalidRequest { .. })),
                "{case}"
            );
        }
    }
}
