//! Small shared helpers: random ids, UTC timestamps in RFC 3339 (on `uuid`
//! and `jiff`), text folding, latency percentiles, a seeded generator.

/// Fills `buf` from the operating system's random source.
pub fn random_bytes(buf: &mut [u8]) {
    // The OS source failing is not something a request can recover from.
    getrandom::fill(buf).expect("the operating system's random source failed");
}

/// Equality whose time does not depend on where the inputs differ (keys, digests).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length is not secret; contents are.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA256 of the concatenated `parts` under `key` (signatures, digests, key derivation).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

/// `http://host:port/path` -> the socket address and the path ("" for none).
pub fn resolve_http(url: &str) -> Result<(std::net::SocketAddr, String), String> {
    use std::net::ToSocketAddrs;
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (host, path) =
        rest.split_once('/').map_or((rest, String::new()), |(h, p)| (h, format!("/{}", p.trim_end_matches('/'))));
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    Ok((addr, if path == "/" { String::new() } else { path }))
}

/// A passwordless user id: 12 random bytes as 24 lowercase hex characters.
pub fn object_id() -> String {
    let mut b = [0u8; 12];
    random_bytes(&mut b);
    hex(&b)
}

/// A random (version 4) UUID, lowercase and hyphenated.
pub fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `text` as a UUID in its canonical form (lowercase, hyphenated), if it is one.
pub fn parse_uuid(text: &str) -> Option<String> {
    // `Uuid::parse_str` also takes braces, URNs and the simple form; ids in paths are hyphenated.
    (text.len() == 36).then(|| uuid::Uuid::parse_str(text).ok()).flatten().map(|u| u.to_string())
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX)
}

fn timestamp(ns: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// UTC with `digits` fractional digits: `2024-06-04T17:45:46.777150234Z` for 9.
fn rfc3339(ns: i64, digits: u8) -> String {
    jiff::fmt::temporal::DateTimePrinter::new().precision(Some(digits)).timestamp_to_string(&timestamp(ns))
}

/// `2024-06-04T17:45:46.777150234Z`: UTC, nine fractional digits (Passwordless).
pub fn rfc3339_ns(ns: i64) -> String {
    rfc3339(ns, 9)
}

/// `2022-07-29T21:54:22.000000Z`: UTC, six fractional digits (People, Workflows; spec §1.6).
pub fn rfc3339_us(ns: i64) -> String {
    rfc3339(ns, 6)
}

/// `YYYY-MM-DD` of a UTC instant.
pub fn date_of(ns: i64) -> String {
    timestamp(ns).to_zoned(jiff::tz::TimeZone::UTC).date().to_string()
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 date-time with optional
/// fraction and a `Z` or `±HH:MM` offset, into nanoseconds since the epoch.
/// A date-time without an offset is refused: its instant is unknown.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let t = if text.len() == 10 {
        parse_date(text)?.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp()
    } else {
        text.parse::<jiff::Timestamp>().ok()?
    };
    i64::try_from(t.as_nanosecond()).ok()
}

/// A calendar date `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<jiff::civil::Date> {
    let b = text.as_bytes();
    (b.len() == 10 && b[4] == b'-' && b[7] == b'-').then(|| text.parse().ok()).flatten()
}

/// Lower-cases and strips the accents of Latin letters, for accent- and
/// case-insensitive matching of names.
pub fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
            'í' | 'ì' | 'î' | 'ï' | 'ī' | 'į' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'ō' | 'ő' => 'o',
            'ú' | 'ù' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => 'u',
            'ý' | 'ÿ' => 'y',
            'ñ' | 'ń' | 'ň' => 'n',
            'ç' | 'ć' | 'č' => 'c',
            'ś' | 'š' | 'ş' => 's',
            'ź' | 'ż' | 'ž' => 'z',
            'ł' => 'l',
            'ř' => 'r',
            'ď' => 'd',
            'ť' => 't',
            'ğ' => 'g',
            other => other,
        })
        .collect()
}

/// p50/p90/p99 of a set of samples (nearest rank).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl Percentiles {
    pub fn of(mut samples: Vec<f64>) -> Percentiles {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples.get(((samples.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
        Percentiles { p50: at(0.5), p90: at(0.9), p99: at(0.99) }
    }
}

/// A seeded xorshift generator for synthetic data (galleries, garbage
/// bytes): reproducible, not for anything secret.
pub struct SynthRng(pub u64);

impl SynthRng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A unit vector: `around` plus roughly Gaussian noise of `spread` per
    /// value (a random direction when `around` is `None`), normalised. Faces
    /// of one identity are `unit(Some(centre), 0.05)` around a random centre.
    pub fn unit(&mut self, dim: usize, around: Option<&[f32]>, spread: f32) -> Vec<f32> {
        let v: Vec<f32> = (0..dim)
            .map(|i| {
                let n = (self.uniform() + self.uniform() + self.uniform() + self.uniform() - 2.0) * 1.732;
                around.map_or(0.0, |c| c[i]) + spread * n
            })
            .collect();
        let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
        v.into_iter().map(|a| a / norm).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let ns = 1_717_523_146_777_150_234;
        assert_eq!(rfc3339_ns(ns), "2024-06-04T17:45:46.777150234Z");
        assert_eq!(parse_datetime("2024-06-04T17:45:46.777150234Z"), Some(ns));
        assert_eq!(parse_datetime("2024-06-04T17:45:46.777Z"), Some(1_717_523_146_777_000_000));
        assert_eq!(parse_datetime("2024-06-04T19:45:46.777150234+02:00"), Some(ns));
        assert_eq!(parse_datetime("1970-01-01"), Some(0));
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(parse_datetime("2024-02-29"), Some(1_709_164_800_000_000_000));
        assert_eq!(rfc3339_us(ns), "2024-06-04T17:45:46.777150Z");
        assert_eq!(date_of(ns), "2024-06-04");
        assert_eq!(
            parse_uuid("3F2504E0-4F89-41D3-9A0C-0305E82C3301").as_deref(),
            Some("3f2504e0-4f89-41d3-9a0c-0305e82c3301")
        );
        assert_eq!(parse_uuid("3f2504e04f8941d39a0c0305e82c3301"), None);
        for bad in ["2023-02-29", "2024-13-01", "2024-06-04T25:00:00Z", "yesterday", "2024-06-04T17:45:46", ""] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_have_their_shapes() {
        let id = object_id();
        assert_eq!(id.len(), 24);
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(id, object_id());
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(from_hex(&hex(&[0, 255, 16])), Some(vec![0, 255, 16]));
        assert_eq!(from_hex("0g"), None);
    }

    #[test]
    fn folding_ignores_case_and_accents() {
        assert_eq!(fold("Joaquín GONZÁLEZ Muñoz"), "joaquin gonzalez munoz");
    }
}
