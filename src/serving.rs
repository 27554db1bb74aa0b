//! The `[server]` config section: where the service listens, how many
//! threads serve and infer, and the limits on request bodies. Only settings
//! live here; the server itself is `serve.rs`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub base_path: String,
    pub http_workers: usize,
    pub inference_workers: usize,
    pub queue: usize,
    pub max_body: usize,
    pub body_timeout_s: f32,
    /// The Swagger UI files of `/docs` (fetched by `make setup`).
    pub docs_assets: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            base_path: String::new(),
            http_workers: 2,
            inference_workers: 1,
            queue: 16,
            max_body: 15 * 1024 * 1024,
            body_timeout_s: 30.0,
            docs_assets: "web/vendor/swagger-ui".into(),
        }
    }
}
