//! Paths to fixtures and a ready face analyzer.

use std::path::PathBuf;

use image::RgbImage;
use rostro::decode::{DecodeLimits, decode_image};
use rostro::vision::{FaceAnalyzer, ModelFiles, VisionConfig};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file fetched by scripts/fetch.py into tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    let path = root().join("tests/fixtures").join(name);
    assert!(path.is_file(), "{} missing: run `make setup` (scripts/fetch.py)", path.display());
    path
}

/// The shared test data beside the repository (`../shared/testdata`).
pub fn testdata(rel: &str) -> PathBuf {
    let base =
        std::env::var_os("ROSTRO_TESTDATA").map(PathBuf::from).unwrap_or_else(|| root().join("../shared/testdata"));
    let path = base.join(rel);
    assert!(path.exists(), "{} missing: the shared test data must sit beside the repository", path.display());
    path
}

pub fn models() -> ModelFiles {
    ModelFiles::in_dir(&root().join("models"))
}

pub fn analyzer_with(edit: impl FnOnce(&mut VisionConfig)) -> FaceAnalyzer {
    let mut config = VisionConfig::default();
    edit(&mut config);
    FaceAnalyzer::new(&models(), config).expect("models load: run `make setup`")
}

pub fn analyzer() -> FaceAnalyzer {
    analyzer_with(|_| {})
}

pub fn load(path: &std::path::Path) -> RgbImage {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    decode_image(&bytes, &DecodeLimits::default()).unwrap_or_else(|e| panic!("decode {}: {e}", path.display()))
}
