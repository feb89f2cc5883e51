//! The scheduler and collectors: jobs run when due and once across replicas sharing a
//! database, check schedules collect `soundcheck` facts first, rate limits defer batches,
//! the catalog job follows `Location` files and removes entities that are gone, the
//! Backstage catalog API is read page by page with a token, and collectors are managed
//! through the API.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use soundcheck::service::scheduler::{ManualClock, Scheduler};
use soundcheck::service::{App, AppOptions, BackstageCatalog, CatalogSource};
use soundcheck::store::{JobStore, QueryStore};

use crate::api_harness::{Api, READ, WRITE};
use crate::backends::{self, Backend};
use crate::helpers::repo;

const NOON: i64 = 1_795_000_000_000;

/// A catalog of two files reached through a `Location`, and a config with a scheduled
/// meta-check on the `soundcheck` facts, collectors and a rate limit.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        Self::with_limit(2)
    }

    /// With at most `max` soundcheck collections a minute.
    fn with_limit(max: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let examples = repo().join("examples");
        let catalog = std::fs::read_to_string(examples.join("catalog/catalog-info.yaml")).unwrap();
        let docs: Vec<&str> = catalog.split("\n---").collect();
        let half = docs.len() / 2;
        std::fs::write(dir.path().join("a.yaml"), docs[..half].join("\n---")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), docs[half..].join("\n---")).unwrap();
        std::fs::write(
            dir.path().join("location.yaml"),
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: root}\nspec:\n  targets: [./a.yaml, ./b.yaml]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("extra.yaml"),
            format!(
                r#"soundcheck:
  checks:
    - id: basic-health-certified
      name: Certified on basic health
      filter: {{ kind: component }}
      rule: {{ factRef: "soundcheck:default/track/basic-health", path: "$.highestLevel.ordinal", operator: greaterThanInclusive, value: 1 }}
      schedule: {{ frequency: {{ minutes: 30 }}, filter: {{ kind: component }} }}
  collectors:
    soundcheck:
      frequency: {{ minutes: 10 }}
      batchSize: 10
      filter: {{ kind: component }}
    catalog:
      frequency: {{ hours: 1 }}
      files: ["{}"]
  job:
    workers:
      soundcheck:
        limiter: {{ max: {max}, duration: 60000 }}
"#,
                dir.path().join("location.yaml").display()
            ),
        )
        .unwrap();
        Self { dir }
    }

    async fn app(&self, backend: &Backend) -> Arc<App> {
        let loaded = soundcheck_core::config::load_files(
            &[
                repo().join("examples/app-config.yaml"),
                self.dir.path().join("extra.yaml"),
            ],
            &|_| None,
        )
        .expect("config loads");
        let settings = loaded
            .config
            .collectors
            .iter()
            .find(|c| c.id == "catalog")
            .unwrap()
            .settings
            .clone();
        let app = App::start(AppOptions {
            base: loaded.root,
            file_config: loaded.config,
            database_url: backend.url.clone(),
            catalog: CatalogSource::from_settings(&settings).unwrap(),
            facts_files: vec![repo().join("examples/facts.jsonl")],
        })
        .await
        .expect("app starts");
        app.reevaluate_in_background().await;
        app.settled().await;
        app
    }
}

async fn runs(app: &App, job: &str) -> i64 {
    app.store()
        .jobs()
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.job_id == job)
        .map_or(0, |j| j.runs)
}

#[tokio::test]
async fn due_jobs_run_once_across_replicas_and_again_when_due() {
    let setup = Setup::new();
    for b in backends::all().await {
        let first = setup.app(&b).await;
        let second = setup.app(&b).await;
        let clock = Arc::new(ManualClock::at(NOON));
        let a = Scheduler::new(Arc::clone(&first), clock.clone());
        let c = Scheduler::new(Arc::clone(&second), clock.clone());
        let (ran_a, ran_c) = tokio::join!(a.tick(), c.tick());
        let mut all: Vec<String> = ran_a.into_iter().chain(ran_c).collect();
        all.sort();
        assert_eq!(
            all,
            [
                "catalog",
                "check:basic-health-certified",
                "collector:soundcheck:0",
                "exemption-expiry"
            ],
            "{}",
            b.name
        );
        // nothing is due half a minute later
        clock.advance(30_000);
        assert!(a.tick().await.is_empty() && c.tick().await.is_empty());
        // the collector is due after its 10 minutes, the check after 30
        clock.advance(10 * 60_000);
        let (ran_a, ran_c) = tokio::join!(a.tick(), c.tick());
        let ran: Vec<&String> = ran_a
            .iter()
            .chain(&ran_c)
            .filter(|j| *j != "exemption-expiry")
            .collect();
        assert_eq!(ran, ["collector:soundcheck:0"], "{}", b.name);
        assert_eq!(runs(&first, "collector:soundcheck:0").await, 2);
        assert_eq!(runs(&first, "check:basic-health-certified").await, 1);
    }
}

