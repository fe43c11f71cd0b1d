//! The typed view of a Messages request, read from its JSON body (kept whole for recording) and checked the
//! way api.anthropic.com checks it: a malformed member is a 400 `invalid_request_error` worded as Anthropic
//! words it (`max_tokens: Field required`, `messages.0.role: Input should be 'user' or 'assistant'`, …), and
//! the members only OpenAI's chat completions define are refused (`reasoning_effort: Extra inputs are not
//! permitted`). Members Anthropic defines that the mock does not act on (`metadata`, `stop_sequences`,
//! `temperature`, `top_p`, `top_k`, `context_management`, `service_tier`, …) are checked for their type where
//! it matters and otherwise accepted, as are members neither API defines (a vendor's extension).

use serde_json::Value;

use super::error::AnthropicError;
use crate::answer::Format;
use crate::fields::Fields;
use crate::tools::{ParallelToolCalls, Tool, ToolChoice, Turn};

/// Parameters of OpenAI's chat completions that Anthropic's API refuses: a gateway that passes Claude
/// requests through must not add them.
const OPENAI_ONLY: [&str; 19] = [
    "reasoning_effort",
    "n",
    "response_format",
    "stream_options",
    "logprobs",
    "top_logprobs",
    "max_completion_tokens",
    "parallel_tool_calls",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "seed",
    "stop",
    "user",
    "modalities",
    "audio",
    "prediction",
    "functions",
    "function_call",
];

/// The most blocks that may carry `cache_control` in one request, as Anthropic allows.
pub const MAX_CACHE_BREAKPOINTS: usize = 4;
/// The smallest thinking budget Anthropic accepts.
pub const MIN_THINKING_BUDGET: i64 = 1024;

const DOCS: &str = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking";

/// What the request is for: an answer needs `max_tokens`, a count does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Message,
    CountTokens,
}

/// `thinking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thinking {
    Disabled,
    Enabled { budget_tokens: u32 },
    Adaptive,
}

/// What the mock reads from a Messages request.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesRequest<'a> {
    pub model: &'a str,
    /// Required for [`Purpose::Message`].
    pub max_tokens: Option<u32>,
    pub messages: &'a [Value],
    /// `system` as received: a string or text blocks.
    pub system: Option<&'a Value>,
    pub stream: bool,
    /// Every tool as received, server tools included (for the cache key).
    pub tools_json: &'a [Value],
    /// The client tools (no `type`, or `custom`); server tools are accepted and ignored.
    pub tools: Vec<Tool<'a>>,
    pub tool_choice: ToolChoice<'a>,
    pub parallel_tool_calls: ParallelToolCalls,
    pub thinking: Thinking,
    /// `output_config.format` (or the older `output_format`) of type `json_schema` asks for JSON.
    pub format: Format,
}

