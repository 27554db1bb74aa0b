//! The record layer every API stands on: typed, tenant-scoped collections
//! over sled, secondary indexes, creation order, and an outbox of changes.
//!
//! A record type names its collection (one sled tree) and the index values
//! it carries. Inside a collection's tree (company ids never contain NUL):
//! - `d\0{company}\0{id}` -> sealed `[version u64 LE][seq u64 LE][payload]`
//! - `o\0{company}\0{seq u64 BE}` -> id (creation order, for pages)
//! - `u\0{index}\0{company}\0{blind}` -> id (unique index)
//! - `i\0{index}\0{company}\0{blind}{id}` -> "" (plain index)
//!
//! `blind` is a keyed hash of the indexed value, so no indexed value (a
//! national id, an e-mail) is written in the clear. Every value is sealed by
//! the versioned, encrypted codec with the collection and key as associated
//! data.
//!
//! A write ([`Records::write`]) stages puts and deletes, checks unique
//! indexes, and commits the records, their index entries and one outbox
//! entry per change ([`Change`]) in one sled transaction across the trees it
//! touched; it returns once the log is on disk. Writers are serialised (a
//! write may read, then write, as one step), and their fsyncs are grouped:
//! one flush covers every write committed while the previous one ran.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::codec::Sealer;
use super::{StoreConfig, StoreError};

/// The outbox tree: every committed change, in commit order.
pub const OUTBOX: &str = "outbox";
/// The name under which a write reaches sled's default tree (the legacy layout).
pub(crate) const DEFAULT_TREE: &str = "";

const CHECK_KEY: &[u8] = b"m\0check";
const CHECK_TEXT: &[u8] = b"rostro store key check";

/// One value a record is found by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexValue {
    pub name: &'static str,
    pub value: String,
    pub unique: bool,
}

impl IndexValue {
    /// At most one record of a company carries this value.
    pub fn unique(name: &'static str, value: impl Into<String>) -> IndexValue {
        IndexValue { name, value: value.into(), unique: true }
    }

    /// Many records may carry it (e.g. the person an address belongs to).
    pub fn plain(name: &'static str, value: impl Into<String>) -> IndexValue {
        IndexValue { name, value: value.into(), unique: false }
    }
}

/// A type stored in a collection.
pub trait Record: Sized {
    /// The collection, which is also the sled tree's name.
    const COLLECTION: &'static str;
    /// Whether changes go to the outbox (and so to the central store);
    /// `false` for state that belongs to this edge alone (e.g. its delivery queue).
    const SYNCED: bool = true;
    fn id(&self) -> &str;
    /// The values this record is found by; `None`s are simply left out by the implementor.
    fn indexes(&self) -> Vec<IndexValue> {
        Vec::new()
    }
    fn encode(&self) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Result<Self, StoreError>;
}

/// A record stored as JSON: implement this, and [`Record`] comes with it.
pub trait JsonRecord: Serialize + DeserializeOwned {
    const COLLECTION: &'static str;
    const SYNCED: bool = true;
    fn id(&self) -> &str;
    fn indexes(&self) -> Vec<IndexValue> {
        Vec::new()
    }
}

impl<T: JsonRecord> Record for T {
    const COLLECTION: &'static str = <T as JsonRecord>::COLLECTION;
    const SYNCED: bool = <T as JsonRecord>::SYNCED;

    fn id(&self) -> &str {
        JsonRecord::id(self)
    }

    fn indexes(&self) -> Vec<IndexValue> {
        JsonRecord::indexes(self)
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record always serialises")
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{} record: {e}", T::COLLECTION)))
    }
}

/// A record with its version (1 on creation, +1 per change) and creation sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<R> {
    pub record: R,
    pub version: u64,
    pub seq: u64,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Put,
    Delete,
}

/// What [`Records::for_each`] calls with each record and its company.
pub type Visit<'a, R> = &'a mut dyn FnMut(&str, Stored<R>) -> Result<(), StoreError>;

/// One outbox entry: enough for the central sync to fetch the record's
/// current state (or learn it is gone) and to order changes. `version` is
/// the record's version after the change; a delete counts as one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub seq: u64,
    pub collection: String,
    pub company: String,
    pub id: String,
    pub version: u64,
    pub op: Op,
    /// When it was committed, nanoseconds since the epoch (UTC).
    pub at_ns: i64,
}

fn push_part(k: &mut Vec<u8>, part: &[u8]) {
    k.extend_from_slice(part);
    k.push(0);
}