#[tokio::test]
async fn check_schedules_collect_soundcheck_facts_then_execute() {
    let setup = Setup::with_limit(100);
    let b = backends::sqlite().await;
    let app = setup.app(&b).await;
    let scheduler = Scheduler::new(Arc::clone(&app), Arc::new(ManualClock::at(NOON)));
    scheduler.tick().await;
    let entity = "component:default/payments-api";
    let certs = app
        .certifications(entity, Some("basic-health"), false)
        .await
        .unwrap();
    let certified = certs[0].highest_level.is_some();
    let results = app
        .results(entity, None, &["basic-health-certified".to_string()])
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0].state,
        if certified { "passed" } else { "failed" }
    );
    let facts = app
        .store()
        .fact_times(
            &[entity.to_string()],
            &["soundcheck:default/track/basic-health".to_string()],
        )
        .await
        .unwrap();
    assert_eq!(facts.len(), 1);
    // every component has a result; other kinds are not applicable
    let status = app
        .check_status("basic-health-certified", None)
        .await
        .unwrap();
    assert_eq!(status.counts.not_reported, 0, "{status:?}");
    assert!(
        status.counts.passed > 0 && status.counts.failed > 0,
        "{status:?}"
    );
}

#[tokio::test]
async fn rate_limits_defer_batches_to_the_next_run() {
    let setup = Setup::new();
    let b = backends::sqlite().await;
    let app = setup.app(&b).await;
    let block = app.collector_blocks("soundcheck").remove(0);
    let components = app
        .entities()
        .iter()
        .filter(|(r, _)| r.starts_with("component:"))
        .count();
    let batches = components.div_ceil(10);
    assert!(batches > 2);
    let first = app.collect_block(&block, None, true, NOON).await.unwrap();
    assert_eq!(first.entities, 20);
    assert_eq!(first.deferred_batches, batches - 2);
    let same_window = app
        .collect_block(&block, None, true, NOON + 1000)
        .await
        .unwrap();
    assert_eq!(
        (same_window.entities, same_window.deferred_batches),
        (0, batches)
    );
    // the next window resumes where the deferred run stopped: the entities not yet collected
    // come first, then the run wraps around and defers the two batches collected before
    let next_window = app
        .collect_block(&block, None, true, NOON + 60_000)
        .await
        .unwrap();
    assert_eq!(next_window.entities, components - 20);
    assert_eq!(next_window.deferred_batches, 2);
}

#[tokio::test]
async fn the_catalog_job_follows_locations_and_removes_entities_that_are_gone() {
    let setup = Setup::new();
    for b in backends::all().await {
        let app = setup.app(&b).await;
        assert_eq!(
            app.entities().len(),
            58,
            "the Location and both of its targets are read"
        );
        let gone = "component:default/payments-api";
        assert!(!app.results(gone, None, &[]).await.unwrap().is_empty());
        let b_file = setup.dir.path().join("b.yaml");
        let a_file = setup.dir.path().join("a.yaml");
        for file in [&a_file, &b_file] {
            let text = std::fs::read_to_string(file).unwrap();
            let kept: Vec<&str> = text
                .split("\n---")
                .filter(|d| !d.contains("name: payments-api\n"))
                .collect();
            std::fs::write(file, kept.join("\n---")).unwrap();
        }
        let clock = Arc::new(ManualClock::at(NOON));
        let scheduler = Scheduler::new(Arc::clone(&app), clock.clone());
        scheduler.tick().await;
        assert_eq!(app.entities().len(), 57, "{}", b.name);
        assert!(app.results(gone, None, &[]).await.unwrap().is_empty());
        assert!(app.certifications(gone, None, false).await.is_err());
        // restore for the next backend
        drop(setup.app(&b));
        let fresh = Setup::new();
        std::fs::copy(fresh.dir.path().join("a.yaml"), &a_file).unwrap();
        std::fs::copy(fresh.dir.path().join("b.yaml"), &b_file).unwrap();
    }
}

