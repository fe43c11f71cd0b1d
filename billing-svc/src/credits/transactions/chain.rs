//! The hash chain of an account's ledger rows (DESIGN §19, VERIFY.md): each row's `hash` is SHA-256 over the
//! previous row's hash and the row's canonical encoding, so rewriting, removing, reordering or inserting a
//! row breaks every hash after it.
//!
//! **The canonical encoding, version 1** (bytes, UTF-8):
//!
//! ```text
//! "billing-ledger-v1\n" + prev_hash + "\n" + field + field + … (in the order below)
//! field = <byte length in decimal> ":" <bytes> "\n"      (a present value)
//!       | "-\n"                                            (an absent value: no key, no idempotency key)
//! ```
//!
//! The fields: account id, row id (decimal), type (`usage_deduction`, …), amount, balance after and total
//! spent after (each in nano-dollars, decimal, `-` for negatives), api key id (absent for rows no key
//! caused), description, metadata (the stored JSON text, byte for byte), timestamp (Unix milliseconds),
//! idempotency key (absent when none). `prev_hash` is the previous row's `hash` in lower-case hex, or
//! [`GENESIS`] for an account's first row; `hash` is the SHA-256 of the whole encoding in lower-case hex.

use sha2::{Digest, Sha256};

use super::Transaction;

/// The `prev_hash` of an account's first row: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The version tag that starts every encoding.
const VERSION: &str = "billing-ledger-v1";

/// The bytes hashed for `row` after `prev_hash`.
pub fn encode(row: &Transaction, prev_hash: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(256 + row.metadata.len() + row.description.len());
    bytes.extend_from_slice(VERSION.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(prev_hash.as_bytes());
    bytes.push(b'\n');
    let mut field = |value: Option<&str>| match value {
        Some(value) => {
            bytes.extend_from_slice(value.len().to_string().as_bytes());
            bytes.push(b':');
            bytes.extend_from_slice(value.as_bytes());
            bytes.push(b'\n');
        }
        None => bytes.extend_from_slice(b"-\n"),
    };
    field(Some(row.account_id.as_str()));
    field(Some(&row.id.to_string()));
    field(Some(row.kind.as_str()));
    field(Some(&row.amount.nanos().to_string()));
    field(Some(&row.balance_after.nanos().to_string()));
    field(Some(&row.total_spent_after.nanos().to_string()));
    field(row.api_key_id.as_ref().map(|id| id.as_str()));
    field(Some(&row.description));
    field(Some(&row.metadata));
    field(Some(&row.timestamp.to_string()));
    field(row.idempotency_key.as_deref());
    bytes
}

/// The hash of `row` chained after `prev_hash`.
pub fn hash(row: &Transaction, prev_hash: &str) -> String {
    hex::encode(Sha256::digest(encode(row, prev_hash)))
}

/// Why a chain does not hold at a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The row's `prev_hash` is not the previous row's hash (a row removed, inserted or reordered before it).
    Link { expected: String, found: String },
    /// The row's `hash` is not the hash of its fields (the row was changed).
    Seal { expected: String, found: String },
}

/// Checks one row after `prev_hash`; the hash the next row must link to, or why it breaks.
pub fn check(row: &Transaction, prev_hash: &str) -> Result<String, Break> {
    if row.prev_hash != prev_hash {
        return Err(Break::Link {
            expected: prev_hash.to_string(),
            found: row.prev_hash.clone(),
        });
    }
    let expected = hash(row, prev_hash);
    if row.hash != expected {
        return Err(Break::Seal {
            expected,
            found: row.hash.clone(),
        });
    }
    Ok(expected)
}

/// How many rows are read at a time when a chain is walked.
pub const PAGE: i64 = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credits::transactions::TransactionType;
    use money::Money;
    use proto::ids::AccountId;

    fn row() -> Transaction {
        Transaction {
            id: 42,
            account_id: AccountId::from("acct-1".to_string()),
            api_key_id: None,
            kind: TransactionType::UsageDeduction,
            amount: Money::from_nanos(-1_500_000),
            balance_after: Money::from_nanos(8_500_000_000),
            total_spent_after: Money::from_nanos(1_500_000),
            description: "Usage: gpt-4o (12 tokens)".into(),
            metadata: r#"{"execution_id":"e1"}"#.into(),
            timestamp: 1_796_601_600_000,
            idempotency_key: None,
            prev_hash: GENESIS.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn the_documented_encoding_gives_this_hash() {
        // Computed apart from this code, with Python's hashlib over the encoding as documented above.
        assert_eq!(
            hash(&row(), GENESIS),
            "8f72f099721266e81ee7145abb46b54283e1ff5aa52ed6f1764732aab87dfa3b"
        );
    }

    #[test]
    fn an_absent_value_is_not_an_empty_one() {
        let mut empty = row();
        empty.idempotency_key = Some(String::new());
        assert_ne!(hash(&empty, GENESIS), hash(&row(), GENESIS));
    }

    #[test]
    fn a_change_or_another_link_breaks_the_row() {
        let mut sealed = row();
        sealed.hash = hash(&sealed, GENESIS);
        assert_eq!(check(&sealed, GENESIS), Ok(sealed.hash.clone()));
        let mut changed = sealed.clone();
        changed.timestamp += 1;
        assert!(matches!(check(&changed, GENESIS), Err(Break::Seal { .. })));
        let other = "1".repeat(64);
        assert!(matches!(check(&sealed, &other), Err(Break::Link { .. })));
    }
}
