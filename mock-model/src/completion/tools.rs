//! Tool calls: whether an answer calls tools, which ones, and the arguments it makes up from each tool's
//! JSON schema.
//!
//! An answer calls tools when the request offers a non-empty `tools` array, `tool_choice` is not `"none"`
//! and the last message is not a `tool` result (after a result the model answers in words). It calls the
//! function `tool_choice` names, else the first tool; with the `parallel` directive and
//! `parallel_tool_calls` not false, and no function named, it calls every tool (indexes 0, 1, …).
//!
//! Arguments are a compact JSON object with one member per property of `parameters.properties`, keys
//! sorted: a property's first `enum` value or its `const` when it has one, else by `type`: string →
//! `"Paris"`, number and integer → `1`, boolean → `true`, array → `[]`, object → `{}`, null → `null`
//! (a list of types uses its first non-null one; no type → string).

use serde_json::{Map, Value, json};

use crate::behaviour::ToolCallFanOut;
use crate::tokens::{self, TokenPieces};

/// What a string property is filled with.
pub const STRING_ARGUMENT: &str = "Paris";

/// A function tool offered by the request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tool<'a> {
    pub name: &'a str,
    pub parameters: Option<&'a Value>,
}

/// The request's `tool_choice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolChoice<'a> {
    None,
    Auto,
    Required,
    Function(&'a str),
}

/// The request's `parallel_tool_calls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParallelToolCalls {
    Allowed,
    Disallowed,
}

/// One call in an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub name_tokens: u32,
    /// The arguments' JSON, cut into one-token pieces for streaming.
    pub arguments: TokenPieces,
}

impl ToolCall {
    /// Completion tokens of the call: its name and its arguments.
    pub fn tokens(&self) -> u32 {
        self.name_tokens.saturating_add(self.arguments.tokens())
    }
}

/// The tools an answer calls, in order; empty when it answers in words.
pub fn tools_to_call<'t, 'a>(
    tools: &'t [Tool<'a>],
    choice: ToolChoice<'_>,
    parallel: ParallelToolCalls,
    fan_out: ToolCallFanOut,
    last_role: Option<&str>,
) -> Vec<&'t Tool<'a>> {
    if tools.is_empty() || choice == ToolChoice::None || last_role == Some("tool") {
        return Vec::new();
    }
    match (choice, parallel, fan_out) {
        (ToolChoice::Function(name), _, _) => tools
            .iter()
            .filter(|tool| tool.name == name)
            .take(1)
            .collect(),
        (_, ParallelToolCalls::Allowed, ToolCallFanOut::EveryTool) => tools.iter().collect(),
        (_, ParallelToolCalls::Allowed | ParallelToolCalls::Disallowed, _) => {
            tools.iter().take(1).collect()
        }
    }
}

