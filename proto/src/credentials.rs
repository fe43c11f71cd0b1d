//! How every gRPC call of the contracts carries its credential: `authorization: Bearer <secret>` metadata
//! (the scheme in any case, spaces around the secret ignored).

use tonic::metadata::MetadataMap;

/// Why a call's `authorization` metadata names no credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No `authorization` metadata.
    Missing,
    /// Not `Bearer <secret>` in visible ASCII, or an empty secret.
    Malformed,
}

/// The secret of `authorization: Bearer <secret>`.
pub fn bearer(metadata: &MetadataMap) -> Result<&str, BearerError> {
    let value = metadata.get("authorization").ok_or(BearerError::Missing)?;
    let value = value.to_str().map_err(|_| BearerError::Malformed)?.trim();
    let (scheme, secret) = value.split_once(' ').ok_or(BearerError::Malformed)?;
    let secret = secret.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || secret.is_empty() {
        return Err(BearerError::Malformed);
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        if let Ok(value) = value.parse() {
            metadata.insert("authorization", value);
        }
        metadata
    }

    #[test]
    fn only_a_bearer_with_a_secret_is_read() {
        assert_eq!(bearer(&MetadataMap::new()), Err(BearerError::Missing));
        assert_eq!(bearer(&with("Bearer tb_abc")), Ok("tb_abc"));
        assert_eq!(bearer(&with("bearer  tb_abc ")), Ok("tb_abc"));
        assert_eq!(bearer(&with("Basic tb_abc")), Err(BearerError::Malformed));
        assert_eq!(bearer(&with("Bearer")), Err(BearerError::Malformed));
        assert_eq!(bearer(&with("Bearer   ")), Err(BearerError::Malformed));
    }
}
