//! API keys (spec §1.3): one registry for every API. Each key is bound to
//! one company (tenant), may expire, and names the APIs it may call (403
//! for the others). Keys are compared in constant time. No HTTP types here:
//! each API reads its own header style and hands the value to the registry.

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
    /// The APIs this key may call (empty: all of them).
    #[serde(default)]
    pub apis: Vec<Api>,
}

/// The five APIs of the spec (§1.1); WebSocket streams and the event feed
/// belong to `passwordless`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    People,
    Workflows,
    Identity,
    Sessions,
    Passwordless,
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

/// Parses `key1:companyA,key2:companyB:people+passwordless`: each key, its
/// company, and optionally the APIs it may call, joined by `+`.
pub fn parse_key_list(text: &str) -> Result<Vec<ApiKey>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let mut parts = entry.splitn(3, ':');
            let (key, company, apis) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
            if key.is_empty() || company.is_empty() {
                return Err(format!("ROSTRO_API_KEYS: expected key:companyId[:api+api], got {entry:?}"));
            }
            let apis = apis
                .map(|list| {
                    list.split('+')
                        .map(|name| {
                            serde_json::from_value::<Api>(serde_json::Value::String(name.to_string()))
                                .map_err(|_| format!("ROSTRO_API_KEYS: unknown API {name:?} (people, workflows, identity, sessions, passwordless)"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default();
            Ok(ApiKey { key: key.into(), company_id: company.into(), expires_at: None, apis })
        })
        .collect()
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Unknown,
    Expired,
    /// The key is valid but not for this API.
    Forbidden,
}

impl AuthFailure {
    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::Missing => "Missing API key: send Authorization: Bearer <key>",
            AuthFailure::Unknown => "Invalid API key",
            AuthFailure::Expired => "API key expired",
            AuthFailure::Forbidden => "This API key may not call this API",
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
    /// (`Bearer <key>` or the bare key), at time `now_ns`, for `api`.
    pub fn authenticate(&self, header: Option<&str>, now_ns: i64, api: Api) -> Result<&str, AuthFailure> {
        let value = header.map(str::trim).filter(|v| !v.is_empty()).ok_or(AuthFailure::Missing)?;
        let presented = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            Some(_) => return Err(AuthFailure::Unknown),
            None => value,
        };
        self.check(presented, now_ns, api)
    }

    /// The company of the key `presented` (the key itself, no scheme), for `api`.
    pub fn check(&self, presented: &str, now_ns: i64, api: Api) -> Result<&str, AuthFailure> {
        if presented.is_empty() {
            return Err(AuthFailure::Missing);
        }
        // Compare with every key so the time taken does not depend on which one matches.
        let mut found = None;
        for (k, expires) in &self.keys {
            if util::constant_time_eq(k.key.as_bytes(), presented.as_bytes()) {
                found = Some((k, *expires));
            }
        }
        match found {
            Some((_, Some(expiry))) if now_ns >= expiry => Err(AuthFailure::Expired),
            Some((k, _)) if !k.apis.is_empty() && !k.apis.contains(&api) => Err(AuthFailure::Forbidden),
            Some((k, _)) => Ok(k.company_id.as_str()),
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
            apis: Vec::new(),
        });
        keys.push(ApiKey {
            key: "people-only-4".into(),
            company_id: "d".into(),
            expires_at: None,
            apis: vec![Api::People],
        });
        let reg = KeyRegistry::new(&AuthConfig { keys });
        let now = util::now_ns();
        let pl = Api::Passwordless;
        assert_eq!(reg.authenticate(Some("Bearer alpha-key-1"), now, pl), Ok("companyA"));
        assert_eq!(reg.authenticate(Some("bearer  beta-key-22 "), now, pl), Ok("companyB"));
        assert_eq!(reg.authenticate(Some("beta-key-22"), now, pl), Ok("companyB"));
        assert_eq!(reg.authenticate(Some("Bearer alpha-key-2"), now, pl), Err(AuthFailure::Unknown));
        assert_eq!(reg.authenticate(Some("Basic alpha-key-1"), now, pl), Err(AuthFailure::Unknown));
        assert_eq!(reg.authenticate(None, now, pl), Err(AuthFailure::Missing));
        assert_eq!(reg.authenticate(Some("Bearer old-key-333"), now, pl), Err(AuthFailure::Expired));
        assert_eq!(reg.check("people-only-4", now, Api::People), Ok("d"));
        assert_eq!(reg.check("people-only-4", now, pl), Err(AuthFailure::Forbidden));
        assert_eq!(reg.check("alpha-key-1", now, Api::People), Ok("companyA"), "no list: every API");
        assert!(parse_key_list("nocolon").is_err());
        assert_eq!(
            parse_key_list("k-123456:c:people+sessions").expect("parses")[0].apis,
            vec![Api::People, Api::Sessions]
        );
        assert!(parse_key_list("k-123456:c:nope").is_err());
    }
}
