//! Reading a JSON object field by field, collecting every field error at
//! once (the `errors` map of a People/Workflows 422). Absent, `null` and a
//! value are told apart (spec §1.8): `null` means "absent" on create and
//! "clear" on update. Unknown fields are ignored.
//!
//! The same reading code also describes a body: an [`Input::describing`]
//! input records every field its readers ask for, with type, limits and
//! whether it is required, and `/openapi.json` is built from that record,
//! so the document cannot drift from what the handlers accept.

use std::sync::{Arc, Mutex};

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
    /// Set on a describing input: where the fields asked for are recorded.
    shape: Option<(Arc<Mutex<Shape>>, String)>,
}

/// What a field holds, as its reader checks it.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String {
        max: usize,
    },
    Integer,
    Number,
    Boolean,
    Object,
    Numbers,
    Strings,
    Objects,
    OneOf(Vec<String>),
    /// `YYYY-MM-DD` (a date-time's date is kept).
    Date,
    Uuid,
    /// A multipart file part.
    File,
}

/// A field of a body: `path` is its name, `items.*.name` inside an array of objects.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldShape {
    pub path: String,
    pub kind: Kind,
    pub required: bool,
}

/// Every field a body's readers asked for, in the order they asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    pub fields: Vec<FieldShape>,
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
        Input { map, errors: FieldErrors::new(), shape: None }
    }

    /// An empty input that records what is read from it (see [`Input::shape`]).
    pub fn describing() -> Input {
        Input { shape: Some((Arc::default(), String::new())), ..Input::new(Map::new()) }
    }

    /// What a describing input was asked for.
    pub fn shape(&self) -> Shape {
        self.shape
            .as_ref()
            .map(|(s, _)| s.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
            .unwrap_or_default()
    }

    /// An item of the array of objects `field`, read with its own errors
    /// (a describing input records its fields under `field.*.`).
    pub fn item(&self, field: &str, map: Map<String, Value>) -> Input {
        let shape = self.shape.as_ref().map(|(s, prefix)| (s.clone(), format!("{prefix}{field}.*.")));
        Input { shape, ..Input::new(map) }
    }

    fn note(&self, field: &str, update: impl FnOnce(&mut FieldShape)) {
        let Some((shape, prefix)) = &self.shape else { return };
        let mut shape = shape.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = format!("{prefix}{field}");
        let i = match shape.fields.iter().position(|f| f.path == path) {
            Some(i) => i,
            None => {
                shape.fields.push(FieldShape { path, kind: Kind::Object, required: false });
                shape.fields.len() - 1
            }
        };
        update(&mut shape.fields[i]);
    }

    fn kind(&self, field: &str, kind: Kind) {
        self.note(field, |f| f.kind = kind);
    }

    /// A multipart file part `field` (read by the handler; recorded here for the description).
    pub fn file(&mut self, field: &str, required: bool) {
        self.note(field, |f| {
            f.kind = Kind::File;
            f.required |= required;
        });
    }

    pub fn is_describing(&self) -> bool {
        self.shape.is_some()
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

    fn typed<T>(&mut self, field: &str, what: &str, kind: Kind, f: impl FnOnce(&Value) -> Option<T>) -> Val<T> {
        self.kind(field, kind);
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
        let v = self.typed(field, "a string", Kind::String { max }, |v| v.as_str().map(|s| s.trim().to_string()));
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
        self.note(field, |f| f.required = true);
        match v {
            Val::Set(t) if !is_empty(&t) => Some(t),
            Val::Absent if self.errors.contains_key(field) => None,
            _ => {
                self.missing(field);
                None
            }
        }
    }

    /// Marks `field` required and missing (for fields read in parts, e.g. an array of objects).
    pub fn missing(&mut self, field: &str) {
        self.note(field, |f| f.required = true);
        self.error(field, format!("The {field} field is required."));
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
        self.typed(field, "an integer", Kind::Integer, |v| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    /// A number (or a numeric string, as the documented `longitude`).
    pub fn number(&mut self, field: &str) -> Val<f64> {
        self.typed(field, "a number", Kind::Number, |v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            _ => None,
        })
    }

    pub fn boolean(&mut self, field: &str) -> Val<bool> {
        self.typed(field, "true or false", Kind::Boolean, Value::as_bool)
    }

    /// A JSON object, kept as sent.
    pub fn object(&mut self, field: &str) -> Val<Value> {
        self.typed(field, "an object", Kind::Object, |v| v.is_object().then(|| v.clone()))
    }

    /// An array of numbers.
    pub fn numbers(&mut self, field: &str) -> Val<Vec<f64>> {
        self.typed(field, "an array of numbers", Kind::Numbers, |v| v.as_array()?.iter().map(Value::as_f64).collect())
    }

    /// An array of strings.
    pub fn strings(&mut self, field: &str) -> Val<Vec<String>> {
        self.typed(field, "an array of strings", Kind::Strings, |v| {
            v.as_array()?.iter().map(|s| s.as_str().map(str::to_string)).collect()
        })
    }

    /// An array of objects (each then read with its own [`Input`]); a wrong shape is an error.
    pub fn object_array(&mut self, field: &str) -> Vec<Map<String, Value>> {
        if self.is_describing() {
            // One empty item, so that the caller's item reader runs and is recorded.
            self.kind(field, Kind::Objects);
            return vec![Map::new()];
        }
        let v = self.typed(field, "an array of objects", Kind::Objects, |v| {
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
        self.kind(field, Kind::OneOf(allowed.iter().map(|a| a.to_string()).collect()));
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
        self.typed(field, "a date (YYYY-MM-DD)", Kind::Date, |v| {
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
        self.typed(field, "a valid UUID", Kind::Uuid, |v| crate::util::parse_uuid(v.as_str()?.trim()))
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
