//! `soundcheck bench load`: a load tool for a running `soundcheck serve` on loopback.
//! `ingest` posts batches of changing facts to `POST /facts` (each flips CI pipelines, so
//! results, certifications and events change); `certifications` reads
//! `GET /certifications` for random entities. Both print throughput and latency
//! percentiles. Every request is built before the clock starts, so on a machine shared with
//! the server the tool spends its CPU on sending and receiving only.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// Flags of `soundcheck bench load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The API, e.g. `http://127.0.0.1:7007/api/soundcheck`.
    #[arg(long)]
    pub url: String,
    /// Bearer token (a write token for `ingest`).
    #[arg(long, env = "SOUNDCHECK_TOKEN")]
    pub token: Option<String>,
    /// The catalog the server was started with (entity refs are drawn from it).
    #[arg(long)]
    pub catalog: PathBuf,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Requests to send.
    #[arg(long, default_value_t = 1000)]
    pub requests: usize,
    /// Seed of the random entities and data. Runs with the same seed send the same
    /// requests: give each run of a series its own seed, or a repeated run finds most
    /// results already in the state it sends.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the figures as JSON here too.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// What to send.
    #[command(subcommand)]
    pub workload: Workload,
}

/// Load workloads.
#[derive(Debug, Clone, Subcommand)]
pub enum Workload {
    /// `POST /facts` with batches of `ci:default/pipeline` facts.
    Ingest {
        /// Facts per request.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// `GET /certifications?entityRef=...` for random entities.
    Certifications,
}

/// Runs the load.
pub fn run(args: &LoadArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(drive(args))
}

async fn drive(args: &LoadArgs) -> anyhow::Result<()> {
    let catalog = crate::input::catalog::load(std::slice::from_ref(&args.catalog))?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let refs: Vec<String> = catalog
        .entities
        .iter()
        .map(|e| e.entity_ref.to_string())
        .collect();
    anyhow::ensure!(!refs.is_empty(), "the catalog has no entities");
    let requests = build_requests(args, &refs)?;
    let bytes: usize = requests
        .iter()
        .map(|r| match r {
            Prepared::Post { body, .. } => body.len(),
            Prepared::Get { .. } => 0,
        })
        .sum();
    eprintln!(
        "prepared {} requests ({:.1} MB of bodies); sending",
        requests.len(),
        bytes as f64 / 1e6
    );
    // Workers take the prepared requests in order, each one once.
    let queue = Arc::new(std::sync::Mutex::new(requests.into_iter()));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (client, queue) = (client.clone(), Arc::clone(&queue));
        let token = args.token.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = match queue.lock() {
                    Ok(mut queue) => queue.next(),
                    Err(_) => anyhow::bail!("another load worker failed"),
                };
                let Some(prepared) = next else { break };
                let request = match prepared {
                    Prepared::Post { url, body } => client
                        .post(url)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body),
                    Prepared::Get { url } => client.get(url),
                };
                let request = match &token {
                    Some(t) => request.bearer_auth(t),
                    None => request,
                };
                let t0 = Instant::now();
                let response = request.send().await.context("request failed")?;
                let status = response.status();
                let _ = response
                    .bytes()
                    .await
                    .context("reading the answer failed")?;
                anyhow::ensure!(status.is_success(), "the server answered {status}");
                latencies.push(t0.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for w in workers {
        latencies.extend(w.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    let per_request = match args.workload {
        Workload::Ingest { batch } => batch,
        Workload::Certifications => 1,
    };
    let figures = json!({
        "requests": latencies.len(),
        "seconds": elapsed.as_secs_f64(),
        "requestsPerSecond": latencies.len() as f64 / elapsed.as_secs_f64(),
        "itemsPerSecond": (latencies.len() * per_request) as f64 / elapsed.as_secs_f64(),
        "p50Ms": pct(0.50), "p90Ms": pct(0.90), "p99Ms": pct(0.99), "maxMs": pct(1.0),
        "concurrency": args.concurrency,
    });
    println!("{}", serde_json::to_string_pretty(&figures)?);
    if let Some(out) = &args.out {
        std::fs::write(out, figures.to_string())?;
    }
    Ok(())
}

/// One request, ready to send.
enum Prepared {
    Post { url: reqwest::Url, body: Vec<u8> },
    Get { url: reqwest::Url },
}

/// Every request of the run, drawn from one random stream seeded with `--seed`.
fn build_requests(args: &LoadArgs, refs: &[String]) -> anyhow::Result<Vec<Prepared>> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let base = args.url.trim_end_matches('/');
    let facts_url = reqwest::Url::parse(&format!("{base}/facts"))
        .with_context(|| format!("--url {} is not a URL", args.url))?;
    let certifications_url = reqwest::Url::parse(&format!("{base}/certifications"))
        .with_context(|| format!("--url {} is not a URL", args.url))?;
    let mut requests = Vec::with_capacity(args.requests);
    for _ in 0..args.requests {
        requests.push(match &args.workload {
            Workload::Ingest { batch } => {
                let facts: Vec<_> = (0..*batch)
                    .map(|_| {
                        let entity = &refs[rng.random_range(0..refs.len())];
                        json!({"factRef": "ci:default/pipeline", "entityRef": entity,
                            "data": {"passing": rng.random_bool(0.5), "duration_seconds": rng.random_range(60..1800), "max_duration_seconds": 900}})
                    })
                    .collect();
                let body = serde_json::to_vec(&json!({ "facts": facts }))?;
                Prepared::Post {
                    url: facts_url.clone(),
                    body,
                }
            }
            Workload::Certifications => {
                let mut url = certifications_url.clone();
                let entity = &refs[rng.random_range(0..refs.len())];
                url.query_pairs_mut().append_pair("entityRef", entity);
                Prepared::Get { url }
            }
        });
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(seed: u64, workload: Workload) -> LoadArgs {
        LoadArgs {
            url: "http://127.0.0.1:7007/api/soundcheck/".into(),
            token: None,
            catalog: PathBuf::new(),
            concurrency: 2,
            requests: 3,
            seed,
            out: None,
            workload,
        }
    }

    fn bodies(requests: &[Prepared]) -> Vec<(String, String)> {
        requests
            .iter()
            .map(|r| match r {
                Prepared::Post { url, body } => {
                    (url.to_string(), String::from_utf8_lossy(body).into_owned())
                }
                Prepared::Get { url } => (url.to_string(), String::new()),
            })
            .collect()
    }

    /// One seed, the same requests; another seed, other facts.
    #[test]
    fn requests_follow_the_seed() {
        let refs: Vec<String> = (0..1000)
            .map(|i| format!("component:default/e{i}"))
            .collect();
        let ingest = || Workload::Ingest { batch: 4 };
        let first = bodies(&build_requests(&args(1, ingest()), &refs).unwrap());
        assert_eq!(
            first,
            bodies(&build_requests(&args(1, ingest()), &refs).unwrap())
        );
        assert_ne!(
            first,
            bodies(&build_requests(&args(2, ingest()), &refs).unwrap())
        );
        assert_eq!(first.len(), 3);
        let (url, body) = &first[0];
        assert_eq!(url, "http://127.0.0.1:7007/api/soundcheck/facts");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["facts"].as_array().map(Vec::len), Some(4));
        assert_eq!(body["facts"][0]["factRef"], "ci:default/pipeline");
        let reads = bodies(&build_requests(&args(1, Workload::Certifications), &refs).unwrap());
        assert!(
            reads[0]
                .0
                .starts_with("http://127.0.0.1:7007/api/soundcheck/certifications?entityRef=component%3Adefault%2Fe"),
            "{reads:?}"
        );
    }
}
