//! Routes: which providers serve the models matching a pattern (`*` and `?` globs), in what order they
//! are tried (`weights` draw the first), and under which name the model is asked for (`upstream_model`).

use std::borrow::Cow;

use rand::Rng;
use serde_json::{Map, Value};

/// Which providers serve the models matching a pattern.
#[derive(Debug, Clone)]
pub(super) struct Route {
    pub(super) pattern: String,
    /// Indexes into `Providers::providers`, in fallback order.
    pub(super) providers: Vec<usize>,
    pub(super) upstream_model: Option<String>,
    pub(super) weights: Option<Vec<u32>>,
}

impl Route {
    /// The providers to try, in order.
    pub(super) fn attempts(&self) -> Vec<usize> {
        let mut order = self.providers.clone();
        if let Some(weights) = &self.weights {
            let total: u64 = weights.iter().map(|weight| u64::from(*weight)).sum();
            let mut draw = rand::rng().random_range(0..total.max(1));
            let first = weights
                .iter()
                .position(|weight| {
                    let weight = u64::from(*weight);
                    if draw < weight {
                        return true;
                    }
                    draw -= weight;
                    false
                })
                .unwrap_or(0);
            let chosen = order.remove(first);
            order.insert(0, chosen);
        }
        order
    }
}

/// `body` as the provider is asked for it: the route's `upstream_model` in place of the client's name.
pub(super) fn renamed<'b>(
    body: &'b Map<String, Value>,
    upstream_model: Option<&str>,
) -> Cow<'b, Map<String, Value>> {
    match upstream_model {
        None => Cow::Borrowed(body),
        Some(upstream) => {
            let mut renamed = body.clone();
            renamed.insert("model".into(), Value::String(upstream.to_string()));
            Cow::Owned(renamed)
        }
    }
}

pub(super) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters and `?` for one.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // The classic two-pointer match with backtracking to the last `*`.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == '?' || *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    p = star_p + 1;
                    n = star_n + 1;
                    star = Some((star_p, star_n + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shell_patterns() {
        let cases = [
            ("*", "anything", true),
            ("claude-*", "claude-sonnet-4-5", true),
            ("claude-*", "gpt-4o", false),
            ("gpt-4?", "gpt-4o", true),
            ("gpt-4?", "gpt-4o-mini", false),
            ("*-mini", "gpt-4o-mini", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("", "", true),
        ];
        for (pattern, name, matches) in cases {
            assert_eq!(glob_matches(pattern, name), matches, "{pattern} {name}");
        }
    }
}
