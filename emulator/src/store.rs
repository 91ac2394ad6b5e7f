//! The SQLite store: instances, their histories (per execution), pending messages, outstanding
//! activity work and timers, and engine metadata such as virtual time.
//!
//! One connection, owned by the engine's core thread; the engine groups everything one batch did
//! into one transaction (`begin` / `commit`). The schema is versioned with `PRAGMA user_version`
//! and migrated forward; a file that is not a database, or one written by a newer durable-emu, is
//! refused before anything in it changes. The connection holds SQLite's exclusive lock for its
//! whole life, so a second emulator on the same file is refused at open with a clear message.
//!
//! Owns SQL and row <-> type mapping. Knows nothing of plugins, episodes or front ends.

use chrono::{DateTime, Utc};
use durable_sdk::FailureDetails;
use durable_sdk::history::{HistoryEvent, ParentInstance, RuntimeStatus};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = 3;

/// Migrations from version `index` to `index + 1`.
const MIGRATIONS: [&str; 3] = [
    r"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE instances (
    instance_id   TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    execution_id  TEXT NOT NULL,
    status        TEXT NOT NULL,
    input         TEXT NOT NULL,
    output        TEXT NOT NULL,
    failure       TEXT,
    custom_status TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    parent        TEXT,
    history_len   INTEGER NOT NULL
);
CREATE INDEX instances_by_status ON instances(status);
CREATE TABLE executions (
    instance_id  TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    ordinal      INTEGER NOT NULL,
    input        TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id)
) WITHOUT ROWID;
CREATE TABLE history (
    instance_id  TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    event        TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, seq)
) WITHOUT ROWID;
CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    instance_id TEXT NOT NULL,
    event       TEXT NOT NULL
);
CREATE INDEX inbox_by_instance ON inbox(instance_id, id);
CREATE TABLE activity_work (
    instance_id  TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id      INTEGER NOT NULL,
    name         TEXT NOT NULL,
    input        TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, task_id)
) WITHOUT ROWID;
CREATE TABLE timers (
    instance_id  TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    timer_id     INTEGER NOT NULL,
    fire_at      TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, timer_id)
) WITHOUT ROWID;
",
    r"
CREATE TABLE builds (
    number        INTEGER PRIMARY KEY,
    build_id      TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    origin        TEXT NOT NULL,
    loaded_at     TEXT NOT NULL,
    orchestrators TEXT NOT NULL,
    activities    TEXT NOT NULL
);
ALTER TABLE instances ADD COLUMN build INTEGER;
ALTER TABLE instances ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN divergence TEXT;
ALTER TABLE history ADD COLUMN build INTEGER;
",
    // v3: deliveries that never finished are counted durably; messages can wait for a time.
    r"
ALTER TABLE activity_work ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN due_at TEXT;
CREATE TABLE unfinished_episodes (
    instance_id  TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    history_len  INTEGER NOT NULL,
    starts       INTEGER NOT NULL
) WITHOUT ROWID;
",
];

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A throwaway in-memory database (`--db :memory:`).
    Memory,
    /// A database file, created (with its directory) if missing.
    File(PathBuf),
}

impl DbLocation {
    /// `:memory:` or a path.
    pub fn parse(text: &str) -> Self {
        if text == ":memory:" {
            DbLocation::Memory
        } else {
            DbLocation::File(PathBuf::from(text))
        }
    }

    /// `.durable-emu/state.db` under the working directory.
    pub fn default_file() -> Self {
        DbLocation::File(Path::new(".durable-emu").join("state.db"))
    }
}

impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbLocation::Memory => f.write_str(":memory:"),
            DbLocation::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why the store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not an SQLite database.
    #[error(
        "{path} is not a durable-emu database (not an SQLite file); it was left untouched. Use --db to choose another file"
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer durable-emu.
    #[error(
        "{path} was written by a newer durable-emu (schema {found}, this build reads up to {supported}); it was left untouched. Upgrade durable-emu or use --db to choose another file"
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i32,
        /// The newest this build reads.
        supported: i32,
    },
    /// Another process holds the database.
    #[error(
        "{path} is in use by another running durable-emu (or another program holds a lock on it); stop that one or use --db to choose another file"
    )]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The directory could not be created.
    #[error("cannot create {dir}: {source}")]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A stored value did not decode.
    #[error("the store holds a value that does not decode ({what}): {detail}")]
    Corrupt {
        /// Which value.
        what: String,
        /// The decoder's message.
        detail: String,
    },
    /// Any other SQLite failure.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// One instance's current state.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    /// The instance id.
    pub instance_id: String,
    /// The orchestration name.
    pub name: String,
    /// The current execution.
    pub execution_id: String,
    /// Runtime status.
    pub status: RuntimeStatus,
    /// The current execution's input.
    pub input: Value,
    /// The output (Completed), or the reason (Terminated).
    pub output: Value,
    /// The failure (Failed).
    pub failure: Option<FailureDetails>,
    /// The last custom status.
    pub custom_status: Option<Value>,
    /// When the instance was created.
    pub created_at: DateTime<Utc>,
    /// When anything about it last changed.
    pub updated_at: DateTime<Utc>,
    /// Set for sub-orchestrations.
    pub parent: Option<ParentInstance>,
    /// Length of the current execution's history.
    pub history_len: usize,
    /// The build (number) the instance runs on; `None` before its first episode.
    pub build: Option<u32>,
    /// Kept on its build by the user after a reload it did not replay on.
    pub pinned: bool,
    /// Why the newest build cannot run it, when a reload check found it diverging.
    pub divergence: Option<Divergence>,
}

/// A reload check's finding: the instance's history does not replay on a newer build.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Divergence {
    /// The build that does not replay the history.
    pub build: u32,
    /// What went wrong, for people.
    pub reason: String,
    /// The structured diff, when it is a nondeterminism.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<durable_sdk::protocol::NonDeterminism>,
}

/// A loaded build of the functions, as recorded in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRecord {
    /// 1, 2, 3, ... in load order.
    pub number: u32,
    /// The plugin's own build id (new on every compilation).
    pub build_id: String,
    /// BLAKE3 hash of the library file.
    pub content_hash: String,
    /// Where it was loaded from.
    pub origin: String,
    /// When it became active.
    pub loaded_at: DateTime<Utc>,
    /// Its orchestrators.
    pub orchestrators: Vec<String>,
    /// Its activities.
    pub activities: Vec<String>,
}

/// One execution of an instance (a new one starts on each continue-as-new).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    /// The execution id.
    pub execution_id: String,
    /// 0 for the first execution, then 1, 2, ...
    pub ordinal: i64,
    /// The execution's input.
    pub input: Value,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

/// A message waiting to be delivered to an instance in its next episode.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRow {
    /// Row id (delivery order).
    pub id: i64,
    /// The receiving instance.
    pub instance_id: String,
    /// The event to deliver.
    pub event: HistoryEvent,
}

/// An activity scheduled and not yet completed.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkRow {
    /// The scheduling instance.
    pub instance_id: String,
    /// Its execution.
    pub execution_id: String,
    /// The `TaskScheduled` sequence id.
    pub task_id: i32,
    /// Activity name.
    pub name: String,
    /// Activity input.
    pub input: Value,
}

/// A durable timer not yet fired.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerRow {
    /// The instance.
    pub instance_id: String,
    /// Its execution.
    pub execution_id: String,
    /// The `TimerCreated` sequence id.
    pub timer_id: i32,
    /// When it is due.
    pub fire_at: DateTime<Utc>,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    location: DbLocation,
    in_transaction: bool,
}

