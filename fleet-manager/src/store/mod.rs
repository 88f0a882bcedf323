//! The source of truth: specs, intents, observations and the journal, in SQL through `sqlx`.
//!
//! SQLite (a file under the data folder) by default, PostgreSQL in production: one code path
//! through sqlx's `Any` driver, `$n` placeholders (both accept them), and the same migrations
//! (only the journal's auto-increment key is spelled per dialect).
//!
//! Every resource carries a `generation` (bumped when its spec changes; a write naming a stale one
//! is refused) and the store-wide `revision` of its last write (what `--wait` waits for the
//! reconciler to have converged on).

use std::collections::BTreeMap;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::spec::{self, ClusterSpec, Declared, DeclaredSpec, FieldError, Kind};

mod clients;
mod triggers;
mod operations;
pub use operations::{OperationCommand, OperationEffects};
pub use clients::ReportOutcome;
pub use fleet_api::wire::{ApplyOutcome, ApplyResult, JournalEntry};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} `{name}` does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("conflict on {resource}: {message}")]
    Conflict { resource: String, message: String },
    #[error("{0}")]
    Invalid(FieldError),
    /// A document names a cluster that is not declared (the field is `spec.cluster`).
    #[error("{0}")]
    Undeclared(FieldError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database URL `{0}` is not supported: use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    /// The SQLite file could not be made owner-only (it holds the host-token key).
    #[error("{0}")]
    FileMode(String),
    /// Stored data this version cannot read (written by a newer version, or damaged).
    #[error("{what} is unreadable: {message}")]
    Unreadable { what: String, message: String },
    /// A write of a deposed leader: a newer leader (a higher epoch) has claimed the store.
    #[error("write refused: this instance led with epoch {epoch}, and a newer leader has taken over")]
    Fenced { epoch: i64 },
    /// An operation's write made only if it was not cancelled (a switch), refused: it was.
    #[error("operation {id} was cancelled before this step was written")]
    CancelRequested { id: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time and makes a waiting writer sleep in its busy handler
    /// (up to 100 ms a try): this process's writers queue here instead, handing over at once.
    /// (Other processes on the same file still wait through `busy_timeout`.)
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// One resource as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredResource {
    /// The effective document: what the user declared with the operations' overrides laid over
    /// it. Everything that acts on the fleet reads this one.
    pub declared: Declared,
    /// The document as the user applied it (what an unchanged re-apply is compared with).
    pub user: Declared,
    pub overrides: fleet_api::spec::Overrides,
    pub cluster: String,
    pub generation: i64,
    pub revision: i64,
    pub uid: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub deleting: bool,
}

impl StoredResource {
    pub fn kind(&self) -> Kind {
        self.declared.kind()
    }
    pub fn key(&self) -> String {
        self.declared.key()
    }
}

#[derive(Clone, Debug)]
pub struct NewJournalEntry {
    pub actor: String,
    pub cluster: String,
    pub action: String,
    pub detail: serde_json::Value,
    pub outcome: &'static str,
    pub message: String,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The same schema on both backends; only the journal's auto-increment key is spelled per dialect.
const MIGRATIONS: &[(i64, &[&str])] = &[(
    1,
    &[
        "CREATE TABLE resources (kind TEXT NOT NULL, name TEXT NOT NULL, cluster TEXT NOT NULL, spec TEXT NOT NULL, labels TEXT NOT NULL, generation BIGINT NOT NULL, revision BIGINT NOT NULL, uid TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, deleting BIGINT NOT NULL, PRIMARY KEY (kind, name))",
        "CREATE INDEX resources_cluster ON resources (cluster)",
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        "INSERT INTO counters (name, value) VALUES ('revision', 0)",
        "CREATE TABLE intents (cluster TEXT PRIMARY KEY, intent TEXT NOT NULL, updated_ms BIGINT NOT NULL)",
        "CREATE TABLE observations (cluster TEXT PRIMARY KEY, status TEXT NOT NULL, updated_ms BIGINT NOT NULL)",
        "CREATE TABLE journal (id AUTO_ID, at_ms BIGINT NOT NULL, actor TEXT NOT NULL, cluster TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL, outcome TEXT NOT NULL, message TEXT NOT NULL)",
        "CREATE INDEX journal_cluster ON journal (cluster, id)",
    ],
),
(
    2,
    &[
        // The epoch of the newest leader (its election znode's czxid): every reconciler write
        // checks it in its own transaction, so a deposed leader's late writes are refused.
        "INSERT INTO counters (name, value) VALUES ('leader_epoch', 0)",
        "CREATE INDEX journal_at ON journal (at_ms)",
    ],
),
(
    3,
    &[
        // Operations (scale-up, ...): requests the leader advances through phases.
        "CREATE TABLE operations (id TEXT PRIMARY KEY, cluster TEXT NOT NULL, kind TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL, phase TEXT NOT NULL, active BIGINT NOT NULL, approved BIGINT NOT NULL, cancel_requested BIGINT NOT NULL, revision BIGINT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, created_by TEXT NOT NULL)",
        "CREATE INDEX operations_cluster ON operations (cluster, active)",
        "CREATE INDEX operations_revision ON operations (revision)",
    ],
),
(
    4,
    &[
        // What each client instance last reported (route, binding, counters); rows expire.
        "CREATE TABLE client_reports (instance TEXT PRIMARY KEY, route TEXT NOT NULL, report TEXT NOT NULL, reported_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL)",
        "CREATE INDEX client_reports_route ON client_reports (route, expires_ms)",
    ],
),
(
    5,
    &[
        // Where each route's traffic is and its standby, written by failovers and fallbacks.
        "CREATE TABLE route_status (route TEXT PRIMARY KEY, status TEXT NOT NULL, updated_ms BIGINT NOT NULL)",
    ],
),
(
    6,
    &[
        // Automatic failover: each route's trigger state (kept by the leader) and holds.
        "CREATE TABLE route_triggers (route TEXT PRIMARY KEY, state TEXT NOT NULL, updated_ms BIGINT NOT NULL)",
        "CREATE TABLE route_holds (route TEXT PRIMARY KEY, hold TEXT NOT NULL, updated_ms BIGINT NOT NULL)",
    ],
),
(
    7,
    &[
        // Keys the fleet manager instances share (the host-token key), made once by the first.
        "CREATE TABLE fleet_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL, created_ms BIGINT NOT NULL)",
    ],
),
(
    8,
    &[
        // Client reports are bound to the token that sent an instance's first report and to the
        // credential it was given then (its SHA-256).
        "ALTER TABLE client_reports ADD COLUMN token TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE client_reports ADD COLUMN credential TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX client_reports_token ON client_reports (token, expires_ms)",
    ],
),
(
    9,
    &[
        // Values operations set in place of the user's spec (a scale-up's broker count), so the
        // spec stays the user's and re-applying it changes nothing.
        "ALTER TABLE resources ADD COLUMN overrides TEXT NOT NULL DEFAULT '{}'",
        // The failover or fallback a maintenance operation steps aside for.
        "ALTER TABLE operations ADD COLUMN paused_by TEXT NOT NULL DEFAULT ''",
    ],
)];

/// The journal's bounds: older or surplus rows are pruned by the leader.
#[derive(Clone, Copy, Debug)]
pub struct JournalRetention {
    pub max_rows: i64,
    pub max_age_ms: i64,
}

impl Default for JournalRetention {
    fn default() -> Self {
        Self { max_rows: 100_000, max_age_ms: 30 * 24 * 3_600_000 }
    }
}

/// What one cluster's reconcile writes, in one transaction (see [`Store::record`]).
#[derive(Clone, Debug, Default)]
pub struct PassRecord {
    pub cluster: String,
    pub journal: Vec<NewJournalEntry>,
    pub intent: Option<serde_json::Value>,
    pub status: Option<serde_json::Value>,
    /// Drop the cluster's rows (teardown finished) instead of writing intent and status.
    pub forget_cluster: bool,
    /// Topics whose deletion finished: drop their rows.
    pub forget_topics: Vec<String>,
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// The SQLite file (and its WAL and shared-memory files, which SQLite creates with the database
/// file's mode) readable by its owner only: it holds the host-token key. Created 0600 when new; an
/// existing file that others may read is narrowed to 0600 and said so.
fn secure_sqlite_file(url: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path.contains(":memory:") || url.contains("mode=memory") {
        return Ok(());
    }
    let path = std::path::Path::new(path);
    let err = |e: std::io::Error| StoreError::FileMode(format!("{}: {e}", path.display()));
    if !path.exists() {
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path).map_err(err)?;
    }
    for file in [path.to_path_buf(), std::path::PathBuf::from(format!("{}-wal", path.display())), std::path::PathBuf::from(format!("{}-shm", path.display()))] {
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
            tracing::warn!(file = %file.display(), mode = format!("{mode:04o}"), "the store file was readable by others; narrowed to 0600 (it holds the host-token key)");
        }
    }
    Ok(())
}

impl Store {
    /// Connects and runs pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(url.to_string()));
        };
        // An in-memory SQLite database (tests) is shared through one connection: SQLite's shared
        // cache would answer contention with "table is locked" instead of waiting.
        let connections = match backend {
            Backend::Sqlite if url.contains(":memory:") => 1,
            // Reconciles (4 by default), a trigger pass and the API read at once; WAL readers are cheap.
            Backend::Sqlite => 8,
            Backend::Postgres => 8,
        };
        let mut options = AnyPoolOptions::new().max_connections(connections);
        if backend == Backend::Sqlite {
            secure_sqlite_file(url)?;
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets the API read while the reconciler writes; the busy timeout queues
                    // writers instead of failing them.
                    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        let store = Self { pool, backend, writer: Default::default() };
        store.migrate().await?;
        Ok(store)
    }

    /// The shared secret `name`: `candidate` if none was stored yet (the first instance's wins
    /// a race: every instance reads back the stored one).
    pub async fn secret_or_insert(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        {
            let _writer = self.writer().await;
            sqlx::query("INSERT INTO fleet_secrets (name, value, created_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(candidate)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
        }
        let row = sqlx::query("SELECT value FROM fleet_secrets WHERE name = $1").bind(name).fetch_one(&self.pool).await?;
        Ok(sqlx::Row::try_get(&row, "value")?)
    }

    /// The in-process writer slot (SQLite only; PostgreSQL handles concurrent writers itself).
    async fn writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// A write transaction, begun once this process's writer slot is held (kept with the guard).
    async fn begin_write(&self) -> Result<(Option<tokio::sync::MutexGuard<'_, ()>>, Tx<'_>), StoreError> {
        let writer = self.writer().await;
        let tx = self.pool.begin().await?;
        Ok((writer, tx))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)")
            .execute(&self.pool)
            .await?;
        let auto_id = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        for (version, statements) in MIGRATIONS {
            let (_writer, mut tx) = self.begin_write().await?;
            let done: Option<i64> = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()?;
            if done.is_some() {
                continue;
            }
            for statement in statements.iter() {
                sqlx::query(&statement.replace("AUTO_ID", auto_id)).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)")
                .bind(*version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, "applied store migration");
        }
        Ok(())
    }

    /// Takes the store's write lock first thing in a read-then-write transaction: SQLite would
    /// otherwise fail the later upgrade (SQLITE_BUSY_SNAPSHOT) when another writer got in between,
    /// and PostgreSQL would let two appliers check against the same stale state.
    async fn lock_for_write(tx: &mut Tx<'_>) -> Result<(), StoreError> {
        sqlx::query("UPDATE counters SET value = value WHERE name = 'revision'").execute(&mut **tx).await?;
        Ok(())
    }

    async fn next_revision(tx: &mut Tx<'_>) -> Result<i64, StoreError> {
        sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'revision'").execute(&mut **tx).await?;
        let row = sqlx::query("SELECT value FROM counters WHERE name = 'revision'").fetch_one(&mut **tx).await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Refuses the transaction unless `epoch` is still the newest leader's. The UPDATE takes the
    /// row's write lock, so a concurrent claim by a new leader is ordered before or after it,
    /// never in between.
    async fn check_fence(tx: &mut Tx<'_>, epoch: i64) -> Result<(), StoreError> {
        let held = sqlx::query("UPDATE counters SET value = value WHERE name = 'leader_epoch' AND value = $1").bind(epoch).execute(&mut **tx).await?;
        if held.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Fenced { epoch })
        }
    }

    /// A newly elected leader claims the store with its epoch; every write of an older leader is
    /// refused from then on. Fails (`Fenced`) if a newer leader already claimed it.
    pub async fn claim_leadership(&self, epoch: i64) -> Result<(), StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        let claimed = sqlx::query("UPDATE counters SET value = $1 WHERE name = 'leader_epoch' AND value <= $1").bind(epoch).execute(&mut *tx).await?;
        tx.commit().await?;
        if claimed.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Fenced { epoch })
        }
    }

    pub async fn leader_epoch(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT value FROM counters WHERE name = 'leader_epoch'").fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// The one write of a cluster's reconcile: journal, intent and status (or the removal of a
    /// torn-down cluster) together, fenced by the leader's epoch.
    pub async fn record(&self, epoch: i64, record: &PassRecord) -> Result<(), StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::check_fence(&mut tx, epoch).await?;
        for entry in &record.journal {
            Self::append_in(&mut tx, entry).await?;
        }
        for topic in &record.forget_topics {
            sqlx::query("DELETE FROM resources WHERE kind = 'Topic' AND name = $1 AND deleting = 1")
                .bind(spec::topic_key(&record.cluster, topic))
                .execute(&mut *tx)
                .await?;
        }
        if record.forget_cluster {
            Self::remove_cluster_in(&mut tx, &record.cluster).await?;
        } else {
            if let Some(intent) = &record.intent {
                Self::put_blob_in(&mut tx, "intents", "intent", &record.cluster, intent).await?;
            }
            if let Some(status) = &record.status {
                Self::put_blob_in(&mut tx, "observations", "status", &record.cluster, status).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Persists a cluster's intent ahead of acting on it (launch tokens before the launch), fenced.
    pub async fn put_intent_fenced(&self, epoch: i64, cluster: &str, intent: &serde_json::Value) -> Result<(), StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::check_fence(&mut tx, epoch).await?;
        Self::put_blob_in(&mut tx, "intents", "intent", cluster, intent).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A journal entry written by the leader (fenced).
    pub async fn append_journal_fenced(&self, epoch: i64, e: &NewJournalEntry) -> Result<(), StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::check_fence(&mut tx, epoch).await?;
        Self::append_in(&mut tx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Clusters with a resource written after `revision` (what a write woke the leader for).
    pub async fn clusters_changed_since(&self, revision: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT cluster FROM resources WHERE revision > $1 UNION SELECT cluster FROM operations WHERE revision > $1")
            .bind(revision)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
    }

    /// Names of every declared cluster.
    pub async fn cluster_names(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT name FROM resources WHERE kind = 'KafkaCluster' ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
    }

    /// Keeps the journal bounded: drops entries older than the age limit, then the oldest beyond
    /// the row limit. Returns how many were dropped.
    pub async fn prune_journal(&self, retention: JournalRetention) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        let mut dropped = sqlx::query("DELETE FROM journal WHERE at_ms < $1").bind(now_ms() - retention.max_age_ms).execute(&self.pool).await?.rows_affected();
        let newest = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM journal").fetch_one(&self.pool).await?.try_get::<i64, _>(0)?;
        dropped += sqlx::query("DELETE FROM journal WHERE id <= $1").bind(newest - retention.max_rows).execute(&self.pool).await?.rows_affected();
        Ok(dropped)
    }

    pub async fn revision(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT value FROM counters WHERE name = 'revision'").fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    fn row_to_resource(row: &AnyRow) -> Result<StoredResource, StoreError> {
        let kind: String = row.try_get("kind")?;
        let name: String = row.try_get("name")?;
        let spec_text: String = row.try_get("spec")?;
        let labels: String = row.try_get("labels")?;
        let generation: i64 = row.try_get("generation")?;
        let kind = Kind::parse(&kind).ok_or_else(|| StoreError::Conflict {
            resource: name.clone(),
            message: format!("stored kind `{kind}` is unknown to this version"),
        })?;
        let mut user = Declared::from_stored(kind, &name, generation, &spec_text).map_err(StoreError::Invalid)?;
        user.labels = serde_json::from_str(&labels).unwrap_or_default();
        let overrides_text: String = row.try_get("overrides")?;
        let overrides: fleet_api::spec::Overrides = serde_json::from_str(&overrides_text)
            .map_err(|e| StoreError::Unreadable { what: format!("overrides of {name}"), message: e.to_string() })?;
        let declared = if overrides.is_empty() {
            user.clone()
        } else {
            let spec: serde_json::Value = serde_json::from_str(&spec_text).map_err(|e| StoreError::Unreadable { what: format!("spec of {name}"), message: e.to_string() })?;
            let effective = fleet_api::spec::with_overrides(&spec, &overrides).to_string();
            let mut d = Declared::from_stored(kind, &name, generation, &effective).map_err(StoreError::Invalid)?;
            d.labels = user.labels.clone();
            d
        };
        Ok(StoredResource {
            declared,
            user,
            overrides,
            cluster: row.try_get("cluster")?,
            generation,
            revision: row.try_get("revision")?,
            uid: row.try_get("uid")?,
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
            deleting: row.try_get::<i64, _>("deleting")? != 0,
        })
    }

    const COLUMNS: &'static str = "kind, name, cluster, spec, labels, generation, revision, uid, created_ms, updated_ms, deleting, overrides";

    pub async fn list(&self, kind: Option<Kind>, cluster: Option<&str>) -> Result<Vec<StoredResource>, StoreError> {
        if let (None, Some(cluster)) = (kind, cluster) {
            // One cluster's resources (the controller's read per reconcile): through the index.
            let sql = format!("SELECT {} FROM resources WHERE cluster = $1 ORDER BY kind, name", Self::COLUMNS);
            let rows = sqlx::query(&sql).bind(cluster).fetch_all(&self.pool).await?;
            return rows.iter().map(Self::row_to_resource).collect();
        }
        let sql = format!(
            "SELECT {} FROM resources WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR cluster = $2) ORDER BY kind, name",
            Self::COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(kind.map(Kind::as_str).unwrap_or(""))
            .bind(cluster.unwrap_or(""))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::row_to_resource).collect()
    }

    pub async fn get(&self, kind: Kind, key: &str) -> Result<StoredResource, StoreError> {
        let sql = format!("SELECT {} FROM resources WHERE kind = $1 AND name = $2", Self::COLUMNS);
        let row = sqlx::query(&sql).bind(kind.as_str()).bind(key).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => Self::row_to_resource(&row),
            None => Err(StoreError::NotFound { kind: kind.as_str(), name: key.to_string() }),
        }
    }

    async fn load_all(tx: &mut Tx<'_>) -> Result<BTreeMap<(Kind, String), StoredResource>, StoreError> {
        let sql = format!("SELECT {} FROM resources", Self::COLUMNS);
        let rows = sqlx::query(&sql).fetch_all(&mut **tx).await?;
        let mut out = BTreeMap::new();
        for row in &rows {
            let r = Self::row_to_resource(row)?;
            out.insert((r.kind(), r.key()), r);
        }
        Ok(out)
    }

    /// Applies a batch all-or-nothing: every document is checked against the stored state plus
    /// the batch itself before anything is written. With `dry_run` nothing is written.
    pub async fn apply(&self, batch: &[Declared], actor: &str, dry_run: bool) -> Result<Vec<ApplyResult>, StoreError> {
        self.apply_with(batch, actor, ApplyOptions { dry_run, ..ApplyOptions::default() }, ApplyEffects::default()).await.map(|(r, _)| r)
    }

    /// [`Store::apply`] with every option, and the operations it starts (their IDs are returned).
    pub async fn apply_with(&self, batch: &[Declared], actor: &str, options: ApplyOptions, effects: ApplyEffects) -> Result<(Vec<ApplyResult>, Vec<String>), StoreError> {
        let dry_run = options.dry_run;
        let (_writer, mut tx) = self.begin_write().await?;
        if !dry_run {
            Self::lock_for_write(&mut tx).await?;
        }
        let existing = Self::load_all(&mut tx).await?;
        let context = ApplyContext { route_status: Self::route_statuses_in(&mut tx).await?, active: Self::active_operations_in(&mut tx).await? };
        check_batch(batch, &existing, options, &context)?;
        let mut results = Vec::new();
        let mut revision = None;
        let now = now_ms();
        for d in batch {
            let key = d.key();
            let spec_text = d.spec_json().to_string();
            let labels = serde_json::to_string(&d.labels).unwrap_or_else(|_| "{}".into());
            let cluster = d.owner_cluster().to_string();
            match existing.get(&(d.kind(), key.clone())) {
                Some(old) if old.user.spec == d.spec && old.user.labels == d.labels => {
                    results.push(ApplyResult {
                        kind: d.kind(),
                        name: key,
                        cluster: cluster.clone(),
                        outcome: ApplyOutcome::Unchanged,
                        generation: old.generation,
                        revision: old.revision,
                    });
                }
                Some(old) => {
                    let rev = match revision {
                        Some(r) => r,
                        None if dry_run => old.revision + 1,
                        None => {
                            let r = Self::next_revision(&mut tx).await?;
                            revision = Some(r);
                            r
                        }
                    };
                    if !dry_run {
                        let overrides = serde_json::to_string(&overrides_after_apply(old, d)).unwrap_or_else(|_| "{}".into());
                        let updated = sqlx::query(
                            "UPDATE resources SET spec = $1, labels = $2, generation = generation + 1, revision = $3, updated_ms = $4, cluster = $5, overrides = $9 \
                             WHERE kind = $6 AND name = $7 AND generation = $8",
                        )
                        .bind(&spec_text)
                        .bind(&labels)
                        .bind(rev)
                        .bind(now)
                        .bind(&cluster)
                        .bind(d.kind().as_str())
                        .bind(&key)
                        .bind(old.generation)
                        .bind(&overrides)
                        .execute(&mut *tx)
                        .await?;
                        if updated.rows_affected() != 1 {
                            return Err(StoreError::Conflict {
                                resource: d.display(),
                                message: "changed by another writer meanwhile; read it again and retry".into(),
                            });
                        }
                    }
                    results.push(ApplyResult {
                        kind: d.kind(),
                        name: key,
                        cluster: cluster.clone(),
                        outcome: ApplyOutcome::Configured,
                        generation: old.generation + 1,
                        revision: rev,
                    });
                }
                None => {
                    let rev = match revision {
                        Some(r) => r,
                        None if dry_run => 0,
                        None => {
                            let r = Self::next_revision(&mut tx).await?;
                            revision = Some(r);
                            r
                        }
                    };
                    if !dry_run {
                        Self::insert_resource(&mut tx, d, rev, now).await?;
                    }
                    results.push(ApplyResult { kind: d.kind(), name: key, cluster: cluster.clone(), outcome: ApplyOutcome::Created, generation: 1, revision: rev });
                }
            }
        }
        // A changed `brokerConfig` reaches the running brokers through a ConfigRollout, created
        // with the spec in this transaction (what changed, and how each key takes effect).
        let mut rollouts = Vec::new();
        for d in batch {
            let DeclaredSpec::KafkaCluster(new) = &d.spec else { continue };
            let Some(old) = existing.get(&(d.kind(), d.key())) else { continue };
            let DeclaredSpec::KafkaCluster(was) = &old.declared.spec else { continue };
            let (was, now) = (spec::effective_cluster(&d.name, was), spec::effective_cluster(&d.name, new));
            if let Some(rollout) = fleet_api::operation::RolloutSpec::between(&was.broker_config, &now.broker_config) {
                rollouts.push((d.name.clone(), rollout));
            }
        }
        if dry_run {
            tx.rollback().await?;
            let previews = rollouts.iter().map(|(c, r)| format!("(dry run) ConfigRollout of {c}: {}", describe_rollout(r))).collect();
            return Ok((results, previews));
        }
        // A hand-moved route (its spec's cluster changed, which check_batch allows only while it
        // is Normal and no operation moves it) takes its traffic along, recorded as a move: the
        // binding follows the route's status, and the cluster it left stays one its clients may
        // still report (draining it).
        for d in batch {
            let DeclaredSpec::Route(r) = &d.spec else { continue };
            let from = match existing.get(&(Kind::Route, d.key())).map(|o| &o.user.spec) {
                Some(DeclaredSpec::Route(u)) if u.cluster != r.cluster => context.route_status.get(&d.name).map_or_else(|| u.cluster.clone(), |s| s.cluster.clone()),
                _ => continue,
            };
            let rev = match revision {
                Some(r) => r,
                None => {
                    let r = Self::next_revision(&mut tx).await?;
                    revision = Some(r);
                    r
                }
            };
            let moved = fleet_api::route::RouteStatus {
                phase: fleet_api::route::RouteState::Normal,
                cluster: r.cluster.clone(),
                standby: None,
                operation: None,
                last_move: Some(fleet_api::route::RouteMove { at_ms: now, from, to: r.cluster.clone(), operation: "apply".into(), reason: format!("spec.cluster changed by {actor}") }),
                clients: Vec::new(),
                revision: rev,
                // The clusters it left stay closed to it, but the one it now points at.
                sealed: context.route_status.get(&d.name).map(|s| s.sealed.iter().filter(|c| **c != r.cluster).cloned().collect()).unwrap_or_default(),
                ..Default::default()
            };
            Self::put_route_status_in(&mut tx, &d.name, &moved).await?;
        }
        // Lower broker counts: each one's decommission, in this transaction, and the count held
        // where it is until the decommission has retired its brokers.
        let mut started = Vec::new();
        for (cluster, spec) in effects.decommissions {
            let op = Self::create_operation_in(&mut tx, &cluster, &fleet_api::operation::OperationSpec::Decommission(spec.clone()), actor).await?;
            let held = fleet_api::spec::SpecOverride {
                field: "brokers".into(),
                value: serde_json::json!(spec.from_brokers),
                operation: op.clone(),
                reason: format!("held at {} until {op} has moved every replica off brokers {:?} and retired them", spec.from_brokers, spec.leaving),
                at_ms: now,
            };
            Self::set_override_in(&mut tx, Kind::KafkaCluster, &cluster, held).await?;
            started.push(op);
        }
        for (cluster, rollout) in rollouts {
            let op = Self::create_operation_in(&mut tx, &cluster, &fleet_api::operation::OperationSpec::ConfigRollout(rollout), actor).await?;
            started.push(op);
        }
        let changed: Vec<&ApplyResult> = results.iter().filter(|r| r.outcome != ApplyOutcome::Unchanged).collect();
        for r in &changed {
            let cluster = r.cluster.clone();
            Self::append_in(
                &mut tx,
                &NewJournalEntry {
                    actor: actor.to_string(),
                    cluster,
                    action: "apply".into(),
                    detail: serde_json::json!({"name": r.name, "outcome": r.outcome, "generation": r.generation}),
                    outcome: "ok",
                    message: format!("{} {} {} (generation {})", r.kind.as_str(), r.name, outcome_word(r.outcome), r.generation),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok((results, started))
    }

    /// Sets (or replaces) one override of a resource.
    pub(crate) async fn set_override_in(tx: &mut Tx<'_>, kind: Kind, key: &str, o: fleet_api::spec::SpecOverride) -> Result<(), StoreError> {
        Self::edit_overrides_in(tx, kind, key, |all| {
            all.insert(o.field.clone(), o);
        })
        .await
    }

    /// Rewrites a resource's overrides through `edit`.
    pub(crate) async fn edit_overrides_in(tx: &mut Tx<'_>, kind: Kind, key: &str, edit: impl FnOnce(&mut fleet_api::spec::Overrides)) -> Result<(), StoreError> {
        let row = sqlx::query("SELECT overrides FROM resources WHERE kind = $1 AND name = $2").bind(kind.as_str()).bind(key).fetch_optional(&mut **tx).await?;
        let Some(row) = row else { return Ok(()) };
        let text: String = row.try_get(0)?;
        let mut all: fleet_api::spec::Overrides = serde_json::from_str(&text).unwrap_or_default();
        edit(&mut all);
        sqlx::query("UPDATE resources SET overrides = $1 WHERE kind = $2 AND name = $3")
            .bind(serde_json::to_string(&all).unwrap_or_else(|_| "{}".into()))
            .bind(kind.as_str())
            .bind(key)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Inserts a new resource row at generation 1.
    pub(crate) async fn insert_resource(tx: &mut Tx<'_>, d: &Declared, revision: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO resources (kind, name, cluster, spec, labels, generation, revision, uid, created_ms, updated_ms, deleting) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $8, 0)",
        )
        .bind(d.kind().as_str())
        .bind(d.key())
        .bind(d.owner_cluster())
        .bind(d.spec_json().to_string())
        .bind(serde_json::to_string(&d.labels).unwrap_or_else(|_| "{}".into()))
        .bind(revision)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Marks a resource for deletion (a cluster takes its topics with it); the reconciler tears
    /// down what exists and then [`Store::remove`]s the rows. Routes have nothing to tear down and
    /// go at once. Returns the revision of the change.
    pub async fn delete(&self, kind: Kind, key: &str, actor: &str, generation: Option<i64>) -> Result<i64, StoreError> {
        self.delete_checked(kind, key, actor, generation, false).await
    }

    /// [`Store::delete`], or with `dry_run` every check it makes and nothing written (the
    /// answer is the store's revision as it is).
    pub async fn delete_checked(&self, kind: Kind, key: &str, actor: &str, generation: Option<i64>, dry_run: bool) -> Result<i64, StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::lock_for_write(&mut tx).await?;
        let existing = Self::load_all(&mut tx).await?;
        let Some(target) = existing.get(&(kind, key.to_string())) else {
            return Err(StoreError::NotFound { kind: kind.as_str(), name: key.to_string() });
        };
        if let Some(g) = generation {
            if g != target.generation {
                return Err(StoreError::Conflict {
                    resource: target.declared.display(),
                    message: format!("generation is {}, not {g}; read it again", target.generation),
                });
            }
        }
        if kind == Kind::Route {
            if let Some(id) = Self::operation_moving(&mut tx, key).await? {
                return Err(StoreError::Conflict {
                    resource: target.declared.display(),
                    message: format!("operation {id} is moving it: wait for it to end or cancel it"),
                });
            }
        }
        if kind == Kind::KafkaCluster {
            // A route whose traffic is on it (its status says where; a route never moved, its spec).
            let statuses = Self::route_statuses_in(&mut tx).await?;
            let routes: Vec<&str> = existing
                .values()
                .filter(|r| r.kind() == Kind::Route)
                .filter(|r| match statuses.get(&r.declared.name) {
                    Some(s) if !s.cluster.is_empty() => s.cluster == key,
                    _ => r.cluster == key,
                })
                .map(|r| r.declared.name.as_str())
                .collect();
            if !routes.is_empty() {
                return Err(StoreError::Conflict {
                    resource: target.declared.display(),
                    message: format!("route(s) {} are on it: fail them over or delete them first", routes.join(", ")),
                });
            }
            // A standby kept for fallback, or a cluster an operation under way uses.
            for (route, status) in &statuses {
                if status.standby.as_deref() == Some(key) {
                    return Err(StoreError::Conflict {
                        resource: target.declared.display(),
                        message: format!(
                            "route {route} keeps it as its standby for fallback: fall back to it (fleetctl fallback {route}), or release it (fleetctl release-standby {route})"
                        ),
                    });
                }
            }
            let ops = sqlx::query("SELECT id, cluster, spec, status FROM operations WHERE active = 1").fetch_all(&mut *tx).await?;
            for row in ops {
                let id: String = row.try_get(0)?;
                let cluster: String = row.try_get(1)?;
                let spec: Option<fleet_api::operation::OperationSpec> = serde_json::from_str(&row.try_get::<String, _>(2)?).ok();
                let status: Option<fleet_api::operation::OperationStatus> = serde_json::from_str(&row.try_get::<String, _>(3)?).ok();
                let uses = cluster == key
                    || status.and_then(|s| s.target).as_deref() == Some(key)
                    || matches!(&spec, Some(fleet_api::operation::OperationSpec::Failover(f) | fleet_api::operation::OperationSpec::Fallback(f))
                        if f.to.as_deref() == Some(key) || f.replaces.as_deref() == Some(key));
                if uses {
                    return Err(StoreError::Conflict {
                        resource: target.declared.display(),
                        message: format!("operation {id} uses it: wait for it to end (fleetctl get operations) or cancel it"),
                    });
                }
            }
        }
        if dry_run {
            // Dropped without a commit: nothing of it is written.
            return Ok(target.revision);
        }
        let rev = Self::next_revision(&mut tx).await?;
        let now = now_ms();
        if kind == Kind::Route {
            sqlx::query("DELETE FROM resources WHERE kind = $1 AND name = $2").bind(kind.as_str()).bind(key).execute(&mut *tx).await?;
            for table in ["route_status", "route_triggers", "route_holds"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE route = $1")).bind(key).execute(&mut *tx).await?;
            }
        } else {
            sqlx::query("UPDATE resources SET deleting = 1, revision = $1, updated_ms = $2 WHERE kind = $3 AND name = $4")
                .bind(rev)
                .bind(now)
                .bind(kind.as_str())
                .bind(key)
                .execute(&mut *tx)
                .await?;
            if kind == Kind::KafkaCluster {
                sqlx::query("UPDATE resources SET deleting = 1, revision = $1, updated_ms = $2 WHERE kind = 'Topic' AND cluster = $3")
                    .bind(rev)
                    .bind(now)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Self::append_in(
            &mut tx,
            &NewJournalEntry {
                actor: actor.to_string(),
                cluster: target.cluster.clone(),
                action: format!("delete {}", kind.as_str()),
                detail: serde_json::json!({"name": key}),
                outcome: "ok",
                message: format!("{} {key} marked for deletion", kind.as_str()),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(rev)
    }

    /// Removes rows whose teardown the reconciler finished (the reconciler itself goes through
    /// the fenced [`Store::record`]).
    pub async fn remove(&self, kind: Kind, key: &str) -> Result<(), StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        if kind == Kind::KafkaCluster {
            Self::remove_cluster_in(&mut tx, key).await?;
        } else {
            sqlx::query("DELETE FROM resources WHERE kind = $1 AND name = $2 AND deleting = 1")
                .bind(kind.as_str())
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_cluster_in(tx: &mut Tx<'_>, cluster: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM resources WHERE kind = 'KafkaCluster' AND name = $1 AND deleting = 1").bind(cluster).execute(&mut **tx).await?;
        sqlx::query("DELETE FROM resources WHERE cluster = $1 AND deleting = 1").bind(cluster).execute(&mut **tx).await?;
        sqlx::query("DELETE FROM intents WHERE cluster = $1").bind(cluster).execute(&mut **tx).await?;
        sqlx::query("DELETE FROM observations WHERE cluster = $1").bind(cluster).execute(&mut **tx).await?;
        // A cluster that is gone is sealed for no route: a later cluster of the same name (a
        // fresh build named like an earlier one) starts open.
        for (route, status) in Self::route_statuses_in(tx).await? {
            if status.sealed.iter().any(|c| c == cluster) {
                let sealed = status.sealed.iter().filter(|c| *c != cluster).cloned().collect();
                Self::put_route_status_in(tx, &route, &fleet_api::route::RouteStatus { sealed, ..status }).await?;
            }
        }
        Ok(())
    }

    async fn append_in(tx: &mut Tx<'_>, e: &NewJournalEntry) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO journal (at_ms, actor, cluster, action, detail, outcome, message) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(now_ms())
            .bind(&e.actor)
            .bind(&e.cluster)
            .bind(&e.action)
            .bind(e.detail.to_string())
            .bind(e.outcome)
            .bind(&e.message)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn append_journal(&self, e: &NewJournalEntry) -> Result<(), StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::append_in(&mut tx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Newest first; `before` pages backwards by id.
    pub async fn journal(&self, cluster: Option<&str>, limit: i64, before: Option<i64>) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, actor, cluster, action, detail, outcome, message FROM journal \
             WHERE ($1 = '' OR cluster = $1) AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(cluster.unwrap_or(""))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(JournalEntry {
                    id: r.try_get("id")?,
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    cluster: r.try_get("cluster")?,
                    action: r.try_get("action")?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
                    outcome: r.try_get("outcome")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }

    async fn put_blob(&self, table: &str, column: &str, cluster: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        let (_writer, mut tx) = self.begin_write().await?;
        Self::put_blob_in(&mut tx, table, column, cluster, value).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_blob_in(tx: &mut Tx<'_>, table: &str, column: &str, cluster: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {table} (cluster, {column}, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (cluster) DO UPDATE SET {column} = excluded.{column}, updated_ms = excluded.updated_ms"
        );
        sqlx::query(&sql).bind(cluster).bind(value.to_string()).bind(now_ms()).execute(&mut **tx).await?;
        Ok(())
    }

    async fn get_blob(&self, table: &str, column: &str, cluster: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let sql = format!("SELECT {column} FROM {table} WHERE cluster = $1");
        let row = sqlx::query(&sql).bind(cluster).fetch_optional(&self.pool).await?;
        match row {
            Some(r) => {
                let text: String = r.try_get(0)?;
                // Unreadable is not absent: say so instead of handing back nothing.
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| StoreError::Unreadable { what: format!("{table} of {cluster}"), message: e.to_string() })
            }
            None => Ok(None),
        }
    }

    /// The planner's decisions that must survive a restart (e.g. since when a broker is missing).
    pub async fn put_intent(&self, cluster: &str, intent: &serde_json::Value) -> Result<(), StoreError> {
        self.put_blob("intents", "intent", cluster, intent).await
    }
    pub async fn intent(&self, cluster: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.get_blob("intents", "intent", cluster).await
    }
    /// What the reconciler last saw and concluded (served as the cluster's status).
    pub async fn put_status(&self, cluster: &str, status: &serde_json::Value) -> Result<(), StoreError> {
        self.put_blob("observations", "status", cluster, status).await
    }
    pub async fn status(&self, cluster: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.get_blob("observations", "status", cluster).await
    }

    /// A stable dump of what API writes touch: specs, the revision counter and the journal (tests
    /// prove rejected input changed nothing). Intents and observations are the reconciler's and
    /// change on every pass, so they are left out.
    pub async fn fingerprint(&self) -> Result<String, StoreError> {
        let mut out = String::new();
        for (table, order) in [("resources", "kind, name"), ("counters", "name"), ("journal", "id"), ("operations", "id")] {
            let sql = format!("SELECT * FROM {table} ORDER BY {order}");
            let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
            out.push_str(&format!("{table}: {} rows\n", rows.len()));
            for row in rows {
                let mut cells = Vec::new();
                for i in 0..row.len() {
                    let cell = row
                        .try_get::<String, _>(i)
                        .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.to_string()))
                        .unwrap_or_else(|_| "?".into());
                    cells.push(cell);
                }
                out.push_str(&cells.join("|"));
                out.push('\n');
            }
        }
        Ok(out)
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ApplyOptions {
    pub dry_run: bool,
    /// The operator accepts that a cluster's new priority class changes the retention or
    /// `min.insync.replicas` of topics that inherit it.
    pub confirm_class_change: bool,
    /// The operator accepts that a lower `brokers` retires brokers (through a decommission).
    pub confirm_decommission: bool,
}

/// What an apply does besides writing the documents: the decommissions a lower `brokers`
/// starts, created in the same transaction as the spec (cluster, what leaves and how fast).
#[derive(Clone, Debug, Default)]
pub struct ApplyEffects {
    pub decommissions: Vec<(String, fleet_api::operation::MoveSpec)>,
}

/// What a batch is checked against besides the stored resources: routes' statuses and the
/// operations under way.
#[derive(Clone, Debug, Default)]
struct ApplyContext {
    route_status: BTreeMap<String, fleet_api::route::RouteStatus>,
    active: Vec<fleet_api::operation::Operation>,
}

/// A resource's overrides once `new` is applied over it: an override the user's document now
/// reaches (or passes) is dropped; one the document does not touch stays.
fn overrides_after_apply(old: &StoredResource, new: &Declared) -> fleet_api::spec::Overrides {
    let mut out = old.overrides.clone();
    let new_spec = new.spec_json();
    out.retain(|field, o| {
        let applied = new_spec.get(field).and_then(|v| v.as_i64());
        let held = o.value.as_i64();
        match (applied, held) {
            (Some(a), Some(h)) => a < h,
            _ => true,
        }
    });
    out
}

/// Topics of a cluster whose effective settings a new cluster spec would change (a priority
/// class change reaches every topic that inherits its class): `(topic, what changes)`.
fn class_change_effects(
    cluster: &str,
    was: &ClusterSpec,
    now: &ClusterSpec,
    batch: &[Declared],
    existing: &BTreeMap<(Kind, String), StoredResource>,
) -> Vec<(String, Vec<String>, bool)> {
    let mut out = Vec::new();
    for r in existing.values() {
        let DeclaredSpec::Topic(stored) = &r.declared.spec else { continue };
        if stored.cluster != cluster || r.deleting {
            continue;
        }
        // The topic as it will be declared after the batch (it may be in the batch too).
        let declared = batch
            .iter()
            .find_map(|d| match &d.spec {
                DeclaredSpec::Topic(t) if d.key() == r.key() => Some(t),
                _ => None,
            })
            .unwrap_or(stored);
        let (Ok(before), Ok(after)) =
            (spec::effective_topic(&r.declared.name, stored, Some(was)), spec::effective_topic(&r.declared.name, declared, Some(now)))
        else {
            continue;
        };
        let mut changes = Vec::new();
        let rf_changes = before.replication_factor != after.replication_factor;
        if rf_changes {
            changes.push(format!("replication {} -> {}", before.replication_factor, after.replication_factor));
        }
        for key in ["min.insync.replicas", "retention.ms"] {
            let (b, a) = (before.configs.get(key), after.configs.get(key));
            if b != a {
                changes.push(format!("{key} {} -> {}", b.map_or("unset", String::as_str), a.map_or("unset", String::as_str)));
            }
        }
        if !changes.is_empty() {
            out.push((r.declared.name.clone(), changes, rf_changes));
        }
    }
    out
}

/// Stage-2 checks of a batch against what is stored (and the batch itself).
fn check_batch(batch: &[Declared], existing: &BTreeMap<(Kind, String), StoredResource>, options: ApplyOptions, context: &ApplyContext) -> Result<(), StoreError> {
    let mut seen = std::collections::BTreeSet::new();
    for d in batch {
        if !seen.insert((d.kind(), d.key())) {
            return Err(StoreError::Invalid(FieldError::new("metadata.name", "declared twice in this batch").on(d.display())));
        }
    }
    // The clusters as they would be after the batch.
    let mut clusters: BTreeMap<String, ClusterSpec> = BTreeMap::new();
    for r in existing.values() {
        if let DeclaredSpec::KafkaCluster(s) = &r.declared.spec {
            if !r.deleting {
                clusters.insert(r.declared.name.clone(), spec::effective_cluster(&r.declared.name, s));
            }
        }
    }
    for d in batch {
        if let DeclaredSpec::KafkaCluster(s) = &d.spec {
            clusters.insert(d.name.clone(), spec::effective_cluster(&d.name, s));
        }
    }
    for d in batch {
        let old = existing.get(&(d.kind(), d.key()));
        if let Some(old) = old {
            if old.deleting {
                return Err(StoreError::Conflict {
                    resource: d.display(),
                    message: "is being deleted; wait until it is gone, then apply it again".into(),
                });
            }
            if let Some(g) = d.generation {
                if g != old.generation {
                    return Err(StoreError::Conflict {
                        resource: d.display(),
                        message: format!("generation is {}, not {g}: someone changed it since you read it; read it again", old.generation),
                    });
                }
            }
        } else if let Some(g) = d.generation {
            return Err(StoreError::Conflict {
                resource: d.display(),
                message: format!("does not exist, yet metadata.generation {g} was given; remove it to create"),
            });
        }
        let invalid = |e: FieldError| StoreError::Invalid(e.on(d.display()));
        let undeclared = |cluster: &str| {
            StoreError::Undeclared(
                FieldError::new("spec.cluster", format!("cluster `{cluster}` is not declared: apply its KafkaCluster first (or in the same file)")).on(d.display()),
            )
        };
        match (&d.spec, old.map(|o| &o.declared.spec)) {
            (DeclaredSpec::KafkaCluster(new), Some(DeclaredSpec::KafkaCluster(was))) => {
                if let Some((field, message)) = was.in_place_difference(new) {
                    return Err(invalid(FieldError::new(field, message)));
                }
                if was.is_immutable() {
                    if let Some(field) = was.immutable_difference(new) {
                        return Err(invalid(FieldError::new(
                            field,
                            "cannot change: the cluster is immutable (built by a failover); build another one \
                             (fleetctl failover ROUTE --build) instead of changing this one",
                        )));
                    }
                }
                // `was` is the effective spec (the user's with the operations' overrides);
                // an unchanged field is the user's document applied again: nothing to do.
                let user_brokers = match old.map(|o| &o.user.spec) {
                    Some(DeclaredSpec::KafkaCluster(u)) => u.brokers,
                    _ => was.brokers,
                };
                if new.brokers != user_brokers || (options.confirm_decommission && new.brokers < was.brokers) {
                    if let Some(op) = context.active.iter().find(|o| o.cluster == d.name && !o.is_emergency()) {
                        return Err(StoreError::Conflict {
                            resource: d.display(),
                            message: format!(
                                "spec.brokers: operation {} ({}) is changing this cluster: wait for it to end (fleetctl get operations) or cancel it, then apply",
                                op.id,
                                op.spec.kind()
                            ),
                        });
                    }
                    if new.brokers < was.brokers && !options.confirm_decommission {
                        let raised = old.and_then(|o| o.overrides.get("brokers")).map(|o| format!(" ({} set it)", o.operation)).unwrap_or_default();
                        return Err(invalid(FieldError::new(
                            "spec.brokers",
                            format!(
                                "{} is fewer than the {} brokers the cluster has{raised}: lowering it retires the highest brokers through a \
                                 decommission, which moves their replicas first. Confirm with --confirm-decommission (API: ?confirmDecommission=true), \
                                 or write {} to keep them",
                                new.brokers, was.brokers, was.brokers
                            ),
                        )));
                    }
                }
                let (was_spec, new_spec) = (spec::effective_cluster(&d.name, was), spec::effective_cluster(&d.name, new));
                if was_spec.broker_config != new_spec.broker_config {
                    // Against the count the cluster has (an exported document carries what a
                    // scale-up raised it to: no change, no operation).
                    if new.brokers != was.brokers {
                        return Err(invalid(FieldError::new(
                            "spec.brokerConfig",
                            format!(
                                "changes in the same apply as spec.brokers ({} -> {}): each starts an operation and a cluster runs one at a time; apply the broker count first, then brokerConfig",
                                was.brokers, new.brokers
                            ),
                        )));
                    }
                    if let Some(op) = context.active.iter().find(|o| o.cluster == d.name) {
                        return Err(StoreError::Conflict {
                            resource: d.display(),
                            message: format!(
                                "spec.brokerConfig: operation {} ({}) is running on this cluster; a config change rolls its brokers: wait for it to end (fleetctl get operations) or cancel it, then apply",
                                op.id,
                                op.spec.kind()
                            ),
                        });
                    }
                }
                if was_spec.priority_class != new_spec.priority_class {
                    let effects = class_change_effects(&d.name, &was_spec, &new_spec, batch, existing);
                    let listed = |only_rf: bool| -> String {
                        effects
                            .iter()
                            .filter(|(_, _, rf)| !only_rf || *rf)
                            .map(|(t, c, _)| format!("{t} ({})", c.join(", ")))
                            .collect::<Vec<_>>()
                            .join("; ")
                    };
                    if effects.iter().any(|(_, _, rf)| *rf) {
                        return Err(invalid(FieldError::new(
                            "spec.priorityClass",
                            format!(
                                "{} -> {} would change the replication factor of topics that inherit the class: {}. \
                                 Replication cannot change in place: pin spec.replicationFactor on those topics first",
                                was_spec.priority_class.as_str(),
                                new_spec.priority_class.as_str(),
                                listed(true)
                            ),
                        )));
                    }
                    if !effects.is_empty() && !options.confirm_class_change {
                        return Err(invalid(FieldError::new(
                            "spec.priorityClass",
                            format!(
                                "{} -> {} would change topics that inherit the class: {}. Pin those values on the topics \
                                 (spec.retentionHours, spec.configs) to keep them, or confirm the change \
                                 (fleetctl apply --confirm-class-change; API: ?confirmClassChange=true)",
                                was_spec.priority_class.as_str(),
                                new_spec.priority_class.as_str(),
                                listed(false)
                            ),
                        )));
                    }
                }
                if new.provider.as_deref().unwrap_or("local") != was.provider.as_deref().unwrap_or("local") {
                    return Err(invalid(FieldError::new("spec.provider", "cannot change on an existing cluster: build a new cluster instead")));
                }
                if new.availability_zones.len() < was.availability_zones.len()
                    || !was.availability_zones.iter().all(|az| new.availability_zones.contains(az))
                {
                    return Err(invalid(FieldError::new(
                        "spec.availabilityZones",
                        "zones can be added but not removed: brokers already run in every listed zone",
                    )));
                }
            }
            (DeclaredSpec::Topic(new), Some(DeclaredSpec::Topic(was))) => {
                let user_partitions = match old.map(|o| &o.user.spec) {
                    Some(DeclaredSpec::Topic(u)) => u.partitions,
                    _ => was.partitions,
                };
                if new.partitions != user_partitions {
                    if let Some(op) = context.active.iter().find(|o| o.cluster == new.cluster && matches!(o.spec, fleet_api::operation::OperationSpec::ScaleUp(_))) {
                        return Err(StoreError::Conflict {
                            resource: d.display(),
                            message: format!("spec.partitions: scale-up {} is adding partitions on this cluster: wait for it to end, then apply", op.id),
                        });
                    }
                    if new.partitions < was.partitions {
                        let by = old.and_then(|o| o.overrides.get("partitions")).map(|o| format!(" ({} added them)", o.operation)).unwrap_or_default();
                        return Err(invalid(FieldError::new(
                            "spec.partitions",
                            format!("{} is fewer than the topic's {} partitions{by}: Kafka cannot remove partitions; write {}", new.partitions, was.partitions, was.partitions),
                        )));
                    }
                }
                let Some(c) = clusters.get(&new.cluster) else {
                    return Err(undeclared(&new.cluster));
                };
                let before = spec::effective_topic(&d.name, was, Some(c)).ok().map(|t| t.replication_factor);
                let after = spec::effective_topic(&d.name, new, Some(c)).map_err(invalid)?.replication_factor;
                if before.is_some_and(|b| b != after) {
                    return Err(invalid(FieldError::new(
                        "spec.replicationFactor",
                        format!("changing the replication factor ({} -> {after}) needs a partition reassignment, which is not supported yet", before.unwrap_or(0)),
                    )));
                }
                if new.cluster != was.cluster {
                    return Err(invalid(FieldError::new("spec.cluster", "a topic cannot move to another cluster")));
                }
            }
            _ => {}
        }
        match &d.spec {
            DeclaredSpec::Topic(t) => {
                let c = clusters.get(&t.cluster).ok_or_else(|| undeclared(&t.cluster))?;
                spec::effective_topic(&d.name, t, Some(c)).map_err(invalid)?;
                // Kafka names a topic's metrics with `.` as `_`, and refuses a topic whose name
                // collides with an existing one that way: refused here, before it is stored.
                let collides = |name: &str| name != d.name && name.replace('.', "_") == d.name.replace('.', "_");
                let stored = existing.values().filter(|r| !r.deleting).map(|r| &r.declared);
                if let Some(other) = stored.chain(batch.iter()).find(|o| matches!(&o.spec, DeclaredSpec::Topic(ot) if ot.cluster == t.cluster) && collides(&o.name)) {
                    return Err(invalid(FieldError::new(
                        "metadata.name",
                        format!(
                            "`{}` collides with topic `{}` of cluster `{}`: Kafka treats `.` and `_` alike in topic names (its metric names) and refuses the second; rename one",
                            d.name, other.name, t.cluster
                        ),
                    )));
                }
            }
            DeclaredSpec::Route(r) => {
                let unchanged = matches!(old.map(|o| &o.user.spec), Some(DeclaredSpec::Route(u)) if u == r);
                // An unchanged document applied again is fine even if an operation replaced its
                // cluster (a fallback that rebuilt it): the route's status says where it is.
                if !clusters.contains_key(&r.cluster) && !unchanged {
                    return Err(undeclared(&r.cluster));
                }
                // The route's cluster is the user's (its home); where its traffic is now is the
                // route's status. A change of the home is refused while the route is moving or
                // away from it (the fallback returns to the standby the failover recorded).
                let user_cluster = match old.map(|o| &o.user.spec) {
                    Some(DeclaredSpec::Route(u)) => Some(u.cluster.as_str()),
                    _ => None,
                };
                if user_cluster.is_some_and(|c| c != r.cluster) {
                    if let Some(op) = context.active.iter().find(|o| o.spec.route() == Some(d.name.as_str())) {
                        return Err(StoreError::Conflict {
                            resource: d.display(),
                            message: format!("spec.cluster: operation {} ({}) is moving this route: wait for it to end or cancel it", op.id, op.spec.kind()),
                        });
                    }
                    if let Some(st) = context.route_status.get(&d.name).filter(|s| s.phase != fleet_api::route::RouteState::Normal) {
                        return Err(StoreError::Conflict {
                            resource: d.display(),
                            message: format!(
                                "spec.cluster: the route is {} on {} (standby {}): fall back first (fleetctl fallback {}), then change its cluster",
                                st.phase.as_str(),
                                st.cluster,
                                st.standby.as_deref().unwrap_or("-"),
                                d.name
                            ),
                        });
                    }
                }
                if let Some(to) = r.failover.as_ref().and_then(|p| p.to.as_ref()) {
                    if !clusters.contains_key(to) {
                        return Err(StoreError::Undeclared(
                            FieldError::new("spec.failover.to", format!("standby `{to}` is not declared: apply its KafkaCluster first, or leave `to` out to build one")).on(d.display()),
                        ));
                    }
                }
            }
            DeclaredSpec::KafkaCluster(_) => {
                // A cluster change must keep every stored topic valid (e.g. replication <= brokers).
                for r in existing.values() {
                    if let DeclaredSpec::Topic(t) = &r.declared.spec {
                        if t.cluster == d.name && !r.deleting && !batch.iter().any(|b| b.kind() == Kind::Topic && b.key() == r.key()) {
                            spec::effective_topic(&r.declared.name, t, clusters.get(&d.name)).map_err(|e| {
                                StoreError::Invalid(FieldError::new(
                                    "spec",
                                    format!("would make stored topic `{}` invalid: {}", r.declared.name, e.message),
                                ).on(d.display()))
                            })?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;

/// One line for a rollout: each key, its change and how it takes effect.
pub fn describe_rollout(r: &fleet_api::operation::RolloutSpec) -> String {
    let keys: Vec<String> = r
        .changes
        .iter()
        .map(|c| format!("{} {} -> {} ({})", c.key, c.from.as_deref().unwrap_or("(not set)"), c.to.as_deref().unwrap_or("(not set)"), c.effect.describe()))
        .collect();
    if keys.is_empty() {
        "a rolling restart of every broker".into()
    } else {
        keys.join("; ")
    }
}

/// How an apply left a resource, as the journal says it.
fn outcome_word(outcome: ApplyOutcome) -> &'static str {
    match outcome {
        ApplyOutcome::Created => "created",
        ApplyOutcome::Configured => "configured",
        ApplyOutcome::Unchanged => "unchanged",
    }
}
