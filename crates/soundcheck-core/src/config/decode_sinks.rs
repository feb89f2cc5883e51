//! Decodes `soundcheck.events.sinks`: webhook endpoints with their topics, timeout, signing
//! secret and retry schedule; NATS JetStream; Backstage events backends.

use super::diagnostics::Diagnostics;
use super::fields::{Fields, list, string};
use super::yaml::Node;
use crate::events::{CERTIFICATION_CHANGE_TOPIC, CHECK_STATUS_CHANGE_TOPIC};
use crate::model::{
    BackstageRoute, BackstageSink, NatsSink, RetrySchedule, SinksConfig, WebhookSink,
};

const WEBHOOK_KEYS: &[&str] = &["id", "url", "secret", "topics", "timeoutMs", "retry"];
const BACKSTAGE_KEYS: &[&str] = &[
    "id",
    "baseUrl",
    "route",
    "token",
    "topics",
    "timeoutMs",
    "requireSubscriber",
    "retry",
];
const RETRY_KEYS: &[&str] = &["maxAttempts", "initialBackoffMs", "maxBackoffMs"];

/// `soundcheck.events.sinks`: `{webhooks: [...], nats: {...}, backstage: [...]}`.
pub fn sinks(node: &Node, diags: &mut Diagnostics) -> SinksConfig {
    let mut out = SinksConfig::default();
    let Some(f) = Fields::new(
        node,
        "`soundcheck.events.sinks`",
        &["webhooks", "nats", "backstage"],
        diags,
    ) else {
        return out;
    };
    out.nats = f.get("nats").and_then(|n| nats(n, diags));
    for item in f
        .get("backstage")
        .map(|b| list(b, "backstage", diags))
        .unwrap_or(&[])
    {
        if let Some(b) = backstage(item, diags) {
            if out.backstage.iter().any(|x| x.id == b.id) {
                diags.error(&item.pos, format!("duplicate backstage sink id `{}`", b.id));
                continue;
            }
            out.backstage.push(b);
        }
    }
    let Some(webhooks) = f.get("webhooks") else {
        return out;
    };
    for item in list(webhooks, "webhooks", diags) {
        if let Some(w) = webhook(item, diags) {
            if out.webhooks.iter().any(|x| x.id == w.id) {
                diags.error(&item.pos, format!("duplicate webhook id `{}`", w.id));
                continue;
            }
            out.webhooks.push(w);
        }
    }
    out
}

fn topics(f: &Fields<'_>, diags: &mut Diagnostics) -> Vec<String> {
    let nodes = f
        .get("topics")
        .map(|t| list(t, "topics", diags))
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for n in nodes {
        let Some(t) = string(n, "topics", diags) else {
            continue;
        };
        if t != CHECK_STATUS_CHANGE_TOPIC && t != CERTIFICATION_CHANGE_TOPIC {
            diags.error(
                &n.pos,
                format!("unknown topic `{t}`; expected {CHECK_STATUS_CHANGE_TOPIC} or {CERTIFICATION_CHANGE_TOPIC}"),
            );
        }
        out.push(t);
    }
    out
}

fn retry(f: &Fields<'_>, diags: &mut Diagnostics) -> Option<RetrySchedule> {
    f.get("retry").and_then(|r| {
        let rf = Fields::new(r, "`retry`", RETRY_KEYS, diags)?;
        Some(RetrySchedule {
            max_attempts: rf
                .int_in("maxAttempts", 1, 100, diags)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(5),
            initial_backoff_ms: rf
                .int_in("initialBackoffMs", 1, 3_600_000, diags)
                .unwrap_or(200),
            max_backoff_ms: rf
                .int_in("maxBackoffMs", 1, 86_400_000, diags)
                .unwrap_or(30_000),
        })
    })
}

/// `soundcheck.events.sinks.nats`.
fn nats(node: &Node, diags: &mut Diagnostics) -> Option<NatsSink> {
    let f = Fields::new(
        node,
        "`soundcheck.events.sinks.nats`",
        &["url", "subjectPrefix", "stream", "topics", "retry"],
        diags,
    )?;
    let url = f.required_str("url", "`soundcheck.events.sinks.nats`", diags);
    let subject_prefix = f
        .opt_str("subjectPrefix", diags)
        .unwrap_or_else(|| "soundcheck".to_string());
    if subject_prefix.is_empty() || subject_prefix.contains([' ', '*', '>']) {
        let pos = f.get("subjectPrefix").map_or(&node.pos, |n| &n.pos);
        diags.error(
            pos,
            format!("`{subject_prefix}` cannot start a NATS subject (no spaces, `*` or `>`)"),
        );
    }
    let stream = f
        .opt_str("stream", diags)
        .unwrap_or_else(|| "SOUNDCHECK".to_string());
    if stream.is_empty() || stream.contains([' ', '.', '*', '>']) {
        let pos = f.get("stream").map_or(&node.pos, |n| &n.pos);
        diags.error(
            pos,
            format!("`{stream}` cannot name a JetStream stream (no spaces, `.`, `*` or `>`)"),
        );
    }
    Some(NatsSink {
        url: url?,
        subject_prefix,
        stream,
        topics: topics(&f, diags),
        retry: retry(&f, diags),
    })
}

