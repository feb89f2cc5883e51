//! The webhook sink: each event's envelope `{topic, eventPayload, metadata}` is POSTed to the
//! endpoint, signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`). A 2xx answer
//! delivers it; anything else, or no answer within the timeout, is retried on the endpoint's
//! schedule and parked as dead after the last attempt.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use soundcheck_core::events::EventParams;
use soundcheck_core::model::WebhookSink;

use crate::events::{DeliverySettings, EventsService, HandlerError, handler};
use crate::store::StateStore;

/// Why a secret cannot sign.
#[derive(Debug, thiserror::Error)]
#[error("the webhook secret is not `whsec_` followed by base64")]
pub struct BadSecret;

/// The Standard Webhooks signature header value for one message.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String, BadSecret> {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
        .ok_or(BadSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BadSecret)?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The envelope as sent (Backstage's `EventParams`).
fn envelope(params: &EventParams) -> String {
    serde_json::to_string(params).unwrap_or_default()
}

/// Subscribes the endpoint as `webhook:<id>`.
pub async fn subscribe<S: StateStore + Clone + 'static>(
    events: &EventsService<S>,
    sink: &WebhookSink,
    defaults: DeliverySettings,
) -> anyhow::Result<()> {
    let client = super::http_client(sink.timeout_ms, &format!("webhook `{}`", sink.id))?;
    if let Some(secret) = &sink.secret {
        sign(secret, "check", 0, "").map_err(|e| anyhow::anyhow!("webhook `{}`: {e}", sink.id))?;
    }
    let (url, secret, name) = (sink.url.clone(), sink.secret.clone(), sink.id.clone());
    let on_event = handler(move |params: EventParams| {
        let (client, url, secret, name) =
            (client.clone(), url.clone(), secret.clone(), name.clone());
        async move {
            let body = envelope(&params);
            let id = params.event_id().unwrap_or_default().to_string();
            let timestamp = chrono::Utc::now().timestamp();
            let mut request = client
                .post(&url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string());
            if let Some(secret) = &secret {
                request = request.header("webhook-signature", sign(secret, &id, timestamp, &body)?);
            }
            let response = request.body(body).send().await?;
            let status = response.status();
            metrics::counter!("soundcheck_sink_requests_total", "sink" => format!("webhook:{name}"), "status" => status.as_u16().to_string())
                .increment(1);
            if status.is_success() {
                Ok(())
            } else {
                Err(HandlerError::from(format!("{url} answered {status}")))
            }
        }
    });
    super::subscribe_sink(
        events,
        format!("webhook:{}", sink.id),
        &sink.topics,
        sink.retry,
        defaults,
        on_event,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sign;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(sign("not-a-secret", id, 1, body).is_err());
    }
}