/// A Backstage catalog answering `/api/catalog/entities/by-query` in pages of `limit`.
async fn fake_backstage(entities: Vec<Value>, token: &'static str) -> String {
    use axum::extract::Query;
    use axum::http::HeaderMap;
    use std::collections::HashMap;
    let entities = Arc::new(entities);
    let app = axum::Router::new().route(
        "/api/catalog/entities/by-query",
        axum::routing::get(move |headers: HeaderMap, Query(q): Query<HashMap<String, String>>| {
            let entities = Arc::clone(&entities);
            async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {token}")) {
                    return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"name": "AuthenticationError"}})));
                }
                let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
                let start: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
                let items: Vec<Value> = entities.iter().skip(start).take(limit).cloned().collect();
                let next = (start + limit < entities.len()).then(|| (start + limit).to_string());
                (StatusCode::OK, axum::Json(json!({"items": items, "totalItems": entities.len(), "pageInfo": {"nextCursor": next}})))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_backstage_catalog_api_is_read_page_by_page_with_a_token() {
    let text = std::fs::read_to_string(repo().join("examples/catalog/catalog-info.yaml")).unwrap();
    let entities: Vec<Value> = text
        .split("\n---")
        .filter_map(|d| {
            let yaml: Value = serde_json::to_value(saphyr_doc(d)?).ok()?;
            yaml.get("kind").is_some().then_some(yaml)
        })
        .collect();
    assert_eq!(entities.len(), 57);
    let base = fake_backstage(entities, "catalog-token-0123456789").await;
    let b = backends::sqlite().await;
    let loaded =
        soundcheck_core::config::load_files(&[repo().join("examples/app-config.yaml")], &|_| None)
            .unwrap();
    let options = |token: &str| AppOptions {
        base: loaded.root.clone(),
        file_config: loaded.config.clone(),
        database_url: b.url.clone(),
        catalog: Some(CatalogSource {
            files: Vec::new(),
            backstage: Some(BackstageCatalog {
                base_url: base.clone(),
                token: Some(token.to_string()),
                page_size: 10,
            }),
        }),
        facts_files: Vec::new(),
    };
    let refused = App::start(options("wrong-token"))
        .await
        .err()
        .expect("a wrong token fails");
    assert!(format!("{refused:#}").contains("401"), "{refused:#}");
    let app = App::start(options("catalog-token-0123456789"))
        .await
        .unwrap();
    assert_eq!(app.entities().len(), 57);
}

/// One YAML document as JSON, through the catalog reader.
fn saphyr_doc(doc: &str) -> Option<Value> {
    let dir = tempfile::tempdir().ok()?;
    let path = dir.path().join("one.yaml");
    std::fs::write(&path, doc).ok()?;
    let catalog = soundcheck::input::catalog::load(&[path]).ok()?.ok()?;
    catalog.entities.into_iter().next().map(|e| e.value)
}

