//! Typed ids of what the services name across the contracts, so that a key id and an account id cannot
//! be confused: each names one kind of thing, and the compiler refuses one where the other is meant. On
//! the wire (protobuf, JSON, the executor's spool) they are plain strings.
//!
//! Each id has a form (ARCHITECTURE.md, "Vocabulary"): accounts, keys and credit grants are UUIDs, events
//! `evt_` and webhook endpoints `we_` followed by 32 lowercase hex digits, executions any 1 to 128
//! characters. [`FromStr`](std::str::FromStr) checks it where an id enters from outside (the gateway's
//! `PathId` extractor), so a malformed id is refused there; `From<String>` and serde take what the services
//! themselves wrote (their database, their spool, their wire) as it is, so that nothing they wrote is ever
//! lost to a stricter reader.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An id that is not of its kind's form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not {kind}")]
pub struct IdError {
    /// What the id should have been, e.g. "an account id (a UUID)".
    pub kind: &'static str,
    pub text: String,
}

/// The forms ids take.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// A UUID in its hyphenated form, any case.
    Uuid,
    /// The prefix, then 32 lowercase hex digits (a UUID's simple form).
    Prefixed(&'static str),
    /// 1 to 128 characters, no control characters.
    Text,
}

impl Form {
    fn admits(self, text: &str) -> bool {
        match self {
            Form::Uuid => text.len() == 36 && uuid::Uuid::try_parse(text).is_ok(),
            Form::Prefixed(prefix) => text.strip_prefix(prefix).is_some_and(|hex| {
                hex.len() == 32
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            }),
            Form::Text => {
                !text.is_empty()
                    && text.chars().count() <= 128
                    && !text.chars().any(char::is_control)
            }
        }
    }
}

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $form:expr, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// What the id is and its form, as errors name it.
            pub const KIND: &'static str = $kind;

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<$name, IdError> {
                if $form.admits(text) {
                    Ok($name(text.to_string()))
                } else {
                    Err(IdError {
                        kind: $kind,
                        text: text.chars().take(64).collect(),
                    })
                }
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            /// An id the services wrote themselves, taken as it is.
            fn from(id: String) -> $name {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }
    };
}

macro_rules! generated {
    ($name:ident, uuid) => {
        impl $name {
            /// A new random id (a UUID v4).
            pub fn generate() -> $name {
                $name(uuid::Uuid::new_v4().to_string())
            }
        }
    };
    ($name:ident, $prefix:literal) => {
        impl $name {
            /// A new random id: the prefix and a UUID v4 in its simple form.
            pub fn generate() -> $name {
                $name(format!("{}{}", $prefix, uuid::Uuid::new_v4().simple()))
            }
        }
    };
}

id!(
    /// The id of a billing account (`billing_accounts.id`).
    AccountId,
    Form::Uuid,
    "an account id (a UUID)"
);
generated!(AccountId, uuid);
id!(
    /// The id of an API key (`api_keys.id`); never the key itself.
    ApiKeyId,
    Form::Uuid,
    "an API key id (a UUID)"
);
generated!(ApiKeyId, uuid);
id!(
    /// Where an operator's route names an account either way: the account's id or one of its keys' ids.
    AccountOrKeyId,
    Form::Uuid,
    "an account id or an API key id (a UUID)"
);
id!(
    /// The id of a credit grant (`credit_grants.id`).
    GrantId,
    Form::Uuid,
    "a grant id (a UUID)"
);
generated!(GrantId, uuid);
id!(
    /// The id of an event (`events.id`, `evt_…`): receivers of webhooks dedupe by it.
    EventId,
    Form::Prefixed("evt_"),
    "an event id (evt_ and 32 hex digits)"
);
generated!(EventId, "evt_");
id!(
    /// The id of a webhook endpoint (`webhook_endpoints.id`, `we_…`).
    WebhookId,
    Form::Prefixed("we_"),
    "a webhook endpoint id (we_ and 32 hex digits)"
);
generated!(WebhookId, "we_");
id!(
    /// The executor's id of one execution: the idempotency key of its hold and its settlement.
    ExecutionId,
    Form::Text,
    "an execution id (1 to 128 characters)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_of_their_form() {
        for _ in 0..50 {
            let account = AccountId::generate();
            assert_eq!(account.as_str().parse::<AccountId>(), Ok(account.clone()));
            let event = EventId::generate();
            assert_eq!(event.as_str().parse::<EventId>(), Ok(event));
            let webhook = WebhookId::generate();
            assert_eq!(webhook.as_str().parse::<WebhookId>(), Ok(webhook));
        }
    }

    #[test]
    fn malformed_ids_are_refused_with_their_kind() {
        assert_eq!(
            "acct_1".parse::<AccountId>().unwrap_err().to_string(),
            "\"acct_1\" is not an account id (a UUID)"
        );
        assert!("tb_prod_0123".parse::<ApiKeyId>().is_err());
        // A UUID's other spellings (braces, no hyphens) are not ids.
        assert!(
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}"
                .parse::<ApiKeyId>()
                .is_err()
        );
        assert!(
            "67e5504410b1426f9247bb680e5fe0c8"
                .parse::<GrantId>()
                .is_err()
        );
        assert!(
            "67e55044-10b1-426f-9247-bb680e5fe0c8"
                .parse::<GrantId>()
                .is_ok()
        );
        assert!("evt_0123".parse::<EventId>().is_err());
        assert!(
            format!("evt_{}", "A".repeat(32))
                .parse::<EventId>()
                .is_err()
        );
        assert!(
            format!("we_{}", "0".repeat(32))
                .parse::<WebhookId>()
                .is_ok()
        );
        assert!(
            format!("evt_{}", "0".repeat(32))
                .parse::<WebhookId>()
                .is_err()
        );
        assert!("".parse::<ExecutionId>().is_err());
        assert!("x".repeat(129).parse::<ExecutionId>().is_err());
        assert!("idem_1".parse::<ExecutionId>().is_ok());
    }

    #[test]
    fn json_takes_what_a_service_wrote_as_it_is() {
        let id = AccountId::generate();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<AccountId>(&json).unwrap(), id);
        // A spool line of a test or an older release: read, never dropped.
        assert_eq!(
            serde_json::from_str::<ApiKeyId>("\"key-1\"")
                .unwrap()
                .as_str(),
            "key-1"
        );
    }
}
