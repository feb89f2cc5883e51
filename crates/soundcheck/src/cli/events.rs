//! `soundcheck events tail`: follows a running service's event stream and prints each event:
//! one readable line on a terminal, the JSON envelope otherwise.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde_json::Value;

use super::Exit;

/// Flags of `soundcheck events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EventsCommand,
}

/// `soundcheck events` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print events as they happen.
    Tail {
        /// The API, e.g. `http://127.0.0.1:7007/api/soundcheck`.
        #[arg(long, default_value = "http://127.0.0.1:7007/api/soundcheck")]
        url: String,
        /// Bearer token (reads need one unless the server allows anonymous reads).
        #[arg(long, env = "SOUNDCHECK_TOKEN")]
        token: Option<String>,
        /// Only these topics (repeatable).
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// Only events about this entity.
        #[arg(long)]
        entity: Option<String>,
        /// Start after this event position instead of at the newest event.
        #[arg(long)]
        after: Option<i64>,
        /// Stop after this many events.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// List subscriber ids with their cursor and lag.
    Subscribers(Remote),
    /// List a subscriber's parked (dead) events.
    Dead {
        /// The subscriber id (e.g. `webhook:ci`).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Deliver a subscriber's parked events again.
    Replay {
        /// The subscriber id.
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Move a subscriber's cursor (replay from an earlier position, or skip ahead).
    Reset {
        /// The subscriber id.
        id: String,
        /// Deliver from the event after this position (0: from the first).
        #[arg(long)]
        after: i64,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Where the service is.
#[derive(Debug, Args)]
pub struct Remote {
    /// The API, e.g. `http://127.0.0.1:7007/api/soundcheck`.
    #[arg(long, default_value = "http://127.0.0.1:7007/api/soundcheck")]
    url: String,
    /// Bearer token (replay and reset need a write token).
    #[arg(long, env = "SOUNDCHECK_TOKEN")]
    token: Option<String>,
}

/// Calls the API and prints its JSON answer.
async fn call(
    remote: &Remote,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<()> {
    let url = format!("{}{path}", remote.url.trim_end_matches('/'));
    let mut request = reqwest::Client::new().request(method, &url);
    if let Some(t) = &remote.token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("the server answered {status}: {text}");
    }
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// A path segment, percent-encoded.
fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// Runs the command.
pub fn run(args: &EventsArgs) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match &args.command {
        EventsCommand::Tail {
            url,
            token,
            topics,
            entity,
            after,
            limit,
        } => {
            runtime.block_on(tail(
                url,
                token.as_deref(),
                topics,
                entity.as_deref(),
                *after,
                *limit,
            ))?;
        }
        EventsCommand::Subscribers(remote) => {
            runtime.block_on(call(
                remote,
                reqwest::Method::GET,
                "/events/subscribers",
                None,
            ))?;
        }
        EventsCommand::Dead { id, remote } => {
            let path = format!("/events/subscribers/{}/dead", encode(id));
            runtime.block_on(call(remote, reqwest::Method::GET, &path, None))?;
        }
        EventsCommand::Replay { id, remote } => {
            let path = format!("/events/subscribers/{}/replay", encode(id));
            runtime.block_on(call(remote, reqwest::Method::POST, &path, None))?;
        }
        EventsCommand::Reset { id, after, remote } => {
            let path = format!("/events/subscribers/{}/reset", encode(id));
            let body = serde_json::json!({ "after": after });
            runtime.block_on(call(remote, reqwest::Method::POST, &path, Some(body)))?;
        }
    }
    Ok(Exit::Success)
}

async fn tail(
    url: &str,
    token: Option<&str>,
    topics: &[String],
    entity: Option<&str>,
    after: Option<i64>,
    limit: Option<usize>,
) -> anyhow::Result<()> {
    let mut query: Vec<(&str, String)> = topics.iter().map(|t| ("topics", t.clone())).collect();
    if let Some(e) = entity {
        query.push(("entityRef", e.to_string()));
    }
    if let Some(a) = after {
        query.push(("after", a.to_string()));
    }
    let mut request = reqwest::Client::new()
        .get(format!("{}/events/stream", url.trim_end_matches('/')))
        .query(&query);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("the server answered {status}: {body}");
    }
    let readable = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut bytes = response.bytes_stream();
    let mut buffer = String::new();
    let mut printed = 0usize;
    while let Some(chunk) = bytes.next().await {
        buffer.push_str(&String::from_utf8_lossy(
            &chunk.context("the stream broke")?,
        ));
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            let data: String = message
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("\n");
            if data.is_empty() {
                continue;
            }
            if readable {
                writeln!(out, "{}", describe(&data))?;
            } else {
                writeln!(out, "{data}")?;
            }
            out.flush()?;
            printed += 1;
            if limit.is_some_and(|l| printed >= l) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One readable line for an envelope.
fn describe(data: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(data) else {
        return data.to_string();
    };
    let p = &v["eventPayload"];
    let s = |k: &str| p[k].as_str().unwrap_or("-").to_string();
    let when = p["timestampMs"]
        .as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    let previous = p["previousState"]
        .as_str()
        .map_or("new".to_string(), str::to_string);
    match v["topic"].as_str() {
        Some("soundcheck-check-status-change") => format!(
            "{when}  check  {:<28} {:<40} {previous} -> {}",
            s("checkId"),
            s("entityRef"),
            s("state")
        ),
        Some("soundcheck-certification-change") => format!(
            "{when}  level  {:<28} {:<40} L{} {previous} -> {} (cumulative {})",
            s("trackId"),
            s("entityRef"),
            p["levelOrdinal"],
            s("state"),
            s("cumulativeState")
        ),
        _ => data.to_string(),
    }
}
