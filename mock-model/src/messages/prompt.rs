//! Prompt tokens of a Messages request, and the places in its prompt where a cached prefix may end.
//!
//! The count is the chat completions rule of [`crate::prompt`] over the request's chat equivalent, the
//! translation the gateway makes (so a Claude request costs the same prompt tokens passed through or
//! translated):
//!
//! ```text
//! input tokens = 3 (reply priming)
//!   + (client tools ? tok(compact JSON of [{"type":"function","function":{"name","description"?,
//!                                          "parameters": input_schema,"strict"?}}, …]) : 0)
//!   + (system ? 3 + tok("system") + tok(its text, blocks joined with "\n") : 0)
//!   + Σ turns:
//!       user:      Σ tool_result blocks ( 3 + tok("tool") + tok(its text, text blocks joined with "\n")
//!                                         + (images or PDFs inside ? 3 + tok("user") + 765 × their number : 0) )
//!                  + (other blocks ? 3 + tok("user") + tok(text of text blocks and text documents)
//!                                    + 765 × (images and other documents) : 0)
//!       assistant: (text or tool_use ? 3 + tok("assistant") + tok(text of text blocks)
//!                                      + Σ tool_use ( tok(name) + tok(compact JSON of input) ) : 0)
//! ```
//!
//! A string `content` is one text block. Server tools (a `type` other than `custom`), `thinking`,
//! `redacted_thinking` and block types the mock does not know count nothing; `cache_control` is never
//! counted.
//!
//! The prompt runs in Anthropic's cache order: tools, then system, then messages. A [`Boundary`] follows
//! each tool, each system block and each content block, with the SHA-256 of the model name and the prompt
//! up to there (`cache_control` left out, so moving a breakpoint does not change the prefix it follows).

use std::borrow::Cow;

use super::request::{MessagesRequest, block_type};
use crate::prefix_cache::{Key, PrefixHasher, Ttl};
use crate::prompt::{REPLY_PRIMING_TOKENS, message_tokens, tool_call_tokens, tools_tokens};
use serde_json::{Map, Value, json};

/// Where a prefix of the prompt ends: after an item, in prompt order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// After `tools[through]`.
    Tool { through: usize },
    /// After `system[through]` (a system given as blocks).
    System { through: usize },
    /// After block `through` of `messages[message]`.
    Message { message: usize, through: usize },
}

/// A place a cached prefix may end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary {
    pub key: Key,
    pub at: Position,
    /// The item carries `cache_control` with this TTL.
    pub breakpoint: Option<Ttl>,
}

/// A request's prompt, counted once per part.
#[derive(Debug)]
pub struct Prompt<'r, 'a> {
    request: &'r MessagesRequest<'a>,
    tools: u64,
    system: u64,
    /// Tokens of each turn.
    turns: Vec<u64>,
}

impl<'r, 'a> Prompt<'r, 'a> {
    pub fn new(request: &'r MessagesRequest<'a>) -> Prompt<'r, 'a> {
        let turns = request
            .messages
            .iter()
            .map(|message| {
                let blocks = content_blocks(message);
                turn_tokens(role(message), &blocks)
            })
            .collect();
        Prompt {
            request,
            tools: tools_tokens_through(request.tools_json, request.tools_json.len()),
            system: system_tokens(request.system, usize::MAX),
            turns,
        }
    }

    /// The whole prompt's tokens (see the module docs).
    pub fn tokens(&self) -> u64 {
        REPLY_PRIMING_TOKENS + self.tools + self.system + self.turns.iter().sum::<u64>()
    }

    /// Tokens of the prefix that ends `at` (the reply priming is never part of a prefix).
    pub fn tokens_through(&self, at: Position) -> u64 {
        match at {
            Position::Tool { through } => {
                tools_tokens_through(self.request.tools_json, through + 1)
            }
            Position::System { through } => {
                self.tools + system_tokens(self.request.system, through + 1)
            }
            Position::Message { message, through } => {
                let before: u64 = self.turns[..message].iter().sum();
                let turn = &self.request.messages[message];
                let blocks = content_blocks(turn);
                let partial = turn_tokens(role(turn), &blocks[..(through + 1).min(blocks.len())]);
                self.tools + self.system + before + partial
            }
        }
    }

