//! The databases the behavioural suites run against: always a fresh SQLite file; also a fresh
//! PostgreSQL database when `SOUNDCHECK_TEST_POSTGRES_URL` is set (`.ci/run` sets it).

use soundcheck::store::SqlStore;

/// A store and what to call it in assertion messages; keeps its temporary directory alive.
pub struct Backend {
    pub name: &'static str,
    pub store: SqlStore,
    #[allow(
        dead_code,
        reason = "kept for suites that spawn the binary against the same database"
    )]
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite store.
pub async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = SqlStore::open(&url).await.expect("open sqlite");
    Backend {
        name: "sqlite",
        store,
        url,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database, when the environment names a server.
pub async fn postgres() -> Option<Backend> {
    let base = std::env::var("SOUNDCHECK_TEST_POSTGRES_URL").ok()?;
    let name = format!("soundcheck_test_{}", uuid::Uuid::now_v7().simple());
    soundcheck::store::create_postgres_database(&base, &name)
        .await
        .expect("create a test database on SOUNDCHECK_TEST_POSTGRES_URL");
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("SOUNDCHECK_TEST_POSTGRES_URL needs a database path: {base}"),
    };
    let store = SqlStore::open(&url).await.expect("open postgres");
    Some(Backend {
        name: "postgres",
        store,
        url,
        _dir: None,
    })
}

/// Every backend available here.
pub async fn all() -> Vec<Backend> {
    let mut out = vec![sqlite().await];
    out.extend(postgres().await);
    out
}
