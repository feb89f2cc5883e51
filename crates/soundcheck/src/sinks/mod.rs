//! Event sinks: durable subscribers that carry Soundcheck's events out of the process. Each
//! sink has its own subscriber id, cursor, retries with backoff, dead letters and replay, all
//! from the events service.

pub mod webhook;

use soundcheck_core::model::SinksConfig;

use crate::events::EventsService;
use crate::store::{StateStore, StoreResult};

/// Subscribes every configured sink.
pub async fn start<S: StateStore + Clone + 'static>(
    events: &EventsService<S>,
    config: &SinksConfig,
    defaults: crate::events::DeliverySettings,
) -> StoreResult<()> {
    for hook in &config.webhooks {
        webhook::subscribe(events, hook, defaults).await?;
        tracing::info!(sink = %format!("webhook:{}", hook.id), url = %hook.url, "event sink started");
    }
    Ok(())
}
