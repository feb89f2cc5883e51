//! The Backstage sink: publishes each event into a Backstage events backend, so that a plugin's
//! `events.subscribe({id, topics, onEvent})` receives it as if Soundcheck ran inside Backstage.
//!
//! Two routes (backstage-events.md §2 and §3):
//! - `bus`: `POST {baseUrl}/api/events/bus/v1/events` with `{"event":{"topic","payload"}}` and
//!   a static external-access token. 201 means stored for at least one subscription; 204 means
//!   no subscription wants the topic and Backstage discarded it (retried only with
//!   `requireSubscriber`). The bus cannot carry metadata, so the event id does not travel.
//! - `http`: `POST {baseUrl}/api/events/http/{topic}` with the payload as the body (HTTP
//!   ingress, 202). Metadata travels as `x-soundcheck-*` headers, which Backstage hands to
//!   subscribers in the receiving process as `metadata`.
//!
//! Either way Backstage delivers at most once on its side; the sink's own cursor, retries and
//! dead letters make sure every event reaches Backstage.

use reqwest::StatusCode;
use soundcheck_core::events::{EventParams, MetadataValue};
use soundcheck_core::model::{BackstageRoute, BackstageSink};

use crate::events::{DeliverySettings, EventsService, HandlerError, handler};
use crate::store::StateStore;

/// `{baseUrl}/api/events/<segments…>`, each segment percent-encoded.
fn events_url(base: &reqwest::Url, segments: &[&str]) -> reqwest::Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty()
            .extend(["api", "events"])
            .extend(segments);
    }
    url
}

/// The request for one event on the sink's route.
fn request(
    client: &reqwest::Client,
    sink: &BackstageSink,
    base: &reqwest::Url,
    params: &EventParams,
) -> reqwest::RequestBuilder {
    let mut request = match sink.route {
        BackstageRoute::Bus => client
            .post(events_url(base, &["bus", "v1", "events"]))
            .json(&serde_json::json!({
                "event": {"topic": params.topic, "payload": params.event_payload}
            })),
        BackstageRoute::Http => {
            let mut r = client
                .post(events_url(base, &["http", &params.topic]))
                .json(&params.event_payload);
            for (key, value) in params.metadata.iter().flatten() {
                let value = match value {
                    MetadataValue::One(v) => v.clone(),
                    MetadataValue::Many(v) => v.join(","),
                };
                r = r.header(metadata_header(key), value);
            }
            r
        }
    };
    if let Some(token) = &sink.token {
        request = request.bearer_auth(token);
    }
    request
}

