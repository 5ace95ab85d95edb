//! Sending a templated HTTP request (restart actions, YAML `http` commands), answered
//! in one line either way.

use std::time::Duration;

use crate::adapters::redact::redact_url;
use crate::adapters::template::render_request;
use crate::config::HttpRequestSpec;
use crate::context::Ctx;
use crate::text::human;

/// Sends a templated HTTP request (restart actions, `http` commands).
pub(crate) async fn send_http(
    ctx: &Ctx<'_>,
    spec: &HttpRequestSpec,
    vars: &[(&str, &str)],
) -> Result<String, String> {
    let req = render_request(spec, vars);
    let timeout = ctx
        .config()
        .settings
        .probe_timeout
        .max(Duration::from_secs(10));
    let url = redact_url(&req.url);
    match ctx.backends.http.send(&req, timeout).await {
        Ok(s) if (200..300).contains(&s.status) => {
            Ok(format!("HTTP {} in {}", s.status, human(s.latency)))
        }
        Ok(s) => Err(format!(
            "{} {url} answered HTTP {}: {}",
            req.method,
            s.status,
            crate::text::escape(&s.body.chars().take(200).collect::<String>())
        )),
        Err(e) => Err(format!(
            "{} {url}: {}",
            req.method,
            crate::text::escape(&e.to_string())
        )),
    }
}
