//! Tool calls: whether an answer calls tools, which ones, and the arguments it makes up from each tool's
//! JSON schema.
//!
//! The rules are the same for chat completions and Anthropic's Messages (`tool_choice` `any` is
//! `required`, `{"type":"tool","name":…}` a named function, `disable_parallel_tool_use` is
//! `parallel_tool_calls: false`, a `tool_result` block is a `tool` result).
//!
//! An answer calls tools when the request offers a non-empty `tools` array, `tool_choice` is not `"none"`
//! and no `tool` result follows the last assistant message (after a result the model answers in words,
//! even when the client adds text of its own after the result, as coding agents do). Which tools, like a
//! model that calls a tool when the request is about it:
//! 1. the function `tool_choice` names;
//! 2. else the tool the user's last words name (a tool's name as a whole word, the first one offered when
//!    several are named), as a model asked to "use the Bash tool" does;
//! 3. else, with the `parallel` directive and `parallel_tool_calls` not false, every tool (indexes 0, 1, …);
//! 4. else, with `tool_choice: "required"`, the first tool;
//! 5. else the first tool the user's last words are about: one of the words of its name (split at `_`, `-`
//!    and case changes, four letters or more) is one of their words, whatever the case (`get_weather` for
//!    "What is the weather in Paris?");
//! 6. else none: the answer is in words (a coding agent told "say hello" gets words, not a tool call).
//!
//! Arguments are a compact JSON object with one member per required property of `parameters` (every
//! property when the schema lists none as required), keys sorted: a property's first `enum` value or its
//! `const` when it has one, else by `type`: string → the last `code span` of the user's last words when
//! they hold one (so a test can have an agent's shell tool run a chosen command), else `"Paris"`; number
//! and integer → `1`, boolean → `true`, array → one item of its `items` schema (`[]` without one),
//! object → `{}`, null → `null` (a list of types uses its first non-null one; no type → string).

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

/// How the calls of one answer are named: `<prefix>_<serial>_<index>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallIds {
    pub prefix: &'static str,
    /// The request's number since start, per API.
    pub serial: u64,
}

impl CallIds {
    /// Chat completions' `call_mock_<serial>_<index>`.
    pub fn chat(serial: u64) -> CallIds {
        CallIds {
            prefix: "call_mock",
            serial,
        }
    }

    /// Messages' `toolu_mock_<serial>_<index>`.
    pub fn messages(serial: u64) -> CallIds {
        CallIds {
            prefix: "toolu_mock",
            serial,
        }
    }
}

/// Where the conversation stands, as far as calling tools goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn<'a> {
    /// A tool result follows the last assistant message.
    pub answered: bool,
    /// The text of the user's last words, if any.
    pub prompt: Option<&'a str>,
}

/// The tools an answer calls, in order; empty when it answers in words.
pub fn tools_to_call<'t, 'a>(
    tools: &'t [Tool<'a>],
    choice: ToolChoice<'_>,
    parallel: ParallelToolCalls,
    fan_out: ToolCallFanOut,
    turn: Turn<'_>,
) -> Vec<&'t Tool<'a>> {
    if tools.is_empty() || choice == ToolChoice::None || turn.answered {
        return Vec::new();
    }
    let named_by_user = turn
        .prompt
        .and_then(|prompt| tools.iter().find(|tool| names_word(prompt, tool.name)));
    if let ToolChoice::Function(name) = choice {
        return tools
            .iter()
            .filter(|tool| tool.name == name)
            .take(1)
            .collect();
    }
    if let Some(tool) = named_by_user {
        return vec![tool];
    }
    match (choice, parallel, fan_out) {
        (_, ParallelToolCalls::Allowed, ToolCallFanOut::EveryTool) => tools.iter().collect(),
        (ToolChoice::Required, _, _) => tools.iter().take(1).collect(),
        _ => turn
            .prompt
            .and_then(|prompt| tools.iter().find(|tool| is_about(prompt, tool.name)))
            .into_iter()
            .collect(),
    }
}

/// The shortest word of a tool's name that makes a prompt about it.
const MIN_NAME_WORD_CHARS: usize = 4;

/// Whether `prompt` holds one of the words of the tool name `name` (see the module docs).
fn is_about(prompt: &str, name: &str) -> bool {
    let prompt_words: Vec<String> = prompt
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    name_words(name)
        .iter()
        .filter(|word| word.chars().count() >= MIN_NAME_WORD_CHARS)
        .any(|word| prompt_words.contains(word))
}

