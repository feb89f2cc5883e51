//! JSON-lines writers for results and certifications, one line per (entity, scope, check)
//! result and per (entity, scope, track, level) certification. Strings are escaped once per
//! id and per entity, then copied.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use soundcheck_core::Engine;

use super::EntityReport;
use crate::input::catalog::Catalog;
use crate::input::facts::FactSet;

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// Writes the `--results-out` and `--certifications-out` files.
pub struct LineWriter {
    results: Option<BufWriter<File>>,
    certifications: Option<BufWriter<File>>,
    check_ids: Vec<String>,
    track_ids: Vec<String>,
    scopes: Vec<String>,
}

impl LineWriter {
    /// Opens (truncating) the files that were asked for.
    pub fn create(
        engine: &Engine,
        facts: &FactSet,
        results: Option<&Path>,
        certifications: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let open = |p: Option<&Path>| -> anyhow::Result<Option<BufWriter<File>>> {
            p.map(|p| {
                File::create(p)
                    .map(|f| BufWriter::with_capacity(1 << 20, f))
                    .with_context(|| format!("cannot create `{}`", p.display()))
            })
            .transpose()
        };
        Ok(Self {
            results: open(results)?,
            certifications: open(certifications)?,
            check_ids: (0..engine.check_count())
                .map(|i| quoted(engine.check_id(i)))
                .collect(),
            track_ids: (0..engine.track_count())
                .map(|i| quoted(engine.track_id(i)))
                .collect(),
            scopes: facts.scopes.iter().map(|s| quoted(s)).collect(),
        })
    }

    /// Writes the lines of a block of reports; lines are formatted in parallel, written in
    /// order.
    pub fn write(&mut self, catalog: &Catalog, reports: &[EntityReport]) -> anyhow::Result<()> {
        use rayon::prelude::*;
        let (want_results, want_certs) = (self.results.is_some(), self.certifications.is_some());
        if !want_results && !want_certs {
            return Ok(());
        }
        let formatted: Vec<(String, String)> = reports
            .par_iter()
            .map(|report| {
                let mut results = String::new();
                let mut certs = String::new();
                self.format(
                    catalog,
                    report,
                    want_results.then_some(&mut results),
                    want_certs.then_some(&mut certs),
                );
                (results, certs)
            })
            .collect();
        for (results, certs) in formatted {
            if let Some(w) = self.results.as_mut() {
                w.write_all(results.as_bytes())?;
            }
            if let Some(w) = self.certifications.as_mut() {
                w.write_all(certs.as_bytes())?;
            }
        }
        Ok(())
    }

    fn format(
        &self,
        catalog: &Catalog,
        report: &EntityReport,
        mut results: Option<&mut String>,
        mut certs: Option<&mut String>,
    ) {
        use std::fmt::Write as _;
        let entity = quoted(catalog.entities[report.entity].entity_ref.as_str());
        for scope in &report.scopes {
            let scope_json = &self.scopes[scope.scope as usize];
            if let Some(out) = results.as_deref_mut() {
                for (check, state) in self.check_ids.iter().zip(&scope.results) {
                    let Some(state) = state else { continue };
                    let _ = writeln!(
                        out,
                        r#"{{"entityRef":{entity},"checkId":{check},"state":"{state}","scope":{scope_json}}}"#
                    );
                }
            }
            if let Some(out) = certs.as_deref_mut() {
                for (track, cert) in self.track_ids.iter().zip(&scope.certifications) {
                    for level in cert.iter().flatten() {
                        let _ = writeln!(
                            out,
                            r#"{{"entityRef":{entity},"trackId":{track},"levelOrdinal":{},"state":"{}","cumulativeState":"{}","scope":{scope_json}}}"#,
                            level.level_ordinal, level.state, level.cumulative_state
                        );
                    }
                }
            }
        }
    }

    /// Flushes both files.
    pub fn finish(mut self) -> anyhow::Result<()> {
        for w in [self.results.as_mut(), self.certifications.as_mut()]
            .into_iter()
            .flatten()
        {
            w.flush().context("cannot write output")?;
        }
        Ok(())
    }
}
