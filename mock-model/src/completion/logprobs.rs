//! Log probabilities (`logprobs: true`): every output piece gets the fixed log probability -0.5, its UTF-8
//! bytes, and `top_logprobs` alternatives (the piece itself first, then words of the cycle at -1.5, -2.5, …).

use serde_json::{Value, json};

use crate::answer::WORDS;

/// The log probability of every chosen token.
pub const CHOSEN_LOGPROB: f64 = -0.5;

/// The `logprobs.content` (or `logprobs.refusal`) entry of one piece with `top` alternatives.
pub fn entry(piece: &str, top: u8) -> Value {
    let alternatives: Vec<Value> = (0..usize::from(top))
        .map(|rank| {
            let (token, logprob) = if rank == 0 {
                (piece, CHOSEN_LOGPROB)
            } else {
                (
                    WORDS[(rank - 1) % WORDS.len()],
                    CHOSEN_LOGPROB - rank as f64,
                )
            };
            json!({ "token": token, "logprob": logprob, "bytes": token.as_bytes() })
        })
        .collect();
    json!({
        "token": piece,
        "logprob": CHOSEN_LOGPROB,
        "bytes": piece.as_bytes(),
        "top_logprobs": alternatives,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_carries_the_bytes_and_the_asked_alternatives() {
        let entry = entry(" fox", 3);
        assert_eq!(entry["token"], " fox");
        assert_eq!(entry["logprob"].as_f64(), Some(-0.5));
        assert_eq!(entry["bytes"], json!([32, 102, 111, 120]));
        let top = entry["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(top[0]["token"], " fox");
        assert_eq!(top[2]["logprob"].as_f64(), Some(-2.5));
    }
}