/// The lowercase words of a tool name: split at `_`, `-` and where a lowercase letter meets a capital.
fn name_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            words.push(std::mem::take(&mut word));
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_lowercase();
        word.extend(c.to_lowercase());
    }
    words.push(word);
    words.retain(|word| !word.is_empty());
    words
}

/// Whether `text` holds `name` as a whole word (not inside a longer identifier).
fn names_word(text: &str, name: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    !name.is_empty()
        && text.match_indices(name).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + name.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        })
}

/// The last `code span` of `prompt`, if it holds one.
pub fn last_code_span(prompt: &str) -> Option<&str> {
    let mut spans = prompt.split('`').skip(1).step_by(2);
    let complete = prompt.matches('`').count() / 2;
    spans.nth(complete.checked_sub(1)?)
}

/// The calls of one answer to `tools`, named by `ids`; string arguments are `text` (see the module docs).
pub fn calls(tools: &[&Tool<'_>], ids: CallIds, text: &str) -> Vec<ToolCall> {
    tools
        .iter()
        .enumerate()
        .map(|(index, tool)| ToolCall {
            id: format!("{}_{}_{index}", ids.prefix, ids.serial),
            name: tool.name.to_owned(),
            name_tokens: tokens::count(tool.name),
            arguments: TokenPieces::from_text(arguments(tool.parameters, text)),
        })
        .collect()
}

/// The compact JSON arguments for a function with these `parameters`, strings filled with `text` (see the
/// module docs).
pub fn arguments(parameters: Option<&Value>, text: &str) -> String {
    let properties = parameters
        .and_then(|parameters| parameters.get("properties"))
        .and_then(Value::as_object);
    let required: Option<Vec<&str>> = parameters
        .and_then(|parameters| parameters.get("required"))
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect());
    let mut names: Vec<&String> = properties.map_or_else(Vec::new, |map| {
        map.keys()
            .filter(|name| {
                required
                    .as_ref()
                    .is_none_or(|required| required.contains(&name.as_str()))
            })
            .collect()
    });
    // Sorted here, so the order does not depend on serde_json's `preserve_order` feature.
    names.sort();
    let mut object = Map::new();
    for name in names {
        let schema = properties
            .and_then(|map| map.get(name))
            .unwrap_or(&Value::Null);
        object.insert(name.clone(), example_value(schema, text));
    }
    Value::Object(object).to_string()
}

