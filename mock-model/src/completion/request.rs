//! The typed view of a chat completion request, read from its JSON body (kept whole for recording) and
//! checked the way OpenAI checks it: a malformed field is a 400 naming the field, not a silent default.

use serde_json::Value;

use super::reasoning::ReasoningEffort;
use crate::answer::Format;
use crate::error::ApiError;
use crate::fields::Fields;
use crate::tools::{ParallelToolCalls, Tool, ToolChoice, Turn};

/// Most choices one request may ask for (`n`), as OpenAI allows.
pub const MAX_CHOICES: i64 = 128;
/// Most alternatives per token (`top_logprobs`), as OpenAI allows.
pub const MAX_TOP_LOGPROBS: i64 = 20;
/// Most tools one request may offer, as OpenAI allows.
pub const MAX_TOOLS: usize = 128;

const ROLES: [&str; 6] = [
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// Parameters of Anthropic's Messages API that OpenAI refuses as unrecognized: a gateway that translates
/// Anthropic requests must map or drop them before they reach a chat completions provider.
const ANTHROPIC_ONLY: [&str; 7] = [
    "thinking",
    "context_management",
    "output_config",
    "output_format",
    "system",
    "stop_sequences",
    "cache_control",
];

/// What the mock reads from a chat completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: &'a [Value],
    pub stream: Streaming,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_tokens: Option<u32>,
    /// `n`.
    pub choices: u32,
    pub tools: Vec<Tool<'a>>,
    /// The `tools` field as received, for the prompt count.
    pub tools_json: Option<&'a Value>,
    pub tool_choice: ToolChoice<'a>,
    pub parallel_tool_calls: ParallelToolCalls,
    /// `response_format`: `json_object` or `json_schema` ask for a JSON object.
    pub format: Format,
    pub logprobs: Logprobs,
    pub reasoning_effort: Option<ReasoningEffort>,
}

/// Whether and how the answer is streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streaming {
    No,
    Yes { include_usage: bool },
}

/// `logprobs` and `top_logprobs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logprobs {
    Off,
    On { top: u8 },
}