impl<'a> MessagesRequest<'a> {
    /// The model name alone, so its directives can act before the rest is checked.
    pub fn model(body: &'a Value) -> Result<&'a str, AnthropicError> {
        Fields::root(body)?
            .string("model")?
            .ok_or_else(|| AnthropicError::missing("model"))
    }

    /// Reads and checks the whole request.
    pub fn parse(body: &'a Value, purpose: Purpose) -> Result<MessagesRequest<'a>, AnthropicError> {
        let fields = Fields::root(body)?;
        if let Some(param) = OPENAI_ONLY.iter().find(|param| fields.get(param).is_some()) {
            return Err(AnthropicError::extra(param));
        }
        let model = MessagesRequest::model(body)?;
        let max_tokens = fields
            .integer("max_tokens", 1, u32::MAX.into())?
            .map(|limit| u32::try_from(limit).unwrap_or(u32::MAX));
        if purpose == Purpose::Message && max_tokens.is_none() {
            return Err(AnthropicError::missing("max_tokens"));
        }
        let messages = fields
            .array("messages")?
            .ok_or_else(|| AnthropicError::missing("messages"))?;
        let mut breakpoints = 0usize;
        check_messages(messages, &mut breakpoints)?;
        let system = fields.get("system");
        check_system(system, &mut breakpoints)?;
        let tools_json = fields.array("tools")?.unwrap_or(&[]);
        let tools = parse_tools(tools_json, &mut breakpoints)?;
        if breakpoints > MAX_CACHE_BREAKPOINTS {
            return Err(AnthropicError::invalid(format!(
                "A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found \
                 {breakpoints}."
            )));
        }
        let (tool_choice, parallel_tool_calls) =
            parse_tool_choice(fields.object("tool_choice")?, tools_json, &tools)?;
        let thinking = parse_thinking(fields.object("thinking")?, max_tokens)?;
        let forced = matches!(tool_choice, ToolChoice::Required | ToolChoice::Function(_));
        if thinking != Thinking::Disabled && forced {
            return Err(AnthropicError::invalid(
                "Thinking may not be enabled when tool_choice forces tool use.",
            ));
        }
        let temperature = fields.number("temperature", 0.0, 1.0)?;
        if thinking != Thinking::Disabled && temperature.is_some_and(|value| value != 1.0) {
            return Err(AnthropicError::invalid(format!(
                "`temperature` may only be set to 1 when thinking is enabled. Please consult our \
                 documentation at {DOCS}#feature-compatibility"
            )));
        }
        fields.number("top_p", 0.0, 1.0)?;
        fields.integer("top_k", 0, i64::MAX)?;
        if let Some(metadata) = fields.object("metadata")? {
            metadata.string("user_id")?;
        }
        for (index, stop) in fields
            .array("stop_sequences")?
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            if !stop.is_string() {
                return Err(AnthropicError::invalid(format!(
                    "stop_sequences.{index}: Input should be a valid string"
                )));
            }
        }
        fields.object("context_management")?;
        let output_config = fields.object("output_config")?;
        let format = match output_config {
            Some(config) => parse_format(config.object("format")?)?,
            None => Format::Text,
        };
        let format = match (format, fields.object("output_format")?) {
            (Format::Text, Some(format)) => parse_format(Some(format))?,
            (format, _) => format,
        };
        Ok(MessagesRequest {
            model,
            max_tokens,
            messages,
            system,
            stream: fields.bool("stream")?.unwrap_or(false),
            tools_json,
            tools,
            tool_choice,
            parallel_tool_calls,
            thinking,
            format,
        })
    }

    /// Where the conversation stands for tool calls: whether a `tool_result` block follows the last
    /// assistant turn, and the text of the last user turn (its last text block).
    pub fn turn(&self) -> Turn<'a> {
        fn role(message: &Value) -> Option<&str> {
            message.get("role").and_then(Value::as_str)
        }
        fn blocks(message: &Value) -> &[Value] {
            message
                .get("content")
                .and_then(Value::as_array)
                .map_or(&[], Vec::as_slice)
        }
        let since_assistant = self
            .messages
            .iter()
            .rposition(|message| role(message) == Some("assistant"))
            .map_or(self.messages, |at| &self.messages[at + 1..]);
        let answered = since_assistant.iter().any(|message| {
            blocks(message)
                .iter()
                .any(|block| block_type(block) == Some("tool_result"))
        });
        let prompt = self
            .messages
            .iter()
            .rev()
            .find(|message| role(message) == Some("user"))
            .and_then(|message| match message.get("content") {
                Some(Value::String(text)) => Some(text.as_str()),
                Some(Value::Array(blocks)) => blocks
                    .iter()
                    .rev()
                    .filter(|block| block_type(block) == Some("text"))
                    .find_map(|block| block.get("text").and_then(Value::as_str)),
                _ => None,
            });
        Turn { answered, prompt }
    }
}

/// A content block's (or a tool's) `type`.
pub fn block_type(block: &Value) -> Option<&str> {
    block.get("type").and_then(Value::as_str)
}

/// A block's `cache_control`, checked and counted as a breakpoint.
fn check_cache_control(block: &Fields<'_>, breakpoints: &mut usize) -> Result<(), AnthropicError> {
    let Some(control) = block.object("cache_control")? else {
        return Ok(());
    };
    match control.string("type")? {
        Some("ephemeral") => {}
        Some(_) => {
            return Err(AnthropicError::invalid(format!(
                "{}: Input should be 'ephemeral'",
                control.param("type")
            )));
        }
        None => return Err(AnthropicError::missing(&control.param("type"))),
    }
    match control.string("ttl")? {
        None | Some("5m" | "1h") => {}
        Some(_) => {
            return Err(AnthropicError::invalid(format!(
                "{}: Input should be '5m' or '1h'",
                control.param("ttl")
            )));
        }
    }
    *breakpoints += 1;
    Ok(())
}