impl Store {
    /// Opens (creating if needed) and migrates the store, holding it exclusively.
    pub fn open(location: &DbLocation) -> Result<Self, StoreError> {
        let conn = match location {
            DbLocation::Memory => Connection::open_in_memory()?,
            DbLocation::File(path) => {
                if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                        dir: dir.to_path_buf(),
                        source,
                    })?;
                }
                Connection::open(path)?
            }
        };
        let path = match location {
            DbLocation::Memory => PathBuf::from(":memory:"),
            DbLocation::File(path) => path.clone(),
        };
        let classify = |error: rusqlite::Error| match error.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase { path: path.clone() },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Locked { path: path.clone() }
            }
            _ => StoreError::Sqlite(error),
        };
        // Nothing else may share the file, so waiting for a lock would only delay the refusal.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        // Read the version before changing anything: a foreign or newer file stays untouched.
        let version: i32 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(classify)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(classify)?;
        if matches!(location, DbLocation::File(_)) {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(classify)?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(classify)?;
        // Take the exclusive lock now, so a second emulator fails here rather than mid-run.
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;")
            .map_err(classify)?;
        let mut store = Self {
            conn,
            location: location.clone(),
            in_transaction: false,
        };
        store.migrate(version)?;
        Ok(store)
    }

    fn migrate(&mut self, from: i32) -> Result<(), StoreError> {
        let start = usize::try_from(from).unwrap_or(0);
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(start) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(migration)?;
            tx.pragma_update(None, "user_version", index as i32 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Where this store lives.
    pub fn location(&self) -> &DbLocation {
        &self.location
    }

    /// Starts the batch transaction (no-op if one is open).
    pub fn begin(&mut self) -> Result<(), StoreError> {
        if !self.in_transaction {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Commits the batch transaction (no-op if none is open).
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.in_transaction {
            let committed = self.conn.execute_batch("COMMIT");
            // SQLite ends the transaction itself after some errors (an I/O error, a full disk).
            self.in_transaction = !self.conn.is_autocommit();
            committed?;
        }
        Ok(())
    }

    /// Abandons the batch transaction (no-op if none is open, or if SQLite already ended it
    /// after an error).
    pub fn rollback(&mut self) -> Result<(), StoreError> {
        if self.in_transaction {
            self.in_transaction = false;
            if !self.conn.is_autocommit() {
                self.conn.execute_batch("ROLLBACK")?;
            }
        }
        Ok(())
    }

    /// A metadata value.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()?)
    }

    /// Sets a metadata value.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")?
            .execute([key, value])?;
        Ok(())
    }

    /// Inserts or replaces an instance row.
    pub fn put_instance(&self, record: &InstanceRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO instances(instance_id, name, execution_id, status, input, output, failure, custom_status, created_at, updated_at, parent, history_len, build, pinned, divergence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?
            .execute(params![
                record.instance_id,
                record.name,
                record.execution_id,
                record.status.as_str(),
                record.input.to_string(),
                record.output.to_string(),
                record.failure.as_ref().map(to_json),
                record.custom_status.as_ref().map(Value::to_string),
                record.created_at.to_rfc3339(),
                record.updated_at.to_rfc3339(),
                record.parent.as_ref().map(to_json),
                record.history_len as i64,
                record.build,
                record.pinned,
                record.divergence.as_ref().map(to_json),
            ])?;
        Ok(())
    }

    /// One instance, if it exists.
    pub fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        let row = self
            .conn
            .prepare_cached(&format!(
                "SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?1"
            ))?
            .query_row([instance_id], raw_instance)
            .optional()?;
        row.map(decode_instance).transpose()
    }

    /// Every instance, newest first.
    pub fn instances(&self) -> Result<Vec<InstanceRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY created_at DESC, instance_id"
        ))?;
        let rows = statement.query_map([], raw_instance)?;
        rows.map(|row| decode_instance(row?)).collect()
    }

    /// Instances that are not terminal (they resume when the engine starts).
    pub fn active_instances(&self) -> Result<Vec<InstanceRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE status NOT IN ('Completed', 'Failed', 'Canceled', 'Terminated') ORDER BY created_at, instance_id"
        ))?;
        let rows = statement.query_map([], raw_instance)?;
        rows.map(|row| decode_instance(row?)).collect()
    }

    /// Records the start of an execution.
    pub fn add_execution(
        &self,
        instance_id: &str,
        execution: &ExecutionRecord,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO executions(instance_id, execution_id, ordinal, input, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                instance_id,
                execution.execution_id,
                execution.ordinal,
                execution.input.to_string(),
                execution.started_at.to_rfc3339(),
            ])?;
        Ok(())
    }

    /// An instance's executions, oldest first.
    pub fn executions(&self, instance_id: &str) -> Result<Vec<ExecutionRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT execution_id, ordinal, input, started_at FROM executions WHERE instance_id = ?1 ORDER BY ordinal",
        )?;
        let rows = statement.query_map([instance_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (execution_id, ordinal, input, started_at) = row?;
            Ok(ExecutionRecord {
                execution_id,
                ordinal,
                input: from_json(&input, "execution input")?,
                started_at: parse_time(&started_at)?,
            })
        })
        .collect()
    }

    /// Appends events to an execution's history, numbered from `first_seq`, recording which
    /// build (if any) ran the episode that produced them.
    pub fn append_history(
        &self,
        instance_id: &str,
        execution_id: &str,
        first_seq: usize,
        events: &[HistoryEvent],
        build: Option<u32>,
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(
            "INSERT INTO history(instance_id, execution_id, seq, event, build) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (offset, event) in events.iter().enumerate() {
            statement.execute(params![
                instance_id,
                execution_id,
                (first_seq + offset) as i64,
                to_json(event),
                build
            ])?;
        }
        Ok(())
    }

    /// For each event of an execution's history, the build that recorded it (`None` for events
    /// the host recorded without running code, or imported ones).
    pub fn history_builds(
        &self,
        instance_id: &str,
        execution_id: &str,
    ) -> Result<Vec<Option<u32>>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT build FROM history WHERE instance_id = ?1 AND execution_id = ?2 ORDER BY seq",
        )?;
        let rows = statement.query_map([instance_id, execution_id], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a newly loaded build and returns its number.
    pub fn add_build(
        &self,
        build_id: &str,
        content_hash: &str,
        origin: &str,
        loaded_at: DateTime<Utc>,
        orchestrators: &[String],
        activities: &[String],
    ) -> Result<u32, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO builds(number, build_id, content_hash, origin, loaded_at, orchestrators, activities)
                 VALUES ((SELECT COALESCE(MAX(number), 0) + 1 FROM builds), ?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                build_id,
                content_hash,
                origin,
                loaded_at.to_rfc3339(),
                to_json(&orchestrators),
                to_json(&activities)
            ])?;
        let number: i64 = self
            .conn
            .query_row("SELECT MAX(number) FROM builds", [], |row| row.get(0))?;
        Ok(u32::try_from(number).unwrap_or(u32::MAX))
    }

    /// Every build ever loaded into this database, oldest first.
    pub fn builds(&self) -> Result<Vec<BuildRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT number, build_id, content_hash, origin, loaded_at, orchestrators, activities FROM builds ORDER BY number",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, u32>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
            ))
        })?;
        rows.map(|row| {
            let (number, build_id, content_hash, origin, loaded_at, orchestrators, activities) =
                row?;
            Ok(BuildRecord {
                number,
                build_id,
                content_hash,
                origin,
                loaded_at: parse_time(&loaded_at)?,
                orchestrators: from_json(&orchestrators, "build orchestrators")?,
                activities: from_json(&activities, "build activities")?,
            })
        })
        .collect()
    }

    /// An execution's history, in order.
    pub fn history(
        &self,
        instance_id: &str,
        execution_id: &str,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT event FROM history WHERE instance_id = ?1 AND execution_id = ?2 ORDER BY seq",
        )?;
        let rows =
            statement.query_map([instance_id, execution_id], |row| row.get::<_, String>(0))?;
        rows.map(|row| from_json(&row?, "history event")).collect()
    }

    /// Queues a message for an instance; returns its row id.
    pub fn push_inbox(&self, instance_id: &str, event: &HistoryEvent) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached("INSERT INTO inbox(instance_id, event) VALUES (?1, ?2)")?
            .execute(params![instance_id, to_json(event)])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Removes a delivered message.
    pub fn remove_inbox(&self, id: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM inbox WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    /// Every undelivered message, in arrival order.
    pub fn inbox(&self) -> Result<Vec<InboxRow>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT id, instance_id, event FROM inbox ORDER BY id")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (id, instance_id, event) = row?;
            Ok(InboxRow {
                id,
                instance_id,
                event: from_json(&event, "inbox event")?,
            })
        })
        .collect()
    }

    /// Records scheduled activity work.
    pub fn add_work(&self, work: &WorkRow) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO activity_work(instance_id, execution_id, task_id, name, input) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                work.instance_id,
                work.execution_id,
                work.task_id,
                work.name,
                work.input.to_string()
            ])?;
        Ok(())
    }

    /// Removes completed activity work.
    pub fn remove_work(
        &self,
        instance_id: &str,
        execution_id: &str,
        task_id: i32,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "DELETE FROM activity_work WHERE instance_id = ?1 AND execution_id = ?2 AND task_id = ?3",
            )?
            .execute(params![instance_id, execution_id, task_id])?;
        Ok(())
    }

    /// Every outstanding activity.
    pub fn work(&self) -> Result<Vec<WorkRow>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT instance_id, execution_id, task_id, name, input FROM activity_work ORDER BY instance_id, execution_id, task_id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i32>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (instance_id, execution_id, task_id, name, input) = row?;
            Ok(WorkRow {
                instance_id,
                execution_id,
                task_id,
                name,
                input: from_json(&input, "activity input")?,
            })
        })
        .collect()
    }

    /// Records a pending timer.
    pub fn add_timer(&self, timer: &TimerRow) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO timers(instance_id, execution_id, timer_id, fire_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                timer.instance_id,
                timer.execution_id,
                timer.timer_id,
                timer.fire_at.to_rfc3339()
            ])?;
        Ok(())
    }

    /// Removes a fired or cancelled timer.
    pub fn remove_timer(
        &self,
        instance_id: &str,
        execution_id: &str,
        timer_id: i32,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "DELETE FROM timers WHERE instance_id = ?1 AND execution_id = ?2 AND timer_id = ?3",
            )?
            .execute(params![instance_id, execution_id, timer_id])?;
        Ok(())
    }

    /// Every pending timer.
    pub fn timers(&self) -> Result<Vec<TimerRow>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT instance_id, execution_id, timer_id, fire_at FROM timers ORDER BY fire_at",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i32>(2)?,
                row.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (instance_id, execution_id, timer_id, fire_at) = row?;
            Ok(TimerRow {
                instance_id,
                execution_id,
                timer_id,
                fire_at: parse_time(&fire_at)?,
            })
        })
        .collect()
    }

    /// Removes outstanding activity work and timers of an instance (its execution ended).
    pub fn clear_work_and_timers(&self, instance_id: &str) -> Result<(), StoreError> {
        for sql in [
            "DELETE FROM activity_work WHERE instance_id = ?1",
            "DELETE FROM timers WHERE instance_id = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([instance_id])?;
        }
        Ok(())
    }

    /// Removes outstanding work, timers and messages of an instance (it reached a terminal state).
    pub fn clear_pending(&self, instance_id: &str) -> Result<(), StoreError> {
        for sql in [
            "DELETE FROM activity_work WHERE instance_id = ?1",
            "DELETE FROM timers WHERE instance_id = ?1",
            "DELETE FROM inbox WHERE instance_id = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([instance_id])?;
        }
        Ok(())
    }

    /// Adds `starts` unfinished deliveries to outstanding work; returns the new total (0 if the
    /// work is no longer outstanding).
    pub fn add_work_deliveries(
        &self,
        instance_id: &str,
        execution_id: &str,
        task_id: i32,
        starts: u32,
    ) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE activity_work SET deliveries = deliveries + ?4 WHERE instance_id = ?1 AND execution_id = ?2 AND task_id = ?3 RETURNING deliveries",
            )?
            .query_row(params![instance_id, execution_id, task_id, starts], |row| {
                row.get::<_, u32>(0)
            })
            .optional()?
            .unwrap_or(0))
    }

    /// Adds `starts` unfinished starts of the episode an instance is at (execution and history
    /// length); starts counted at another point of its history are forgotten. Returns the total.
    pub fn add_episode_starts(
        &self,
        instance_id: &str,
        execution_id: &str,
        history_len: usize,
        starts: u32,
    ) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "INSERT INTO unfinished_episodes(instance_id, execution_id, history_len, starts) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(instance_id) DO UPDATE SET
                   starts = CASE WHEN execution_id = excluded.execution_id AND history_len = excluded.history_len
                                 THEN starts + excluded.starts ELSE excluded.starts END,
                   execution_id = excluded.execution_id, history_len = excluded.history_len
                 RETURNING starts",
            )?
            .query_row(
                params![instance_id, execution_id, history_len as i64, starts],
                |row| row.get::<_, u32>(0),
            )?)
    }

    /// Forgets counted episode starts of instances that have moved on or ended.
    pub fn prune_unfinished_episodes(&self) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM unfinished_episodes WHERE NOT EXISTS (
                 SELECT 1 FROM instances i WHERE i.instance_id = unfinished_episodes.instance_id
                   AND i.execution_id = unfinished_episodes.execution_id
                   AND i.history_len = unfinished_episodes.history_len
                   AND i.status IN ('Pending', 'Running', 'Suspended'))",
            [],
        )?;
        Ok(())
    }

    /// Queues a message that may only be delivered from `due_at` on (a delay); returns its id.
    pub fn push_inbox_due(
        &self,
        instance_id: &str,
        event: &HistoryEvent,
        due_at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached("INSERT INTO inbox(instance_id, event, due_at) VALUES (?1, ?2, ?3)")?
            .execute(params![instance_id, to_json(event), due_at.to_rfc3339()])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The messages that wait for a time, by row id.
    pub fn inbox_due_times(&self) -> Result<Vec<(i64, DateTime<Utc>)>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT id, due_at FROM inbox WHERE due_at IS NOT NULL ORDER BY id")?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (id, due_at) = row?;
            Ok((id, parse_time(&due_at)?))
        })
        .collect()
    }

    /// A delayed message's time has come: it is an ordinary message from now on.
    pub fn clear_inbox_due(&self, id: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE inbox SET due_at = NULL WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    /// Deletes an instance and everything recorded about it; returns whether it existed.
    pub fn purge(&self, instance_id: &str) -> Result<bool, StoreError> {
        self.clear_pending(instance_id)?;
        for sql in [
            "DELETE FROM history WHERE instance_id = ?1",
            "DELETE FROM executions WHERE instance_id = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([instance_id])?;
        }
        let deleted = self
            .conn
            .prepare_cached("DELETE FROM instances WHERE instance_id = ?1")?
            .execute([instance_id])?;
        Ok(deleted > 0)
    }
}