impl<'a> ChatRequest<'a> {
    /// The model name alone, so its directives can act before the rest is checked.
    pub fn model(body: &'a Value) -> Result<&'a str, ApiError> {
        let fields = Fields::root(body)?;
        fields
            .string("model")?
            .ok_or_else(|| ApiError::missing("model"))
    }

    /// Reads and checks the whole request.
    pub fn parse(body: &'a Value) -> Result<ChatRequest<'a>, ApiError> {
        let fields = Fields::root(body)?;
        let model = ChatRequest::model(body)?;
        if let Some(param) = ANTHROPIC_ONLY
            .iter()
            .find(|param| fields.get(param).is_some())
        {
            return Err(ApiError::unrecognized(param));
        }
        let messages = fields
            .array("messages")?
            .ok_or_else(|| ApiError::missing("messages"))?;
        check_messages(messages)?;
        let stream = match (fields.bool("stream")?, fields.object("stream_options")?) {
            (Some(true), options) => Streaming::Yes {
                include_usage: match options {
                    Some(options) => options.bool("include_usage")?.unwrap_or(false),
                    None => false,
                },
            },
            (Some(false) | None, None) => Streaming::No,
            (Some(false) | None, Some(_)) => {
                return Err(ApiError::invalid_value(
                    "stream_options",
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled."
                        .into(),
                ));
            }
        };
        let reasoning_effort = match fields.string("reasoning_effort")? {
            Some(effort) => Some(ReasoningEffort::parse(effort).ok_or_else(|| {
                ApiError::invalid_value(
                    "reasoning_effort",
                    format!(
                        "Invalid value: '{effort}'. Supported values are: {}.",
                        ReasoningEffort::ALL
                            .map(|effort| format!("'{}'", effort.as_str()))
                            .join(", ")
                    ),
                )
            })?),
            None => None,
        };
        let max_tokens = match fields.integer("max_completion_tokens", 1, u32::MAX.into())? {
            Some(limit) => Some(limit),
            None => fields.integer("max_tokens", 1, u32::MAX.into())?,
        };
        let choices = fields.integer("n", 1, MAX_CHOICES)?.unwrap_or(1);
        let tools = match fields.array("tools")? {
            Some(tools) => parse_tools(tools)?,
            None => Vec::new(),
        };
        let tool_choice = parse_tool_choice(fields.get("tool_choice"), &tools)?;
        let parallel_tool_calls = match fields.bool("parallel_tool_calls")? {
            Some(false) => ParallelToolCalls::Disallowed,
            Some(true) | None => ParallelToolCalls::Allowed,
        };
        let logprobs = match fields.bool("logprobs")? {
            Some(true) => Logprobs::On {
                top: fields
                    .integer("top_logprobs", 0, MAX_TOP_LOGPROBS)?
                    .map_or(0, |top| u8::try_from(top).unwrap_or(u8::MAX)),
            },
            Some(false) | None => Logprobs::Off,
        };
        Ok(ChatRequest {
            model,
            messages,
            stream,
            max_tokens: max_tokens.map(|limit| u32::try_from(limit).unwrap_or(u32::MAX)),
            choices: u32::try_from(choices).unwrap_or(1),
            tools,
            tools_json: fields.get("tools"),
            tool_choice,
            parallel_tool_calls,
            format: parse_response_format(fields.object("response_format")?)?,
            logprobs,
            reasoning_effort,
        })
    }

    /// Where the conversation stands for tool calls: whether a tool result follows the last assistant
    /// message, and the text of the last user message (its last text part).
    pub fn turn(&self) -> Turn<'a> {
        fn role(message: &Value) -> Option<&str> {
            message.get("role").and_then(Value::as_str)
        }
        let since_assistant = self
            .messages
            .iter()
            .rposition(|message| role(message) == Some("assistant"))
            .map_or(self.messages, |at| &self.messages[at + 1..]);
        let answered = since_assistant
            .iter()
            .any(|message| role(message) == Some("tool"));
        let prompt = self
            .messages
            .iter()
            .rev()
            .find(|message| role(message) == Some("user"))
            .and_then(|message| match message.get("content") {
                Some(Value::String(text)) => Some(text.as_str()),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .rev()
                    .find_map(|part| part.get("text").and_then(Value::as_str)),
                _ => None,
            });
        Turn { answered, prompt }
    }
}

fn check_messages(messages: &[Value]) -> Result<(), ApiError> {
    if messages.is_empty() {
        return Err(ApiError::empty_array("messages"));
    }
    for (index, message) in messages.iter().enumerate() {
        let fields = Fields::at(message, format!("messages[{index}]"))?;
        let role = fields
            .string("role")?
            .ok_or_else(|| ApiError::missing(&fields.param("role")))?;
        if !ROLES.contains(&role) {
            return Err(ApiError::invalid_value(
                &fields.param("role"),
                format!(
                    "Invalid value: '{role}'. Supported values are: 'system', 'developer', 'user', \
                     'assistant', 'tool', and 'function'."
                ),
            ));
        }
        match fields.get("content") {
            Some(Value::String(_) | Value::Array(_)) => {}
            None if role == "assistant" => {}
            None => return Err(ApiError::missing(&fields.param("content"))),
            Some(other) => {
                return Err(ApiError::invalid_type(
                    &fields.param("content"),
                    "a string or an array",
                    other,
                ));
            }
        }
        fields.string("name")?;
        if role == "tool" && fields.string("tool_call_id")?.is_none() {
            return Err(ApiError::missing(&fields.param("tool_call_id")));
        }
        for (call_index, call) in fields
            .array("tool_calls")?
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let call = Fields::at(call, fields.param(&format!("tool_calls[{call_index}]")))?;
            call.string("id")?
                .ok_or_else(|| ApiError::missing(&call.param("id")))?;
            let function = call
                .object("function")?
                .ok_or_else(|| ApiError::missing(&call.param("function")))?;
            function
                .string("name")?
                .ok_or_else(|| ApiError::missing(&function.param("name")))?;
            function
                .string("arguments")?
                .ok_or_else(|| ApiError::missing(&function.param("arguments")))?;
        }
    }
    Ok(())
}

