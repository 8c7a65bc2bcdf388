//! The schema in use, and how a new one replaces it. [`LiveSchema`] holds one immutable
//! `Arc<Schema>`: a request takes the current one when it starts and keeps it to the end, and
//! a reload builds the next schema off the request path and swaps it in whole, so no request
//! ever sees half of one. A schema that fails to build (a malformed file, an ambiguous route,
//! a rule naming a method that is gone) is refused and the last good one keeps serving.
//! Until a first schema arrives (a reflection source whose upstream is still down), there is
//! none, and the gateway answers 503.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use prost_reflect::DescriptorPool;
use tokio::sync::Notify;

use super::reflection::{self, ReflectionError};
use super::{Schema, files};
use crate::config::{Config, SchemaSource};
use crate::upstream::Upstream;

/// Reflection calls get this long.
const REFLECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// An UNIMPLEMENTED answer asks for a reload at most this often.
const NUDGE_INTERVAL: Duration = Duration::from_secs(5);

/// Why no new schema could be had.
#[derive(Debug)]
pub enum LoadError {
    /// The source cannot be read now (the upstream is down); worth trying again.
    Unavailable(String),
    /// The upstream answered but serves no reflection: trying again will not help.
    NoReflection(String),
    /// The source was read, and its schema refused (with `config`'s rules).
    Refused(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Unavailable(why) | LoadError::NoReflection(why) | LoadError::Refused(why) => {
                f.write_str(why)
            }
        }
    }
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// A new schema serves from now on.
    Changed,
    /// The source gave the schema already in use.
    Unchanged,
}

/// The schema in use and the state of its source.
pub struct LiveSchema {
    source: SchemaSource,
    current: RwLock<Option<Arc<Schema>>>,
    /// Why there is no schema yet, while there is none.
    waiting: Mutex<String>,
    /// The file source's newest mtime and file count when it was last loaded.
    files_seen: Mutex<Option<(Option<SystemTime>, usize)>>,
    nudge: Notify,
    last_nudge: Mutex<Option<Instant>>,
    /// An upstream call answered UNIMPLEMENTED (any source), for `gateway/served.rs`.
    unimplemented: Notify,
    /// A new schema was swapped in.
    changed: Notify,
    /// Why the upstream does not serve this schema, when a check found that out.
    mismatch: Mutex<Option<String>>,
    /// The upstream answered that it serves no reflection, so `mismatch` cannot be known.
    no_reflection: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LiveSchema {
    pub fn new(source: SchemaSource) -> LiveSchema {
        LiveSchema {
            source,
            current: RwLock::new(None),
            waiting: Mutex::new("no schema loaded yet".to_string()),
            files_seen: Mutex::new(None),
            nudge: Notify::new(),
            last_nudge: Mutex::new(None),
            unimplemented: Notify::new(),
            changed: Notify::new(),
            mismatch: Mutex::new(None),
            no_reflection: AtomicBool::new(false),
        }
    }

    pub fn source(&self) -> &SchemaSource {
        &self.source
    }

    /// The schema in use, if one has been loaded.
    pub fn get(&self) -> Option<Arc<Schema>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Why there is no schema yet.
    pub fn waiting(&self) -> String {
        lock(&self.waiting).clone()
    }

    /// Reads the source and builds its schema with `config`'s rules; nothing is swapped.
    /// `None` when the source gave the descriptors of the schema in use: with the same
    /// rules that is the same schema, so the route table and OpenAPI are not built again.
    /// Reading files (protox compiles a directory) and building the tables take CPU in
    /// proportion to the schema: that runs on tokio's blocking threads, so that requests go
    /// on being served meanwhile, on a single worker thread too.
    pub async fn fetch(&self, config: &Config, upstream: &Upstream) -> Result<Option<Schema>, LoadError> {
        let reflected = match &self.source {
            SchemaSource::Compiled => return self.read_local(config).map(Some),
            SchemaSource::Reflection => Some(self.reflect(upstream, &config.upstream.url).await?),
            SchemaSource::Descriptors(_) | SchemaSource::Protos(_) => None,
        };
        let source = self.source.clone();
        let config = config.clone();
        let in_use = self.get().map(|schema| schema.hash().to_string());
        let build = move || {
            let seen = files_at(&source);
            let pool = match reflected {
                Some(pool) => pool,
                None => read_files(&source)?,
            };
            if in_use.is_some_and(|hash| hash == super::hash_of(&pool)) {
                return Ok((seen, None));
            }
            let schema = Schema::dynamic(pool, &config).map_err(|why| refused(&source, why))?;
            Ok((seen, Some(schema)))
        };
        let (seen, built) = tokio::task::spawn_blocking(build)
            .await
            .map_err(|err| refused(&self.source, format!("the build stopped: {err}")))??;
        if seen.is_some() {
            *lock(&self.files_seen) = seen;
        }
        Ok(built)
    }

    /// The schema of a source on this machine (compiled or files), read at once.
    pub fn read_local(&self, config: &Config) -> Result<Schema, LoadError> {
        if self.source == SchemaSource::Compiled {
            return Schema::compiled(config).map_err(|why| refused(&self.source, why));
        }
        let seen = files_at(&self.source);
        let pool = read_files(&self.source)?;
        let schema = Schema::dynamic(pool, config).map_err(|why| refused(&self.source, why))?;
        *lock(&self.files_seen) = seen;
        Ok(schema)
    }

    /// The upstream's descriptors, by server reflection.
    async fn reflect(&self, upstream: &Upstream, url: &http::Uri) -> Result<DescriptorPool, LoadError> {
        reflection::fetch(upstream, REFLECTION_TIMEOUT)
            .await
            .map_err(|err| match err {
                ReflectionError::NotServed(why) => {
                    LoadError::NoReflection(format!("schema reflection: {}", ReflectionError::NotServed(why)))
                }
                ReflectionError::Unreachable(err) => LoadError::Unavailable(format!(
                    "schema reflection: the upstream at {url} is not answering yet ({})",
                    err.message()
                )),
                err @ ReflectionError::Bad(_) => LoadError::Refused(format!("schema {err}")),
            })
    }

    /// Swaps `schema` in, unless it is the one in use.
    pub fn install(&self, schema: Schema) -> Reloaded {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|c| c.hash() == schema.hash()) {
            return Reloaded::Unchanged;
        }
        *current = Some(Arc::new(schema));
        self.changed.notify_one();
        Reloaded::Changed
    }