const INSTANCE_COLUMNS: &str = "instance_id, name, execution_id, status, input, output, failure, custom_status, created_at, updated_at, parent, history_len, build, pinned, divergence";

type RawInstance = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    Option<u32>,
    bool,
    Option<String>,
);

fn raw_instance(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawInstance> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
        row.get(13)?,
        row.get(14)?,
    ))
}

fn decode_instance(raw: RawInstance) -> Result<InstanceRecord, StoreError> {
    let (
        instance_id,
        name,
        execution_id,
        status,
        input,
        output,
        failure,
        custom_status,
        created_at,
        updated_at,
        parent,
        history_len,
        build,
        pinned,
        divergence,
    ) = raw;
    Ok(InstanceRecord {
        status: status.parse().map_err(|detail| StoreError::Corrupt {
            what: format!("status of {instance_id}"),
            detail,
        })?,
        input: from_json(&input, "instance input")?,
        output: from_json(&output, "instance output")?,
        failure: failure
            .map(|text| from_json(&text, "instance failure"))
            .transpose()?,
        custom_status: custom_status
            .map(|text| from_json(&text, "custom status"))
            .transpose()?,
        created_at: parse_time(&created_at)?,
        updated_at: parse_time(&updated_at)?,
        parent: parent.map(|text| from_json(&text, "parent")).transpose()?,
        history_len: usize::try_from(history_len).unwrap_or(0),
        build,
        pinned,
        divergence: divergence
            .map(|text| from_json(&text, "divergence"))
            .transpose()?,
        instance_id,
        name,
        execution_id,
    })
}

