//! The versioned, encrypted value codec.
//!
//! Every stored value is `[format version: u8][nonce: 12 bytes][ChaCha20-Poly1305
//! ciphertext + tag]`, with the record's store key as associated data, so a
//! value moved under another key fails to open. Payloads:
//! - user: JSON of [`User`];
//! - template: `face_id u64 LE | flags u8 (bit 0: active) | model name len u8 | name | dim u16 LE | dim x f32 LE`;
//! - images: `original len u32 LE | original | thumbnail`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use super::{Images, StoreError, Template, User};
use crate::util::random_bytes;

/// The format written now. Older versions are decoded (and migrated) here
/// when they exist; newer ones are refused.
pub const VERSION: u8 = 1;
const NONCE: usize = 12;

/// Encrypts values and derives the blind index keys, from one master key.
pub struct Sealer {
    aead: ChaCha20Poly1305,
    index_key: [u8; 32],
}

fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    crate::util::hmac_sha256(master, &[label])
}

impl Sealer {
    pub fn new(master: &[u8; 32]) -> Sealer {
        let aead_key = derive(master, b"rostro/store/aead/v1");
        Sealer {
            aead: ChaCha20Poly1305::new(Key::from_slice(&aead_key)),
            index_key: derive(master, b"rostro/store/index/v1"),
        }
    }

    /// A keyed hash of `text`: lets the store look a value up (an external id)
    /// without writing it in the clear.
    pub fn blind(&self, text: &str) -> [u8; 32] {
        derive(&self.index_key, text.as_bytes())
    }

    pub fn seal(&self, key: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        random_bytes(&mut nonce);
        let sealed = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: key })
            .expect("ChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        match value.first() {
            Some(&VERSION) if value.len() >= 1 + NONCE + 16 => {}
            Some(&v) if v > VERSION => return Err(StoreError::Version(v)),
            _ => return Err(StoreError::Corrupt(format!("value under {} is malformed", printable(key)))),
        }
        self.aead
            .decrypt(Nonce::from_slice(&value[1..1 + NONCE]), Payload { msg: &value[1 + NONCE..], aad: key })
            .map_err(|_| StoreError::Decrypt(printable(key)))
    }
}

fn printable(key: &[u8]) -> String {
    key.iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '/' }).collect()
}

pub fn encode_user(user: &User) -> Vec<u8> {
    serde_json::to_vec(user).expect("a User always serialises")
}

pub fn decode_user(bytes: &[u8]) -> Result<User, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("user record: {e}")))
}

pub fn encode_template(t: &Template) -> Vec<u8> {
    let name = t.model.as_bytes();
    let name = &name[..name.len().min(255)];
    let mut out = Vec::with_capacity(8 + 1 + name.len() + 2 + 4 * t.vector.len());
    out.extend_from_slice(&t.face_id.to_le_bytes());
    out.push(u8::from(t.active));
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&(t.vector.len() as u16).to_le_bytes());
    for v in &t.vector {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub fn decode_template(bytes: &[u8]) -> Result<Template, StoreError> {
    let bad = || StoreError::Corrupt("template record is truncated".into());
    let face_id = u64::from_le_bytes(bytes.get(0..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
    let active = *bytes.get(8).ok_or_else(bad)? & 1 == 1;
    let name_len = *bytes.get(9).ok_or_else(bad)? as usize;
    let model = String::from_utf8_lossy(bytes.get(10..10 + name_len).ok_or_else(bad)?).into_owned();
    let at = 10 + name_len;
    let dim = u16::from_le_bytes(bytes.get(at..at + 2).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
    let raw = bytes.get(at + 2..at + 2 + 4 * dim).ok_or_else(bad)?;
    let vector = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(Template { face_id, model, vector, active })
}

pub fn encode_images(images: &Images) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + images.original.len() + images.thumbnail.len());
    out.extend_from_slice(&(images.original.len() as u32).to_le_bytes());
    out.extend_from_slice(&images.original);
    out.extend_from_slice(&images.thumbnail);
    out
}

pub fn decode_images(bytes: &[u8]) -> Result<Images, StoreError> {
    let bad = || StoreError::Corrupt("image record is truncated".into());
    let len = u32::from_le_bytes(bytes.get(0..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
    let original = bytes.get(4..4 + len).ok_or_else(bad)?.to_vec();
    Ok(Images { original, thumbnail: bytes[4 + len..].to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_under_their_key_and_master() {
        let s = Sealer::new(&[7; 32]);
        let v = s.seal(b"u/a/1", b"hello");
        assert_eq!(v[0], VERSION);
        assert!(!v.windows(5).any(|w| w == b"hello"), "plaintext must not appear");
        assert_eq!(s.open(b"u/a/1", &v).expect("opens"), b"hello");
        assert!(matches!(s.open(b"u/a/2", &v), Err(StoreError::Decrypt(_))));
        assert!(matches!(Sealer::new(&[8; 32]).open(b"u/a/1", &v), Err(StoreError::Decrypt(_))));
        let mut future = v.clone();
        future[0] = VERSION + 1;
        assert!(matches!(s.open(b"u/a/1", &future), Err(StoreError::Version(_))));
        assert!(matches!(s.open(b"u/a/1", &v[..10]), Err(StoreError::Corrupt(_))));
        assert_eq!(s.blind("x"), s.blind("x"));
        assert_ne!(s.blind("x"), Sealer::new(&[8; 32]).blind("x"));
    }

    #[test]
    fn payloads_round_trip_and_truncation_is_an_error() {
        let t = Template { face_id: 42, model: "sface-2021dec".into(), vector: vec![0.5, -0.25, 1e-7], active: true };
        let bytes = encode_template(&t);
        assert_eq!(decode_template(&bytes).expect("decodes"), t);
        assert!(decode_template(&bytes[..bytes.len() - 1]).is_err());
        let inactive = Template { active: false, ..t };
        assert_eq!(decode_template(&encode_template(&inactive)).expect("decodes"), inactive);
        let im = Images { original: vec![1, 2, 3], thumbnail: vec![4, 5] };
        let bytes = encode_images(&im);
        assert_eq!(decode_images(&bytes).expect("decodes"), im);
        assert!(decode_images(&bytes[..3]).is_err());
        assert!(decode_images(&bytes[..5]).is_err());
    }
}
