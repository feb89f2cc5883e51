//! `evaluate --database`: compares each evaluated block with the stored state and writes only
//! the changes (with transitions and events) in one transaction per block, so a run killed at
//! any moment leaves every stored change with its event and can simply be run again.
//!
//! On PostgreSQL a block's transaction is written while the next block is compared (two
//! connections, so the server works on both cores); blocks hold distinct entities, so they
//! never touch the same rows. SQLite has one writer, and its blocks are written one by one.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use soundcheck_core::Engine;
use tokio::runtime::Runtime;

use crate::batch::{EntityReport, Exemptions};
use crate::input::catalog::Catalog;
use crate::input::facts::FactSet;
use crate::state::{Names, diff_reports, index_certifications, index_results};
use crate::store::{Applied, SqlStore, StateChanges, StateStore, StoreResult};

/// The open database of a batch run.
pub struct Persist {
    runtime: Runtime,
    store: SqlStore,
    events_enabled: bool,
    events_out: Option<BufWriter<File>>,
    /// Active exemptions at the start of the run.
    pub exemptions: Exemptions,
    result_changes: u64,
    certification_changes: u64,
    events: u64,
    /// The block being written while the next one is compared (PostgreSQL).
    pending: Option<tokio::task::JoinHandle<StoreResult<Applied>>>,
}

impl Persist {
    /// Opens (and migrates) the database and reads the active exemptions.
    pub fn open(
        url: &str,
        events_out: Option<&Path>,
        events_enabled: bool,
        engine: &Engine,
        catalog: &Catalog,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let store = runtime
            .block_on(SqlStore::open(url))
            .with_context(|| format!("cannot open database `{url}`"))?;
        let now = chrono::Utc::now().timestamp_millis();
        let pairs = runtime.block_on(store.active_exemptions(now))?;
        let events_out = events_out
            .map(|p| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map(BufWriter::new)
                    .with_context(|| format!("cannot open `{}`", p.display()))
            })
            .transpose()?;
        Ok(Self {
            runtime,
            store,
            events_enabled,
            events_out,
            exemptions: Exemptions::resolve(&pairs, engine, catalog),
            result_changes: 0,
            certification_changes: 0,
            events: 0,
            pending: None,
        })
    }

    /// Compares a block with the stored state and writes its changes.
    pub fn save(
        &mut self,
        engine: &Engine,
        catalog: &Catalog,
        facts: &FactSet,
        block: &[EntityReport],
    ) -> anyhow::Result<()> {
        let refs: Vec<String> = block
            .iter()
            .map(|r| catalog.entities[r.entity].entity_ref.to_string())
            .collect();
        let stored_results = index_results(self.runtime.block_on(self.store.results_of(&refs))?);
        let stored_certs =
            index_certifications(self.runtime.block_on(self.store.certifications_of(&refs))?);
        let entity_ref = |i: usize| catalog.entities[i].entity_ref.to_string();
        let names = Names {
            engine,
            entity_ref: &entity_ref,
            scopes: &facts.scopes,
        };
        let mut changes = StateChanges {
            now_ms: chrono::Utc::now().timestamp_millis(),
            // Blocks hold distinct entities.
            disjoint: true,
            ..Default::default()
        };
        diff_reports(&names, block, &stored_results, &stored_certs, &mut changes);
        self.result_changes += changes.results.len() as u64;
        self.certification_changes += changes.certifications.len() as u64;
        let (store, events) = (self.store.clone(), self.events_enabled);
        let task = self
            .runtime
            .spawn(async move { store.apply(&changes, events).await });
        if let Some(previous) = self.pending.take() {
            self.written(previous)?;
        }
        if self.store.backend() == "postgres" {
            self.pending = Some(task);
        } else {
            self.written(task)?;
        }
        Ok(())
    }

    /// Waits for a block's transaction, then counts and writes out its events.
    fn written(
        &mut self,
        task: tokio::task::JoinHandle<StoreResult<Applied>>,
    ) -> anyhow::Result<()> {
        let applied = self
            .runtime
            .block_on(task)
            .context("the block writer stopped")?
            .context("cannot save state")?;
        self.events += u64::try_from(applied.events()).unwrap_or(0);
        if let Some(out) = self.events_out.as_mut() {
            let mut after = applied.first_seq - 1;
            while after < applied.last_seq {
                let page = self.runtime.block_on(
                    self.store
                        .events_after(after, (applied.last_seq - after).min(10_000)),
                )?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for event in &page {
                    out.write_all(event.envelope_json().as_bytes())?;
                    out.write_all(b"\n")?;
                }
            }
        }
        Ok(())
    }

    /// Flushes the events file and reports what changed.
    pub fn finish(mut self) -> anyhow::Result<()> {
        if let Some(last) = self.pending.take() {
            self.written(last)?;
        }
        if let Some(out) = self.events_out.as_mut() {
            out.flush().context("cannot write events")?;
        }
        eprintln!(
            "state saved to the {} database: {} result change(s), {} certification change(s), {} event(s){}",
            self.store.backend(),
            self.result_changes,
            self.certification_changes,
            self.events,
            if self.events_enabled {
                ""
            } else {
                " (soundcheck.events.enabled is off)"
            }
        );
        Ok(())
    }
}