fn to_json(value: &impl serde::Serialize) -> String {
    // Serializing our own types to a String cannot fail: they hold no maps with non-string keys.
    serde_json::to_string(value).unwrap_or_else(|error| format!("\"unserializable: {error}\""))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
        what: what.to_string(),
        detail: error.to_string(),
    })
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| StoreError::Corrupt {
            what: "timestamp".to_string(),
            detail: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.db");
        let content = "these are my notes, not a database ".repeat(200);
        std::fs::write(&path, &content).unwrap();
        let error = Store::open(&DbLocation::File(path.clone())).unwrap_err();
        assert!(matches!(error, StoreError::NotADatabase { .. }), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE future(x); PRAGMA user_version = 7;")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let error = Store::open(&DbLocation::File(path.clone())).unwrap_err();
        assert!(
            matches!(error, StoreError::NewerSchema { found: 7, .. }),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("schema 7, this build reads up to 3")
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_database_held_by_another_emulator_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let location = DbLocation::File(dir.path().join("state.db"));
        let _first = Store::open(&location).unwrap();
        let error = Store::open(&location).unwrap_err();
        assert!(matches!(error, StoreError::Locked { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("in use by another running durable-emu")
        );
    }

    #[test]
    fn reopening_keeps_the_schema_and_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let location = DbLocation::File(dir.path().join("nested").join("state.db"));
        {
            let store = Store::open(&location).unwrap();
            store.set_meta("virtual_now", "x").unwrap();
        }
        let store = Store::open(&location).unwrap();
        assert_eq!(store.meta("virtual_now").unwrap().as_deref(), Some("x"));
    }
}
