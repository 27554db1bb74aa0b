//! Verification codes for contacts (P-49..P-52, A-18): 6 random digits
//! bound to (person, channel, phone or e-mail), stored only as a salted
//! HMAC, valid `ttl_s` (10 minutes), single use, `max_attempts` (5) wrong
//! tries; a new send replaces the previous code. The message is queued in
//! the same write as the code and goes out through the delivery queue's
//! transports (`[events.mail]`, `[events.sms]`), whose default `log`
//! transport is the spec's `dev` sender.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Contact, People, PeopleError, Person};
use crate::notify::{Delivery, Target, queue};
use crate::store::{IndexValue, JsonRecord};
use crate::util;

/// `[people.codes]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodesConfig {
    pub ttl_s: u64,
    pub max_attempts: u32,
    /// Six digits every send uses instead of a random code (tests only; empty: random).
    pub fixed_code: String,
}

impl Default for CodesConfig {
    fn default() -> Self {
        CodesConfig { ttl_s: 600, max_attempts: 5, fixed_code: String::new() }
    }
}

impl CodesConfig {
    pub fn validate(&self) -> Result<(), String> {
        let six_digits = self.fixed_code.len() == 6 && self.fixed_code.bytes().all(|b| b.is_ascii_digit());
        if !(self.fixed_code.is_empty() || six_digits) {
            return Err("people.codes.fixed_code must be empty or six digits".into());
        }
        if self.ttl_s == 0 || self.max_attempts == 0 {
            return Err("people.codes.ttl_s and max_attempts must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Email,
}

/// A pending code: only its salted hash is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Code {
    pub id: String,
    pub person_id: String,
    pub channel: Channel,
    pub target: String,
    pub salt: String,
    pub hash: String,
    pub expires_ns: i64,
    pub attempts: u32,
    pub used: bool,
}

impl JsonRecord for Code {
    const COLLECTION: &'static str = "verification_codes";
    fn id(&self) -> &str {
        &self.id
    }
    fn indexes(&self) -> Vec<IndexValue> {
        vec![
            IndexValue::unique("target", binding(&self.person_id, self.channel, &self.target)),
            IndexValue::plain("person_id", &self.person_id),
        ]
    }
}

fn binding(person: &str, channel: Channel, target: &str) -> String {
    format!("{person}|{channel:?}|{target}")
}

/// Digits only, for phones; trimmed lower case, for e-mails.
pub fn normalize(channel: Channel, target: &str) -> String {
    match channel {
        Channel::Sms => target.chars().filter(char::is_ascii_digit).collect(),
        Channel::Email => target.trim().to_lowercase(),
    }
}

fn digest(salt: &str, code: &str) -> String {
    util::hex(&util::hmac_sha256(salt.as_bytes(), &[code.as_bytes()]))
}

pub struct Codes {
    config: CodesConfig,
}

impl Codes {
    pub fn new(config: &CodesConfig) -> Result<Codes, String> {
        config.validate()?;
        Ok(Codes { config: config.clone() })
    }

    fn fresh_code(&self) -> String {
        if !self.config.fixed_code.is_empty() {
            return self.config.fixed_code.clone();
        }
        // Rejection sampling keeps the six digits uniform.
        loop {
            let mut b = [0u8; 4];
            util::random_bytes(&mut b);
            let n = u32::from_le_bytes(b);
            if n < u32::MAX - u32::MAX % 1_000_000 {
                return format!("{:06}", n % 1_000_000);
            }
        }
    }
}

impl People {
    /// P-49/P-51: a new code for `target` of `person_id`, queued for its transport.
    pub fn send_code(&self, company: &str, person_id: &str, channel: Channel, target: &str) -> Result<(), PeopleError> {
        let target = normalize(channel, target);
        let code = self.codes.fresh_code();
        let salt = util::hex(&{
            let mut s = [0u8; 16];
            util::random_bytes(&mut s);
            s
        });
        let ttl_ns = i64::try_from(self.codes.config.ttl_s).unwrap_or(i64::MAX / 2).saturating_mul(1_000_000_000);
        self.write(|tx| {
            if tx.get::<Person>(company, person_id)?.is_none() {
                return Err(PeopleError::NotFound("Person"));
            }
            let old = tx.find_unique::<Code>(company, "target", &binding(person_id, channel, &target))?;
            let record = Code {
                id: old.map(|s| s.record.id).unwrap_or_else(util::uuid_v4),
                person_id: person_id.to_string(),
                channel,
                target: target.clone(),
                hash: digest(&salt, &code),
                salt: salt.clone(),
                expires_ns: util::now_ns().saturating_add(ttl_ns),
                attempts: 0,
                used: false,
            };
            tx.put(company, &record)?;
            let to = match channel {
                Channel::Sms => Target::Sms { to: target.clone() },
                Channel::Email => Target::Email { recipients: vec![target.clone()] },
            };
            let body = json!({ "code": code, "expires_in_min": self.codes.config.ttl_s.div_ceil(60) });
            queue::enqueue(tx, company, &Delivery::new(to, "verification_code", body))?;
            Ok(())
        })
    }

    /// P-50/P-52: checks `code`; on success every contact of the person with
    /// that phone (e-mail) is marked confirmed (an `updated_data_to_person`
    /// event of model `person_contact` each). A wrong, expired, used or
    /// exhausted code is refused with "Invalid code".
    pub fn verify_code(
        &self,
        company: &str,
        person_id: &str,
        channel: Channel,
        target: &str,
        code: &str,
    ) -> Result<(), PeopleError> {
        let target = normalize(channel, target);
        let invalid = || PeopleError::Refused("Invalid code".into());
        let max = self.codes.config.max_attempts;
        let outcome = self.write(|tx| {
            if tx.get::<Person>(company, person_id)?.is_none() {
                return Err(PeopleError::NotFound("Person"));
            }
            let Some(stored) = tx.find_unique::<Code>(company, "target", &binding(person_id, channel, &target))? else {
                return Ok(false);
            };
            let mut c = stored.record;
            if c.used || c.attempts >= max || util::now_ns() > c.expires_ns {
                return Ok(false);
            }
            let given = digest(&c.salt, code.trim());
            if !util::constant_time_eq(given.as_bytes(), c.hash.as_bytes()) {
                c.attempts += 1;
                tx.put(company, &c)?;
                return Ok(false);
            }
            c.used = true;
            tx.put(company, &c)?;
            let contacts = tx.records().find::<Contact>(company, "person_id", person_id)?;
            let now = util::now_ns();
            for mut contact in contacts.into_iter().map(|s| s.record) {
                let matches = match channel {
                    Channel::Sms => normalize(channel, &contact.phone) == target,
                    Channel::Email => normalize(channel, &contact.email) == target,
                };
                if matches {
                    match channel {
                        Channel::Sms => contact.sms_confirmation = true,
                        Channel::Email => contact.email_confirmation = true,
                    }
                    contact.updated_ns = now;
                    tx.put(company, &contact)?;
                    super::emit(tx, company, super::Change::Updated, &contact)?;
                }
            }
            Ok(true)
        })?;
        if outcome { Ok(()) } else { Err(invalid()) }
    }
}
