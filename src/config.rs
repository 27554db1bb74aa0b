//! Configuration: compiled-in `config/default.toml`, then an optional file,
//! then the environment and command-line flags, deserialised into validated
//! structs. This file only composes: every `[section]` struct belongs to the
//! module it configures, and no module below `app` takes the whole `Config`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;
use crate::biometrics::StreamConfig;
use crate::decode::DecodeLimits;
use crate::gallery::GalleryConfig;
use crate::notify::EventsConfig;
use crate::people::PeopleConfig;
use crate::service::PasswordlessConfig;
use crate::serving::ServerConfig;
use crate::store::StoreConfig;
use crate::video::{CameraConfig, VideoConfig};
use crate::vision::VisionConfig;

const DEFAULT: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub vision: VisionConfig,
    pub decode: DecodeLimits,
    pub video: VideoConfig,
    pub gallery: GalleryConfig,
    pub store: StoreConfig,
    pub passwordless: PasswordlessConfig,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub stream: StreamConfig,
    pub cameras: Vec<CameraConfig>,
    pub events: EventsConfig,
    pub people: PeopleConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid config in {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// The defaults, overlaid with `file` when given.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut merged: toml::Table = parse(DEFAULT, "config/default.toml")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
            merge(&mut merged, parse(&text, &path.display().to_string())?);
        }
        let config: Config = toml::Value::Table(merged).try_into().map_err(|e: toml::de::Error| {
            ConfigError::Parse { origin: "merged config".into(), message: e.to_string() }
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let v = &self.vision;
        let in_unit = |name: &str, x: f32| {
            if (0.0..=1.0).contains(&x) {
                Ok(())
            } else {
                Err(ConfigError::Invalid(format!("{name} must be within [0, 1], got {x}")))
            }
        };
        in_unit("vision.detect.score_threshold", v.detect.score_threshold)?;
        in_unit("vision.detect.nms_iou", v.detect.nms_iou)?;
        in_unit("vision.liveness_threshold", v.liveness_threshold)?;
        if !(-1.0..=1.0).contains(&v.match_threshold) {
            return Err(ConfigError::Invalid(format!(
                "vision.match_threshold must be within [-1, 1], got {}",
                v.match_threshold
            )));
        }
        if v.threads.intra == 0 {
            return Err(ConfigError::Invalid("vision.threads.intra must be at least 1".into()));
        }
        if !(1..=256).contains(&v.max_batch) || !(1..=64).contains(&self.stream.batch_frames) {
            return Err(ConfigError::Invalid(
                "vision.max_batch must be within [1, 256] and stream.batch_frames within [1, 64]".into(),
            ));
        }
        if !(0.0..=100.0).contains(&self.stream.batch_wait_ms) {
            return Err(ConfigError::Invalid(format!(
                "stream.batch_wait_ms must be within [0, 100], got {}",
                self.stream.batch_wait_ms
            )));
        }
        if v.detect.max_side != 0 && v.detect.max_side < 32 {
            return Err(ConfigError::Invalid("vision.detect.max_side must be 0 (native) or at least 32".into()));
        }
        let s = &self.server;
        if s.inference_workers == 0 || s.queue == 0 {
            return Err(ConfigError::Invalid("server.inference_workers and server.queue must be at least 1".into()));
        }
        if !(s.base_path.is_empty() || s.base_path.starts_with('/') && !s.base_path.ends_with('/')) {
            return Err(ConfigError::Invalid("server.base_path must be empty or start (and not end) with '/'".into()));
        }
        if self.video.sample_fps.is_nan() || self.video.sample_fps <= 0.0 || self.video.max_frames == 0 {
            return Err(ConfigError::Invalid("video.sample_fps and video.max_frames must be positive".into()));
        }
        self.auth.validate().map_err(ConfigError::Invalid)?;
        self.people.validate().map_err(ConfigError::Invalid)
    }

    /// The sections the Passwordless service reads.
    pub fn passwordless_settings(&self) -> crate::service::Settings {
        crate::service::Settings {
            vision: self.vision.clone(),
            decode: self.decode,
            video: self.video,
            gallery: self.gallery,
            passwordless: self.passwordless,
        }
    }

    /// Applies the environment: `ROSTRO_API_KEYS=key1:companyA,key2:companyB[:people+passwordless]`
    /// adds API keys; `ROSTRO_DATA_DIR` and `ROSTRO_BIND` set those settings.
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        if let Ok(keys) = std::env::var("ROSTRO_API_KEYS") {
            self.auth.keys.extend(crate::auth::parse_key_list(&keys).map_err(ConfigError::Invalid)?);
        }
        if let Some(dir) = std::env::var_os("ROSTRO_DATA_DIR") {
            self.store.data_dir = dir.into();
        }
        if let Ok(bind) = std::env::var("ROSTRO_BIND") {
            self.server.bind = bind;
        }
        self.validate()
    }
}

fn parse(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| ConfigError::Parse { origin: origin.into(), message: e.to_string() })
}

/// Overlays `top` onto `base`, table by table.
fn merge(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_match_code_defaults() {
        let config = Config::load(None).expect("default.toml is valid");
        assert_eq!(config, Config::default(), "config/default.toml and the Default impls must agree");
    }

    #[test]
    fn file_overrides_one_key_and_unknown_keys_fail() {
        let dir = std::env::temp_dir().join(format!("rostro-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("c.toml");
        std::fs::write(&file, "[vision.detect]\nmax_side = 320\n").expect("write");
        let config = Config::load(Some(&file)).expect("valid");
        assert_eq!(config.vision.detect.max_side, 320);
        assert_eq!(config.vision.detect.nms_iou, 0.3);
        std::fs::write(&file, "[vision]\nno_such_key = 1\n").expect("write");
        assert!(matches!(Config::load(Some(&file)), Err(ConfigError::Parse { .. })));
        std::fs::write(&file, "[vision]\nliveness_threshold = 2.0\n").expect("write");
        assert!(matches!(Config::load(Some(&file)), Err(ConfigError::Invalid(_))));
    }
}