    /// Every place a cached prefix may end, in prompt order, with its key.
    pub fn boundaries(&self) -> Vec<Boundary> {
        let mut hasher = PrefixHasher::new(self.request.model);
        let mut boundaries = Vec::new();
        let mut mark = |hasher: &PrefixHasher, at: Position, item: &Value| {
            boundaries.push(Boundary {
                key: hasher.key(),
                at,
                breakpoint: breakpoint(item),
            });
        };
        for (through, tool) in self.request.tools_json.iter().enumerate() {
            hash_part(&mut hasher, "tool", tool);
            mark(&hasher, Position::Tool { through }, tool);
        }
        match self.request.system {
            Some(Value::Array(blocks)) => {
                for (through, block) in blocks.iter().enumerate() {
                    hash_part(&mut hasher, "system", block);
                    mark(&hasher, Position::System { through }, block);
                }
            }
            Some(system) => hash_part(&mut hasher, "system", system),
            None => {}
        }
        for (message, turn) in self.request.messages.iter().enumerate() {
            hash_part(&mut hasher, "role", &Value::String(role(turn).into()));
            match turn.get("content") {
                Some(Value::Array(blocks)) => {
                    for (through, block) in blocks.iter().enumerate() {
                        hash_part(&mut hasher, "block", block);
                        mark(&hasher, Position::Message { message, through }, block);
                    }
                }
                Some(content) => hash_part(&mut hasher, "content", content),
                None => {}
            }
        }
        boundaries
    }
}

/// Feeds one item to the prefix hash without its `cache_control`.
fn hash_part(hasher: &mut PrefixHasher, kind: &str, item: &Value) {
    match item {
        Value::Object(members) if members.contains_key("cache_control") => {
            let kept: Map<String, Value> = members
                .iter()
                .filter(|(key, _)| *key != "cache_control")
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            hasher.push(kind, &Value::Object(kept));
        }
        other => hasher.push(kind, other),
    }
}

/// The TTL of an item's `cache_control`, if it carries one (checked by the request already).
fn breakpoint(item: &Value) -> Option<Ttl> {
    let control = item
        .get("cache_control")
        .filter(|control| !control.is_null())?;
    Some(match control.get("ttl").and_then(Value::as_str) {
        Some("1h") => Ttl::OneHour,
        _ => Ttl::FiveMinutes,
    })
}

fn role(message: &Value) -> &str {
    message.get("role").and_then(Value::as_str).unwrap_or("")
}

/// A turn's content as blocks: a string is one text block.
fn content_blocks(message: &Value) -> Cow<'_, [Value]> {
    match message.get("content") {
        Some(Value::Array(blocks)) => Cow::Borrowed(blocks.as_slice()),
        Some(Value::String(text)) => Cow::Owned(vec![json!({ "type": "text", "text": text })]),
        _ => Cow::Borrowed(&[]),
    }
}

/// The chat tools JSON of the client tools among the first `count` tools.
fn tools_tokens_through(tools: &[Value], count: usize) -> u64 {
    let functions: Vec<Value> = tools
        .iter()
        .take(count)
        .filter(|tool| matches!(block_type(tool), None | Some("custom")))
        .map(|tool| {
            let mut function = Map::new();
            function.insert(
                "name".into(),
                tool.get("name").cloned().unwrap_or(Value::Null),
            );
            function.insert(
                "parameters".into(),
                tool.get("input_schema")
                    .cloned()
                    .unwrap_or(json!({ "type": "object" })),
            );
            for member in ["description", "strict"] {
                if let Some(value) = tool.get(member).filter(|value| !value.is_null()) {
                    function.insert(member.into(), value.clone());
                }
            }
            json!({ "type": "function", "function": function })
        })
        .collect();
    if functions.is_empty() {
        0
    } else {
        tools_tokens(&Value::Array(functions))
    }
}