fn check_messages(messages: &[Value], breakpoints: &mut usize) -> Result<(), AnthropicError> {
    if messages.is_empty() {
        return Err(AnthropicError::invalid(
            "messages: at least one message is required",
        ));
    }
    // The ids of the previous assistant turn's `tool_use` blocks that still want a `tool_result`.
    let mut pending_calls: Vec<&str> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let fields = Fields::at(message, format!("messages.{index}"))?;
        let role = fields
            .string("role")?
            .ok_or_else(|| AnthropicError::missing(&fields.param("role")))?;
        match role {
            "user" | "assistant" => {}
            "system" => {
                return Err(AnthropicError::invalid(
                    "messages: Unexpected role \"system\". The Messages API accepts a top-level \
                     `system` parameter, not \"system\" as an input message role.",
                ));
            }
            _ => {
                return Err(AnthropicError::invalid(format!(
                    "{}: Input should be 'user' or 'assistant'",
                    fields.param("role")
                )));
            }
        }
        let blocks = match fields.get("content") {
            None => return Err(AnthropicError::missing(&fields.param("content"))),
            Some(Value::String(_)) => &[][..],
            Some(Value::Array(blocks)) => blocks.as_slice(),
            Some(_) => {
                return Err(AnthropicError::invalid(format!(
                    "{}: Input should be a valid list",
                    fields.param("content")
                )));
            }
        };
        let mut calls = Vec::new();
        let mut results = Vec::new();
        for (block_index, block) in blocks.iter().enumerate() {
            let block = Fields::at(block, format!("{}.{block_index}", fields.param("content")))?;
            check_block(&block, breakpoints)?;
            match block.string("type")? {
                Some("tool_use") => calls.extend(block.string("id")?),
                Some("tool_result") => {
                    if let Some(id) = block.string("tool_use_id")? {
                        if !pending_calls.contains(&id) {
                            return Err(AnthropicError::invalid(format!(
                                "{}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. \
                                 Each `tool_result` block must have a corresponding `tool_use` block \
                                 in the previous message.",
                                block.path()
                            )));
                        }
                        results.push(id);
                    }
                }
                _ => {}
            }
        }
        let unanswered: Vec<&str> = pending_calls
            .iter()
            .filter(|id| !results.contains(id))
            .copied()
            .collect();
        if !unanswered.is_empty() {
            return Err(AnthropicError::invalid(format!(
                "messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately \
                 after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the \
                 next message.",
                unanswered.join(", ")
            )));
        }
        pending_calls = if role == "assistant" {
            calls
        } else {
            Vec::new()
        };
    }
    Ok(())
}

/// The members each known block type needs; block types the mock does not know are accepted as they are.
fn check_block(block: &Fields<'_>, breakpoints: &mut usize) -> Result<(), AnthropicError> {
    let kind = block
        .string("type")?
        .ok_or_else(|| AnthropicError::missing(&block.param("type")))?;
    let required: &[&str] = match kind {
        "text" => &["text"],
        "image" | "document" => &["source"],
        "tool_use" => &["id", "name", "input"],
        "tool_result" => &["tool_use_id"],
        "thinking" => &["thinking", "signature"],
        "redacted_thinking" => &["data"],
        _ => &[],
    };
    for member in required {
        if block.get(member).is_none() {
            return Err(AnthropicError::missing(&block.param(member)));
        }
    }
    block.string("text")?;
    block.object("source")?;
    block.object("input")?;
    block.string("thinking")?;
    block.string("signature")?;
    check_cache_control(block, breakpoints)
}