/// A value that satisfies a property's schema.
fn example_value(schema: &Value, text: &str) -> Value {
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
        "array" => match schema.get("items") {
            Some(items) if items.is_object() => json!([example_value(items, text)]),
            _ => json!([]),
        },
        "object" => json!({}),
        "null" => Value::Null,
        _ => json!(text),
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
            "tags": { "type": "array" },
            "filter": { "type": "object" },
            "note": { "type": ["null", "string"] },
            "untyped": {},
        } });
        assert_eq!(
            arguments(Some(&parameters), STRING_ARGUMENT),
            r#"{"city":"Paris","days":1,"fields":["Paris"],"filter":{},"hourly":true,"note":"Paris","ratio":1,"tags":[],"unit":"celsius","untyped":"Paris"}"#
        );
    }

    #[test]
    fn only_required_properties_are_filled_when_the_schema_lists_them() {
        let parameters = json!({ "type": "object", "properties": {
            "command": { "type": "string" },
            "timeout": { "type": "number" },
            "run_in_background": { "type": "boolean" },
        }, "required": ["command"] });
        assert_eq!(
            arguments(Some(&parameters), "echo ok"),
            r#"{"command":"echo ok"}"#
        );
    }

    #[test]
    fn tool_names_split_into_words() {
        assert_eq!(name_words("get_weather"), ["get", "weather"]);
        assert_eq!(name_words("WebFetch"), ["web", "fetch"]);
        assert_eq!(name_words("multi-agent_v1"), ["multi", "agent", "v1"]);
        assert_eq!(name_words("HTTPGet"), ["httpget"]);
        assert!(is_about("Weather and time?", "get_time"));
        assert!(
            !is_about("Get me a greeting", "get_time"),
            "`get` is too short to count"
        );
        assert!(is_about("What is the weather in Paris?", "get_weather"));
    }

    #[test]
    fn the_last_code_span_of_the_prompt_is_found() {
        let cases = [
            ("Run `echo hi` now", Some("echo hi")),
            ("First `a`, then `b c`.", Some("b c")),
            ("An unclosed `span", None),
            ("`one` and an unclosed `two", Some("one")),
            ("No span at all", None),
            ("``", Some("")),
        ];
        for (prompt, span) in cases {
            assert_eq!(last_code_span(prompt), span, "{prompt}");
        }
    }

    #[test]
    fn a_function_without_properties_gets_an_empty_object() {
        assert_eq!(arguments(None, STRING_ARGUMENT), "{}");
        assert_eq!(
            arguments(Some(&json!({ "type": "object" })), STRING_ARGUMENT),
            "{}"
        );
    }

    #[test]
    fn arguments_are_streamed_one_token_per_piece() {
        let parameters = json!({ "properties": {
            "city": { "type": "string" }, "days": { "type": "integer" }, "tags": { "type": "array" },
        } });
        let call = calls(
            &[&tool("get_weather", &parameters)],
            CallIds::chat(7),
            STRING_ARGUMENT,
        )
        .remove(0);
        let text = arguments(Some(&parameters), STRING_ARGUMENT);
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
        let tools = [
            tool("a", &none),
            tool("Bash", &none),
            tool("get_weather", &none),
        ];
        let fresh = Turn {
            answered: false,
            prompt: Some("hello"),
        };
        let names = |choice, parallel, fan_out, turn| {
            tools_to_call(&tools, choice, parallel, fan_out, turn)
                .iter()
                .map(|tool| tool.name)
                .collect::<Vec<_>>()
        };
        use ParallelToolCalls::{Allowed, Disallowed};
        use ToolCallFanOut::{EveryTool, One};
        let answered = Turn {
            answered: true,
            prompt: Some("use Bash"),
        };
        let asked = |prompt| Turn {
            answered: false,
            prompt: Some(prompt),
        };
        let cases: [(&str, Vec<&str>, Vec<&str>); 14] = [
            (
                "auto calls no tool the prompt is not about",
                names(ToolChoice::Auto, Allowed, One, fresh),
                vec![],
            ),
            (
                "auto calls the tool the prompt is about",
                names(
                    ToolChoice::Auto,
                    Allowed,
                    One,
                    asked("What's the WEATHER like?"),
                ),
                vec!["get_weather"],
            ),
            (
                "required calls the first tool",
                names(ToolChoice::Required, Allowed, One, fresh),
                vec!["a"],
            ),
            (
                "a named function is called",
                names(
                    ToolChoice::Function("get_weather"),
                    Allowed,
                    One,
                    asked("use Bash"),
                ),
                vec!["get_weather"],
            ),
            (
                "none answers in words",
                names(ToolChoice::None, Allowed, EveryTool, fresh),
                vec![],
            ),
            (
                "a tool result is answered in words",
                names(ToolChoice::Required, Allowed, One, answered),
                vec![],
            ),
            (
                "parallel calls every tool",
                names(ToolChoice::Auto, Allowed, EveryTool, fresh),
                vec!["a", "Bash", "get_weather"],
            ),
            (
                "parallel_tool_calls false calls one",
                names(ToolChoice::Required, Disallowed, EveryTool, fresh),
                vec!["a"],
            ),
            (
                "a named function wins over parallel",
                names(
                    ToolChoice::Function("get_weather"),
                    Allowed,
                    EveryTool,
                    fresh,
                ),
                vec!["get_weather"],
            ),
            (
                "the tool the user names is called",
                names(
                    ToolChoice::Auto,
                    Allowed,
                    One,
                    asked("Use the Bash tool to run `ls`"),
                ),
                vec!["Bash"],
            ),
            (
                "the named tool wins over parallel",
                names(ToolChoice::Auto, Allowed, EveryTool, asked("Bash, please")),
                vec!["Bash"],
            ),
            (
                "a name inside a longer word names nothing",
                names(ToolChoice::Auto, Allowed, One, asked("Bashful")),
                vec![],
            ),
            (
                "no prompt and required calls the first tool",
                names(
                    ToolChoice::Required,
                    Allowed,
                    One,
                    Turn {
                        answered: false,
                        prompt: None,
                    },
                ),
                vec!["a"],
            ),
            (
                "no prompt and auto calls none",
                names(
                    ToolChoice::Auto,
                    Allowed,
                    One,
                    Turn {
                        answered: false,
                        prompt: None,
                    },
                ),
                vec![],
            ),
        ];
        for (case, got, expected) in cases {
            assert_eq!(got, expected, "{case}");
        }
    }
}
