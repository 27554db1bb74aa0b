//! `rostro people import` and `rostro people export`: an operator's bulk
//! work on the store of a stopped service, through the same code as P-21 and
//! P-20, with a progress bar on a terminal and JSON lines for scripts.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::json;

use crate::api::people::transfer::{describe, parse_import, upsert_in_chunks};
use crate::api::people::views::RowError;
use crate::config::Config;
use crate::notify::Queue;
use crate::people::transfer::Export;
use crate::people::{People, Person};
use crate::store::Records;

/// The People of the store in `config` (deliveries are queued, sent when the service runs).
fn open(config: &Config) -> anyhow::Result<People> {
    let records = Records::open(&config.store).with_context(|| {
        format!(
            "opening the store in {} (is `rostro serve` running on it? stop it first)",
            config.store.data_dir.display()
        )
    })?;
    let records = Arc::new(records);
    let queue = Arc::new(Queue::new(records.clone(), &config.events).map_err(anyhow::Error::msg)?);
    People::new(records, queue, &config.people).map_err(anyhow::Error::msg)
}

/// What an import did.
pub struct ImportReport {
    pub rows: usize,
    /// Every row not stored, and why.
    pub errors: Vec<RowError>,
}

/// Upserts the rows of the CSV or XLSX at `path` into `company`. With
/// `json`, `out` gets `{"done": n, "total": t}` after each committed chunk
/// (each line a promise: those rows are stored), then the report.
pub fn import(
    config: &Config,
    company: &str,
    path: &Path,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ImportReport> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (rows, refused) = parse_import(&bytes).map_err(|e| {
        anyhow::anyhow!("{}: {} {}", path.display(), e.message, e.errors.as_ref().map(describe).unwrap_or_default())
    })?;
    let people = open(config)?;
    let total = rows.len() + refused.len();
    let bar = super::progress_bar(total, "rows");
    // Rows refused while parsing count as done from the start.
    let already = refused.len();
    bar.set_position(already as u64);
    let mut written = Ok(());
    let mut progress = |done: usize| {
        bar.set_position((already + done) as u64);
        if json && written.is_ok() {
            written = writeln!(out, "{}", json!({"done": done, "total": total})).and_then(|()| out.flush());
        }
    };
    let errors = upsert_in_chunks(&people, company, rows, refused, &mut progress)?;
    written?;
    bar.finish_and_clear();
    people.records().flush()?;
    Ok(ImportReport { rows: total, errors })
}

/// Writes `company`'s people as the P-20 CSV to `out`.
pub fn export(config: &Config, company: &str, spec: &Export, out: &mut dyn Write) -> anyhow::Result<usize> {
    let people = open(config)?;
    let total = people.records().count::<Person>(company)?;
    let bar = super::progress_bar(total, "people");
    let mut rows = 0;
    let csv = people.export_csv(company, spec, &mut |n| {
        rows = n;
        bar.set_position(n as u64);
    })?;
    bar.finish_and_clear();
    out.write_all(&csv)?;
    out.flush()?;
    Ok(rows)
}
