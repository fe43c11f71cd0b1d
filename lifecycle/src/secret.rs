//! Secrets read from the configuration: the admin key, the service token, the providers' and Stripe's keys.
//! Each is held as a [`SecretString`], which never prints (its `Debug` is redacted and it has no `Display`)
//! and is read with [`ExposeSecret::expose_secret`] only where it is sent or compared. The parsers below are
//! the flags' `value_parser`s.

pub use secrecy::{ExposeSecret, SecretString};

/// The fewest characters of a credential the platform's own services share ([`credential`]).
pub const MIN_CREDENTIAL_CHARS: usize = 16;

/// A credential the operator sets for the platform (`ADMIN_API_KEY`, `SERVICE_TOKEN` of billing-svc,
/// Stripe's keys): at least [`MIN_CREDENTIAL_CHARS`] printable ASCII characters, no spaces.
pub fn credential(text: &str) -> Result<SecretString, String> {
    if text.len() < MIN_CREDENTIAL_CHARS {
        return Err(format!(
            "must be at least {MIN_CREDENTIAL_CHARS} characters"
        ));
    }
    if !text.chars().all(|c| c.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".into());
    }
    Ok(SecretString::from(text))
}

/// A secret taken as given (a model provider's key, which may be any text).
pub fn given(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn credentials_are_long_printable_and_never_print() {
        assert!(credential("short").is_err());
        assert!(credential("sixteen chars ok").is_err());
        let secret = credential("0123456789abcdef").unwrap();
        assert_eq!(secret.expose_secret(), "0123456789abcdef");
        assert!(!format!("{secret:?}").contains("0123"));
    }
}
