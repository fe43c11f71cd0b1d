//! Typed ids of what the services name across the contracts, so that a key id and an account id cannot
//! be confused: each names one kind of thing, and the compiler refuses one where the other is meant. On
//! the wire (protobuf, JSON, the executor's spool) they are plain strings.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random id (a UUID v4).
            pub fn generate() -> $name {
                $name(uuid::Uuid::new_v4().to_string())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
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

id!(
    /// The id of a billing account (`billing_accounts.id`).
    AccountId
);
id!(
    /// The id of an API key (`api_keys.id`); never the key itself.
    ApiKeyId
);
id!(
    /// The id of a credit grant (`credit_grants.id`).
    GrantId
);
id!(
    /// The id of an event (`events.id`, `evt_…`): receivers of webhooks dedupe by it.
    EventId
);
id!(
    /// The executor's id of one execution: the idempotency key of its hold and its settlement.
    ExecutionId
);