fn parse_tools(tools: &[Value]) -> Result<Vec<Tool<'_>>, ApiError> {
    if tools.len() > MAX_TOOLS {
        return Err(ApiError::invalid_value(
            "tools",
            format!(
                "Invalid 'tools': array too long. Expected an array with maximum length {MAX_TOOLS}, \
                 but got an array with length {} instead.",
                tools.len()
            ),
        ));
    }
    tools
        .iter()
        .enumerate()
        .map(|(index, tool)| {
            let fields = Fields::at(tool, format!("tools[{index}]"))?;
            match fields.string("type")? {
                Some("function") => {}
                Some(other) => {
                    return Err(ApiError::invalid_value(
                        &fields.param("type"),
                        format!("Invalid value: '{other}'. Supported values are: 'function'."),
                    ));
                }
                None => return Err(ApiError::missing(&fields.param("type"))),
            }
            let function = fields
                .object("function")?
                .ok_or_else(|| ApiError::missing(&fields.param("function")))?;
            let name = function
                .string("name")?
                .ok_or_else(|| ApiError::missing(&function.param("name")))?;
            function.object("parameters")?;
            Ok(Tool {
                name,
                parameters: function.get("parameters"),
            })
        })
        .collect()
}

fn parse_tool_choice<'a>(
    choice: Option<&'a Value>,
    tools: &[Tool<'_>],
) -> Result<ToolChoice<'a>, ApiError> {
    let Some(choice) = choice else {
        return Ok(ToolChoice::Auto);
    };
    if tools.is_empty() {
        return Err(ApiError::invalid_value(
            "tool_choice",
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."
                .into(),
        ));
    }
    match choice {
        Value::String(mode) => match mode.as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Required),
            other => Err(ApiError::invalid_value(
                "tool_choice",
                format!(
                    "Invalid value: '{other}'. Supported values are: 'none', 'auto', and 'required'."
                ),
            )),
        },
        Value::Object(_) => {
            let fields = Fields::at(choice, "tool_choice".into())?;
            let function = fields
                .object("function")?
                .ok_or_else(|| ApiError::missing("tool_choice.function"))?;
            let name = function
                .string("name")?
                .ok_or_else(|| ApiError::missing("tool_choice.function.name"))?;
            if !tools.iter().any(|tool| tool.name == name) {
                return Err(ApiError::invalid_value(
                    "tool_choice",
                    format!(
                        "Invalid value for 'tool_choice': function '{name}' is not one of the 'tools'."
                    ),
                ));
            }
            Ok(ToolChoice::Function(name))
        }
        other => Err(ApiError::invalid_type(
            "tool_choice",
            "a string or an object",
            other,
        )),
    }
}

