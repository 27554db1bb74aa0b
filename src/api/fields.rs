//! Reading a JSON object field by field, collecting every field error at
//! once (the `errors` map of a People/Workflows 422). Absent, `null` and a
//! value are told apart (spec §1.8): `null` means "absent" on create and
//! "clear" on update. Unknown fields are ignored.

use serde_json::{Map, Value};

use crate::people::FieldErrors;

/// A field as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<T> {
    Absent,
    Null,
    Set(T),
}

impl<T> Val<T> {
    /// The value, `null` and absent alike being `None`.
    pub fn value(self) -> Option<T> {
        match self {
            Val::Set(v) => Some(v),
            _ => None,
        }
    }

    /// Applies the field to an optional attribute: absent keeps it, `null` clears it.
    pub fn apply(self, target: &mut Option<T>) {
        match self {
            Val::Absent => {}
            Val::Null => *target = None,
            Val::Set(v) => *target = Some(v),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Val<U> {
        match self {
            Val::Absent => Val::Absent,
            Val::Null => Val::Null,
            Val::Set(v) => Val::Set(f(v)),
        }
    }
}

pub struct Input {
    map: Map<String, Value>,
    pub errors: FieldErrors,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Input {
    /// The object in `body`; `Err` says why it is not one.
    pub fn parse(body: &[u8]) -> Result<Input, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Input::new(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Input::new(map)),
            Ok(other) => Err(format!("the body must be a JSON object, got {}", type_name(&other))),
            Err(e) => Err(format!("the body is not valid JSON: {e}")),
        }
    }

    pub fn new(map: Map<String, Value>) -> Input {
        Input { map, errors: FieldErrors::new() }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.entry(field.to_string()).or_default().push(message.into());
    }

    pub fn has(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    fn raw(&self, field: &str) -> Val<&Value> {
        match self.map.get(field) {
            None => Val::Absent,
            Some(Value::Null) => Val::Null,
            Some(v) => Val::Set(v),
        }
    }

    fn typed<T>(&mut self, field: &str, what: &str, f: impl FnOnce(&Value) -> Option<T>) -> Val<T> {
        match self.raw(field) {
            Val::Absent => Val::Absent,
            Val::Null => Val::Null,
            Val::Set(v) => match f(v) {
                Some(t) => Val::Set(t),
                None => {
                    let message = format!("The {field} must be {what}.");
                    self.error(field, message);
                    Val::Absent
                }
            },
        }
    }

    /// A string of at most `max` characters (trimmed; empty counts as given).
    pub fn string(&mut self, field: &str, max: usize) -> Val<String> {
        let v = self.typed(field, "a string", |v| v.as_str().map(|s| s.trim().to_string()));
        if let Val::Set(s) = &v
            && s.chars().count() > max
        {
            self.error(field, format!("The {field} may not be greater than {max} characters."));
            return Val::Absent;
        }
        v
    }

    /// Marks a missing (absent, null or empty) required field.
    pub fn require<T>(&mut self, field: &str, v: Val<T>, is_empty: impl Fn(&T) -> bool) -> Option<T> {
        match v {
            Val::Set(t) if !is_empty(&t) => Some(t),
            Val::Absent if self.errors.contains_key(field) => None,
            _ => {
                self.error(field, format!("The {field} field is required."));
                None
            }
        }
    }

    /// A required non-empty string.
    pub fn required_string(&mut self, field: &str, max: usize) -> Option<String> {
        let v = self.string(field, max);
        self.require(field, v, String::is_empty)
    }

    /// On an update: a field that may change but not be cleared.
    pub fn not_null<T>(&mut self, field: &str, v: Val<T>) -> Option<T> {
        match v {
            Val::Null => {
                self.error(field, format!("The {field} may not be null."));
                None
            }
            other => other.value(),
        }
    }

    /// An integer (a JSON integer, or a string of digits).
    pub fn int(&mut self, field: &str) -> Val<i64> {
        self.typed(field, "an integer", |v| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    /// A number (or a numeric string, as the documented `longitude`).
    pub fn number(&mut self, field: &str) -> Val<f64> {
        self.typed(field, "a number", |v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            _ => None,
        })
    }

    pub fn boolean(&mut self, field: &str) -> Val<bool> {
        self.typed(field, "true or false", Value::as_bool)
    }

    /// A JSON object, kept as sent.
    pub fn object(&mut self, field: &str) -> Val<Value> {
        self.typed(field, "an object", |v| v.is_object().then(|| v.clone()))
    }

    /// An array of numbers.
    pub fn numbers(&mut self, field: &str) -> Val<Vec<f64>> {
        self.typed(field, "an array of numbers", |v| v.as_array()?.iter().map(Value::as_f64).collect())
    }

    /// An array of strings.
    pub fn strings(&mut self, field: &str) -> Val<Vec<String>> {
        self.typed(field, "an array of strings", |v| {
            v.as_array()?.iter().map(|s| s.as_str().map(str::to_string)).collect()
        })
    }

    /// An array of objects (each then read with its own [`Input`]); a wrong shape is an error.
    pub fn object_array(&mut self, field: &str) -> Vec<Map<String, Value>> {
        let v = self.typed(field, "an array of objects", |v| {
            v.as_array()?.iter().map(|o| o.as_object().cloned()).collect::<Option<Vec<_>>>()
        });
        match v {
            Val::Set(list) if !list.is_empty() => list,
            Val::Set(_) | Val::Null => {
                self.error(field, format!("The {field} must have at least 1 item."));
                Vec::new()
            }
            Val::Absent => Vec::new(),
        }
    }

    /// One of `allowed` (compared case-insensitively; the allowed spelling is kept).
    pub fn one_of(&mut self, field: &str, allowed: &[&str]) -> Val<String> {
        let v = self.string(field, 255);
        match v {
            Val::Set(s) => match allowed.iter().find(|a| a.eq_ignore_ascii_case(&s)) {
                Some(a) => Val::Set(a.to_string()),
                None => {
                    self.error(field, format!("The selected {field} is invalid (one of {}).", allowed.join(", ")));
                    Val::Absent
                }
            },
            other => other,
        }
    }

    /// A date `YYYY-MM-DD`, or an RFC 3339 date-time whose date is kept (spec §1.6, A-14).
    pub fn date(&mut self, field: &str) -> Val<String> {
        self.typed(field, "a date (YYYY-MM-DD)", |v| {
            let s = v.as_str()?.trim();
            if let Some(d) = crate::util::parse_date(s) {
                return Some(d.to_string());
            }
            let date = s.get(..10).and_then(crate::util::parse_date)?;
            // The rest must be a time: with an offset, or without one (the sample `2022-07-29T21:54:55`).
            let ok = crate::util::parse_datetime(s).is_some()
                || s.get(10..)
                    .is_some_and(|t| t.starts_with('T') && format!("{s}Z").parse::<jiff::Timestamp>().is_ok());
            ok.then(|| date.to_string())
        })
    }

    /// A UUID, canonical.
    pub fn uuid(&mut self, field: &str) -> Val<String> {
        self.typed(field, "a valid UUID", |v| crate::util::parse_uuid(v.as_str()?.trim()))
    }

    /// `Ok` when no field had an error.
    pub fn finish(&mut self) -> Result<(), FieldErrors> {
        if self.errors.is_empty() { Ok(()) } else { Err(std::mem::take(&mut self.errors)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_null_and_values_are_told_apart_and_errors_gather() {
        let mut i = Input::parse(
            br#"{"a": "  x ", "b": null, "n": "12", "bad": 3, "d": "1988-02-12T00:00:00.000000Z",
            "d2": "2022-07-29T21:54:55", "d3": "12/02/1988", "g": "male", "o": [1]}"#,
        )
        .expect("object");
        assert_eq!(i.string("a", 10), Val::Set("x".into()));
        assert_eq!(i.string("b", 10), Val::Null);
        assert_eq!(i.string("zz", 10), Val::Absent);
        assert_eq!(i.int("n"), Val::Set(12));
        assert_eq!(i.string("bad", 10), Val::Absent);
        assert_eq!(i.date("d"), Val::Set("1988-02-12".into()));
        assert_eq!(i.date("d2"), Val::Set("2022-07-29".into()));
        assert_eq!(i.date("d3"), Val::Absent);
        assert_eq!(i.one_of("g", &["MALE", "FEMALE"]), Val::Set("MALE".into()));
        assert_eq!(i.object("o"), Val::Absent);
        assert!(i.required_string("missing", 5).is_none());
        let errors = i.finish().expect_err("errors");
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["bad", "d3", "missing", "o"]);
        assert!(Input::parse(b"[1]").is_err() && Input::parse(b"{").is_err());
    }
}
