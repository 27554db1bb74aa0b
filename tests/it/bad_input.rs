//! Every bad still the pipeline is handed gets a clear error (or a clear
//! "no face"), never a panic or a huge allocation.

use std::io::Cursor;

use image::RgbImage;
use rostro::decode::{DecodeError, DecodeLimits, decode_image};
use rostro::vision::Stages;

use crate::common::{analyzer, fixture, load, testdata};

fn decode(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    decode_image(bytes, &DecodeLimits::default())
}

#[test]
fn empty_file() {
    assert_eq!(decode(&[]), Err(DecodeError::Empty));
}

#[test]
fn random_bytes() {
    // A fixed xorshift stream: reproducible garbage.
    let mut rng = rostro::util::SynthRng(0x2545F4914F6CDD1D);
    let bytes: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    assert_eq!(decode(&bytes), Err(DecodeError::UnsupportedFormat));
}

#[test]
fn truncated_jpeg() {
    let bytes = std::fs::read(testdata("bench/frame_640x480.jpg")).expect("frame");
    for cut in [bytes.len() / 2, bytes.len() - 2, 200] {
        match decode(&bytes[..cut]) {
            Err(DecodeError::Corrupt(msg)) => assert!(!msg.is_empty()),
            other => {
                panic!("a JPEG cut at {cut} bytes must be refused as corrupt, got {:?}", other.map(|i| i.dimensions()))
            }
        }
    }
}

#[test]
fn jpeg_header_only_is_corrupt() {
    assert!(matches!(decode(&[0xFF, 0xD8, 0xFF, 0xD9]), Err(DecodeError::Corrupt(_))));
}

/// A 60-byte PNG whose header claims 50000x50000 pixels (7.5 GB of RGB):
/// refused from the header, before any allocation.
#[test]
fn header_claiming_50000_squared() {
    let mut png = Vec::new();
    png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(b"IHDR");
    ihdr.extend_from_slice(&50_000u32.to_be_bytes());
    ihdr.extend_from_slice(&50_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    // An empty zlib stream as the only IDAT chunk, then IEND.
    for (kind, data) in [(&b"IDAT"[..], &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01][..]), (b"IEND", &[])] {
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    match decode(&png) {
        Err(DecodeError::TooLarge { width, height, .. }) => {
            assert_eq!((width, height), (50_000, 50_000))
        }
        other => panic!("expected TooLarge, got {:?}", other.map(|i| i.dimensions())),
    }
}

/// The same claim in a JPEG frame header.
#[test]
fn jpeg_header_claiming_50000_squared() {
    let mut bytes = std::fs::read(testdata("bench/frame_640x480.jpg")).expect("frame");
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline SOF0 marker");
    // SOF0: marker, length (2), precision (1), height (2), width (2).
    bytes[sof + 5..sof + 7].copy_from_slice(&50_000u16.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&50_000u16.to_be_bytes());
    assert!(
        matches!(decode(&bytes), Err(DecodeError::TooLarge { .. })),
        "{:?}",
        decode(&bytes).map(|i| i.dimensions())
    );
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn one_pixel_image_has_no_face() {
    let mut png = Vec::new();
    RgbImage::new(1, 1).write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).expect("encode");
    let img = decode(&png).expect("1x1 decodes");
    let analysis = analyzer().analyze(&img, Stages::ALL).expect("analyze");
    assert!(analysis.faces.is_empty());
}

#[test]
fn photos_without_a_person_have_no_face() {
    let mut analyzer = analyzer();
    for name in ["chelsea.png", "coffee.png"] {
        let analysis = analyzer.analyze(&load(&fixture(name)), Stages::ALL).expect("analyze");
        assert!(
            analysis.faces.is_empty(),
            "{name}: {:?}",
            analysis.faces.iter().map(|f| f.detection).collect::<Vec<_>>()
        );
    }
}

#[test]
fn crowd_photo_gives_many_faces_in_a_stable_order() {
    let img = load(&testdata("faces/deepface/selfie-many-people.jpg"));
    let mut analyzer = analyzer();
    let first = analyzer.analyze(&img, Stages::ALL).expect("analyze");
    let second = analyzer.analyze(&img, Stages::ALL).expect("analyze");
    assert!(first.faces.len() >= 5, "found {} faces", first.faces.len());
    // The same boxes in the same order; the numbers within float noise (OpenVINO
    // runs a shape's first frame on its dynamic copy, later ones on a static one).
    let boxes = |a: &rostro::vision::Analysis| a.faces.iter().map(|f| f.detection).collect::<Vec<_>>();
    assert_eq!(boxes(&first), boxes(&second), "same frame, same faces, same order");
    for (a, b) in first.faces.iter().zip(&second.faces) {
        let (ea, eb) = (a.embedding.as_ref().expect("embedding"), b.embedding.as_ref().expect("embedding"));
        assert!(ea.cosine(eb) > 0.99999, "the same face embeds the same: {}", ea.cosine(eb));
        let (la, lb) = (a.liveness.expect("liveness"), b.liveness.expect("liveness"));
        assert!((la.score - lb.score).abs() < 1e-5, "{} vs {}", la.score, lb.score);
    }
    for pair in first.faces.windows(2) {
        assert!(pair[0].detection.bbox.area() >= pair[1].detection.bbox.area(), "largest first");
    }
    assert!(first.faces.iter().all(|f| f.embedding.is_some() && f.liveness.is_some()));
    // Every face is a different person.
    for (i, a) in first.faces.iter().enumerate() {
        for b in &first.faces[i + 1..] {
            let cos = a.embedding.as_ref().expect("e").cosine(b.embedding.as_ref().expect("e"));
            assert!(cos < 0.363, "two faces of the crowd matched each other: {cos}");
        }
    }
}
