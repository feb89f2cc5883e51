//! Decodes `soundcheck.server`: listen address, database URL, body limit, state cache size,
//! write-behind delay and API tokens.

use super::diagnostics::Diagnostics;
use super::fields::{Fields, list};
use super::yaml::{Node, NodeKind};
use crate::model::{Access, ApiToken, ServerConfig};

const SERVER_KEYS: &[&str] = &[
    "host",
    "port",
    "database",
    "bodyLimitBytes",
    "stateCacheEntities",
    "stateWriteBehindSeconds",
    "auth",
];
const AUTH_KEYS: &[&str] = &["tokens", "allowAnonymousReads"];
const TOKEN_KEYS: &[&str] = &["token", "subject", "access"];

/// `soundcheck.server`.
pub fn server(node: &Node, diags: &mut Diagnostics) -> ServerConfig {
    let mut config = ServerConfig::default();
    let Some(f) = Fields::new(node, "`soundcheck.server`", SERVER_KEYS, diags) else {
        return config;
    };
    if let Some(host) = f.opt_str("host", diags) {
        config.host = host;
    }
    if let Some(port) = f.get("port") {
        match port.kind {
            NodeKind::Int(p) if u16::try_from(p).is_ok() => {
                config.port = u16::try_from(p).unwrap_or(config.port);
            }
            _ => diags.error(
                &port.pos,
                format!(
                    "expected a port number from 0 to 65535 for `port`, found {}",
                    port.type_name()
                ),
            ),
        }
    }
    config.database = f.opt_str("database", diags);
    if let Some(limit) = f.get("bodyLimitBytes") {
        match limit.kind {
            NodeKind::Int(b) if (1024..=1_073_741_824).contains(&b) => {
                config.body_limit_bytes = usize::try_from(b).unwrap_or(config.body_limit_bytes);
            }
            _ => diags.error(
                &limit.pos,
                format!(
                    "expected an integer from 1024 to 1073741824 for `bodyLimitBytes`, found {}",
                    limit.type_name()
                ),
            ),
        }
    }
    if let Some(n) = f.int_in("stateCacheEntities", 0, 10_000_000, diags) {
        config.state_cache_entities = usize::try_from(n).unwrap_or(config.state_cache_entities);
    }
    if let Some(n) = f.int_in("stateWriteBehindSeconds", 0, 3600, diags) {
        config.state_write_behind_seconds = n;
    }
    if let Some(auth) = f.get("auth") {
        decode_auth(auth, &mut config, diags);
    }
    config
}

fn decode_auth(node: &Node, config: &mut ServerConfig, diags: &mut Diagnostics) {
    let Some(f) = Fields::new(node, "`soundcheck.server.auth`", AUTH_KEYS, diags) else {
        return;
    };
    config.allow_anonymous_reads = f.flag("allowAnonymousReads", diags);
    let Some(tokens) = f.get("tokens") else {
        return;
    };
    for item in list(tokens, "tokens", diags) {
        let Some(t) = Fields::new(item, "a token", TOKEN_KEYS, diags) else {
            continue;
        };
        let token = t.required_str("token", "a token", diags);
        let subject = t.required_str("subject", "a token", diags);
        let access = match t.opt_str("access", diags).as_deref() {
            None | Some("read") => Some(Access::Read),
            Some("write") => Some(Access::Write),
            Some(other) => {
                let pos = t.get("access").map_or(&item.pos, |n| &n.pos);
                diags.error(
                    pos,
                    format!("unknown access `{other}`; expected `read` or `write`"),
                );
                None
            }
        };
        if let Some(token) = token.as_ref().filter(|t| t.chars().count() < 16) {
            let pos = t.get("token").map_or(&item.pos, |n| &n.pos);
            diags.error(
                pos,
                format!(
                    "a token must be at least 16 characters long (this one has {})",
                    token.chars().count()
                ),
            );
        }
        if let (Some(token), Some(subject), Some(access)) = (token, subject, access) {
            config.tokens.push(ApiToken {
                token,
                subject,
                access,
            });
        }
    }
}
