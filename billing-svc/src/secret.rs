//! Credentials read from the configuration (the admin key, the service token, Stripe's keys): they never
//! print, in logs or in `--help`.

use std::fmt;

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(text: &str) -> Result<Secret, String> {
        if text.len() < 16 {
            return Err("must be at least 16 characters".into());
        }
        if !text.chars().all(|c| c.is_ascii_graphic()) {
            return Err("must be printable ASCII without spaces".into());
        }
        Ok(Secret(text.to_string()))
    }
}
