//! Decodes the service settings of the `soundcheck` section: `events` (enabled, delivery) and
//! `retention` (fact history).

use super::diagnostics::Diagnostics;
use super::fields::Fields;
use super::yaml::Node;
use crate::model::{DeliveryConfig, RetentionConfig, SinksConfig};

const DELIVERY_KEYS: &[&str] = &[
    "maxAttempts",
    "initialBackoffMs",
    "maxBackoffMs",
    "batchSize",
    "pollIntervalMs",
    "cursorSaveIntervalMs",
    "leaseMs",
];

/// `soundcheck.events`: `{enabled, delivery}`.
pub fn events(node: &Node, diags: &mut Diagnostics) -> (bool, DeliveryConfig, SinksConfig) {
    let Some(f) = Fields::new(
        node,
        "`soundcheck.events`",
        &["enabled", "delivery", "sinks"],
        diags,
    ) else {
        return (false, DeliveryConfig::default(), SinksConfig::default());
    };
    let sinks = f
        .get("sinks")
        .map(|n| super::decode_sinks::sinks(n, diags))
        .unwrap_or_default();
    let mut delivery = DeliveryConfig::default();
    if let Some(d) = f
        .get("delivery")
        .and_then(|n| Fields::new(n, "`soundcheck.events.delivery`", DELIVERY_KEYS, diags))
    {
        let d = &d;
        let mut read = |key: &str, min: u64, max: u64, default: u64| {
            d.int_in(key, min, max, diags).unwrap_or(default)
        };
        delivery = DeliveryConfig {
            max_attempts: u32::try_from(read(
                "maxAttempts",
                1,
                100,
                u64::from(delivery.max_attempts),
            ))
            .unwrap_or(5),
            initial_backoff_ms: read(
                "initialBackoffMs",
                1,
                3_600_000,
                delivery.initial_backoff_ms,
            ),
            max_backoff_ms: read("maxBackoffMs", 1, 86_400_000, delivery.max_backoff_ms),
            batch_size: u32::try_from(read(
                "batchSize",
                1,
                100_000,
                u64::from(delivery.batch_size),
            ))
            .unwrap_or(512),
            poll_interval_ms: read("pollIntervalMs", 10, 3_600_000, delivery.poll_interval_ms),
            cursor_save_interval_ms: read(
                "cursorSaveIntervalMs",
                0,
                60_000,
                delivery.cursor_save_interval_ms,
            ),
            lease_ms: read("leaseMs", 100, 3_600_000, delivery.lease_ms),
        };
    }
    (f.flag("enabled", diags), delivery, sinks)
}

/// `soundcheck.retention`: `{factHistory: {maxAgeDays, maxPerFact}}`.
pub fn retention(node: &Node, diags: &mut Diagnostics) -> RetentionConfig {
    let history = Fields::new(node, "`soundcheck.retention`", &["factHistory"], diags)
        .and_then(|f| f.get("factHistory"))
        .and_then(|n| {
            Fields::new(
                n,
                "`soundcheck.retention.factHistory`",
                &["maxAgeDays", "maxPerFact"],
                diags,
            )
        });
    let Some(h) = history else {
        return RetentionConfig::default();
    };
    RetentionConfig {
        max_age_days: h
            .int_in("maxAgeDays", 1, 36_500, diags)
            .and_then(|v| u32::try_from(v).ok()),
        max_per_fact: h
            .int_in("maxPerFact", 1, 1_000_000, diags)
            .and_then(|v| u32::try_from(v).ok()),
    }
}