fn data_key(company: &str, id: &str) -> Vec<u8> {
    let mut k = b"d\0".to_vec();
    push_part(&mut k, company.as_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// The data keys of one company, or of every company (`None`).
fn records_prefix(company: Option<&str>) -> Vec<u8> {
    match company {
        Some(c) => data_key(c, ""),
        None => b"d\0".to_vec(),
    }
}

fn order_prefix(company: &str) -> Vec<u8> {
    let mut k = b"o\0".to_vec();
    push_part(&mut k, company.as_bytes());
    k
}

fn order_key(company: &str, seq: u64) -> Vec<u8> {
    let mut k = order_prefix(company);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Splits `d\0{company}\0{id}` into (company, id).
fn split_data_key(k: &[u8]) -> Option<(&str, &str)> {
    let body = k.strip_prefix(b"d\0")?;
    let nul = body.iter().position(|&b| b == 0)?;
    Some((std::str::from_utf8(&body[..nul]).ok()?, std::str::from_utf8(&body[nul + 1..]).ok()?))
}

/// Serialises fsyncs: a writer asks for the log to be durable up to its
/// commit; one flush serves every writer that asked before it began. A
/// flusher that finds other writers still inside [`Records::write`] waits
/// for them (at most [`GATHER`]) so that they share its fsync: on a busy
/// edge box an fsync costs more CPU than the write it makes durable.
#[derive(Default)]
struct GroupCommit {
    state: Mutex<Flushes>,
    done: Condvar,
    joined: Condvar,
}

/// The longest a flusher waits for writers already in progress to join it.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);

#[derive(Default)]
struct Flushes {
    requested: u64,
    flushed: u64,
    running: bool,
    failed: Option<String>,
    /// Writers between entering [`Records::write`] and asking for a flush.
    writing: usize,
    /// A flusher is waiting for `writing` to reach 0.
    gathering: bool,
    flushes: u64,
    flush_ns: u64,
}

/// What the store's writes cost so far (for `/metrics`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CommitStats {
    /// Writes committed and made durable.
    pub writes: u64,
    /// fsyncs run for them (fewer than writes when they were grouped).
    pub flushes: u64,
    /// Time spent in those fsyncs.
    pub flush_seconds: f64,
}

/// A writer in progress; dropped without [`GroupCommit::wait`] when the write
/// staged nothing or failed.
struct Writing<'a>(&'a GroupCommit);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        self.0.leave(&mut s);
    }
}

impl GroupCommit {
    fn lock(&self) -> std::sync::MutexGuard<'_, Flushes> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn enter(&self) -> Writing<'_> {
        self.lock().writing += 1;
        Writing(self)
    }

    fn leave(&self, s: &mut Flushes) {
        s.writing -= 1;
        if s.writing == 0 && s.gathering {
            self.joined.notify_one();
        }
    }

    /// Returns once everything `writer` committed is on disk.
    fn wait(&self, writer: Writing<'_>, db: &sled::Db) -> Result<(), StoreError> {
        std::mem::forget(writer);
        let mut s = self.lock();
        s.requested += 1;
        self.leave(&mut s);
        let mine = s.requested;
        loop {
            if s.flushed >= mine {
                return match &s.failed {
                    Some(e) => Err(StoreError::Io(e.clone())),
                    None => Ok(()),
                };
            }
            if s.running {
                s = self.done.wait(s).unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            s.running = true;
            let deadline = std::time::Instant::now() + GATHER;
            while s.writing > 0 {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                s.gathering = true;
                s = self.joined.wait_timeout(s, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
            }
            s.gathering = false;
            let target = s.requested;
            drop(s);
            let started = std::time::Instant::now();
            let result = db.flush();
            let took = started.elapsed().as_nanos() as u64;
            s = self.lock();
            s.running = false;
            s.flushes += 1;
            s.flush_ns += took;
            s.flushed = target;
            s.failed = result.err().map(|e| e.to_string());
            self.done.notify_all();
        }
    }
}

/// The store: every collection of every API, in one sled database.
pub struct Records {
    db: sled::Db,
    sealer: Sealer,
    trees: RwLock<HashMap<&'static str, sled::Tree>>,
    writer: Mutex<()>,
    commits: GroupCommit,
}

fn resolve_key(config: &StoreConfig, fresh: bool) -> Result<[u8; 32], StoreError> {
    use crate::util::{from_hex, hex, random_bytes};
    let parse = |text: &str, origin: &str| -> Result<[u8; 32], StoreError> {
        from_hex(text.trim())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| StoreError::Key(format!("{origin} must be 64 hex characters (32 bytes)")))
    };
    if !config.key.is_empty() {
        return parse(&config.key, "store.key");
    }
    if let Ok(text) = std::env::var("ROSTRO_STORE_KEY") {
        return parse(&text, "ROSTRO_STORE_KEY");
    }
    let file = config.data_dir.join("store.key");
    match std::fs::read_to_string(&file) {
        Ok(text) => parse(&text, &file.display().to_string()),
        Err(_) if fresh => {
            let mut k = [0u8; 32];
            random_bytes(&mut k);
            write_private(&file, hex(&k).as_bytes())
                .map_err(|e| StoreError::Key(format!("cannot write {}: {e}", file.display())))?;
            Ok(k)
        }
        Err(e) => Err(StoreError::Key(format!(
            "the store in {} holds data but {} cannot be read ({e}); give the key in store.key or ROSTRO_STORE_KEY",
            config.data_dir.display(),
            file.display()
        ))),
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl Records {
    /// Opens (or creates) the store in `config.data_dir`. Fails with
    /// [`StoreError::Decrypt`] when the key is not the one the data was written with.
    pub fn open(config: &StoreConfig) -> Result<Records, StoreError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", config.data_dir.display())))?;
        let db = sled::Config::new().path(config.data_dir.join("db")).open().map_err(|e| match e {
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => StoreError::Io(format!(
                "{} is in use by another process (is `rostro serve` running on it?)",
                config.data_dir.display()
            )),
            other => other.into(),
        })?;
        let fresh = db.get(CHECK_KEY)?.is_none();
        let sealer = Sealer::new(&resolve_key(config, fresh)?);
        match db.get(CHECK_KEY)? {
            Some(v) => {
                if sealer.open(CHECK_KEY, &v)? != CHECK_TEXT {
                    return Err(StoreError::Decrypt("m/check".into()));
                }
            }
            None => {
                db.insert(CHECK_KEY, sealer.seal(CHECK_KEY, CHECK_TEXT))?;
                db.flush()?;
            }
        }
        Ok(Records { db, sealer, trees: RwLock::default(), writer: Mutex::new(()), commits: GroupCommit::default() })
    }

    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    pub(crate) fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    fn tree(&self, name: &'static str) -> Result<sled::Tree, StoreError> {
        if name == DEFAULT_TREE {
            return Ok(std::ops::Deref::deref(&self.db).clone());
        }
        if let Some(t) = self.trees.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name) {
            return Ok(t.clone());
        }
        let t = self.db.open_tree(name)?;
        self.trees.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name, t.clone());
        Ok(t)
    }

