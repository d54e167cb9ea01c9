//! Catalog notifications as Standard Webhooks (standardwebhooks.com): a JSON POST with
//! `webhook-id` (the idempotency key), `webhook-timestamp` (Unix seconds) and
//! `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under the
//! secret). The secret is given in the `whsec_<base64>` form; it is never printed.
//!
//! 2xx is delivered; 5xx, 429 and network errors are retried with exponential backoff and
//! jitter (honouring a `Retry-After` of a few seconds); any other 4xx is a permanent rejection.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{CatalogNotifier, Delivery, DeliveryStatus, Notification, NotifyError};

/// The environment variable holding the signing secret.
pub const SECRET_ENV: &str = "PRESSING_WEBHOOK_SECRET";

/// Requests per notification before giving up (the first and the retries).
pub const MAX_ATTEMPTS: u32 = 5;

/// The first retry's delay; each next one doubles (with jitter of +-50%).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The signing key. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// Parse `whsec_<base64>`; the error says what is wrong without echoing the value.
    pub fn parse(text: &str) -> Result<WebhookSecret, String> {
        let b64 = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or_else(|| format!("{SECRET_ENV} must start with \"whsec_\" (the Standard Webhooks form: whsec_ and the base64 key)"))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| format!("{SECRET_ENV}: the part after \"whsec_\" is not valid base64"))?;
        if key.len() < 16 {
            return Err(format!(
                "{SECRET_ENV}: the key is {} bytes, expected at least 16",
                key.len()
            ));
        }
        Ok(WebhookSecret(key))
    }

    /// The `webhook-signature` header value for one request.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts a key of any length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        let sig = mac.finalize().into_bytes();
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(sig)
        )
    }
}

/// No catalog configured: nothing is sent.
pub struct NoNotifier;

impl CatalogNotifier for NoNotifier {
    fn is_configured(&self) -> bool {
        false
    }

    fn notify(&self, _: &Notification) -> Result<Delivery, NotifyError> {
        Ok(Delivery {
            status: DeliveryStatus::NotConfigured,
            attempts: 0,
            http_status: None,
        })
    }
}

/// POSTs notifications to a receiver URL.
pub struct HttpNotifier {
    url: String,
    /// The URL as it may be printed: no user info, no query.
    shown: String,
    secret: WebhookSecret,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl HttpNotifier {
    pub fn new(url: &str, secret: WebhookSecret) -> Result<HttpNotifier, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("--catalog-url {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "--catalog-url: expected an http or https URL, got {:?}",
                parsed.scheme()
            ));
        }
        let mut shown = parsed.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("pressing/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
        Ok(HttpNotifier {
            url: url.to_string(),
            shown: shown.to_string(),
            secret,
            client,
            runtime,
        })
    }
}

/// The delay before retry `n` (1-based): doubling from FIRST_BACKOFF, jittered +-50%.
fn backoff(n: u32) -> Duration {
    let base = FIRST_BACKOFF.as_secs_f64() * f64::from(1u32 << (n - 1).min(10));
    Duration::from_secs_f64(base * (0.5 + fastrand::f64()))
}

impl CatalogNotifier for HttpNotifier {
    fn is_configured(&self) -> bool {
        true
    }

    fn notify(&self, n: &Notification) -> Result<Delivery, NotifyError> {
        self.runtime.block_on(async {
            let mut last = String::new();
            for attempt in 1..=MAX_ATTEMPTS {
                let timestamp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let sent = self
                    .client
                    .post(&self.url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &n.webhook_id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header(
                        "webhook-signature",
                        self.secret.sign(&n.webhook_id, timestamp, &n.body),
                    )
                    .body(n.body.clone())
                    .send()
                    .await;
                let mut wait = backoff(attempt);
                match sent {
                    Ok(resp) => {
                        let status = resp.status();
                        if status.is_success() {
                            return Ok(Delivery {
                                status: DeliveryStatus::Delivered,
                                attempts: attempt,
                                http_status: Some(status.as_u16()),
                            });
                        }
                        if status.is_client_error() && status.as_u16() != 429 {
                            return Ok(Delivery {
                                status: DeliveryStatus::Rejected,
                                attempts: attempt,
                                http_status: Some(status.as_u16()),
                            });
                        }
                        if let Some(after) = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                        {
                            wait = Duration::from_secs(after).min(MAX_RETRY_AFTER);
                        }
                        last = format!("the receiver answered {status}");
                    }
                    // reqwest's errors name the URL: strip it, it may carry credentials.
                    Err(e) => last = format!("{}", e.without_url()),
                }
                if attempt < MAX_ATTEMPTS {
                    tokio::time::sleep(wait).await;
                }
            }
            Err(NotifyError {
                url: self.shown.clone(),
                webhook_id: n.webhook_id.clone(),
                attempts: MAX_ATTEMPTS,
                message: last,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_reference() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_checked_and_never_shown() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(format!("{s:?}"), "WebhookSecret(..)");
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for n in 1..=4 {
            let d = backoff(n).as_secs_f64();
            let base = 0.5 * f64::from(1u32 << (n - 1));
            assert!(d >= base * 0.5 && d <= base * 1.5, "retry {n}: {d}");
        }
    }
}
