//! Where events go beyond the process (`soundcheck.events.sinks`): each sink is a durable
//! subscriber with its own id, cursor, retries and dead letters.

/// When and how often a sink retries a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Attempts before the event is parked as dead (`maxAttempts`).
    pub max_attempts: u32,
    /// Wait before the first retry, doubled per attempt (`initialBackoffMs`).
    pub initial_backoff_ms: u64,
    /// Longest wait (`maxBackoffMs`).
    pub max_backoff_ms: u64,
}

/// One webhook endpoint (`soundcheck.events.sinks.webhooks[]`).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSink {
    /// Names the sink; its subscriber id is `webhook:<id>`.
    pub id: String,
    /// Where the envelope is POSTed.
    pub url: String,
    /// Standard Webhooks signing secret (`whsec_` + base64), if the receiver verifies.
    pub secret: Option<String>,
    /// Topics sent (empty: both Soundcheck topics).
    pub topics: Vec<String>,
    /// Request timeout in milliseconds (`timeoutMs`, default 5000).
    pub timeout_ms: u64,
    /// Overrides `soundcheck.events.delivery` retries for this endpoint.
    pub retry: Option<RetrySchedule>,
}

impl std::fmt::Debug for WebhookSink {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("topics", &self.topics)
            .field("timeout_ms", &self.timeout_ms)
            .field("retry", &self.retry)
            .finish()
    }
}

/// NATS JetStream (`soundcheck.events.sinks.nats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSink {
    /// Server URL (`url`), e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// Subjects are `<subjectPrefix>.<topic>` (`subjectPrefix`, default `soundcheck`).
    pub subject_prefix: String,
    /// The stream, created when missing (`stream`, default `SOUNDCHECK`).
    pub stream: String,
    /// Topics sent (empty: both Soundcheck topics).
    pub topics: Vec<String>,
    /// Overrides `soundcheck.events.delivery` retries for this sink.
    pub retry: Option<RetrySchedule>,
}

/// How events enter a Backstage events backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackstageRoute {
    /// `POST {baseUrl}/api/events/bus/v1/events` with a static external-access token: reaches
    /// every bus subscriber of every plugin.
    Bus,
    /// `POST {baseUrl}/api/events/http/{topic}` (HTTP ingress): needs the topics in
    /// Backstage's `events.http.topics`; the event is published in the process that receives it.
    Http,
}

/// One Backstage backend (`soundcheck.events.sinks.backstage[]`).
#[derive(Clone, PartialEq, Eq)]
pub struct BackstageSink {
    /// Names the sink; its subscriber id is `backstage:<id>`.
    pub id: String,
    /// The Backstage backend's `backend.baseUrl`, without a trailing slash.
    pub base_url: String,
    /// Which route events take (`route`, default `bus`).
    pub route: BackstageRoute,
    /// Bearer token (a `backend.auth.externalAccess` static token); required on the bus.
    pub token: Option<String>,
    /// Topics sent (empty: both Soundcheck topics).
    pub topics: Vec<String>,
    /// Request timeout in milliseconds (`timeoutMs`, default 5000).
    pub timeout_ms: u64,
    /// On the bus, a 204 (no Backstage subscription wants the topic, so Backstage discarded
    /// the event) counts as a failed delivery and is retried (`requireSubscriber`).
    pub require_subscriber: bool,
    /// Overrides `soundcheck.events.delivery` retries for this sink.
    pub retry: Option<RetrySchedule>,
}

impl std::fmt::Debug for BackstageSink {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackstageSink")
            .field("id", &self.id)
            .field("base_url", &self.base_url)
            .field("route", &self.route)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("topics", &self.topics)
            .field("timeout_ms", &self.timeout_ms)
            .field("require_subscriber", &self.require_subscriber)
            .field("retry", &self.retry)
            .finish()
    }
}

/// `soundcheck.events.sinks`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinksConfig {
    /// Webhook endpoints.
    pub webhooks: Vec<WebhookSink>,
    /// NATS JetStream.
    pub nats: Option<NatsSink>,
    /// Backstage events backends.
    pub backstage: Vec<BackstageSink>,
}
