//! Outbound HTTP, through `ureq`: one blocking client for every POST this
//! service makes (webhooks, Slack). No redirects are followed: a receiver
//! that moved must be reconfigured, not chased.

use std::time::Duration;

/// POSTs `body` as JSON with `headers`; `Ok` for a 2xx answer, else why not.
pub fn post_json(url: &str, headers: &[(String, String)], body: &[u8], timeout: Duration) -> Result<(), String> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let mut request = agent.post(url).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.send(body).map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) { Ok(()) } else { Err(format!("HTTP {status}")) }
}
