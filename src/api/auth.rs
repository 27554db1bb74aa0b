//! API keys (spec §1.3): each bound to one company (tenant), optionally
//! expiring. Keys are compared in constant time.

use serde::{Deserialize, Serialize};

use crate::util;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub key: String,
    pub company_id: String,
    /// RFC 3339; the key is refused from this instant on.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// The `[auth]` section of the config.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub keys: Vec<ApiKey>,
}

impl AuthConfig {
    pub fn validate(&self) -> Result<(), String> {
        for k in &self.keys {
            if k.key.len() < 8 || k.key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err("every API key needs at least 8 characters and no spaces".into());
            }
            if k.company_id.is_empty() || k.company_id.contains('\0') {
                return Err(format!("API key ...{}: company_id must be non-empty", tail(&k.key)));
            }
            if let Some(e) = &k.expires_at
                && util::parse_datetime(e).is_none()
            {
                return Err(format!("API key ...{}: expires_at {e:?} is not an RFC 3339 date-time", tail(&k.key)));
            }
        }
        Ok(())
    }
}

fn tail(key: &str) -> &str {
    &key[key.len().saturating_sub(4)..]
}

/// Parses `key1:companyA,key2:companyB`.
pub fn parse_key_list(text: &str) -> Result<Vec<ApiKey>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| match pair.split_once(':') {
            Some((key, company)) if !key.is_empty() && !company.is_empty() => {
                Ok(ApiKey { key: key.into(), company_id: company.into(), expires_at: None })
            }
            _ => Err(format!("ROSTRO_API_KEYS: expected key:companyId, got {pair:?}")),
        })
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length is not secret; contents are.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Unknown,
    Expired,
}

impl AuthFailure {
    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::Missing => "Missing API key: send Authorization: Bearer <key>",
            AuthFailure::Unknown => "Invalid API key",
            AuthFailure::Expired => "API key expired",
        }
    }
}

pub struct KeyRegistry {
    keys: Vec<(ApiKey, Option<i64>)>,
}

impl KeyRegistry {
    pub fn new(config: &AuthConfig) -> KeyRegistry {
        KeyRegistry {
            keys: config
                .keys
                .iter()
                .map(|k| (k.clone(), k.expires_at.as_deref().and_then(util::parse_datetime)))
                .collect(),
        }
    }

    /// The company of the key in an `Authorization` header value
    /// (`Bearer <key>` or the bare key), at time `now_ns`.
    pub fn authenticate(&self, header: Option<&str>, now_ns: i64) -> Result<&str, AuthFailure> {
        let value = header.map(str::trim).filter(|v| !v.is_empty()).ok_or(AuthFailure::Missing)?;
        let presented = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            Some(_) => return Err(AuthFailure::Unknown),
            None => value,
        };
        // Compare with every key so the time taken does not depend on which one matches.
        let mut found = None;
        for (k, expires) in &self.keys {
            if constant_time_eq(k.key.as_bytes(), presented.as_bytes()) {
                found = Some((k.company_id.as_str(), *expires));
            }
        }
        match found {
            Some((_, Some(expiry))) if now_ns >= expiry => Err(AuthFailure::Expired),
            Some((company, _)) => Ok(company),
            None => Err(AuthFailure::Unknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_bare_unknown_and_expired() {
        let mut keys = parse_key_list("alpha-key-1:companyA, beta-key-22:companyB").expect("parses");
        keys.push(ApiKey {
            key: "old-key-333".into(),
            company_id: "c".into(),
            expires_at: Some("2020-01-01T00:00:00Z".into()),
        });
        let reg = KeyRegistry::new(&AuthConfig { keys });
        let now = util::now_ns();
        assert_eq!(reg.authenticate(Some("Bearer alpha-key-1"), now), Ok("companyA"));
        assert_eq!(reg.authenticate(Some("bearer  beta-key-22 "), now), Ok("companyB"));
        assert_eq!(reg.authenticate(Some("beta-key-22"), now), Ok("companyB"));
        assert_eq!(reg.authenticate(Some("Bearer alpha-key-2"), now), Err(AuthFailure::Unknown));
        assert_eq!(reg.authenticate(Some("Basic alpha-key-1"), now), Err(AuthFailure::Unknown));
        assert_eq!(reg.authenticate(None, now), Err(AuthFailure::Missing));
        assert_eq!(reg.authenticate(Some("Bearer old-key-333"), now), Err(AuthFailure::Expired));
        assert!(parse_key_list("nocolon").is_err());
    }
}
