//! The NATS sink: each event is published to JetStream on `<subjectPrefix>.<topic>` with the
//! envelope as payload and the event id as `Nats-Msg-Id`, so the stream drops a message it
//! already has (within its duplicate window) when an event is delivered again after a
//! restart. The stream is created when missing.

use std::time::Duration;

use async_nats::jetstream;
use soundcheck_core::events::EventParams;
use soundcheck_core::model::NatsSink;

use crate::events::{DeliverySettings, EventsService, HandlerError, handler};
use crate::store::StateStore;

/// Why the sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum NatsSinkError {
    /// The server could not be reached.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        source: async_nats::ConnectError,
    },
    /// The stream could not be found or created.
    #[error("cannot create or read the JetStream stream `{stream}`: {message}")]
    Stream {
        /// The stream.
        stream: String,
        /// Why.
        message: String,
    },
    /// Subscribing failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Connects, makes sure the stream exists and subscribes the sink as `nats`.
pub async fn subscribe<S: StateStore + Clone + 'static>(
    events: &EventsService<S>,
    sink: &NatsSink,
    defaults: DeliverySettings,
) -> Result<(), NatsSinkError> {
    let client = async_nats::connect(&sink.url)
        .await
        .map_err(|source| NatsSinkError::Connect {
            url: sink.url.clone(),
            source,
        })?;
    let js = jetstream::new(client);
    js.get_or_create_stream(jetstream::stream::Config {
        name: sink.stream.clone(),
        subjects: vec![format!("{}.>", sink.subject_prefix)],
        duplicate_window: Duration::from_secs(24 * 3600),
        ..Default::default()
    })
    .await
    .map_err(|e| NatsSinkError::Stream {
        stream: sink.stream.clone(),
        message: e.to_string(),
    })?;
    let prefix = sink.subject_prefix.clone();
    let on_event = handler(move |params: EventParams| {
        let (js, prefix) = (js.clone(), prefix.clone());
        async move {
            let body = serde_json::to_vec(&params)?;
            let mut headers = async_nats::HeaderMap::new();
            if let Some(id) = params.event_id() {
                headers.insert("Nats-Msg-Id", id);
            }
            let subject = format!("{prefix}.{}", params.topic);
            let ack = js
                .publish_with_headers(subject, headers, body.into())
                .await
                .map_err(|e| HandlerError::from(e.to_string()))?
                .await
                .map_err(|e| HandlerError::from(e.to_string()))?;
            metrics::counter!("soundcheck_sink_requests_total", "sink" => "nats", "status" => if ack.duplicate { "duplicate" } else { "stored" })
                .increment(1);
            Ok(())
        }
    });
    super::subscribe_sink(
        events,
        "nats".to_string(),
        &sink.topics,
        sink.retry,
        defaults,
        on_event,
    )
    .await?;
    Ok(())
}