fn parse_response_format(format: Option<Fields<'_>>) -> Result<Format, ApiError> {
    let Some(format) = format else {
        return Ok(Format::Text);
    };
    match format.string("type")? {
        Some("text") => Ok(Format::Text),
        Some("json_object") => Ok(Format::Json),
        Some("json_schema") => {
            format
                .object("json_schema")?
                .ok_or_else(|| ApiError::missing("response_format.json_schema"))?;
            Ok(Format::Json)
        }
        Some(other) => Err(ApiError::invalid_value(
            "response_format.type",
            format!(
                "Invalid value: '{other}'. Supported values are: 'json_object', 'json_schema', and 'text'."
            ),
        )),
        None => Err(ApiError::missing("response_format.type")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error_param(body: Value) -> Option<String> {
        match ChatRequest::parse(&body) {
            Err(ApiError::InvalidRequest { param, .. }) => param,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_request_reads_with_defaults() {
        let body = json!({ "model": "mock", "messages": [{ "role": "user", "content": "Hi" }] });
        let request = ChatRequest::parse(&body).unwrap();
        assert_eq!(request.model, "mock");
        assert_eq!(request.stream, Streaming::No);
        assert_eq!(request.choices, 1);
        assert_eq!(request.max_tokens, None);
        assert_eq!(request.tool_choice, ToolChoice::Auto);
        assert_eq!(request.format, Format::Text);
        assert_eq!(request.logprobs, Logprobs::Off);
        assert_eq!(request.reasoning_effort, None);
    }

    #[test]
    fn malformed_requests_name_the_offending_parameter() {
        let user = json!([{ "role": "user", "content": "Hi" }]);
        let cases = [
            ("no model", json!({ "messages": user }), "model"),
            ("no messages", json!({ "model": "m" }), "messages"),
            (
                "empty messages",
                json!({ "model": "m", "messages": [] }),
                "messages",
            ),
            (
                "n too big",
                json!({ "model": "m", "messages": user, "n": 129 }),
                "n",
            ),
            (
                "n zero",
                json!({ "model": "m", "messages": user, "n": 0 }),
                "n",
            ),
            (
                "n not an integer",
                json!({ "model": "m", "messages": user, "n": "2" }),
                "n",
            ),
            (
                "max_tokens zero",
                json!({ "model": "m", "messages": user, "max_tokens": 0 }),
                "max_tokens",
            ),
            (
                "unknown role",
                json!({ "model": "m", "messages": [{ "role": "bot", "content": "x" }] }),
                "messages[0].role",
            ),
            (
                "user without content",
                json!({ "model": "m", "messages": [{ "role": "user" }] }),
                "messages[0].content",
            ),
            (
                "tool result without id",
                json!({ "model": "m", "messages": [{ "role": "tool", "content": "x" }] }),
                "messages[0].tool_call_id",
            ),
            (
                "arguments as an object",
                json!({ "model": "m", "messages": [{ "role": "assistant", "tool_calls": [
                    { "id": "c", "type": "function", "function": { "name": "f", "arguments": {} } }
                ] }] }),
                "messages[0].tool_calls[0].function.arguments",
            ),
            (
                "stream_options without stream",
                json!({ "model": "m", "messages": user, "stream_options": { "include_usage": true } }),
                "stream_options",
            ),
            (
                "tool_choice without tools",
                json!({ "model": "m", "messages": user, "tool_choice": "auto" }),
                "tool_choice",
            ),
            (
                "tool without a name",
                json!({ "model": "m", "messages": user, "tools": [{ "type": "function", "function": {} }] }),
                "tools[0].function.name",
            ),
            (
                "unknown named function",
                json!({ "model": "m", "messages": user,
                        "tools": [{ "type": "function", "function": { "name": "f" } }],
                        "tool_choice": { "type": "function", "function": { "name": "g" } } }),
                "tool_choice",
            ),
            (
                "unknown response format",
                json!({ "model": "m", "messages": user, "response_format": { "type": "xml" } }),
                "response_format.type",
            ),
            (
                "unknown reasoning effort",
                json!({ "model": "m", "messages": user, "reasoning_effort": "max" }),
                "reasoning_effort",
            ),
            (
                "top_logprobs too big",
                json!({ "model": "m", "messages": user, "logprobs": true, "top_logprobs": 21 }),
                "top_logprobs",
            ),
        ];
        for (case, body, param) in cases {
            assert_eq!(error_param(body), Some(param.to_owned()), "{case}");
        }
    }

    #[test]
    fn the_options_of_a_rich_request_are_read() {
        let body = json!({
            "model": "mock", "messages": [{ "role": "user", "content": "Hi" }],
            "stream": true, "stream_options": { "include_usage": true },
            "max_tokens": 50, "max_completion_tokens": 20, "n": 3,
            "tools": [{ "type": "function", "function": { "name": "f" } }],
            "tool_choice": { "type": "function", "function": { "name": "f" } },
            "parallel_tool_calls": false,
            "response_format": { "type": "json_schema", "json_schema": { "name": "x", "schema": {} } },
            "logprobs": true, "top_logprobs": 2, "reasoning_effort": "medium",
        });
        let request = ChatRequest::parse(&body).unwrap();
        assert_eq!(
            request.stream,
            Streaming::Yes {
                include_usage: true
            }
        );
        assert_eq!(request.max_tokens, Some(20));
        assert_eq!(request.choices, 3);
        assert_eq!(request.tool_choice, ToolChoice::Function("f"));
        assert_eq!(request.parallel_tool_calls, ParallelToolCalls::Disallowed);
        assert_eq!(request.format, Format::Json);
        assert_eq!(request.logprobs, Logprobs::On { top: 2 });
        assert_eq!(request.reasoning_effort, Some(ReasoningEffort::Medium));
    }
}
