//! `reasoning_effort` and the reasoning tokens it reports: a reasoning model counts what it thought in
//! `completion_tokens` and tells how much of it was thought in
//! `completion_tokens_details.reasoning_tokens`. The mock thinks nothing visible; it reports a fixed share
//! of the completion tokens, by effort, as thought (see [`ReasoningEffort::percent`]), so the answer's
//! text and `completion_tokens` stay what they are without `reasoning_effort`.

/// `reasoning_effort`, as OpenAI's reasoning models accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
}

impl ReasoningEffort {
    /// Every value, in the order OpenAI's error message lists them.
    pub const ALL: [ReasoningEffort; 6] = [
        ReasoningEffort::None,
        ReasoningEffort::Minimal,
        ReasoningEffort::Low,
        ReasoningEffort::Medium,
        ReasoningEffort::High,
        ReasoningEffort::XHigh,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::None => "none",
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
            ReasoningEffort::XHigh => "xhigh",
        }
    }

    pub fn parse(value: &str) -> Option<ReasoningEffort> {
        ReasoningEffort::ALL
            .into_iter()
            .find(|effort| effort.as_str() == value)
    }

    /// The share of the completion tokens reported as reasoning, in percent.
    pub fn percent(self) -> u32 {
        match self {
            ReasoningEffort::None | ReasoningEffort::Minimal => 0,
            ReasoningEffort::Low => 25,
            ReasoningEffort::Medium => 50,
            ReasoningEffort::High => 75,
            ReasoningEffort::XHigh => 90,
        }
    }

    /// `reasoning_tokens` of an answer of `completion_tokens`: its share, rounded down.
    pub fn reasoning_tokens(self, completion_tokens: u32) -> u32 {
        let share = u64::from(completion_tokens) * u64::from(self.percent()) / 100;
        let share = u32::try_from(share).unwrap_or(completion_tokens);
        debug_assert!(share <= completion_tokens);
        share
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn each_effort_reports_its_share_of_the_completion_rounded_down() {
        let cases = [
            ("none", 0),
            ("minimal", 0),
            ("low", 4),
            ("medium", 8),
            ("high", 12),
            ("xhigh", 15),
        ];
        for (effort, expected) in cases {
            let effort = ReasoningEffort::parse(effort).unwrap();
            assert_eq!(effort.reasoning_tokens(17), expected, "{effort:?} of 17");
        }
        assert_eq!(ReasoningEffort::High.reasoning_tokens(0), 0);
        assert_eq!(
            ReasoningEffort::XHigh.reasoning_tokens(u32::MAX),
            3_865_470_565,
            "no overflow"
        );
        assert_eq!(ReasoningEffort::parse("maximal"), None);
    }
}
