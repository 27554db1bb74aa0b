//! Any input size, orientation and pixel format gives the same face.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbImage};
use rostro::decode::{DecodeLimits, decode_image};
use rostro::vision::{Analysis, FaceAnalyzer, Stages};

use crate::common::{analyzer, fixture, load};

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).expect("encode");
    out
}

fn analyze_bytes(analyzer: &mut FaceAnalyzer, bytes: &[u8]) -> Analysis {
    let img = decode_image(bytes, &DecodeLimits::default()).expect("decode");
    analyzer.analyze(&img, Stages::ALL).expect("analyze")
}

fn same_person(a: &Analysis, b: &Analysis) -> f32 {
    a.faces[0].embedding.as_ref().expect("e").cosine(b.faces[0].embedding.as_ref().expect("e"))
}

#[test]
fn pixel_formats_give_the_same_face() {
    let mut analyzer = analyzer();
    let original = load(&fixture("obama.jpg"));
    let reference = analyzer.analyze(&original, Stages::ALL).expect("analyze");
    let rgb = DynamicImage::ImageRgb8(original);
    let cases = [
        ("RGBA8 PNG", encode(&DynamicImage::ImageRgba8(rgb.to_rgba8()), ImageFormat::Png), 0.99),
        ("RGB16 PNG", encode(&DynamicImage::ImageRgb16(rgb.to_rgb16()), ImageFormat::Png), 0.99),
        ("grey PNG", encode(&DynamicImage::ImageLuma8(rgb.to_luma8()), ImageFormat::Png), 0.6),
        ("grey16 PNG", encode(&DynamicImage::ImageLuma16(rgb.to_luma16()), ImageFormat::Png), 0.6),
        ("WebP", encode(&rgb, ImageFormat::WebP), 0.99),
        ("BMP", encode(&rgb, ImageFormat::Bmp), 0.99),
        ("TIFF", encode(&rgb, ImageFormat::Tiff), 0.99),
    ];
    for (what, bytes, min_cos) in cases {
        let a = analyze_bytes(&mut analyzer, &bytes);
        assert_eq!(a.faces.len(), 1, "{what}");
        let cos = same_person(&reference, &a);
        assert!(cos >= min_cos, "{what}: cosine to the original {cos}");
    }
}

/// Inserts an EXIF APP1 segment with only an Orientation tag after the SOI marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_honoured() {
    let mut analyzer = analyzer();
    let upright = DynamicImage::ImageRgb8(load(&fixture("obama2.jpg")));
    let reference = analyze_bytes(&mut analyzer, &encode(&upright, ImageFormat::Jpeg));
    // Stored sideways, with the tag that tells a viewer how to turn it back.
    for (stored, tag) in [(upright.rotate270(), 6u16), (upright.rotate90(), 8), (upright.rotate180(), 3)] {
        let bytes = with_exif_orientation(&encode(&stored, ImageFormat::Jpeg), tag);
        let a = analyze_bytes(&mut analyzer, &bytes);
        assert_eq!((a.width, a.height), (reference.width, reference.height), "orientation {tag}");
        assert_eq!(a.faces.len(), 1, "orientation {tag}");
        let (ra, rb) = (&reference.faces[0].detection.bbox, &a.faces[0].detection.bbox);
        assert!((ra.x - rb.x).abs() < 4.0 && (ra.y - rb.y).abs() < 4.0, "orientation {tag}: {ra:?} vs {rb:?}");
        assert!(same_person(&reference, &a) > 0.95, "orientation {tag}");
    }
}

#[test]
fn sizes_from_tiny_to_4000_px() {
    let mut analyzer = analyzer();
    let img = load(&fixture("obama.jpg"));
    let reference = analyzer.analyze(&img, Stages::ALL).expect("analyze");
    let rb = reference.faces[0].detection.bbox;
    // Upscaled so the long side is 4000 px: the face is ~1300 px, found on a
    // downscaled copy, boxes mapped back, aligned at full resolution.
    let f = 4000.0 / img.width().max(img.height()) as f32;
    let big = image::imageops::resize(
        &img,
        (img.width() as f32 * f) as u32,
        (img.height() as f32 * f) as u32,
        image::imageops::FilterType::Triangle,
    );
    let a = analyzer.analyze(&big, Stages::ALL).expect("analyze");
    let bb = a.faces[0].detection.bbox;
    assert!((bb.x / f - rb.x).abs() < 6.0 && (bb.w / f - rb.w).abs() < 6.0, "{bb:?} vs {rb:?} x{f}");
    assert!(same_person(&reference, &a) > 0.9);
    // Portrait crop around the face.
    let portrait =
        image::imageops::crop_imm(&img, (rb.x - 40.0) as u32, 0, (rb.w + 80.0) as u32, img.height()).to_image();
    let a = analyzer.analyze(&portrait, Stages::ALL).expect("analyze");
    assert_eq!(a.faces.len(), 1);
    assert!(same_person(&reference, &a) > 0.9);
    // Tiny images: no panic, no face or a face, never an error.
    for side in [1, 2, 7, 31, 33] {
        let tiny = image::imageops::resize(&img, side, side, image::imageops::FilterType::Triangle);
        analyzer.analyze(&tiny, Stages::ALL).expect("tiny images analyse");
    }
    let _: RgbImage = img;
}