/// The system message's tokens, counting its first `count` blocks.
fn system_tokens(system: Option<&Value>, count: usize) -> u64 {
    let text = match system {
        None => return 0,
        Some(Value::String(text)) => Cow::Borrowed(text.as_str()),
        Some(Value::Array(blocks)) => Cow::Owned(
            blocks
                .iter()
                .take(count)
                .filter_map(|block| block.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Some(_) => Cow::Borrowed(""),
    };
    message_tokens("system", &text, 0, None)
}

/// The tokens of one turn's chat equivalent (see the module docs).
fn turn_tokens(role: &str, blocks: &[Value]) -> u64 {
    let mut total = 0u64;
    // The chat message's parts: text (joined), images and PDFs; and its tool calls.
    let mut parts = 0usize;
    let mut text = String::new();
    let mut non_text_parts = 0u64;
    let mut calls = 0u64;
    let mut has_calls = false;
    for block in blocks {
        match block_type(block) {
            Some("text") => {
                parts += 1;
                text.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""));
            }
            Some("image") => {
                parts += 1;
                non_text_parts += 1;
            }
            Some("document") => {
                parts += 1;
                match document_text(block) {
                    Some(document) => text.push_str(&document),
                    None => non_text_parts += 1,
                }
            }
            Some("tool_use") if role == "assistant" => {
                has_calls = true;
                let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                let input = block
                    .get("input")
                    .map_or_else(String::new, Value::to_string);
                calls += tool_call_tokens(name, &input);
            }
            Some("tool_result") if role == "user" => total += tool_result_tokens(block),
            _ => {}
        }
    }
    match role {
        "assistant" if !text.is_empty() || has_calls => {
            total += message_tokens("assistant", &text, 0, None) + calls;
        }
        "user" if parts > 0 => {
            total += message_tokens("user", &text, non_text_parts, None);
        }
        _ => {}
    }
    total
}

/// A `tool_result` as a `tool` message, and the images or PDFs it holds as a user message after it.
fn tool_result_tokens(block: &Value) -> u64 {
    let mut texts: Vec<Cow<'_, str>> = Vec::new();
    let mut non_text_parts = 0u64;
    match block.get("content") {
        Some(Value::String(text)) => texts.push(Cow::Borrowed(text)),
        Some(Value::Array(inner)) => {
            for part in inner {
                match block_type(part) {
                    Some("text") => texts.push(Cow::Borrowed(
                        part.get("text").and_then(Value::as_str).unwrap_or(""),
                    )),
                    Some("document") => match document_text(part) {
                        Some(text) => texts.push(Cow::Owned(text)),
                        None => non_text_parts += 1,
                    },
                    Some(_) => non_text_parts += 1,
                    None => {}
                }
            }
        }
        _ => {}
    }
    let mut total = message_tokens("tool", &texts.join("\n"), 0, None);
    if non_text_parts > 0 {
        total += message_tokens("user", "", non_text_parts, None);
    }
    total
}

