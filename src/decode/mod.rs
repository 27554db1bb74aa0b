//! Still-image decoding: untrusted bytes -> an upright RGB frame.
//!
//! Formats: JPEG (EXIF orientation honoured), PNG (8/16-bit, grey, alpha),
//! WebP, GIF (first frame), BMP, TIFF. Dimensions are checked from the header
//! before any pixel buffer is allocated, so a file that claims 50000x50000
//! pixels costs nothing.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};
use serde::{Deserialize, Serialize};

/// Limits on what a still may claim to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeLimits {
    /// Largest accepted width or height.
    pub max_side: u32,
    /// Largest accepted width x height.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // 16k sides and 50 MP cover every phone and DSLR photo.
        DecodeLimits { max_side: 16_384, max_pixels: 50_000_000 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF)")]
    UnsupportedFormat,
    #[error("the image is {width}x{height} pixels; at most {max_side} per side and {max_pixels} in all are accepted")]
    TooLarge { width: u32, height: u32, max_side: u32, max_pixels: u64 },
    #[error("the image is truncated or corrupt: {0}")]
    Corrupt(String),
}

/// Decodes `bytes` into an upright RGB image.
pub fn decode_image(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut reader =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    let format = reader.format().ok_or(DecodeError::UnsupportedFormat)?;
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(DecodeError::Corrupt("JPEG data ends before its end-of-image marker".into()));
    }
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    // Pixels at up to 16 bits per channel, 4 channels, plus the RGB copy.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(11));
    reader.limits(decoder_limits);
    let too_large = |(width, height): (u32, u32)| DecodeError::TooLarge {
        width,
        height,
        max_side: limits.max_side,
        max_pixels: limits.max_pixels,
    };
    let mut decoder = reader.into_decoder().map_err(|e| classify(e, bytes, limits))?;
    let dims = decoder.dimensions();
    if dims.0 == 0 || dims.1 == 0 {
        return Err(DecodeError::Corrupt(format!("the header claims {}x{} pixels", dims.0, dims.1)));
    }
    if dims.0 > limits.max_side || dims.1 > limits.max_side || u64::from(dims.0) * u64::from(dims.1) > limits.max_pixels
    {
        return Err(too_large(dims));
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| classify(e, bytes, limits))?;
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

/// Turns an `image` error into ours, reading the claimed size for limit errors.
fn classify(e: image::ImageError, bytes: &[u8], limits: &DecodeLimits) -> DecodeError {
    match e {
        image::ImageError::Limits(_) => {
            let dims = ImageReader::new(Cursor::new(bytes))
                .with_guessed_format()
                .ok()
                .and_then(|r| r.into_dimensions().ok())
                .unwrap_or((0, 0));
            DecodeError::TooLarge {
                width: dims.0,
                height: dims.1,
                max_side: limits.max_side,
                max_pixels: limits.max_pixels,
            }
        }
        image::ImageError::Unsupported(_) => DecodeError::UnsupportedFormat,
        other => DecodeError::Corrupt(other.to_string()),
    }
}

/// Whether a JPEG stream has its end-of-image marker. Decoders fill a
/// truncated JPEG with grey rather than failing; a face pipeline must not
/// enrol half a face, so such files are refused. Cameras may pad after the
/// marker, so the last 64 KiB are searched.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64 * 1024)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        RgbImage::new(width, height).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).expect("encode");
        out
    }

    #[test]
    fn empty_and_garbage_are_refused() {
        let limits = DecodeLimits::default();
        assert_eq!(decode_image(&[], &limits), Err(DecodeError::Empty));
        assert_eq!(decode_image(b"hello, this is not an image", &limits), Err(DecodeError::UnsupportedFormat));
    }

    #[test]
    fn limits_are_checked_before_decoding() {
        let limits = DecodeLimits { max_side: 100, max_pixels: 5_000 };
        assert!(matches!(decode_image(&png(101, 10), &limits), Err(DecodeError::TooLarge { width: 101, .. })));
        assert!(matches!(decode_image(&png(80, 80), &limits), Err(DecodeError::TooLarge { .. })));
        assert_eq!(decode_image(&png(50, 50), &limits).map(|i| i.dimensions()), Ok((50, 50)));
    }
}
