//! Event sinks: durable subscribers that carry Soundcheck's events out of the process. Each
//! sink has its own subscriber id, cursor, retries with backoff, dead letters and replay, all
//! from the events service.

pub mod nats;
pub mod webhook;

use soundcheck_core::model::SinksConfig;

use crate::events::EventsService;
use crate::store::StateStore;

/// Subscribes every configured sink.
pub async fn start<S: StateStore + Clone + 'static>(
    events: &EventsService<S>,
    config: &SinksConfig,
    defaults: crate::events::DeliverySettings,
) -> anyhow::Result<()> {
    if let Some(n) = &config.nats {
        nats::subscribe(events, n, defaults).await?;
        tracing::info!(sink = "nats", stream = %n.stream, prefix = %n.subject_prefix, "event sink started");
    }
    for hook in &config.webhooks {
        webhook::subscribe(events, hook, defaults).await?;
        tracing::info!(sink = %format!("webhook:{}", hook.id), url = %hook.url, "event sink started");
    }
    Ok(())
}
