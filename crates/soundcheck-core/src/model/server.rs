//! Settings of `soundcheck serve` (`soundcheck.server`): where it listens, which database it
//! keeps state in, who may call it and how large a request may be.

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// `GET` requests and the POST routes that only read (filtered aggregates, entity lists).
    Read,
    /// Every request.
    Write,
}

/// One bearer token accepted by the API (`soundcheck.server.auth.tokens[]`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The secret a client sends as `Authorization: Bearer <token>`.
    pub token: String,
    /// Who the caller is: recorded as `submittedBy`, `createdBy` and in logs.
    pub subject: String,
    /// Read or write.
    pub access: Access,
}

impl std::fmt::Debug for ApiToken {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("token", &"<redacted>")
            .field("subject", &self.subject)
            .field("access", &self.access)
            .finish()
    }
}

/// `soundcheck.server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to bind (`host`, default `127.0.0.1`).
    pub host: String,
    /// Port (`port`, default 7007; 0 picks a free port).
    pub port: u16,
    /// State database URL (`database`, default `sqlite://soundcheck.db`).
    pub database: Option<String>,
    /// Largest accepted request body in bytes (`bodyLimitBytes`, default 5 MiB).
    pub body_limit_bytes: usize,
    /// Accepted tokens (`auth.tokens`).
    pub tokens: Vec<ApiToken>,
    /// Reads without a token (`auth.allowAnonymousReads`); honoured only on a loopback address.
    pub allow_anonymous_reads: bool,
    /// (Entity, scope) pairs whose evaluation state a SQLite database keeps in memory
    /// (`stateCacheEntities`, default 200,000; 0 turns the cache off).
    pub state_cache_entities: usize,
    /// Seconds a SQLite database may hold the check results and levels fact submissions
    /// change before writing them to their tables in bulk (`stateWriteBehindSeconds`,
    /// default 10; 0 writes them with each submission). Their transitions are always
    /// written with the submission, so nothing is lost on a crash.
    pub state_write_behind_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_string(),
            port: 7007,
            database: None,
            body_limit_bytes: 5 * 1024 * 1024,
            tokens: Vec::new(),
            allow_anonymous_reads: false,
            state_cache_entities: 200_000,
            state_write_behind_seconds: 10,
        }
    }
}
