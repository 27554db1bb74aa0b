//! The message transports behind the delivery queue: e-mail over SMTP
//! (`lettre`) and SMS through an HTTP gateway, each with a `log` transport
//! that writes the message to the log instead (development, the spec's `dev`
//! sender). The queue renders a delivery into a [`Message`] and hands it here.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{SmtpTransport, Transport as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `[events.mail]`: how e-mail leaves this box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `log` (write messages to the log) or `smtp`.
    pub transport: String,
    /// The SMTP relay (plain SMTP, no TLS yet: a relay on this box or its network).
    pub host: String,
    pub port: u16,
    /// The `From:` address.
    pub from: String,
    /// AUTH PLAIN/LOGIN credentials; empty: none.
    pub username: String,
    pub password: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: "log".into(),
            host: "127.0.0.1".into(),
            port: 25,
            from: "Rostro <rostro@localhost>".into(),
            username: String::new(),
            password: String::new(),
        }
    }
}

/// `[events.sms]`: how text messages leave this box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// `log` (default) or `http`: a JSON POST `{"to", "message"}` to `url`.
    pub transport: String,
    pub url: String,
    /// Extra request headers, e.g. `{ authorization = "Bearer …" }`.
    pub headers: std::collections::BTreeMap<String, String>,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig { transport: "log".into(), url: String::new(), headers: Default::default() }
    }
}

/// What a delivery says to a person.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub subject: String,
    pub text: String,
}

impl Message {
    /// The words of a delivery: a verification code as a sentence, any other event as its JSON.
    pub fn of(event: &str, body: &Value) -> Message {
        if event == "verification_code" {
            let code = body["code"].as_str().unwrap_or_default();
            let minutes = body["expires_in_min"].as_u64().unwrap_or(10);
            return Message {
                subject: "Your verification code".into(),
                text: format!("Your verification code is {code}. It expires in {minutes} minutes."),
            };
        }
        let pretty = serde_json::to_string_pretty(body).unwrap_or_default();
        Message { subject: format!("Rostro: {event}"), text: pretty }
    }
}

/// The configured transports, checked once at start.
pub struct Transports {
    mail: MailConfig,
    from: Option<Mailbox>,
    sms: SmsConfig,
}

impl Transports {
    pub fn new(mail: &MailConfig, sms: &SmsConfig) -> Result<Transports, String> {
        let from = match mail.transport.as_str() {
            "log" => None,
            "smtp" => Some(mail.from.parse::<Mailbox>().map_err(|e| format!("events.mail.from {:?}: {e}", mail.from))?),
            other => return Err(format!("events.mail.transport {other:?}: use \"log\" or \"smtp\"")),
        };
        match sms.transport.as_str() {
            "log" => {}
            "http" if sms.url.starts_with("http://") || sms.url.starts_with("https://") => {}
            "http" => return Err(format!("events.sms.url {:?} must be an http:// URL", sms.url)),
            other => return Err(format!("events.sms.transport {other:?}: use \"log\" or \"http\"")),
        }
        Ok(Transports { mail: mail.clone(), from, sms: sms.clone() })
    }

    /// Sends one e-mail to every recipient (one SMTP transaction).
    pub fn email(&self, recipients: &[String], message: &Message, timeout: Duration) -> Result<(), String> {
        let Some(from) = &self.from else {
            tracing::info!(to = ?recipients, subject = %message.subject, text = %message.text, "e-mail (log transport)");
            return Ok(());
        };
        let mut builder = lettre::Message::builder().from(from.clone()).subject(message.subject.clone());
        for to in recipients {
            builder = builder.to(to.parse::<Mailbox>().map_err(|e| format!("recipient {to:?}: {e}"))?);
        }
        let email =
            builder.header(ContentType::TEXT_PLAIN).body(message.text.clone()).map_err(|e| format!("e-mail: {e}"))?;
        let mut smtp =
            SmtpTransport::builder_dangerous(self.mail.host.as_str()).port(self.mail.port).timeout(Some(timeout));
        if !self.mail.username.is_empty() {
            smtp = smtp.credentials(Credentials::new(self.mail.username.clone(), self.mail.password.clone()));
        }
        smtp.build().send(&email).map(|_| ()).map_err(|e| format!("SMTP {}:{}: {e}", self.mail.host, self.mail.port))
    }

    /// Sends one text message.
    pub fn sms(&self, to: &str, message: &Message, timeout: Duration) -> Result<(), String> {
        if self.sms.transport != "http" {
            tracing::info!(to, text = %message.text, "SMS (log transport)");
            return Ok(());
        }
        let headers: Vec<(String, String)> = self.sms.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let body = json!({ "to": to, "message": message.text }).to_string();
        super::http::post_json(&self.sms.url, &headers, body.as_bytes(), timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_reads_as_a_sentence_and_an_event_as_its_json() {
        let m = Message::of("verification_code", &json!({"code": "006421", "expires_in_min": 10}));
        assert_eq!(m.text, "Your verification code is 006421. It expires in 10 minutes.");
        let e = Message::of("person_register", &json!({"model": "person"}));
        assert_eq!(e.subject, "Rostro: person_register");
        assert!(e.text.contains("\"model\": \"person\""));
    }

    #[test]
    fn unknown_transports_and_bad_addresses_are_refused_at_start() {
        let bad = MailConfig { transport: "carrier-pigeon".into(), ..MailConfig::default() };
        assert!(Transports::new(&bad, &SmsConfig::default()).is_err());
        let bad_from = MailConfig { transport: "smtp".into(), from: "not an address".into(), ..MailConfig::default() };
        assert!(Transports::new(&bad_from, &SmsConfig::default()).is_err());
        let sms = SmsConfig { transport: "http".into(), url: "ftp://x".into(), ..SmsConfig::default() };
        assert!(Transports::new(&MailConfig::default(), &sms).is_err());
    }
}