fn check_system(system: Option<&Value>, breakpoints: &mut usize) -> Result<(), AnthropicError> {
    match system {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(blocks)) => {
            for (index, block) in blocks.iter().enumerate() {
                let block = Fields::at(block, format!("system.{index}"))?;
                if block.string("type")? != Some("text") {
                    return Err(AnthropicError::invalid(format!(
                        "{}: Input should be 'text'",
                        block.param("type")
                    )));
                }
                block
                    .string("text")?
                    .ok_or_else(|| AnthropicError::missing(&block.param("text")))?;
                check_cache_control(&block, breakpoints)?;
            }
            Ok(())
        }
        Some(_) => Err(AnthropicError::invalid(
            "system: Input should be a valid string",
        )),
    }
}

fn parse_tools<'a>(
    tools: &'a [Value],
    breakpoints: &mut usize,
) -> Result<Vec<Tool<'a>>, AnthropicError> {
    let mut client_tools = Vec::new();
    let mut names = Vec::new();
    for (index, tool) in tools.iter().enumerate() {
        let fields = Fields::at(tool, format!("tools.{index}"))?;
        let name = fields
            .string("name")?
            .ok_or_else(|| AnthropicError::missing(&fields.param("name")))?;
        if names.contains(&name) {
            return Err(AnthropicError::invalid("tools: Tool names must be unique."));
        }
        names.push(name);
        check_cache_control(&fields, breakpoints)?;
        match fields.string("type")? {
            None | Some("custom") => {}
            // A server tool (`web_search_20250305`, `bash_20250124`, …): run by Anthropic, never by the
            // client, so the mock neither calls it nor counts it.
            Some(_) => continue,
        }
        fields
            .object("input_schema")?
            .ok_or_else(|| AnthropicError::missing(&fields.param("input_schema")))?;
        fields.string("description")?;
        client_tools.push(Tool {
            name,
            parameters: fields.get("input_schema"),
        });
    }
    Ok(client_tools)
}

fn parse_tool_choice<'a>(
    choice: Option<Fields<'a>>,
    tools_json: &[Value],
    tools: &[Tool<'_>],
) -> Result<(ToolChoice<'a>, ParallelToolCalls), AnthropicError> {
    let Some(choice) = choice else {
        return Ok((ToolChoice::Auto, ParallelToolCalls::Allowed));
    };
    if tools_json.is_empty() {
        return Err(AnthropicError::invalid(
            "tool_choice may only be specified while providing tools.",
        ));
    }
    let parallel = match choice.bool("disable_parallel_tool_use")? {
        Some(true) => ParallelToolCalls::Disallowed,
        Some(false) | None => ParallelToolCalls::Allowed,
    };
    let kind = choice
        .string("type")?
        .ok_or_else(|| AnthropicError::missing(&choice.param("type")))?;
    let tool_choice = match kind {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => {
            let name = choice
                .string("name")?
                .ok_or_else(|| AnthropicError::missing("tool_choice.tool.name"))?;
            if !tools.iter().any(|tool| tool.name == name) {
                return Err(AnthropicError::invalid(format!(
                    "tool_choice.name: Tool '{name}' not found in the provided tools."
                )));
            }
            ToolChoice::Function(name)
        }
        other => {
            return Err(AnthropicError::unknown_tag(
                "tool_choice",
                other,
                &["auto", "any", "tool", "none"],
            ));
        }
    };
    Ok((tool_choice, parallel))
}

fn parse_thinking(
    thinking: Option<Fields<'_>>,
    max_tokens: Option<u32>,
) -> Result<Thinking, AnthropicError> {
    let Some(thinking) = thinking else {
        return Ok(Thinking::Disabled);
    };
    match thinking.string("type")? {
        Some("disabled") => Ok(Thinking::Disabled),
        Some("adaptive") => Ok(Thinking::Adaptive),
        Some("enabled") => {
            let enabled = thinking.renamed("thinking.enabled".into());
            let budget = enabled
                .integer("budget_tokens", MIN_THINKING_BUDGET, u32::MAX.into())?
                .ok_or_else(|| AnthropicError::missing(&enabled.param("budget_tokens")))?;
            let budget = u32::try_from(budget).unwrap_or(u32::MAX);
            if max_tokens.is_some_and(|max_tokens| budget >= max_tokens) {
                return Err(AnthropicError::invalid(format!(
                    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our \
                     documentation at {DOCS}#max-tokens-and-context-window-size"
                )));
            }
            Ok(Thinking::Enabled {
                budget_tokens: budget,
            })
        }
        Some(other) => Err(AnthropicError::unknown_tag(
            "thinking",
            other,
            &["enabled", "disabled", "adaptive"],
        )),
        None => Err(AnthropicError::invalid(
            "thinking: Unable to extract tag using discriminator 'type'",
        )),
    }
}

