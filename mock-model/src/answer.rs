//! What an answer says, for both APIs (chat completions' choices and Messages' content blocks): words, a
//! JSON object, a refusal or tool calls, cut to the request's `max_tokens`, and how that output splits into
//! streamed pieces of one token each. [`Answer::plan`] decides it from what the request asks ([`Ask`]) and
//! the model name's directives, the same way whichever API asked.
//!
//! - Length: `tokens-<n>`, else the completion figure of `usage-<p>-<c>`, else the configured default,
//!   at most [`MAX_OUTPUT_TOKENS`].
//! - Precedence: the `refuse` directive, else tool calls when [`crate::tools::tools_to_call`] picks any
//!   (string arguments filled with the last `code span` of the user's last words, else
//!   [`crate::tools::STRING_ARGUMENT`]), else words or a JSON object as the request's [`Format`] says.
//!
//! - Words: output token `i` is `WORDS[i % 10]`; every word is exactly one `cl100k_base` token, so a client
//!   counting the streamed text with tiktoken finds the reported completion tokens.
//! - JSON mode (`response_format` `json_object`/`json_schema`): `{"answer":"<the words>"}`, counted with
//!   tiktoken over the whole text; the requested length is the number of words inside.
//! - Refusal (`refuse` directive): [`REFUSAL`], counted with tiktoken.
//! - Tool calls (see [`crate::tools`]): `tok(name) + tok(arguments)` per call.
//!
//! A `max_tokens` below the output's tokens cuts it at a piece boundary (JSON then stops being valid, tool
//! arguments too, and calls that no longer fit are dropped) and the finish reason becomes `length`.

use std::borrow::Cow;

use crate::behaviour::{Behaviour, Reply};
use crate::tokens::{Piece, TokenPieces};
use crate::tools::{self, CallIds, ParallelToolCalls, Tool, ToolCall, ToolChoice, Turn};

/// The words output tokens cycle through; each is one `cl100k_base` token.
pub const WORDS: [&str; 10] = [
    " The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".",
];

/// What the `refuse` directive answers.
pub const REFUSAL: &str = "I'm sorry, I can't help with that.";

/// The most output tokens (words) one completion produces, whatever it asks for.
pub const MAX_OUTPUT_TOKENS: u32 = 100_000;

/// The form a content answer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Words of the [`WORDS`] cycle.
    Text,
    /// A JSON object (`response_format` `json_object`/`json_schema`, or Anthropic's `output_config.format`).
    Json,
}

/// What a request asks of its answer, read alike from a chat completion or a Messages request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ask<'r, 'a> {
    pub tools: &'r [Tool<'a>],
    pub tool_choice: ToolChoice<'a>,
    pub parallel_tool_calls: ParallelToolCalls,
    pub turn: Turn<'a>,
    pub format: Format,
    /// The output tokens the answer may use.
    pub max_tokens: Option<u32>,
}

/// The content of a choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The first `count` words of the [`WORDS`] cycle.
    Words { count: u32 },
    /// Any other text, cut at its token boundaries.
    Text(TokenPieces),
}

impl Content {
    /// The JSON-mode content around `words` words.
    pub fn json_object(words: u32) -> Content {
        let mut text = String::from(r#"{"answer":""#);
        text.extend((0..words).map(word));
        text.push_str(r#""}"#);
        Content::Text(TokenPieces::from_text(text))
    }

    pub fn pieces(&self) -> usize {
        match self {
            Content::Words { count } => *count as usize,
            Content::Text(pieces) => pieces.len(),
        }
    }

    pub fn piece(&self, index: usize) -> Piece<'_> {
        match self {
            Content::Words { .. } => Piece {
                text: WORDS[index % WORDS.len()],
                tokens: 1,
            },
            Content::Text(pieces) => pieces.piece(index),
        }
    }

    pub fn tokens_of_first(&self, pieces: usize) -> u32 {
        match self {
            Content::Words { count } => {
                u32::try_from(pieces).map_or(*count, |pieces| pieces.min(*count))
            }
            Content::Text(text) => text.tokens_of_first(pieces),
        }
    }

    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Content::Words { count } => Cow::Owned((0..*count).map(word).collect()),
            Content::Text(pieces) => Cow::Borrowed(pieces.text()),
        }
    }

    /// Cuts to at most `budget` tokens; true if anything was cut.
    fn truncate_to_tokens(&mut self, budget: u32) -> bool {
        match self {
            Content::Words { count } => {
                let cut = *count > budget;
                *count = (*count).min(budget);
                cut
            }
            Content::Text(pieces) => {
                let before = pieces.tokens();
                pieces.truncate_to_tokens(budget) < before
            }
        }
    }
}

