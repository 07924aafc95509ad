//! Webhooks: the final job JSON is POSTed to the job's `callback_url`, retried with
//! exponential back-off, and signed with `X-Sluice-Signature: sha256=<hex HMAC>` of the body
//! when a secret is configured.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::jobs::Job;

/// Attempts before giving up (1 s, 2 s, 4 s, 8 s between them).
const ATTEMPTS: u32 = 5;

/// The signature header value for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers in the background when a tokio runtime is running (the server); a CLI run without
/// one logs that the webhook was skipped.
pub fn deliver(url: String, job: Job, secret: Option<String>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(%url, "no async runtime: webhook not delivered");
        return;
    };
    rt.spawn(async move {
        let body = serde_json::to_vec(&job).expect("job serializes");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client builds");
        let mut delay = Duration::from_secs(1);
        for attempt in 1..=ATTEMPTS {
            let mut req = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-sluice-event", format!("job.{}", job.state.as_str()))
                .header("x-sluice-job", job.id.to_string())
                .body(body.clone());
            if let Some(secret) = &secret {
                req = req.header("x-sluice-signature", signature(secret, &body));
            }
            match req.send().await {
                Ok(resp) if resp.status().is_success() => return,
                Ok(resp) => {
                    tracing::warn!(%url, attempt, status = %resp.status(), "webhook refused")
                }
                Err(e) => tracing::warn!(%url, attempt, error = %e, "webhook failed"),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        tracing::error!(%url, job = %job.id, "webhook given up after {ATTEMPTS} attempts");
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
