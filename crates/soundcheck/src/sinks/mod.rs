//! Event sinks: durable subscribers that carry Soundcheck's events out of the process. Each
//! sink has its own subscriber id, cursor, retries with backoff, dead letters and replay, all
//! from the events service.

pub mod backstage;
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
    for sink in &config.backstage {
        backstage::subscribe(events, sink, defaults).await?;
        tracing::info!(sink = %format!("backstage:{}", sink.id), base_url = %sink.base_url, route = ?sink.route, "event sink started");
    }
    Ok(())
}

/// The topics a sink sends: the configured ones, or both Soundcheck topics.
fn topics_or_both(topics: &[String]) -> Vec<String> {
    if topics.is_empty() {
        vec![
            soundcheck_core::events::CHECK_STATUS_CHANGE_TOPIC.to_string(),
            soundcheck_core::events::CERTIFICATION_CHANGE_TOPIC.to_string(),
        ]
    } else {
        topics.to_vec()
    }
}

/// A sink's delivery settings: the service's, its own retry schedule, and small batches (the
/// delivery lease is renewed between batches).
fn settings_for(
    defaults: crate::events::DeliverySettings,
    retry: Option<soundcheck_core::model::RetrySchedule>,
) -> crate::events::DeliverySettings {
    let mut settings = defaults;
    settings.batch_size = settings.batch_size.min(32);
    if let Some(r) = retry {
        settings.max_attempts = r.max_attempts;
        settings.initial_backoff = std::time::Duration::from_millis(r.initial_backoff_ms);
        settings.max_backoff = std::time::Duration::from_millis(r.max_backoff_ms);
    }
    settings
}

/// An HTTP client whose requests give up after the sink's `timeoutMs`.
fn http_client(timeout_ms: u64, sink: &str) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(timeout_ms))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client of {sink}: {e}"))
}

/// Subscribes a sink's handler as `id`, starting after the newest event the first time, with
/// the sink's topics (both when none) and retry schedule.
async fn subscribe_sink<S: StateStore + Clone + 'static>(
    events: &EventsService<S>,
    id: String,
    topics: &[String],
    retry: Option<soundcheck_core::model::RetrySchedule>,
    defaults: crate::events::DeliverySettings,
    on_event: crate::events::Handler,
) -> crate::store::StoreResult<()> {
    events
        .subscribe_with(
            crate::events::SubscribeOptions {
                id,
                topics: topics_or_both(topics),
                on_event,
                start: crate::events::StartAt::Latest,
            },
            settings_for(defaults, retry),
        )
        .await
}
