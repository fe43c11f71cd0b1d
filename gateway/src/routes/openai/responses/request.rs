//! OpenAI's Responses API request as a chat completion request, which every upstream the executor speaks to
//! understands (the field-by-field table is in QUICK_START.md's Responses section).
//! `instructions` becomes the first (system) message; `input` as a string becomes one user message;
//! input items: messages (`input_text` / `output_text` parts become text, `input_image` becomes an
//! `image_url` part; role `developer` becomes `system`), `function_call` items become the assistant's
//! `tool_calls` (a call inside a namespace under its flattened name), `custom_tool_call` items become calls
//! of the flattened custom tool with `{"input": …}`, `function_call_output` and `custom_tool_call_output`
//! items become `tool` messages, `additional_tools` items add their tools, `reasoning` items and the records
//! of hosted tools (`web_search_call`, …) are dropped (chat completions cannot take them back). Tools
//! (QUICK_START.md §6): `function` tools become chat function tools; a `namespace`'s functions are flattened
//! to `<namespace>__<name>`; a `custom` (freeform) tool becomes a function taking one string, `input`, whose
//! description carries the tool's grammar; hosted tools (`web_search`, `file_search`, `tool_search`,
//! `computer_use_preview`, `code_interpreter`, `image_generation`, `mcp`, `local_shell`, …) are dropped and
//! named in `x-dropped-tools`, and a `tool_choice` that requires one is refused. `tool_choice` keeps its
//! meaning; `max_output_tokens` becomes `max_tokens`; `text.format` becomes `response_format`;
//! `reasoning.effort` becomes `reasoning_effort`; `temperature`, `top_p`, `parallel_tool_calls`, `user`,
//! `metadata`, `stream` and unknown fields pass on unchanged; `store`, `include`, `truncation`,
//! `prompt_cache_key`, `client_metadata`, `service_tier` and `stream_options` are accepted and not sent on
//! (nothing is stored; they are the Responses API's own). Refused with 400, because the platform keeps no
//! conversation state: `previous_response_id`, `conversation`, `prompt`, `background`, `item_reference`
//! items, file inputs by id.

use serde_json::{Map, Value, json};

/// Why a request cannot be translated.
#[derive(Debug, PartialEq, Eq)]
pub struct Untranslatable(pub String);

fn refuse<T>(reason: impl Into<String>) -> Result<T, Untranslatable> {
    Err(Untranslatable(reason.into()))
}

/// Fields refused because the platform keeps no state or has no chat equivalent for them.
const REFUSED: &[&str] = &[
    "previous_response_id",
    "conversation",
    "prompt",
    "background",
];
/// Fields accepted and not sent on: the Responses API's own settings.
const IGNORED: &[&str] = &[
    "store",
    "include",
    "truncation",
    "prompt_cache_key",
    "client_metadata",
    "service_tier",
    "stream_options",
];

/// Input items that record what hosted tools or the provider's own state did: chat completions have no
/// place for them.
const DROPPED_ITEMS: &[&str] = &[
    "reasoning",
    "web_search_call",
    "file_search_call",
    "image_generation_call",
    "code_interpreter_call",
    "computer_call",
    "computer_call_output",
    "local_shell_call",
    "local_shell_call_output",
    "mcp_list_tools",
    "mcp_call",
    "mcp_approval_request",
    "mcp_approval_response",
    "tool_search_call",
    "tool_search_output",
    "compaction",
];

/// Joins a namespace and a function's name into the name a chat provider sees.
const NAMESPACE_SEPARATOR: &str = "__";

/// What a chat function tool stands for in the client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOrigin {
    /// A `function` tool, or a function inside a `namespace`.
    Function {
        namespace: Option<String>,
        name: String,
    },
    /// A `custom` (freeform) tool: its one string argument is `input`.
    Custom {
        namespace: Option<String>,
        name: String,
    },
}

/// The chat function names of a request's tools and what each stands for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNames(Vec<(String, ToolOrigin)>);

impl ToolNames {
    /// What the chat function `name` stands for; a name the request did not offer is a plain function.
    pub fn origin(&self, name: &str) -> ToolOrigin {
        self.0.iter().find(|(flat, _)| flat == name).map_or_else(
            || ToolOrigin::Function {
                namespace: None,
                name: name.to_string(),
            },
            |(_, origin)| origin.clone(),
        )
    }
}

/// The chat name of a tool, flattened when it lives in a namespace.
fn flat_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{namespace}{NAMESPACE_SEPARATOR}{name}"),
        None => name.to_string(),
    }
}