fn word(index: u32) -> &'static str {
    WORDS[index as usize % WORDS.len()]
}

/// What one choice says (every choice of a completion says the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Content(Content),
    Refusal(TokenPieces),
    ToolCalls(Vec<ToolCall>),
}

/// Why a choice ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
        }
    }
}

/// One streamed piece of a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    Content(Piece<'a>),
    Refusal(Piece<'a>),
    /// The first chunk of call `index`: its id, type and name.
    ToolCallStart {
        index: usize,
        call: &'a ToolCall,
    },
    /// One token of the arguments of call `index`.
    ToolArguments {
        index: usize,
        piece: Piece<'a>,
    },
}

impl Answer {
    /// What the model answers to `ask` under the name's `behaviour` (see the module docs), cut to
    /// `ask.max_tokens`; `default_tokens` is the length when nothing else says.
    pub fn plan(
        ask: &Ask<'_, '_>,
        behaviour: &Behaviour,
        default_tokens: u32,
        ids: CallIds,
    ) -> (Answer, FinishReason) {
        let wanted = behaviour
            .output_tokens
            .or(behaviour.forced_usage.map(|usage| usage.completion_tokens))
            .unwrap_or(default_tokens)
            .min(MAX_OUTPUT_TOKENS);
        let to_call = tools::tools_to_call(
            ask.tools,
            ask.tool_choice,
            ask.parallel_tool_calls,
            behaviour.tool_calls,
            ask.turn,
        );
        let answer = match (behaviour.reply, ask.format) {
            (Reply::Refuse, _) => Answer::Refusal(TokenPieces::from_text(REFUSAL.to_owned())),
            (Reply::Answer, _) if !to_call.is_empty() => {
                let text = ask
                    .turn
                    .prompt
                    .and_then(tools::last_code_span)
                    .unwrap_or(tools::STRING_ARGUMENT);
                Answer::ToolCalls(tools::calls(&to_call, ids, text))
            }
            (Reply::Answer, Format::Text) => Answer::Content(Content::Words { count: wanted }),
            (Reply::Answer, Format::Json) => Answer::Content(Content::json_object(wanted)),
        };
        answer.finish(ask.max_tokens)
    }

    /// Cuts the answer to `max_tokens` and says how it finished.
    pub fn finish(mut self, max_tokens: Option<u32>) -> (Answer, FinishReason) {
        let cut = match (&mut self, max_tokens) {
            (_, None) => false,
            (Answer::Content(content), Some(budget)) => content.truncate_to_tokens(budget),
            (Answer::Refusal(pieces), Some(budget)) => {
                let before = pieces.tokens();
                pieces.truncate_to_tokens(budget) < before
            }
            (Answer::ToolCalls(calls), Some(budget)) => truncate_calls(calls, budget),
        };
        let reason = match (&self, cut) {
            (_, true) => FinishReason::Length,
            (Answer::ToolCalls(_), false) => FinishReason::ToolCalls,
            (Answer::Content(_) | Answer::Refusal(_), false) => FinishReason::Stop,
        };
        (self, reason)
    }

    /// How many events one choice streams.
    pub fn events(&self) -> usize {
        match self {
            Answer::Content(content) => content.pieces(),
            Answer::Refusal(pieces) => pieces.len(),
            Answer::ToolCalls(calls) => calls.iter().map(|call| 1 + call.arguments.len()).sum(),
        }
    }

    /// Event `index` of a choice (`index < self.events()`).
    pub fn event(&self, index: usize) -> Option<Event<'_>> {
        match self {
            Answer::Content(content) => {
                (index < content.pieces()).then(|| Event::Content(content.piece(index)))
            }
            Answer::Refusal(pieces) => {
                (index < pieces.len()).then(|| Event::Refusal(pieces.piece(index)))
            }
            Answer::ToolCalls(calls) => {
                let mut rest = index;
                for (call_index, call) in calls.iter().enumerate() {
                    if rest == 0 {
                        return Some(Event::ToolCallStart {
                            index: call_index,
                            call,
                        });
                    }
                    rest -= 1;
                    if rest < call.arguments.len() {
                        return Some(Event::ToolArguments {
                            index: call_index,
                            piece: call.arguments.piece(rest),
                        });
                    }
                    rest -= call.arguments.len();
                }
                None
            }
        }
    }

    /// Completion tokens of one choice once its first `events` events are out.
    pub fn tokens_of_first(&self, events: usize) -> u32 {
        match self {
            Answer::Content(content) => content.tokens_of_first(events),
            Answer::Refusal(pieces) => pieces.tokens_of_first(events),
            Answer::ToolCalls(calls) => {
                let mut rest = events;
                let mut tokens = 0u32;
                for call in calls {
                    if rest == 0 {
                        break;
                    }
                    tokens = tokens.saturating_add(call.name_tokens);
                    rest -= 1;
                    let pieces = rest.min(call.arguments.len());
                    tokens = tokens.saturating_add(call.arguments.tokens_of_first(pieces));
                    rest -= pieces;
                }
                tokens
            }
        }
    }

    /// Completion tokens of one whole choice.
    pub fn tokens(&self) -> u32 {
        self.tokens_of_first(self.events())
    }
}

