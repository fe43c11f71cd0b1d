//! Typed members read out of a JSON request body, and what is wrong when one has the wrong type or is out
//! of range ([`FieldError`], worded by each API's error module: OpenAI's in [`crate::error`], Anthropic's in
//! [`crate::messages::error`]). Bodies stay `serde_json::Value`s (so they can be recorded whole, unknown
//! fields included); handlers read only what they need through this.

use serde_json::{Map, Value};

/// A member that is not what the request format says.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldError {
    /// The body is not a JSON object.
    BodyNotAnObject,
    /// The member `param` is not of the `expected` type.
    WrongType {
        param: String,
        expected: Expected,
        got: JsonType,
    },
    /// The number `param` is outside `min..=max`.
    OutOfRange {
        param: String,
        min: f64,
        max: f64,
        got: f64,
    },
}

/// The type a member should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Boolean,
    String,
    Array,
    Object,
    Integer,
    Number,
}

/// The JSON type a member has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    Null,
    Boolean,
    Integer,
    Decimal,
    String,
    Array,
    Object,
}

impl JsonType {
    pub fn of(value: &Value) -> JsonType {
        match value {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(number) if number.is_i64() || number.is_u64() => JsonType::Integer,
            Value::Number(_) => JsonType::Decimal,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }
}

/// The members of one JSON object, with the path that names them in error messages. A member set to
/// `null` reads as absent, as OpenAI reads it.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    members: &'a Map<String, Value>,
    /// `""` for the body, else e.g. `messages[2]`.
    path: String,
}

impl<'a> Fields<'a> {
    pub fn root(body: &'a Value) -> Result<Fields<'a>, FieldError> {
        match body {
            Value::Object(members) => Ok(Fields {
                members,
                path: String::new(),
            }),
            _ => Err(FieldError::BodyNotAnObject),
        }
    }

    pub fn at(value: &'a Value, path: String) -> Result<Fields<'a>, FieldError> {
        match value {
            Value::Object(members) => Ok(Fields { members, path }),
            other => Err(FieldError::WrongType {
                param: path,
                expected: Expected::Object,
                got: JsonType::of(other),
            }),
        }
    }

    /// The same members named by another path (Anthropic names a union's members after its variant:
    /// `thinking.enabled.budget_tokens`).
    pub fn renamed(&self, path: String) -> Fields<'a> {
        Fields {
            members: self.members,
            path,
        }
    }

    /// The path of these members, `""` for the body.
    pub fn path(&self) -> &str {
        &self.path
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

    pub fn bool(&self, key: &str) -> Result<Option<bool>, FieldError> {
        self.typed(key, Expected::Boolean, Value::as_bool)
    }

    pub fn string(&self, key: &str) -> Result<Option<&'a str>, FieldError> {
        self.typed(key, Expected::String, Value::as_str)
    }

    pub fn array(&self, key: &str) -> Result<Option<&'a [Value]>, FieldError> {
        self.typed(key, Expected::Array, |value| {
            value.as_array().map(Vec::as_slice)
        })
    }

    pub fn object(&self, key: &str) -> Result<Option<Fields<'a>>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => Fields::at(value, self.param(key)).map(Some),
        }
    }

    /// An integer member within `min..=max`.
    pub fn integer(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, FieldError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let wide = value
            .as_i64()
            .map(i128::from)
            .or_else(|| value.as_u64().map(i128::from))
            .ok_or_else(|| self.wrong_type(key, Expected::Integer, value))?;
        if wide < i128::from(min) || wide > i128::from(max) {
            return Err(FieldError::OutOfRange {
                param: self.param(key),
                min: min as f64,
                max: max as f64,
                got: wide as f64,
            });
        }
        Ok(i64::try_from(wide).ok())
    }

    /// A number member (integer or decimal) within `min..=max`.
    pub fn number(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>, FieldError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let number = value
            .as_f64()
            .ok_or_else(|| self.wrong_type(key, Expected::Number, value))?;
        if !(min..=max).contains(&number) {
            return Err(FieldError::OutOfRange {
                param: self.param(key),
                min,
                max,
                got: number,
            });
        }
        Ok(Some(number))
    }

    fn wrong_type(&self, key: &str, expected: Expected, value: &Value) -> FieldError {
        FieldError::WrongType {
            param: self.param(key),
            expected,
            got: JsonType::of(value),
        }
    }

    fn typed<T>(
        &self,
        key: &str,
        expected: Expected,
        read: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => read(value)
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, expected, value)),
        }
    }
}