/// `eventId` → `x-soundcheck-event-id`.
fn metadata_header(key: &str) -> String {
    let mut out = String::from("x-soundcheck");
    for c in key.chars() {
        if c.is_ascii_uppercase() || out.ends_with("soundcheck") {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Whether Backstage's answer delivers the event, and if not, why.
fn outcome(
    sink: &BackstageSink,
    topic: &str,
    status: StatusCode,
    body: &str,
) -> Result<(), String> {
    let body: String = body.chars().take(300).collect();
    match (sink.route, status.as_u16()) {
        (BackstageRoute::Bus, 204) if sink.require_subscriber => Err(format!(
            "Backstage at {} has no subscription for `{topic}` yet (204, event discarded on its side); retrying because requireSubscriber is set",
            sink.base_url
        )),
        (_, 200..=299) => Ok(()),
        (BackstageRoute::Http, 401 | 403) => Err(format!(
            "Backstage at {} refused the event on HTTP ingress ({status}): a validator of `{topic}` or a proxy in front of Backstage rejected it: {body}",
            sink.base_url
        )),
        (BackstageRoute::Bus, 401 | 403) => Err(format!(
            "Backstage at {} refused the sink's token ({status}): check `backend.auth.externalAccess` and its `accessRestrictions` (plugin `events`): {body}",
            sink.base_url
        )),
        (BackstageRoute::Http, 404) => Err(format!(
            "Backstage at {} has no HTTP ingress for `{topic}` (404): add it to `events.http.topics`",
            sink.base_url
        )),
        _ => Err(format!(
            "Backstage at {} answered {status}: {body}",
            sink.base_url
        )),
    }
}

/// Subscribes the backend as `backstage:<id>`.
pub async fn subscribe<S: StateStore + Clone + 'static>(
    events: &EventsService<S>,
    sink: &BackstageSink,
    defaults: DeliverySettings,
) -> anyhow::Result<()> {
    let client = super::http_client(sink.timeout_ms, &format!("backstage sink `{}`", sink.id))?;
    let base = reqwest::Url::parse(&sink.base_url).map_err(|e| {
        anyhow::anyhow!(
            "backstage sink `{}`: `{}` is not a URL: {e}",
            sink.id,
            sink.base_url
        )
    })?;
    let config = sink.clone();
    let on_event = handler(move |params: EventParams| {
        let (client, sink, base) = (client.clone(), config.clone(), base.clone());
        async move {
            let response = request(&client, &sink, &base, &params).send().await?;
            let status = response.status();
            metrics::counter!("soundcheck_sink_requests_total", "sink" => format!("backstage:{}", sink.id), "status" => status.as_u16().to_string())
                .increment(1);
            let body = response.text().await.unwrap_or_default();
            outcome(&sink, &params.topic, status, &body).map_err(HandlerError::from)
        }
    });
    super::subscribe_sink(
        events,
        format!("backstage:{}", sink.id),
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
    use super::*;

    fn sink(route: BackstageRoute, require_subscriber: bool) -> BackstageSink {
        BackstageSink {
            id: "b".into(),
            base_url: "http://backstage".into(),
            route,
            token: Some("t".into()),
            topics: vec![],
            timeout_ms: 1000,
            require_subscriber,
            retry: None,
        }
    }

    #[test]
    fn metadata_keys_become_soundcheck_headers() {
        assert_eq!(metadata_header("eventId"), "x-soundcheck-event-id");
        assert_eq!(
            metadata_header("previousCumulativeState"),
            "x-soundcheck-previous-cumulative-state"
        );
        let base = reqwest::Url::parse("http://host:7007/backstage/").unwrap();
        assert_eq!(
            events_url(&base, &["http", "a b/c"]).as_str(),
            "http://host:7007/backstage/api/events/http/a%20b%2Fc"
        );
    }

    #[test]
    fn answers_map_to_delivered_or_retried() {
        let bus = sink(BackstageRoute::Bus, false);
        let strict = sink(BackstageRoute::Bus, true);
        let http = sink(BackstageRoute::Http, false);
        assert!(outcome(&bus, "t", StatusCode::CREATED, "").is_ok());
        assert!(outcome(&bus, "t", StatusCode::NO_CONTENT, "").is_ok());
        assert!(outcome(&strict, "t", StatusCode::CREATED, "").is_ok());
        let e = outcome(&strict, "t", StatusCode::NO_CONTENT, "").unwrap_err();
        assert!(e.contains("no subscription for `t`"), "{e}");
        assert!(outcome(&http, "t", StatusCode::ACCEPTED, "").is_ok());
        let e = outcome(&http, "t", StatusCode::NOT_FOUND, "").unwrap_err();
        assert!(e.contains("events.http.topics"), "{e}");
        let e = outcome(&http, "t", StatusCode::FORBIDDEN, "").unwrap_err();
        assert!(e.contains("validator of `t`"), "{e}");
        let e = outcome(&bus, "t", StatusCode::UNAUTHORIZED, "Missing credentials").unwrap_err();
        assert!(
            e.contains("externalAccess") && e.contains("Missing credentials"),
            "{e}"
        );
        assert!(outcome(&bus, "t", StatusCode::BAD_GATEWAY, "").is_err());
    }
}