/// Keeps the calls, and of the last one the argument pieces, that fit in `budget` tokens; true if cut.
fn truncate_calls(calls: &mut Vec<ToolCall>, budget: u32) -> bool {
    let mut left = budget;
    for (index, call) in calls.iter_mut().enumerate() {
        let Some(after_name) = left.checked_sub(call.name_tokens) else {
            calls.truncate(index);
            return true;
        };
        let wanted = call.arguments.tokens();
        let kept = call.arguments.truncate_to_tokens(after_name);
        if kept < wanted {
            calls.truncate(index + 1);
            return true;
        }
        left = after_name - kept;
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::tokens;
    use crate::tools::{Tool, calls};
    use serde_json::json;

    #[test]
    fn every_word_is_one_cl100k_token() {
        for word in WORDS {
            assert_eq!(tokens::count(word), 1, "{word:?}");
        }
    }

    #[test]
    fn json_content_is_counted_honestly_and_cut_by_max_tokens() {
        let content = Content::json_object(4);
        assert_eq!(content.text(), r#"{"answer":" The quick brown fox"}"#);
        let answer = Answer::Content(content);
        assert_eq!(
            answer.tokens(),
            tokens::count(r#"{"answer":" The quick brown fox"}"#)
        );
        let (whole, reason) = answer.clone().finish(None);
        assert_eq!(
            (whole.tokens(), reason),
            (answer.tokens(), FinishReason::Stop)
        );
        let (cut, reason) = answer.finish(Some(3));
        assert_eq!((cut.tokens(), reason), (3, FinishReason::Length));
        let Answer::Content(content) = cut else {
            panic!()
        };
        assert!(serde_json::from_str::<serde_json::Value>(&content.text()).is_err());
    }

    #[test]
    fn tool_call_events_are_a_start_then_one_per_argument_token() {
        let parameters = json!({ "properties": { "city": { "type": "string" } } });
        let tools = [
            Tool {
                name: "a",
                parameters: Some(&parameters),
            },
            Tool {
                name: "b",
                parameters: None,
            },
        ];
        let answer = Answer::ToolCalls(calls(&[&tools[0], &tools[1]], CallIds::chat(1), "Paris"));
        let Answer::ToolCalls(made) = &answer else {
            panic!()
        };
        let arguments = made[0].arguments.len();
        assert_eq!(answer.events(), 1 + arguments + 1 + 1);
        assert!(matches!(
            answer.event(0),
            Some(Event::ToolCallStart { index: 0, .. })
        ));
        assert!(matches!(
            answer.event(1),
            Some(Event::ToolArguments { index: 0, .. })
        ));
        assert!(matches!(
            answer.event(1 + arguments),
            Some(Event::ToolCallStart { index: 1, .. })
        ));
        assert_eq!(answer.event(answer.events()), None);
        assert_eq!(answer.tokens(), made[0].tokens() + made[1].tokens());
        assert_eq!(answer.tokens_of_first(1), made[0].name_tokens);
    }

    #[test]
    fn max_tokens_drops_the_calls_that_no_longer_fit() {
        let parameters = json!({ "properties": { "city": { "type": "string" } } });
        let tool = Tool {
            name: "get_weather",
            parameters: Some(&parameters),
        };
        let made = calls(&[&tool, &tool], CallIds::chat(1), "Paris");
        let first = made[0].tokens();
        let (cut, reason) = Answer::ToolCalls(made).finish(Some(first + 1));
        assert_eq!(reason, FinishReason::Length);
        let Answer::ToolCalls(kept) = &cut else {
            panic!()
        };
        assert_eq!(kept.len(), 1);
        assert_eq!(cut.tokens(), first);
    }
}