    fn aad(collection: &str, key: &[u8]) -> Vec<u8> {
        let mut a = collection.as_bytes().to_vec();
        a.push(0);
        a.extend_from_slice(key);
        a
    }

    fn seal(&self, collection: &str, key: &[u8], plain: &[u8]) -> Vec<u8> {
        self.sealer.seal(&Self::aad(collection, key), plain)
    }

    fn open_value(&self, collection: &str, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.sealer.open(&Self::aad(collection, key), value)
    }

    fn decode_stored<R: Record>(&self, key: &[u8], value: &[u8]) -> Result<Stored<R>, StoreError> {
        let plain = self.open_value(R::COLLECTION, key, value)?;
        let bad = || StoreError::Corrupt(format!("{} record header", R::COLLECTION));
        let version = u64::from_le_bytes(plain.get(0..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        let seq = u64::from_le_bytes(plain.get(8..16).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        Ok(Stored { record: R::decode(&plain[16..])?, version, seq })
    }

    /// The keyed hash under which `value` of `index` is filed.
    fn blind(&self, collection: &str, index: &str, company: &str, value: &str) -> [u8; 32] {
        self.sealer.blind(&format!("{collection}\0{index}\0{company}\0{value}"))
    }

    fn unique_key(&self, collection: &str, company: &str, index: &str, value: &str) -> Vec<u8> {
        let mut k = b"u\0".to_vec();
        push_part(&mut k, index.as_bytes());
        push_part(&mut k, company.as_bytes());
        k.extend_from_slice(&self.blind(collection, index, company, value));
        k
    }

    fn plain_prefix(&self, collection: &str, company: &str, index: &str, value: &str) -> Vec<u8> {
        let mut k = b"i\0".to_vec();
        push_part(&mut k, index.as_bytes());
        push_part(&mut k, company.as_bytes());
        k.extend_from_slice(&self.blind(collection, index, company, value));
        k
    }

    /// The record of `company` with this id.
    pub fn get<R: Record>(&self, company: &str, id: &str) -> Result<Option<Stored<R>>, StoreError> {
        let key = data_key(company, id);
        self.tree(R::COLLECTION)?.get(&key)?.map(|v| self.decode_stored(&key, &v)).transpose()
    }

    /// The record of `company` whose unique `index` holds `value`.
    pub fn find_unique<R: Record>(
        &self,
        company: &str,
        index: &str,
        value: &str,
    ) -> Result<Option<Stored<R>>, StoreError> {
        let tree = self.tree(R::COLLECTION)?;
        match tree.get(self.unique_key(R::COLLECTION, company, index, value))? {
            Some(id) => self.get(company, &String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// The records of `company` whose plain `index` holds `value`, in id order.
    pub fn find<R: Record>(&self, company: &str, index: &str, value: &str) -> Result<Vec<Stored<R>>, StoreError> {
        let tree = self.tree(R::COLLECTION)?;
        let prefix = self.plain_prefix(R::COLLECTION, company, index, value);
        let mut out = Vec::new();
        for kv in tree.scan_prefix(&prefix) {
            let (k, _) = kv?;
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(r) = self.get(company, &id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// One page of `company`'s records in creation order (newest first when asked):
    /// `take` records after skipping `skip`.
    pub fn page<R: Record>(
        &self,
        company: &str,
        newest_first: bool,
        skip: usize,
        take: usize,
    ) -> Result<Vec<Stored<R>>, StoreError> {
        let tree = self.tree(R::COLLECTION)?;
        let iter = tree.scan_prefix(order_prefix(company));
        let ids: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            if newest_first { Box::new(iter.rev()) } else { Box::new(iter) };
        let mut out = Vec::with_capacity(take.min(1024));
        for kv in ids.skip(skip).take(take) {
            let (_, id) = kv?;
            if let Some(r) = self.get(company, &String::from_utf8_lossy(&id))? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Calls `each` for every record of `company`, oldest first (exports).
    pub fn for_each_in_order<R: Record>(
        &self,
        company: &str,
        each: &mut dyn FnMut(R) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for kv in self.tree(R::COLLECTION)?.scan_prefix(order_prefix(company)) {
            let (_, id) = kv?;
            if let Some(r) = self.get::<R>(company, &String::from_utf8_lossy(&id))? {
                each(r.record)?;
            }
        }
        Ok(())
    }

    /// How many records `company` has in the collection.
    pub fn count<R: Record>(&self, company: &str) -> Result<usize, StoreError> {
        Ok(self.tree(R::COLLECTION)?.scan_prefix(order_prefix(company)).keys().count())
    }

    /// Calls `each(company, record)` for every record of the collection, of
    /// every company (`None`) or one, in key order; stops at the first error.
    pub fn for_each<R: Record>(&self, company: Option<&str>, each: Visit<'_, R>) -> Result<(), StoreError> {
        for kv in self.tree(R::COLLECTION)?.scan_prefix(records_prefix(company)) {
            let (k, v) = kv?;
            let (company, stored) = self.decode_entry(&k, &v)?;
            each(company, stored)?;
        }
        Ok(())
    }

    /// A data entry of a collection: its company and its record.
    fn decode_entry<'k, R: Record>(&self, key: &'k [u8], value: &[u8]) -> Result<(&'k str, Stored<R>), StoreError> {
        let (company, _) = split_data_key(key).ok_or_else(|| StoreError::Corrupt("record key".into()))?;
        Ok((company, self.decode_stored(key, value)?))
    }

    /// As [`Records::for_each`], in key order too, but decrypting and decoding
    /// on every core while this thread scans and visits: a start-up reading
    /// 10^6 templates is bound by the decryption, not the scan.
    pub fn for_each_parallel<R: Record + Send>(
        &self,
        company: Option<&str>,
        each: Visit<'_, R>,
    ) -> Result<(), StoreError> {
        use std::sync::mpsc::sync_channel;
        const CHUNK: usize = 2048;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        let prefix = records_prefix(company);
        let tree = self.tree(R::COLLECTION)?;
        type Decoded<R> = Result<Vec<(String, Stored<R>)>, StoreError>;
        std::thread::scope(|scope| {
            let (raw_tx, raw_rx) = sync_channel::<(usize, Vec<(sled::IVec, sled::IVec)>)>(threads * 2);
            let raw_rx = Arc::new(Mutex::new(raw_rx));
            let (done_tx, done_rx) = sync_channel::<(usize, Decoded<R>)>(threads * 2);
            for _ in 0..threads {
                // Each decoder holds the chunk queue: when they all stop, the scanner's sends fail.
                let (raw_rx, done_tx) = (raw_rx.clone(), done_tx.clone());
                scope.spawn(move || {
                    loop {
                        let next = raw_rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                        let Ok((n, chunk)) = next else { return };
                        let decoded = chunk
                            .iter()
                            .map(|(k, v)| self.decode_entry::<R>(k, v).map(|(c, stored)| (c.to_string(), stored)))
                            .collect();
                        if done_tx.send((n, decoded)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop((raw_rx, done_tx));
            let scanner = scope.spawn(move || -> Result<(), StoreError> {
                let mut chunk = Vec::with_capacity(CHUNK);
                let mut n = 0;
                for kv in tree.scan_prefix(prefix) {
                    chunk.push(kv?);
                    if chunk.len() == CHUNK {
                        if raw_tx.send((n, std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))).is_err() {
                            return Ok(());
                        }
                        n += 1;
                    }
                }
                if !chunk.is_empty() {
                    let _ = raw_tx.send((n, chunk));
                }
                Ok(())
            });
            // Chunks come back in any order; visit them in the scan's.
            let mut waiting = BTreeMap::new();
            let mut next = 0;
            let visited = (|| {
                for (n, decoded) in done_rx.iter() {
                    waiting.insert(n, decoded);
                    while let Some(decoded) = waiting.remove(&next) {
                        for (company, stored) in decoded? {
                            each(&company, stored)?;
                        }
                        next += 1;
                    }
                }
                Ok(())
            })();
            // Stops the decoders (and through them the scanner) on an early error.
            drop(done_rx);
            let scanned = scanner.join().unwrap_or_else(|_| Err(StoreError::Corrupt("the scan panicked".into())));
            visited.and(scanned)
        })
    }

    /// Outbox entries after `seq` (exclusive), oldest first, at most `limit`.
    pub fn changes_after(&self, seq: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let tree = self.tree(OUTBOX)?;
        let mut out = Vec::new();
        for kv in tree.range((seq.saturating_add(1)).to_be_bytes()..).take(limit) {
            let (k, v) = kv?;
            let plain = self.open_value(OUTBOX, &k, &v)?;
            out.push(serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(format!("outbox entry: {e}")))?);
        }
        Ok(out)
    }

    /// Drops outbox entries up to `seq` (inclusive), once the sync has them.
    pub fn acknowledge(&self, seq: u64) -> Result<usize, StoreError> {
        let tree = self.tree(OUTBOX)?;
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for k in tree.range(..=seq.to_be_bytes()).keys() {
            batch.remove(k?);
            n += 1;
        }
        tree.apply_batch(batch)?;
        Ok(n)
    }

    /// Runs `f` as one write: what it stages is committed atomically (records,
    /// indexes, outbox) when it returns `Ok`, and durable when this returns.
    /// Nothing is written when it returns an error.
    pub fn write<T, E: From<StoreError>>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        let writing = self.commits.enter();
        let guard = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut tx = Tx { records: self, writes: BTreeMap::new() };
        let out = f(&mut tx)?;
        let writes = tx.writes;
        if writes.is_empty() {
            return Ok(out);
        }
        let mut names = Vec::with_capacity(writes.len());
        let mut trees = Vec::with_capacity(writes.len());
        for name in writes.keys() {
            names.push(*name);
            trees.push(self.tree(name)?);
        }
        let ops: Vec<&BTreeMap<Vec<u8>, Option<Vec<u8>>>> = names.iter().map(|n| &writes[n]).collect();
        trees
            .as_slice()
            .transaction(|views| {
                for (view, ops) in views.iter().zip(&ops) {
                    for (k, v) in ops.iter() {
                        match v {
                            Some(v) => view.insert(k.as_slice(), v.as_slice())?,
                            None => view.remove(k.as_slice())?,
                        };
                    }
                }
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::from(e),
            })?;
        drop(guard);
        self.commits.wait(writing, &self.db)?;
        Ok(out)
    }

    /// Writes and fsyncs so far.
    pub fn commit_stats(&self) -> CommitStats {
        let s = self.commits.lock();
        CommitStats { writes: s.flushed, flushes: s.flushes, flush_seconds: s.flush_ns as f64 / 1e9 }
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// A secret derived from the store key for `purpose` (e.g. signing URLs):
    /// stable across restarts, different for every purpose and store key.
    pub fn secret(&self, purpose: &str) -> [u8; 32] {
        self.sealer.blind(&format!("rostro/secret/{purpose}"))
    }

    /// A value of this edge alone, never synced (a saved gallery index):
    /// sealed like every record, under `l\0<name>`.
    pub fn local(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = local_key(name);
        self.db.get(&key)?.map(|v| self.sealer.open(&key, &v)).transpose()
    }

    /// Replaces the local value `name` and makes it durable.
    pub fn set_local(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let key = local_key(name);
        self.db.insert(&key, self.sealer.seal(&key, value))?;
        self.db.flush()?;
        Ok(())
    }

    /// A number never handed out before (ids, gallery faces).
    pub fn generate_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }
}

/// Where the edge-local value `name` lives in the default tree.
fn local_key(name: &str) -> Vec<u8> {
    [b"l\0".as_slice(), name.as_bytes()].concat()
}

/// The staged changes of one [`Records::write`]. Reads see the write's own
/// changes (gets and unique lookups); plain-index finds and pages read
/// committed data, which no other writer can change meanwhile.
pub struct Tx<'a> {
    records: &'a Records,
    writes: BTreeMap<&'static str, BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl Tx<'_> {
    pub fn records(&self) -> &Records {
        self.records
    }

    /// Whether this write has staged a change to records of type `R` so far.
    pub fn touches<R: Record>(&self) -> bool {
        self.writes.contains_key(R::COLLECTION)
    }

    fn raw_get(&self, collection: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.writes.get(collection).and_then(|w| w.get(key)) {
            return Ok(v.clone());
        }
        Ok(self.records.tree(collection)?.get(key)?.map(|v| v.to_vec()))
    }

    fn stage(&mut self, collection: &'static str, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.writes.entry(collection).or_default().insert(key, value);
    }

    /// Writes raw bytes under `key` of `tree` (migrations only).
    pub(crate) fn raw_put(&mut self, tree: &'static str, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.stage(tree, key, value);
    }

    pub fn get<R: Record>(&self, company: &str, id: &str) -> Result<Option<Stored<R>>, StoreError> {
        let key = data_key(company, id);
        self.raw_get(R::COLLECTION, &key)?.map(|v| self.records.decode_stored(&key, &v)).transpose()
    }

    pub fn find_unique<R: Record>(
        &self,
        company: &str,
        index: &str,
        value: &str,
    ) -> Result<Option<Stored<R>>, StoreError> {
        let k = self.records.unique_key(R::COLLECTION, company, index, value);
        match self.raw_get(R::COLLECTION, &k)? {
            Some(id) => self.get(company, &String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    fn index_keys<R: Record>(&self, company: &str, id: &str, record: &R) -> Vec<(IndexValue, Vec<u8>)> {
        record
            .indexes()
            .into_iter()
            .map(|ix| {
                let key = if ix.unique {
                    self.records.unique_key(R::COLLECTION, company, ix.name, &ix.value)
                } else {
                    let mut k = self.records.plain_prefix(R::COLLECTION, company, ix.name, &ix.value);
                    k.extend_from_slice(id.as_bytes());
                    k
                };
                (ix, key)
            })
            .collect()
    }

    fn change(&mut self, collection: &str, company: &str, id: &str, version: u64, op: Op) -> Result<(), StoreError> {
        let seq = self.records.generate_id()?;
        let change = Change {
            seq,
            collection: collection.into(),
            company: company.into(),
            id: id.into(),
            version,
            op,
            at_ns: crate::util::now_ns(),
        };
        let key = seq.to_be_bytes().to_vec();
        let value = self.records.seal(OUTBOX, &key, &serde_json::to_vec(&change).expect("a change serialises"));
        self.stage(OUTBOX, key, Some(value));
        Ok(())
    }

    /// Creates or replaces `record` in `company`. A unique index value held
    /// by another record is refused ([`StoreError::Unique`]). Returns the new version.
    pub fn put<R: Record>(&mut self, company: &str, record: &R) -> Result<u64, StoreError> {
        let id = record.id().to_string();
        if company.contains('\0') || id.contains('\0') {
            return Err(StoreError::Corrupt("ids may not contain NUL".into()));
        }
        let old = self.get::<R>(company, &id)?;
        let new_keys = self.index_keys(company, &id, record);
        for (ix, key) in &new_keys {
            if ix.unique
                && let Some(owner) = self.raw_get(R::COLLECTION, key)?
                && owner != id.as_bytes()
            {
                return Err(StoreError::Unique { collection: R::COLLECTION, index: ix.name });
            }
        }
        let (version, seq) = match &old {
            Some(o) => {
                for (_, key) in self.index_keys(company, &id, &o.record) {
                    if !new_keys.iter().any(|(_, k)| *k == key) {
                        self.stage(R::COLLECTION, key, None);
                    }
                }
                (o.version + 1, o.seq)
            }
            None => {
                let seq = self.records.generate_id()?;
                self.stage(R::COLLECTION, order_key(company, seq), Some(id.as_bytes().to_vec()));
                (1, seq)
            }
        };
        for (ix, key) in new_keys {
            let value = if ix.unique { id.as_bytes().to_vec() } else { Vec::new() };
            self.stage(R::COLLECTION, key, Some(value));
        }
        let key = data_key(company, &id);
        let mut plain = Vec::with_capacity(16 + 256);
        plain.extend_from_slice(&version.to_le_bytes());
        plain.extend_from_slice(&seq.to_le_bytes());
        plain.extend_from_slice(&record.encode());
        let sealed = self.records.seal(R::COLLECTION, &key, &plain);
        self.stage(R::COLLECTION, key, Some(sealed));
        if R::SYNCED {
            self.change(R::COLLECTION, company, &id, version, Op::Put)?;
        }
        Ok(version)
    }

    /// Erases a record and its index entries; returns what was there.
    pub fn delete<R: Record>(&mut self, company: &str, id: &str) -> Result<Option<R>, StoreError> {
        let Some(old) = self.get::<R>(company, id)? else {
            return Ok(None);
        };
        for (_, key) in self.index_keys(company, id, &old.record) {
            self.stage(R::COLLECTION, key, None);
        }
        self.stage(R::COLLECTION, order_key(company, old.seq), None);
        self.stage(R::COLLECTION, data_key(company, id), None);
        if R::SYNCED {
            self.change(R::COLLECTION, company, id, old.version + 1, Op::Delete)?;
        }
        Ok(Some(old.record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Thing {
        id: String,
        code: Option<String>,
        owner: String,
        secret: String,
    }

    impl JsonRecord for Thing {
        const COLLECTION: &'static str = "things";
        fn id(&self) -> &str {
            &self.id
        }
        fn indexes(&self) -> Vec<IndexValue> {
            let mut v = vec![IndexValue::plain("owner", &self.owner)];
            if let Some(c) = &self.code {
                v.push(IndexValue::unique("code", c));
            }
            v
        }
    }

    fn thing(id: &str, code: Option<&str>, owner: &str) -> Thing {
        Thing { id: id.into(), code: code.map(Into::into), owner: owner.into(), secret: "TOP-SECRET-VALUE".into() }
    }

    fn temp(name: &str) -> StoreConfig {
        let dir = std::env::temp_dir().join(format!("rostro-records-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        StoreConfig { data_dir: dir, key: String::new() }
    }

    #[test]
    fn put_get_indexes_pages_outbox_and_reopen() {
        let config = temp("crud");
        {
            let r = Records::open(&config).expect("open");
            for (i, id) in ["a1", "a2", "a3"].iter().enumerate() {
                let code = format!("C{i}");
                r.write(|tx| tx.put("acme", &thing(id, Some(&code), if i < 2 { "p1" } else { "p2" }))).expect("put");
            }
            r.write(|tx| tx.put("other", &thing("b1", Some("C0"), "p1"))).expect("same code, other company");
            let dup = r.write(|tx| tx.put("acme", &thing("a4", Some("C1"), "p1")));
            assert!(matches!(dup, Err(StoreError::Unique { index: "code", .. })), "{dup:?}");
            assert!(r.get::<Thing>("acme", "a4").expect("get").is_none(), "a refused write leaves nothing");
            let got = r.get::<Thing>("acme", "a2").expect("get").expect("there");
            assert_eq!((got.version, got.record.code.as_deref()), (1, Some("C1")));
            assert_eq!(
                r.find_unique::<Thing>("acme", "code", "C2").expect("find").map(|s| s.record.id),
                Some("a3".into())
            );
            assert!(r.find_unique::<Thing>("other", "code", "C2").expect("find").is_none(), "tenants are apart");
            let p1: Vec<String> =
                r.find::<Thing>("acme", "owner", "p1").expect("find").into_iter().map(|s| s.record.id).collect();
            assert_eq!(p1, ["a1", "a2"]);
            // A change of an indexed value moves the index entry; the old value is free again.
            r.write(|tx| tx.put("acme", &thing("a2", Some("INDEXED-CODE-C9"), "p2"))).expect("update");
            assert_eq!(r.get::<Thing>("acme", "a2").expect("get").map(|s| s.version), Some(2));
            assert!(r.find_unique::<Thing>("acme", "code", "C1").expect("find").is_none());
            r.write(|tx| tx.put("acme", &thing("a5", Some("C1"), "p1"))).expect("C1 is free");
            assert_eq!(r.find::<Thing>("acme", "owner", "p1").expect("find").len(), 2);
            // Pages in creation order, both ways.
            let ids = |v: Vec<Stored<Thing>>| v.into_iter().map(|s| s.record.id).collect::<Vec<_>>();
            assert_eq!(ids(r.page("acme", true, 0, 2).expect("page")), ["a5", "a3"]);
            assert_eq!(ids(r.page("acme", true, 2, 10).expect("page")), ["a2", "a1"]);
            assert_eq!(ids(r.page("acme", false, 1, 2).expect("page")), ["a2", "a3"]);
            assert_eq!(r.count::<Thing>("acme").expect("count"), 4);
            // Delete: record, order and index entries go, and the outbox records it.
            let gone = r.write(|tx| tx.delete::<Thing>("acme", "a1")).expect("delete");
            assert_eq!(gone.map(|t| t.id), Some("a1".into()));
            assert!(r.write(|tx| tx.delete::<Thing>("acme", "a1")).expect("delete").is_none());
            assert_eq!(r.count::<Thing>("acme").expect("count"), 3);
            assert!(r.find_unique::<Thing>("acme", "code", "C0").expect("find").is_none());
            let changes = r.changes_after(0, 100).expect("outbox");
            let summary: Vec<(String, u64, Op)> =
                changes.iter().filter(|c| c.company == "acme").map(|c| (c.id.clone(), c.version, c.op)).collect();
            assert_eq!(
                summary,
                [
                    ("a1".into(), 1, Op::Put),
                    ("a2".into(), 1, Op::Put),
                    ("a3".into(), 1, Op::Put),
                    ("a2".into(), 2, Op::Put),
                    ("a5".into(), 1, Op::Put),
                    ("a1".into(), 2, Op::Delete)
                ]
            );
            assert!(
                changes.windows(2).all(|w| w[0].seq < w[1].seq) && changes.iter().all(|c| c.collection == "things")
            );
            let last = changes[2].seq;
            assert_eq!(r.changes_after(last, 100).expect("outbox").len(), changes.len() - 3);
            r.acknowledge(last).expect("ack");
            assert_eq!(r.changes_after(0, 100).expect("outbox").len(), changes.len() - 3);
            // An error inside a write stages nothing.
            let failed: Result<(), StoreError> = r.write(|tx| {
                tx.put("acme", &thing("a6", None, "p1"))?;
                Err(StoreError::NotFound)
            });
            assert!(failed.is_err() && r.get::<Thing>("acme", "a6").expect("get").is_none());
        }
        let r = Records::open(&config).expect("reopen");
        assert_eq!(r.count::<Thing>("acme").expect("count"), 3);
        let mut seen = Vec::new();
        r.for_each::<Thing>(None, &mut |c, s| {
            seen.push(format!("{c}/{}", s.record.id));
            Ok(())
        })
        .expect("scan");
        assert_eq!(seen, ["acme/a2", "acme/a3", "acme/a5", "other/b1"]);
        drop(r);
        for entry in std::fs::read_dir(config.data_dir.join("db")).expect("db dir").flatten() {
            if entry.path().is_file() {
                let bytes = std::fs::read(entry.path()).expect("read");
                for secret in [&b"TOP-SECRET-VALUE"[..], b"INDEXED-CODE-C9", b"\"p2\""] {
                    assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{secret:?} in the clear");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&config.data_dir);
    }

    #[test]
    fn the_parallel_scan_visits_what_the_plain_one_does_in_its_order_and_stops_on_errors() {
        let config = temp("parallel");
        let r = Records::open(&config).expect("open");
        // Several chunks of 2048, over three companies.
        r.write(|tx| {
            for i in 0..5000 {
                tx.put(["acme", "beta", "zed"][i % 3], &thing(&format!("t{i:05}"), None, "p"))?;
            }
            Ok::<_, StoreError>(())
        })
        .expect("put");
        let collect = |parallel: bool, company: Option<&str>| {
            let mut seen = Vec::new();
            let mut visit = |c: &str, s: Stored<Thing>| {
                seen.push(format!("{c}/{}/{}", s.record.id, s.version));
                Ok(())
            };
            match parallel {
                true => r.for_each_parallel::<Thing>(company, &mut visit),
                false => r.for_each::<Thing>(company, &mut visit),
            }
            .expect("scan");
            seen
        };
        let plain = collect(false, None);
        assert_eq!(plain.len(), 5000);
        assert_eq!(collect(true, None), plain);
        assert_eq!(collect(true, Some("beta")), collect(false, Some("beta")));
        // The visitor's error ends the scan at once.
        let mut visits = 0;
        let stopped = r.for_each_parallel::<Thing>(None, &mut |_, _| {
            visits += 1;
            if visits == 3000 { Err(StoreError::NotFound) } else { Ok(()) }
        });
        assert!(matches!(stopped, Err(StoreError::NotFound)) && visits == 3000, "{stopped:?} after {visits}");
        // A value that does not open is an error, not a skipped record.
        let tree = r.tree("things").expect("tree");
        let (k, _) = tree.scan_prefix(data_key("beta", "")).next().expect("a record").expect("kv");
        tree.insert(k, &b"not sealed"[..]).expect("corrupt");
        assert!(r.for_each_parallel::<Thing>(None, &mut |_, _| Ok(())).is_err());
        drop(r);
        let _ = std::fs::remove_dir_all(&config.data_dir);
    }

    #[test]
    fn concurrent_writers_all_land_with_grouped_flushes() {
        let config = temp("group");
        let r = std::sync::Arc::new(Records::open(&config).expect("open"));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        r.write(|tx| tx.put("acme", &thing(&format!("t{t}-{i}"), Some(&format!("c{t}-{i}")), "p")))
                            .expect("put");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("writer");
        }
        assert_eq!(r.count::<Thing>("acme").expect("count"), 200);
        // A write that fails, and one that stages nothing, leave no writer counted.
        let failed = r.write(|_| Err::<(), StoreError>(StoreError::Corrupt("refused".into())));
        assert!(failed.is_err());
        r.write(|_| Ok::<(), StoreError>(())).expect("empty write");
        let stats = r.commit_stats();
        assert_eq!(stats.writes, 200, "every write was acknowledged as flushed");
        assert!(stats.flushes > 0 && stats.flushes < 200, "concurrent writes shared fsyncs: {stats:?}");
        assert_eq!(r.commits.lock().writing, 0);
        let _ = std::fs::remove_dir_all(&config.data_dir);
    }
}