/// The calls of completion `serial` to `tools`, ids `call_mock_<serial>_<index>`.
pub fn calls(tools: &[&Tool<'_>], serial: u64) -> Vec<ToolCall> {
    tools
        .iter()
        .enumerate()
        .map(|(index, tool)| ToolCall {
            id: format!("call_mock_{serial}_{index}"),
            name: tool.name.to_owned(),
            name_tokens: tokens::count(tool.name),
            arguments: TokenPieces::from_text(arguments(tool.parameters)),
        })
        .collect()
}

/// The compact JSON arguments for a function with these `parameters` (see the module docs).
pub fn arguments(parameters: Option<&Value>) -> String {
    let properties = parameters
        .and_then(|parameters| parameters.get("properties"))
        .and_then(Value::as_object);
    let mut names: Vec<&String> = properties.map_or_else(Vec::new, |map| map.keys().collect());
    // Sorted here, so the order does not depend on serde_json's `preserve_order` feature.
    names.sort();
    let mut object = Map::new();
    for name in names {
        let schema = properties
            .and_then(|map| map.get(name))
            .unwrap_or(&Value::Null);
        object.insert(name.clone(), example_value(schema));
    }
    Value::Object(object).to_string()
}

/// A value that satisfies a property's schema.
fn example_value(schema: &Value) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
    {
        return first.clone();
    }
    if let Some(constant) = schema.get("const") {
        return constant.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .unwrap_or("null"),
        _ => "string",
    };
    match kind {
        "number" | "integer" => json!(1),
        "boolean" => json!(true),
        "array" => json!([]),
        "object" => json!({}),
        "null" => Value::Null,
        _ => json!(STRING_ARGUMENT),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn tool<'a>(name: &'a str, parameters: &'a Value) -> Tool<'a> {
        Tool {
            name,
            parameters: Some(parameters),
        }
    }

    #[test]
    fn arguments_fill_every_property_by_type_with_sorted_keys() {
        let parameters = json!({ "type": "object", "properties": {
            "unit": { "type": "string", "enum": ["celsius", "fahrenheit"] },
            "city": { "type": "string" },
            "days": { "type": "integer" },
            "ratio": { "type": "number" },
            "hourly": { "type": "boolean" },
            "fields": { "type": "array", "items": { "type": "string" } },
            "filter": { "type": "object" },
            "note": { "type": ["null", "string"] },
            "untyped": {},
        }, "required": ["city"] });
        assert_eq!(
            arguments(Some(&parameters)),
            r#"{"city":"Paris","days":1,"fields":[],"filter":{},"hourly":true,"note":"Paris","ratio":1,"unit":"celsius","untyped":"Paris"}"#
        );
    }

    #[test]
    fn a_function_without_properties_gets_an_empty_object() {
        assert_eq!(arguments(None), "{}");
        assert_eq!(arguments(Some(&json!({ "type": "object" }))), "{}");
    }

    #[test]
    fn arguments_are_streamed_one_token_per_piece() {
        let parameters = json!({ "properties": {
            "city": { "type": "string" }, "days": { "type": "integer" }, "tags": { "type": "array" },
        } });
        let call = calls(&[&tool("get_weather", &parameters)], 7).remove(0);
        let text = arguments(Some(&parameters));
        assert_eq!(call.id, "call_mock_7_0");
        assert_eq!(call.arguments.text(), text);
        let per_piece: u32 = call
            .arguments
            .iter()
            .map(|piece| tokens::count(piece.text))
            .sum();
        assert_eq!(per_piece, tokens::count(&text));
        assert_eq!(call.arguments.len() as u32, tokens::count(&text));
        assert_eq!(
            call.tokens(),
            tokens::count("get_weather") + tokens::count(&text)
        );
    }

    #[test]
    fn which_tools_are_called() {
        let none = json!({});
        let tools = [tool("a", &none), tool("b", &none), tool("c", &none)];
        let names = |choice, parallel, fan_out, last_role| {
            tools_to_call(&tools, choice, parallel, fan_out, last_role)
                .iter()
                .map(|tool| tool.name)
                .collect::<Vec<_>>()
        };
        use ParallelToolCalls::{Allowed, Disallowed};
        use ToolCallFanOut::{EveryTool, One};
        let cases: [(&str, Vec<&str>, Vec<&str>); 8] = [
            (
                "auto calls the first tool",
                names(ToolChoice::Auto, Allowed, One, Some("user")),
                vec!["a"],
            ),
            (
                "required calls the first tool",
                names(ToolChoice::Required, Allowed, One, None),
                vec!["a"],
            ),
            (
                "a named function is called",
                names(ToolChoice::Function("b"), Allowed, One, None),
                vec!["b"],
            ),
            (
                "none answers in words",
                names(ToolChoice::None, Allowed, EveryTool, None),
                vec![],
            ),
            (
                "a tool result is answered in words",
                names(ToolChoice::Required, Allowed, One, Some("tool")),
                vec![],
            ),
            (
                "parallel calls every tool",
                names(ToolChoice::Auto, Allowed, EveryTool, None),
                vec!["a", "b", "c"],
            ),
            (
                "parallel_tool_calls false wins",
                names(ToolChoice::Auto, Disallowed, EveryTool, None),
                vec!["a"],
            ),
            (
                "a named function wins over parallel",
                names(ToolChoice::Function("c"), Allowed, EveryTool, None),
                vec!["c"],
            ),
        ];
        for (case, got, expected) in cases {
            assert_eq!(got, expected, "{case}");
        }
    }
}