    /// Notes why a first schema could not be had (shown by `/readyz` and 503 answers).
    pub fn still_waiting(&self, why: &LoadError) {
        if self.get().is_none() {
            *lock(&self.waiting) = why.to_string();
        }
    }

    /// Whether a file source changed since it was last loaded (always false for others).
    pub fn files_changed(&self) -> bool {
        let path = match &self.source {
            SchemaSource::Descriptors(path) | SchemaSource::Protos(path) => path,
            SchemaSource::Compiled | SchemaSource::Reflection => return false,
        };
        lock(&self.files_seen).is_none_or(|seen| seen != files::changed_at(path))
    }

    /// Asks for a reload soon (an upstream answered UNIMPLEMENTED: its schema may have
    /// moved on); at most once per `NUDGE_INTERVAL`.
    /// Whatever the source, it also wakes the check of whether the upstream serves the
    /// schema (`unimplemented`).
    pub fn nudge(&self) {
        let mut last = lock(&self.last_nudge);
        if last.is_some_and(|at| at.elapsed() < NUDGE_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        if self.source == SchemaSource::Reflection {
            self.nudge.notify_one();
        }
        self.unimplemented.notify_one();
    }

    /// Resolves when `nudge` asked for a reload.
    pub async fn nudged(&self) {
        self.nudge.notified().await;
    }

    /// Resolves after an upstream call answered UNIMPLEMENTED (at most once per
    /// `NUDGE_INTERVAL`).
    pub async fn unimplemented(&self) {
        self.unimplemented.notified().await;
    }

    /// Resolves after a new schema was swapped in.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Why the upstream does not serve this schema (shown by `/readyz`), if it does not.
    pub fn mismatch(&self) -> Option<String> {
        lock(&self.mismatch).clone()
    }

    pub fn set_mismatch(&self, why: Option<String>) {
        *lock(&self.mismatch) = why;
    }

    /// Whether the upstream said it serves no reflection, so a mismatch cannot be checked.
    pub fn no_reflection_to_check(&self) -> bool {
        self.no_reflection.load(Ordering::Relaxed)
    }

    pub fn set_no_reflection(&self, none: bool) {
        self.no_reflection.store(none, Ordering::Relaxed);
    }
}

fn refused(source: &SchemaSource, why: String) -> LoadError {
    LoadError::Refused(format!("schema {source}: {why}"))
}

/// A file source's newest mtime and file count now (`None` for other sources).
fn files_at(source: &SchemaSource) -> Option<(Option<SystemTime>, usize)> {
    match source {
        SchemaSource::Descriptors(path) | SchemaSource::Protos(path) => Some(files::changed_at(path)),
        SchemaSource::Compiled | SchemaSource::Reflection => None,
    }
}

/// The descriptors of a file source.
fn read_files(source: &SchemaSource) -> Result<DescriptorPool, LoadError> {
    match source {
        SchemaSource::Descriptors(path) => files::descriptor_file(path),
        SchemaSource::Protos(dir) => files::proto_dir(dir),
        SchemaSource::Compiled | SchemaSource::Reflection => {
            return Err(LoadError::Unavailable(format!(
                "schema {source}: no files to read"
            )));
        }
    }
    .map_err(|why| refused(source, why))
}