#[tokio::test]
async fn collectors_are_configured_through_the_api_and_collect_on_demand() {
    for b in backends::all().await {
        let api = Api::example(b).await;
        let listed = api.get("/api/soundcheck/fact-collectors").await;
        assert_eq!(
            listed.body["factCollectors"],
            json!([{"collectorId": "soundcheck", "config": {}, "editable": false}])
        );
        let body = json!([{"collectorId": "soundcheck", "config": {"frequency": {"minutes": 5}, "batchSize": 5, "filter": {"kind": "component"}, "apiToken": "s3cret-value-0123", "secrets": [{"key": "k", "value": "v"}]}}]);
        let r = api
            .send(
                Method::POST,
                "/api/soundcheck/fact-collectors",
                body.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["factCollectors"][0]["config"]["batchSize"], 5);
        assert_eq!(
            r.body["factCollectors"][0]["config"]["apiToken"],
            "<redacted>"
        );
        assert_eq!(
            r.body["factCollectors"][0]["config"]["secrets"],
            json!([{"key": "<redacted>", "value": "<redacted>"}])
        );
        assert!(
            !api.get("/api/soundcheck/fact-collectors")
                .await
                .body
                .to_string()
                .contains("s3cret")
        );
        assert_eq!(
            api.send(Method::POST, "/api/soundcheck/fact-collectors", body)
                .await
                .status,
            StatusCode::CONFLICT
        );
        let bad =
            json!([{"collectorId": "github", "config": {"frequency": {"cron": "every day"}}}]);
        let r = api
            .send(Method::POST, "/api/soundcheck/fact-collectors", bad)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("/0/config/frequency/cron: invalid cron expression"),
            "{}",
            r.body
        );
        let r = api
            .send(
                Method::PUT,
                "/api/soundcheck/fact-collectors/soundcheck",
                json!({"config": {"batchSize": 7}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            api.get("/api/soundcheck/fact-collectors/soundcheck")
                .await
                .body["factCollector"]["config"]["batchSize"],
            7
        );
        assert_eq!(
            api.send(
                Method::PUT,
                "/api/soundcheck/fact-collectors/nope",
                json!({"config": {}})
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        // on-demand collection
        let r = api
            .send(Method::POST, "/api/soundcheck/facts/collect", json!({"collectorIds": ["soundcheck", "github"], "entityRefs": ["component:default/payments-api"]}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["queued"][0]["jobsQueued"], 1);
        assert_eq!(r.body["skipped"][0]["collectorId"], "github");
        let fact = vec!["soundcheck:default/track/basic-health".to_string()];
        let entity = vec!["component:default/payments-api".to_string()];
        let mut found = Vec::new();
        for _ in 0..100 {
            found = api.app.store().fact_times(&entity, &fact).await.unwrap();
            if !found.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(found.len(), 1, "{}", api.backend.name);
        assert_eq!(
            api.raw(
                Method::DELETE,
                "/api/soundcheck/fact-collectors/soundcheck",
                Some(WRITE),
                ""
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            api.raw(
                Method::DELETE,
                "/api/soundcheck/fact-collectors/soundcheck",
                Some(WRITE),
                ""
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        let _ = READ;
    }
}

#[tokio::test]
async fn replicas_pick_up_definitions_and_catalog_changes_from_the_database() {
    for b in backends::all().await {
        let api = Api::example(b).await;
        let loaded = soundcheck_core::config::load_files(
            &[repo().join("examples/app-config.yaml")],
            &|_| None,
        )
        .unwrap();
        let replica = App::start(AppOptions {
            base: loaded.root,
            file_config: loaded.config,
            database_url: api.backend.url.clone(),
            catalog: None,
            facts_files: Vec::new(),
        })
        .await
        .unwrap();
        assert_eq!(replica.entities().len(), 57);
        let check = json!({"checks": [{"id": "replicated", "rule": {"factRef": "catalog:default/entity_descriptor", "path": "$.kind", "operator": "equal", "value": "Component"}}]});
        assert_eq!(
            api.send(Method::POST, "/api/soundcheck/checks", check)
                .await
                .status,
            StatusCode::CREATED
        );
        assert!(replica.definitions().config.check("replicated").is_none());
        replica.sync().await.unwrap();
        assert!(
            replica.definitions().config.check("replicated").is_some(),
            "{}",
            api.backend.name
        );
        api.app
            .store()
            .delete_entities(&["component:default/payments-api".to_string()])
            .await
            .unwrap();
        replica.sync().await.unwrap();
        assert_eq!(replica.entities().len(), 56, "{}", api.backend.name);
    }
}

#[tokio::test]
async fn an_expired_exemption_stops_counting_for_certification() {
    use soundcheck::service::scheduler::SystemClock;
    for b in backends::all().await {
        let api = Api::example(b).await;
        // An entity whose level fails only because of ci-passing.
        let failing = api
            .raw(
                Method::POST,
                "/api/soundcheck/checks/entities",
                Some(READ),
                &json!({"checkId": "ci-passing", "states": ["failed"]}).to_string(),
            )
            .await;
        let mut target = None;
        for e in failing.body["entities"].as_array().unwrap() {
            let entity = e["entityRef"].as_str().unwrap().to_string();
            let certs = api
                .get(&format!(
                    "/api/soundcheck/certifications?entityRef={entity}&trackId=basic-health"
                ))
                .await;
            for level in certs.body["certifications"][0]["levels"]
                .as_array()
                .unwrap()
            {
                let blocking: Vec<&Value> = level["checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|c| {
                        !["passed", "warning", "not-applicable", "exempt"]
                            .contains(&c["state"].as_str().unwrap())
                    })
                    .collect();
                if level["state"] == "failed"
                    && blocking.len() == 1
                    && blocking[0]["id"] == "ci-passing"
                {
                    target = Some((entity.clone(), level["ordinal"].as_u64().unwrap()));
                }
            }
        }
        let (entity, ordinal) =
            target.expect("the example has an entity failing a level on ci-passing alone");
        let level_state = |body: &Value| {
            body["certifications"][0]["levels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["ordinal"].as_u64() == Some(ordinal))
                .unwrap()["state"]
                .clone()
        };
        let uri = format!("/api/soundcheck/certifications?entityRef={entity}&trackId=basic-health");
        let expires = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
        let body = json!({"checkId": "ci-passing", "entityRef": entity, "justification": "migrating", "expiresAt": expires.to_rfc3339()});
        assert_eq!(
            api.send(Method::POST, "/api/soundcheck/checks/exemptions", body)
                .await
                .status,
            StatusCode::CREATED
        );
        assert_eq!(
            level_state(&api.get(&uri).await.body),
            "passed",
            "{}",
            api.backend.name
        );
        tokio::time::sleep(std::time::Duration::from_millis(1800)).await;
        Scheduler::new(Arc::clone(&api.app), Arc::new(SystemClock))
            .tick()
            .await;
        assert_eq!(
            level_state(&api.get(&uri).await.body),
            "failed",
            "{}",
            api.backend.name
        );
    }
}
