//! The two shared secrets of the stack: taken from `ADMIN_API_KEY` and `SERVICE_TOKEN` when set, otherwise
//! generated for this run (a local stack has no operator to hand them out, and a fixed default would end up
//! in production one day).

use rand::RngCore;

/// The admin key (for AdminService and the admin REST routes) and the service token (executor-svc to
/// billing-svc's MeteringService).
pub struct Secrets {
    pub admin_api_key: String,
    pub service_token: String,
    /// Whether the admin key was generated, so that the banner says it changes on every start.
    pub admin_api_key_generated: bool,
}

impl Secrets {
    /// Reads both variables; an unset or empty one is generated. billing-svc validates them (at least 16
    /// printable characters) when it starts.
    pub fn from_env() -> Secrets {
        let admin = non_empty_env("ADMIN_API_KEY");
        let admin_api_key_generated = admin.is_none();
        Secrets {
            admin_api_key: admin.unwrap_or_else(|| generate("dev_admin_")),
            service_token: non_empty_env("SERVICE_TOKEN")
                .unwrap_or_else(|| generate("dev_service_")),
            admin_api_key_generated,
        }
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// `prefix` and 32 bytes of `rand`'s thread generator (a CSPRNG) in hex, like a billing key.
fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_long_distinct_and_printable() {
        let (first, second) = (generate("dev_admin_"), generate("dev_admin_"));
        assert_eq!(first.len(), "dev_admin_".len() + 64);
        assert_ne!(first, second);
        assert!(first.chars().all(|c| c.is_ascii_graphic()));
    }
}