/// A translated request: the chat request, what its function names stand for, and the hosted tools it
/// could not carry.
#[derive(Debug, PartialEq)]
pub struct ChatRequest {
    pub chat: Map<String, Value>,
    pub tools: ToolNames,
    pub dropped_tools: Vec<String>,
}

/// A Responses request as a chat completion request.
pub fn to_chat(request: &Map<String, Value>) -> Result<ChatRequest, Untranslatable> {
    let mut request = request.clone();
    for field in REFUSED {
        if request.get(*field).is_some_and(|value| !value.is_null()) {
            return refuse(format!(
                "`{field}` is not supported: send the whole conversation in `input`"
            ));
        }
        request.remove(*field);
    }
    for field in IGNORED {
        request.remove(*field);
    }
    let mut messages = Vec::new();
    if let Some(instructions) = request.remove("instructions")
        && !instructions.is_null()
    {
        let Some(text) = instructions.as_str() else {
            return refuse("`instructions` must be a string");
        };
        messages.push(json!({"role": "system", "content": text}));
    }
    let mut tools = Tools::default();
    if let Some(offered) = request.remove("tools") {
        let Some(offered) = offered.as_array() else {
            return refuse("`tools` must be an array");
        };
        tools.add_all(offered, None)?;
    }
    match request.remove("input") {
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => {
            for item in &items {
                translate_item(item, &mut messages, &mut tools)?;
            }
        }
        _ => return refuse("`input` must be a string or an array of items"),
    }
    let mut chat = Map::new();
    chat.insert("messages".into(), Value::Array(messages));
    if let Some(choice) = request.remove("tool_choice")
        && let Some(choice) = translate_tool_choice(choice, &tools)?
    {
        chat.insert("tool_choice".into(), choice);
    }
    if !tools.functions.is_empty() {
        chat.insert("tools".into(), Value::Array(tools.functions));
    } else if !tools.dropped.is_empty() {
        // Chat providers refuse `parallel_tool_calls` without `tools`.
        request.remove("parallel_tool_calls");
    }
    if let Some(limit) = request.remove("max_output_tokens")
        && !limit.is_null()
    {
        chat.insert("max_tokens".into(), limit);
    }
    if let Some(text) = request.remove("text")
        && let Some(format) = text.get("format")
    {
        match format["type"].as_str() {
            Some("text") | None => {}
            Some("json_object") => {
                chat.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                let mut schema = json!({"name": format["name"], "schema": format["schema"]});
                if let Some(strict) = format.get("strict") {
                    schema["strict"] = strict.clone();
                }
                chat.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": schema}),
                );
            }
            Some(other) => return refuse(format!("`text.format.type` {other:?} is not supported")),
        }
    }
    if let Some(reasoning) = request.remove("reasoning")
        && let Some(effort) = reasoning.get("effort").filter(|effort| !effort.is_null())
    {
        chat.insert("reasoning_effort".into(), effort.clone());
    }
    // `model`, `temperature`, `top_p`, `parallel_tool_calls`, `user`, `metadata`, `stream` and anything
    // unknown keep their names.
    chat.extend(request);
    Ok(ChatRequest {
        chat,
        tools: tools.names,
        dropped_tools: tools.dropped,
    })
}