fn parse_format(format: Option<Fields<'_>>) -> Result<Format, AnthropicError> {
    let Some(format) = format else {
        return Ok(Format::Text);
    };
    match format.string("type")? {
        Some("json_schema") => Ok(Format::Json),
        Some(other) => Err(AnthropicError::unknown_tag(
            format.path(),
            other,
            &["json_schema"],
        )),
        None => Err(AnthropicError::missing(&format.param("type"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(body: Value) -> String {
        match MessagesRequest::parse(&body, Purpose::Message) {
            Err(AnthropicError::InvalidRequest { message }) => message,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_claude_code_request_reads_with_its_options() {
        let body = json!({
            "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
            "system": [{ "type": "text", "text": "You are Claude Code.", "cache_control": { "type": "ephemeral" } }],
            "messages": [{ "role": "user", "content": [{ "type": "text", "text": "Use Bash to run `ls`" }] }],
            "tools": [
                { "name": "Bash", "input_schema": { "type": "object", "properties": { "command": { "type": "string" } } } },
                { "type": "web_search_20250305", "name": "web_search", "max_uses": 5 },
            ],
            "tool_choice": { "type": "auto", "disable_parallel_tool_use": true },
            "thinking": { "type": "enabled", "budget_tokens": 31999 },
            "metadata": { "user_id": "user_abc" }, "temperature": 1,
            "context_management": { "edits": [] }, "output_config": { "effort": "high" },
        });
        let request = MessagesRequest::parse(&body, Purpose::Message).unwrap();
        assert_eq!(request.max_tokens, Some(32000));
        assert!(request.stream);
        assert_eq!(request.tools.len(), 1, "the server tool is ignored");
        assert_eq!(request.tools[0].name, "Bash");
        assert_eq!(request.parallel_tool_calls, ParallelToolCalls::Disallowed);
        assert_eq!(
            request.thinking,
            Thinking::Enabled {
                budget_tokens: 31999
            }
        );
        assert_eq!(request.format, Format::Text);
        assert_eq!(
            request.turn(),
            Turn {
                answered: false,
                prompt: Some("Use Bash to run `ls`")
            }
        );
    }

    #[test]
    fn malformed_requests_are_refused_in_anthropics_words() {
        let user = json!([{ "role": "user", "content": "Hi" }]);
        let tools = json!([{ "name": "f", "input_schema": { "type": "object" } }]);
        let cases = [
            (
                "no max_tokens",
                json!({ "model": "m", "messages": user }),
                "max_tokens: Field required",
            ),
            (
                "no model",
                json!({ "max_tokens": 5, "messages": user }),
                "model: Field required",
            ),
            (
                "no messages",
                json!({ "model": "m", "max_tokens": 5 }),
                "messages: Field required",
            ),
            (
                "empty messages",
                json!({ "model": "m", "max_tokens": 5, "messages": [] }),
                "messages: at least one message is required",
            ),
            (
                "a bad role",
                json!({ "model": "m", "max_tokens": 5, "messages": [{ "role": "bot", "content": "x" }] }),
                "messages.0.role: Input should be 'user' or 'assistant'",
            ),
            (
                "a system role",
                json!({ "model": "m", "max_tokens": 5, "messages": [{ "role": "system", "content": "x" }] }),
                "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.",
            ),
            (
                "max_tokens zero",
                json!({ "model": "m", "max_tokens": 0, "messages": user }),
                "max_tokens: Input should be greater than or equal to 1",
            ),
            (
                "max_tokens a string",
                json!({ "model": "m", "max_tokens": "5", "messages": user }),
                "max_tokens: Input should be a valid integer",
            ),
            (
                "an OpenAI reasoning_effort",
                json!({ "model": "m", "max_tokens": 5, "messages": user, "reasoning_effort": "high" }),
                "reasoning_effort: Extra inputs are not permitted",
            ),
            (
                "OpenAI's n",
                json!({ "model": "m", "max_tokens": 5, "messages": user, "n": 1 }),
                "n: Extra inputs are not permitted",
            ),
            (
                "OpenAI's stream_options",
                json!({ "model": "m", "max_tokens": 5, "messages": user, "stream": true, "stream_options": {} }),
                "stream_options: Extra inputs are not permitted",
            ),
            (
                "a thinking budget below 1024",
                json!({ "model": "m", "max_tokens": 5000, "messages": user,
                        "thinking": { "type": "enabled", "budget_tokens": 1000 } }),
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
            ),
            (
                "a thinking budget of max_tokens",
                json!({ "model": "m", "max_tokens": 2000, "messages": user,
                        "thinking": { "type": "enabled", "budget_tokens": 2000 } }),
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
            ),
            (
                "an unknown thinking type",
                json!({ "model": "m", "max_tokens": 5, "messages": user, "thinking": { "type": "deep" } }),
                "thinking: Input tag 'deep' found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'",
            ),
            (
                "thinking with a forced tool",
                json!({ "model": "m", "max_tokens": 5, "messages": user, "tools": tools,
                        "tool_choice": { "type": "any" }, "thinking": { "type": "adaptive" } }),
                "Thinking may not be enabled when tool_choice forces tool use.",
            ),
            (
                "a tool without input_schema",
                json!({ "model": "m", "max_tokens": 5, "messages": user, "tools": [{ "name": "f" }] }),
                "tools.0.input_schema: Field required",
            ),
            (
                "a tool_choice naming no tool",
                json!({ "model": "m", "max_tokens": 5, "messages": user, "tools": tools,
                        "tool_choice": { "type": "tool", "name": "g" } }),
                "tool_choice.name: Tool 'g' not found in the provided tools.",
            ),
            (
                "a cache ttl of a day",
                json!({ "model": "m", "max_tokens": 5, "messages": [{ "role": "user", "content": [
                    { "type": "text", "text": "Hi", "cache_control": { "type": "ephemeral", "ttl": "1d" } }] }] }),
                "messages.0.content.0.cache_control.ttl: Input should be '5m' or '1h'",
            ),
            (
                "five breakpoints",
                json!({ "model": "m", "max_tokens": 5, "messages": [{ "role": "user", "content":
                    vec![json!({ "type": "text", "text": "Hi", "cache_control": { "type": "ephemeral" } }); 5] }] }),
                "A maximum of 4 blocks with cache_control may be provided. Found 5.",
            ),
            (
                "a tool_use without its result",
                json!({ "model": "m", "max_tokens": 5, "messages": [
                    { "role": "user", "content": "Hi" },
                    { "role": "assistant", "content": [{ "type": "tool_use", "id": "toolu_1", "name": "f", "input": {} }] },
                    { "role": "user", "content": "Go on" },
                ] }),
                "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            ),
            (
                "a tool_result without its call",
                json!({ "model": "m", "max_tokens": 5, "messages": [
                    { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "toolu_9", "content": "42" }] },
                ] }),
                "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
            ),
        ];
        for (case, body, expected) in cases {
            assert_eq!(message(body), expected, "{case}");
        }
    }

    #[test]
    fn count_tokens_needs_no_max_tokens() {
        let body = json!({ "model": "m", "messages": [{ "role": "user", "content": "Hi" }] });
        let request = MessagesRequest::parse(&body, Purpose::CountTokens).unwrap();
        assert_eq!(request.max_tokens, None);
    }

    #[test]
    fn a_tool_result_after_the_last_assistant_turn_is_an_answered_turn() {
        let body = json!({ "model": "m", "max_tokens": 5, "messages": [
            { "role": "user", "content": "Weather?" },
            { "role": "assistant", "content": [{ "type": "tool_use", "id": "toolu_1", "name": "f", "input": {} }] },
            { "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny" },
                { "type": "text", "text": "Thanks" },
            ] },
        ] });
        let request = MessagesRequest::parse(&body, Purpose::Message).unwrap();
        assert_eq!(
            request.turn(),
            Turn {
                answered: true,
                prompt: Some("Thanks")
            }
        );
    }
}
