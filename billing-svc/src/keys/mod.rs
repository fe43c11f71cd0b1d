//! API keys: generation (`<prefix><64 lowercase hex>` from a CSPRNG), hashing (SHA-256 hex of the whole
//! key, the only form ever stored), prefix and name validation, and the constant-time secret comparison;
//! the stored key ([`ApiKey`]), its policy ([`policy`]), its operations ([`ops`], expiry notices in
//! [`expiry`]), the authenticated keys kept in memory ([`cache`]) and its SQL ([`sql`]).

pub mod cache;
pub mod expiry;
pub mod ops;
pub mod policy;
pub mod sql;

use proto::ids::{AccountId, ApiKeyId};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::BillingError;
use crate::time::Millis;
use policy::Policy;

pub const STANDARD_PREFIX: &str = "tb_prod_";
pub const INTERNAL_PREFIX: &str = "tb_internal_";
const MAX_NAME_CHARS: usize = 100;

/// How a key is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Standard,
    Internal,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Standard => "standard",
            KeyType::Internal => "internal",
        }
    }

    pub fn parse(text: &str) -> Option<KeyType> {
        match text {
            "standard" => Some(KeyType::Standard),
            "internal" => Some(KeyType::Internal),
            _ => None,
        }
    }

    pub fn default_prefix(self) -> &'static str {
        match self {
            KeyType::Standard => STANDARD_PREFIX,
            KeyType::Internal => INTERNAL_PREFIX,
        }
    }
}

/// What a key may see and manage of its account (API_KEY_MANAGEMENT.md, "Keys").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sees and manages its whole account.
    Owner,
    /// Sees the account's balance and its own usage only.
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "owner" => Some(Role::Owner),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// A stored key: never the plain key; the hash only leaves this module for lookups.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub account_id: AccountId,
    pub name: String,
    pub key_type: KeyType,
    pub role: Role,
    pub policy: Policy,
    pub prefix: String,
    pub hint: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    pub expires_at: Option<Millis>,
    /// While a rotation's grace period runs: when the previous secret stops working.
    pub previous_key_expires_at: Option<Millis>,
    /// When the key last got a new secret.
    pub rotated_at: Option<Millis>,
}

/// A key found by the hash of a secret, and whether that secret is the key's previous one (a rotated-out
/// secret, valid until `previous_key_expires_at`).
#[derive(Debug, Clone)]
pub struct Found {
    pub key: ApiKey,
    pub previous_secret: bool,
}

/// A freshly generated key: the plain text (returned once) and what is stored.
pub struct GeneratedKey {
    pub plain: String,
    pub hash: String,
    pub hint: String,
}

/// Generates a key with `prefix` from 32 random bytes of `rand`'s thread generator, a CSPRNG (ChaCha12)
/// seeded and periodically reseeded from the operating system.
pub fn generate(prefix: &str) -> GeneratedKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let plain = format!("{prefix}{}", hex::encode(bytes));
    let hint = format!("{prefix}…{}", &plain[plain.len() - 4..]);
    GeneratedKey {
        hash: hash(&plain),
        plain,
        hint,
    }
}

/// SHA-256 of the whole key, lowercase hex.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// `[a-z0-9_]{1,32}` ending in `_`.
pub fn validate_prefix(prefix: &str) -> Result<(), BillingError> {
    let well_formed = (1..=32).contains(&prefix.len())
        && prefix.ends_with('_')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if well_formed {
        Ok(())
    } else {
        Err(BillingError::invalid(
            "prefix",
            "must match [a-z0-9_]{1,32} and end with `_`",
        ))
    }
}

/// 1 to 100 characters, none of them control characters, not blank.
pub fn validate_name(name: &str) -> Result<(), BillingError> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > MAX_NAME_CHARS {
        return Err(BillingError::invalid(
            "name",
            "must be 1 to 100 characters and not blank",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(BillingError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Compares a presented secret with the configured one in time independent of where they differ (both
/// are hashed first, so the length does not leak either).
pub fn secret_matches(presented: &str, expected: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    presented.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = generate(STANDARD_PREFIX);
        let random = key.plain.strip_prefix(STANDARD_PREFIX).unwrap_or_default();
        assert_eq!(random.len(), 64);
        assert!(
            random
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(key.hash, hash(&key.plain));
        assert_eq!(key.hash.len(), 64);
        assert!(!key.hint.contains(random));
        assert_ne!(generate(STANDARD_PREFIX).plain, key.plain);
    }

    #[test]
    fn prefixes_are_validated() {
        for good in ["tb_prod_", "a_", "x1_y2_", "_"] {
            assert!(validate_prefix(good).is_ok(), "{good}");
        }
        let too_long = format!("{}_", "a".repeat(32));
        for bad in [
            "",
            "tb",
            "TB_",
            "tb-prod_",
            "tb prod_",
            "tbé_",
            too_long.as_str(),
        ] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("ci key é").is_ok());
        for bad in ["", "   ", "a\nb", "\u{7}", &"x".repeat(101)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_matches("abc", "abc"));
        assert!(!secret_matches("abc", "abd"));
        assert!(!secret_matches("abc", "abcd"));
    }
}