fn webhook(node: &Node, diags: &mut Diagnostics) -> Option<WebhookSink> {
    let f = Fields::new(node, "a webhook", WEBHOOK_KEYS, diags)?;
    let id = f.required_str("id", "a webhook", diags);
    let url = f.required_str("url", "a webhook", diags);
    if let Some(u) = url
        .as_ref()
        .filter(|u| !(u.starts_with("http://") || u.starts_with("https://")))
    {
        let pos = f.get("url").map_or(&node.pos, |n| &n.pos);
        diags.error(pos, format!("`{u}` is not an http:// or https:// URL"));
    }
    let secret = f.opt_str("secret", diags);
    if let Some(s) = secret.as_ref().filter(|s| !s.starts_with("whsec_")) {
        let pos = f.get("secret").map_or(&node.pos, |n| &n.pos);
        let _ = s;
        diags.error(
            pos,
            "a webhook secret is `whsec_` followed by base64 (the Standard Webhooks format)",
        );
    }
    let topics = topics(&f, diags);
    let timeout_ms = f.int_in("timeoutMs", 100, 600_000, diags).unwrap_or(5000);
    let retry = retry(&f, diags);
    Some(WebhookSink {
        id: id?,
        url: url?,
        secret,
        topics,
        timeout_ms,
        retry,
    })
}

/// `soundcheck.events.sinks.backstage[]`.
fn backstage(node: &Node, diags: &mut Diagnostics) -> Option<BackstageSink> {
    let what = "a backstage sink";
    let f = Fields::new(node, what, BACKSTAGE_KEYS, diags)?;
    let id = f.required_str("id", what, diags);
    let base_url = f.required_str("baseUrl", what, diags);
    if let Some(u) = base_url
        .as_ref()
        .filter(|u| !(u.starts_with("http://") || u.starts_with("https://")))
    {
        let pos = f.get("baseUrl").map_or(&node.pos, |n| &n.pos);
        diags.error(pos, format!("`{u}` is not an http:// or https:// URL"));
    }
    let route = match f.opt_str("route", diags).as_deref() {
        None | Some("bus") => BackstageRoute::Bus,
        Some("http") => BackstageRoute::Http,
        Some(other) => {
            let pos = f.get("route").map_or(&node.pos, |n| &n.pos);
            diags.error(
                pos,
                format!("unknown route `{other}`; expected `bus` or `http`"),
            );
            BackstageRoute::Bus
        }
    };
    let token = f.opt_str("token", diags);
    let token_pos = f.get("token").map_or(&node.pos, |n| &n.pos);
    match (route, token.as_deref()) {
        (BackstageRoute::Bus, None) => diags.error(
            &node.pos,
            "a backstage sink on the `bus` route needs a `token` (a static token of Backstage's `backend.auth.externalAccess`)",
        ),
        (BackstageRoute::Bus, Some(t)) if t.len() < 8 || t.contains(char::is_whitespace) => {
            diags.error(
                token_pos,
                "Backstage static tokens are at least 8 characters without whitespace",
            );
        }
        (BackstageRoute::Http, Some(_)) => diags.error(
            token_pos,
            "the `http` route sends no `token`: HTTP ingress needs none, and Backstage would hand the `authorization` header to subscribers as metadata",
        ),
        _ => {}
    }
    let require_subscriber = f.flag("requireSubscriber", diags);
    if route == BackstageRoute::Http && require_subscriber {
        let pos = f.get("requireSubscriber").map_or(&node.pos, |n| &n.pos);
        diags.error(pos, "`requireSubscriber` applies to the `bus` route only");
    }
    Some(BackstageSink {
        id: id?,
        base_url: base_url?.trim_end_matches('/').to_string(),
        route,
        token,
        topics: topics(&f, diags),
        timeout_ms: f.int_in("timeoutMs", 100, 600_000, diags).unwrap_or(5000),
        require_subscriber,
        retry: retry(&f, diags),
    })
}
