//! Typed members read out of a JSON request body, with the 400 OpenAI answers when one has the wrong type
//! or is out of range. Bodies stay `serde_json::Value`s (so they can be recorded whole, unknown fields
//! included); handlers read only what they need through this.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The members of one JSON object, with the path that names them in error messages. A member set to
/// `null` reads as absent, as OpenAI reads it.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    members: &'a Map<String, Value>,
    /// `""` for the body, else e.g. `messages[2]`.
    path: String,
}

impl<'a> Fields<'a> {
    pub fn root(body: &'a Value) -> Result<Fields<'a>, ApiError> {
        match body {
            Value::Object(members) => Ok(Fields {
                members,
                path: String::new(),
            }),
            _ => Err(ApiError::InvalidRequest {
                message: "The request body must be a JSON object.".into(),
                param: None,
                code: None,
            }),
        }
    }

    pub fn at(value: &'a Value, path: String) -> Result<Fields<'a>, ApiError> {
        match value {
            Value::Object(members) => Ok(Fields { members, path }),
            other => Err(ApiError::invalid_type(&path, "an object", other)),
        }
    }

    pub fn param(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.members.get(key).filter(|value| !value.is_null())
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        self.typed(key, "a boolean", Value::as_bool)
    }

    pub fn string(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        self.typed(key, "a string", Value::as_str)
    }

    pub fn array(&self, key: &str) -> Result<Option<&'a [Value]>, ApiError> {
        self.typed(key, "an array", |value| value.as_array().map(Vec::as_slice))
    }

    pub fn object(&self, key: &str) -> Result<Option<Fields<'a>>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => Fields::at(value, self.param(key)).map(Some),
        }
    }

    /// An integer member within `min..=max`.
    pub fn integer(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let wide = value
            .as_i64()
            .map(i128::from)
            .or_else(|| value.as_u64().map(i128::from))
            .ok_or_else(|| ApiError::invalid_type(&self.param(key), "an integer", value))?;
        if wide < i128::from(min) || wide > i128::from(max) {
            return Err(ApiError::out_of_range(
                &self.param(key),
                min.into(),
                max.into(),
                wide,
            ));
        }
        Ok(i64::try_from(wide).ok())
    }

    fn typed<T>(
        &self,
        key: &str,
        expected: &str,
        read: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => read(value)
                .map(Some)
                .ok_or_else(|| ApiError::invalid_type(&self.param(key), expected, value)),
        }
    }
}