fn text_parts(content: &Value, role: &str) -> Result<Value, Untranslatable> {
    let Value::Array(parts) = content else {
        return match content {
            Value::String(text) => Ok(Value::from(text.clone())),
            _ => refuse("a message's `content` must be a string or parts"),
        };
    };
    let mut out = Vec::new();
    for part in parts {
        match part["type"].as_str() {
            Some("input_text" | "output_text" | "text") => {
                out.push(json!({"type": "text", "text": part["text"]}));
            }
            Some("refusal") => out.push(json!({"type": "text", "text": part["refusal"]})),
            Some("input_image") if part["image_url"].is_string() => {
                let mut image = json!({"url": part["image_url"]});
                if let Some(detail) = part.get("detail") {
                    image["detail"] = detail.clone();
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            Some(other) => {
                return refuse(format!(
                    "`{other}` content is not supported in a {role} message"
                ));
            }
            None => return refuse("each content part needs a `type`"),
        }
    }
    if role == "assistant" || role == "system" {
        // Chat completions take plain text there.
        let text: Vec<&str> = out
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect();
        return Ok(Value::from(text.join("")));
    }
    Ok(Value::Array(out))
}

/// Appends an assistant tool call, to the previous assistant message when it holds calls already.
fn push_call(call: Value, messages: &mut Vec<Value>) {
    let joins_previous = messages
        .last()
        .is_some_and(|last| last["role"] == "assistant" && last.get("tool_calls").is_some());
    match messages.last_mut() {
        Some(last) if joins_previous => {
            if let Some(calls) = last["tool_calls"].as_array_mut() {
                calls.push(call);
            }
        }
        _ => messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
    }
}

/// A tool output (a string, or content parts whose text is joined) as a `tool` message.
fn tool_output(item: &Value) -> Value {
    let output = match &item["output"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        other => other.to_string(),
    };
    json!({"role": "tool", "tool_call_id": item["call_id"], "content": output})
}

fn translate_item(
    item: &Value,
    messages: &mut Vec<Value>,
    tools: &mut Tools,
) -> Result<(), Untranslatable> {
    match item["type"].as_str() {
        Some("message") | None => {
            let role = match item["role"].as_str() {
                Some("developer" | "system") => "system",
                Some("user") => "user",
                Some("assistant") => "assistant",
                _ => {
                    return refuse(
                        "each message item needs a role: user, assistant, system or developer",
                    );
                }
            };
            let content = text_parts(&item["content"], role)?;
            messages.push(json!({"role": role, "content": content}));
        }
        Some("function_call") => {
            let name = flat_name(
                item["namespace"].as_str(),
                item["name"].as_str().unwrap_or_default(),
            );
            let call = json!({"id": item["call_id"], "type": "function",
                              "function": {"name": name, "arguments": item["arguments"]}});
            push_call(call, messages);
        }
        Some("custom_tool_call") => {
            let name = flat_name(
                item["namespace"].as_str(),
                item["name"].as_str().unwrap_or_default(),
            );
            let arguments = json!({"input": item["input"]}).to_string();
            let call = json!({"id": item["call_id"], "type": "function",
                              "function": {"name": name, "arguments": arguments}});
            push_call(call, messages);
        }
        Some("function_call_output" | "custom_tool_call_output") => {
            messages.push(tool_output(item))
        }
        Some("additional_tools") => {
            let Some(added) = item["tools"].as_array() else {
                return refuse("an `additional_tools` item needs a `tools` array");
            };
            tools.add_all(added, None)?;
        }
        Some("item_reference") => {
            return refuse(
                "`item_reference` items are not supported: send the whole conversation in `input`",
            );
        }
        Some(kind) if DROPPED_ITEMS.contains(&kind) => {}
        Some(other) => return refuse(format!("input items of type {other:?} are not supported")),
    }
    Ok(())
}

/// The chat function tools of a request, what each name stands for, and the hosted tools dropped.
#[derive(Debug, Default)]
struct Tools {
    functions: Vec<Value>,
    names: ToolNames,
    dropped: Vec<String>,
}

impl Tools {
    fn add_all(&mut self, tools: &[Value], namespace: Option<&str>) -> Result<(), Untranslatable> {
        tools.iter().try_for_each(|tool| self.add(tool, namespace))
    }

    fn add(&mut self, tool: &Value, namespace: Option<&str>) -> Result<(), Untranslatable> {
        let name = tool["name"].as_str();
        match (tool["type"].as_str(), name) {
            (Some("function"), Some(name)) => {
                let parameters = tool
                    .get("parameters")
                    .cloned()
                    .unwrap_or(json!({"type": "object"}));
                let mut function =
                    json!({"name": flat_name(namespace, name), "parameters": parameters});
                for field in ["description", "strict"] {
                    if let Some(value) = tool.get(field).filter(|value| !value.is_null()) {
                        function[field] = value.clone();
                    }
                }
                self.push(
                    function,
                    ToolOrigin::Function {
                        namespace: namespace.map(str::to_string),
                        name: name.to_string(),
                    },
                );
            }
            (Some("custom"), Some(name)) => {
                let function = json!({
                    "name": flat_name(namespace, name),
                    "description": custom_description(tool),
                    "parameters": {"type": "object", "properties": {"input": {"type": "string",
                        "description": "The tool's input, as free text in the format the description gives."}},
                        "required": ["input"], "additionalProperties": false},
                });
                self.push(
                    function,
                    ToolOrigin::Custom {
                        namespace: namespace.map(str::to_string),
                        name: name.to_string(),
                    },
                );
            }
            (Some("namespace"), Some(name)) if namespace.is_none() => {
                let Some(inner) = tool["tools"].as_array() else {
                    return refuse(format!("namespace {name:?} needs a `tools` array"));
                };
                self.add_all(inner, Some(name))?;
            }
            (Some("function" | "custom" | "namespace"), _) => {
                return refuse(
                    "each function, custom and namespace tool needs a `name` (namespaces do not nest)",
                );
            }
            (Some(hosted), _) => self.dropped.push(name.unwrap_or(hosted).to_string()),
            (None, _) => return refuse("each tool needs a `type`"),
        }
        Ok(())
    }

    fn push(&mut self, function: Value, origin: ToolOrigin) {
        let flat = function["name"].as_str().unwrap_or_default().to_string();
        self.functions
            .push(json!({"type": "function", "function": function}));
        self.names.0.push((flat, origin));
    }
}

/// A custom tool's description with its input format, so a chat model can write the free text it wants.
fn custom_description(tool: &Value) -> String {
    let mut description = tool["description"].as_str().unwrap_or_default().to_string();
    let format = &tool["format"];
    if format["type"] == "grammar" {
        description.push_str(&format!(
            "\n\nThe `input` must follow this {} grammar:\n{}",
            format["syntax"].as_str().unwrap_or("lark"),
            format["definition"].as_str().unwrap_or_default()
        ));
    }
    description
}

/// The chat `tool_choice`, or none when it chose among tools that were all dropped. A choice that requires a
/// hosted tool is refused: the answer could not honour it.
fn translate_tool_choice(choice: Value, tools: &Tools) -> Result<Option<Value>, Untranslatable> {
    let requires_dropped = || {
        refuse(format!(
            "`tool_choice` requires a hosted tool this gateway cannot run (dropped: {})",
            tools.dropped.join(", ")
        ))
    };
    match &choice {
        Value::String(mode) if tools.functions.is_empty() && !tools.dropped.is_empty() => {
            match mode.as_str() {
                "required" => requires_dropped(),
                _ => Ok(None),
            }
        }
        Value::String(_) => Ok(Some(choice)),
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("function" | "custom") => {
                let name = flat_name(
                    object.get("namespace").and_then(Value::as_str),
                    object
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                );
                Ok(Some(
                    json!({"type": "function", "function": {"name": name}}),
                ))
            }
            // A subset of the tools: chat completions choose among all, as `auto` or `required` says.
            Some("allowed_tools") => Ok(Some(
                object.get("mode").cloned().unwrap_or_else(|| json!("auto")),
            )),
            Some(_) => requires_dropped(),
            None => refuse("`tool_choice` must be auto, none, required or a tool"),
        },
        _ => refuse("`tool_choice` must be auto, none, required or a tool"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn items_tools_and_settings_become_a_chat_request() {
        let request = object(json!({
            "model": "m", "instructions": "Be brief.", "max_output_tokens": 300, "temperature": 0.1, "store": false,
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}},
            "tools": [{"type": "function", "name": "weather", "description": "Weather", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "weather"},
            "input": [
                {"role": "developer", "content": "Use tools."},
                {"role": "user", "content": [{"type": "input_text", "text": "Paris?"}, {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
                {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "call_id": "call_2", "name": "weather", "arguments": "{\"city\":\"Lyon\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
            ],
        }));
        assert_eq!(
            Value::Object(to_chat(&request).unwrap().chat),
            json!({
                "model": "m", "max_tokens": 300, "temperature": 0.1,
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
                "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object"}, "strict": true}}],
                "tool_choice": {"type": "function", "function": {"name": "weather"}},
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "system", "content": "Use tools."},
                    {"role": "user", "content": [{"type": "text", "text": "Paris?"}, {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Lyon\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                ],
            })
        );
    }

    #[test]
    fn state_and_what_cannot_be_honoured_are_refused() {
        for request in [
            json!({"input": "hi", "previous_response_id": "resp_1"}),
            json!({"input": "hi", "tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}}),
            json!({"input": "hi", "tools": [{"type": "web_search"}], "tool_choice": "required"}),
            json!({"input": "hi", "tools": [{"type": "namespace", "name": "n"}]}),
            json!({"input": "hi", "tools": [{"type": "function"}]}),
            json!({"input": "hi", "tools": [{"name": "untyped"}]}),
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            json!({"input": 5}),
        ] {
            assert!(to_chat(&object(request.clone())).is_err(), "{request}");
        }
    }

    /// What Codex sends (QUICK_START.md §6): function, namespace, custom and hosted tools, tools added by an
    /// `additional_tools` item, its earlier calls of each kind and their outputs.
    #[test]
    fn codex_tools_and_items_become_chat_tools_and_messages() {
        let request = object(json!({
            "model": "gpt-5.5", "stream": true, "store": false, "tool_choice": "auto", "parallel_tool_calls": true,
            "reasoning": {"effort": "high", "summary": "auto"}, "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "k", "client_metadata": {"session_id": "s"},
            "tools": [
                {"type": "function", "name": "exec_command", "strict": false, "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
                {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents", "tools": [
                    {"type": "function", "name": "close_agent", "parameters": {"type": "object"}}]},
                {"type": "custom", "name": "apply_patch", "description": "Edit files.",
                 "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"}},
                {"type": "web_search", "external_web_access": false},
                {"type": "tool_search", "execution": "client", "parameters": {"type": "object"}},
            ],
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be careful."}]},
                {"type": "additional_tools", "role": "developer", "tools": [
                    {"type": "namespace", "name": "clock", "tools": [{"type": "function", "name": "sleep", "parameters": {"type": "object"}}]}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Go"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
                {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"},
                {"type": "function_call", "call_id": "call_2", "namespace": "multi_agent_v1", "name": "close_agent", "arguments": "{}"},
                {"type": "custom_tool_call", "call_id": "call_3", "name": "apply_patch", "input": "*** Begin Patch"},
                {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
                {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "closed"}]},
                {"type": "custom_tool_call_output", "call_id": "call_3", "output": "Success."},
                {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            ],
        }));
        let translated = to_chat(&request).unwrap();
        assert_eq!(translated.dropped_tools, ["web_search", "tool_search"]);
        let patch_description =
            "Edit files.\n\nThe `input` must follow this lark grammar:\nstart: begin_patch";
        assert_eq!(
            Value::Object(translated.chat),
            json!({
                "model": "gpt-5.5", "stream": true, "tool_choice": "auto", "parallel_tool_calls": true,
                "reasoning_effort": "high",
                "tools": [
                    {"type": "function", "function": {"name": "exec_command", "strict": false, "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}},
                    {"type": "function", "function": {"name": "multi_agent_v1__close_agent", "parameters": {"type": "object"}}},
                    {"type": "function", "function": {"name": "apply_patch", "description": patch_description,
                        "parameters": {"type": "object", "properties": {"input": {"type": "string",
                            "description": "The tool's input, as free text in the format the description gives."}},
                            "required": ["input"], "additionalProperties": false}}},
                    {"type": "function", "function": {"name": "clock__sleep", "parameters": {"type": "object"}}},
                ],
                "messages": [
                    {"role": "system", "content": "Be careful."},
                    {"role": "user", "content": [{"type": "text", "text": "Go"}]},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"}},
                        {"id": "call_2", "type": "function", "function": {"name": "multi_agent_v1__close_agent", "arguments": "{}"}},
                        {"id": "call_3", "type": "function", "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
                    {"role": "tool", "tool_call_id": "call_2", "content": "closed"},
                    {"role": "tool", "tool_call_id": "call_3", "content": "Success."},
                ],
            })
        );
        let names = translated.tools;
        assert_eq!(
            names.origin("multi_agent_v1__close_agent"),
            ToolOrigin::Function {
                namespace: Some("multi_agent_v1".into()),
                name: "close_agent".into()
            }
        );
        assert_eq!(
            names.origin("apply_patch"),
            ToolOrigin::Custom {
                namespace: None,
                name: "apply_patch".into()
            }
        );
        assert_eq!(
            names.origin("clock__sleep"),
            ToolOrigin::Function {
                namespace: Some("clock".into()),
                name: "sleep".into()
            }
        );
        assert_eq!(
            names.origin("unknown"),
            ToolOrigin::Function {
                namespace: None,
                name: "unknown".into()
            }
        );
    }

    #[test]
    fn hosted_tools_alone_leave_no_tools_and_no_choice() {
        for choice in [json!("auto"), json!("none")] {
            let request = object(
                json!({"input": "hi", "tools": [{"type": "web_search"}], "tool_choice": choice}),
            );
            let translated = to_chat(&request).unwrap();
            assert!(!translated.chat.contains_key("tools"));
            assert!(!translated.chat.contains_key("tool_choice"));
            assert_eq!(translated.dropped_tools, ["web_search"]);
        }
    }
}