/// The text of a text or content document; `None` for a PDF (or any other source), a non-text part.
fn document_text(block: &Value) -> Option<String> {
    let source = block.get("source")?;
    match source.get("type").and_then(Value::as_str) {
        Some("text") => Some(source.get("data").and_then(Value::as_str)?.to_owned()),
        Some("content") => match source.get("content")? {
            Value::String(text) => Some(text.clone()),
            Value::Array(blocks) => Some(
                blocks
                    .iter()
                    .filter_map(|block| block.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::messages::request::Purpose;
    use crate::prompt::prompt_tokens;

    fn request(body: &Value) -> MessagesRequest<'_> {
        MessagesRequest::parse(body, Purpose::Message).unwrap()
    }

    #[test]
    fn a_conversation_counts_like_its_chat_equivalent() {
        let schema = json!({ "type": "object", "properties": { "city": { "type": "string" } } });
        let body = json!({
            "model": "m", "max_tokens": 100,
            "system": [{ "type": "text", "text": "Be brief." }, { "type": "text", "text": "Be kind." }],
            "tools": [
                { "name": "get_weather", "description": "Weather", "input_schema": schema,
                  "cache_control": { "type": "ephemeral" } },
                { "type": "web_search_20250305", "name": "web_search" },
            ],
            "messages": [
                { "role": "user", "content": [
                    { "type": "text", "text": "Weather in Paris?" },
                    { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": "iVBO" } },
                ] },
                { "role": "assistant", "content": [
                    { "type": "thinking", "thinking": "Hmm.", "signature": "c2ln" },
                    { "type": "text", "text": "Checking." },
                    { "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": { "city": "Paris" } },
                ] },
                { "role": "user", "content": [
                    { "type": "tool_result", "tool_use_id": "toolu_1", "content": [{ "type": "text", "text": "18C" }] },
                    { "type": "text", "text": "Thanks" },
                ] },
            ],
        });
        let chat_messages = json!([
            { "role": "system", "content": "Be brief.\nBe kind." },
            { "role": "user", "content": [
                { "type": "text", "text": "Weather in Paris?" },
                { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBO" } },
            ] },
            { "role": "assistant", "content": "Checking.", "tool_calls": [{ "id": "toolu_1", "type": "function",
              "function": { "name": "get_weather", "arguments": r#"{"city":"Paris"}"# } }] },
            { "role": "tool", "tool_call_id": "toolu_1", "content": "18C" },
            { "role": "user", "content": [{ "type": "text", "text": "Thanks" }] },
        ]);
        let chat_tools = json!([{ "type": "function", "function": {
            "name": "get_weather", "description": "Weather", "parameters": schema } }]);
        let expected = prompt_tokens(chat_messages.as_array().unwrap(), Some(&chat_tools));
        let request = request(&body);
        assert_eq!(Prompt::new(&request).tokens(), u64::from(expected));
    }

    #[test]
    fn the_prefix_through_the_last_block_is_the_prompt_less_the_reply_priming() {
        let body = json!({ "model": "m", "max_tokens": 5, "system": "Be brief.", "messages": [
            { "role": "user", "content": [{ "type": "text", "text": "One" }, { "type": "text", "text": " two" }] },
        ] });
        let request = request(&body);
        let prompt = Prompt::new(&request);
        let last = Position::Message {
            message: 0,
            through: 1,
        };
        assert_eq!(
            prompt.tokens_through(last),
            prompt.tokens() - REPLY_PRIMING_TOKENS
        );
        let first = prompt.tokens_through(Position::Message {
            message: 0,
            through: 0,
        });
        assert!(first < prompt.tokens_through(last));
        assert_eq!(
            prompt.boundaries().len(),
            2,
            "a string system is no boundary"
        );
    }

    #[test]
    fn moving_a_breakpoint_keeps_the_key_of_the_prefix_before_it() {
        let text = |text: &str, cached: bool| {
            let mut block = json!({ "type": "text", "text": text });
            if cached {
                block["cache_control"] = json!({ "type": "ephemeral" });
            }
            block
        };
        let first = json!({ "model": "m", "max_tokens": 5, "messages": [
            { "role": "user", "content": [text("Hello", true)] },
        ] });
        let second = json!({ "model": "m", "max_tokens": 5, "messages": [
            { "role": "user", "content": [text("Hello", false)] },
            { "role": "assistant", "content": "Hi" },
            { "role": "user", "content": [text("More", true)] },
        ] });
        let (first, second) = (request(&first), request(&second));
        let before = Prompt::new(&first).boundaries();
        let after = Prompt::new(&second).boundaries();
        assert_eq!(before[0].key, after[0].key);
        assert_eq!(before[0].breakpoint, Some(Ttl::FiveMinutes));
        assert_eq!(after[0].breakpoint, None);
        let other_model = json!({ "model": "n", "max_tokens": 5, "messages": [
            { "role": "user", "content": [text("Hello", true)] },
        ] });
        let other_model = request(&other_model);
        assert_ne!(Prompt::new(&other_model).boundaries()[0].key, before[0].key);
    }
}
