//! The SQLite store: instances, their histories (per execution), pending messages, outstanding
//! activity work and timers, entities (state, lock, queue, operation log: `store/entities.rs`),
//! and engine metadata such as virtual time.
//!
//! One connection, owned by the engine's core thread; the engine groups everything one batch did
//! into one transaction (`begin` / `commit`). The schema is versioned with `PRAGMA user_version`
//! and migrated forward; our databases are marked with `PRAGMA application_id` ([`APPLICATION_ID`]).
//! Before anything is written (even the switch to WAL), the file is judged: a directory, FIFO or
//! device, a file that is not SQLite, another program's database (another application id, or
//! tables that are not ours) and one written by a newer durable-emu are refused untouched. An
//! unmarked file with exactly our schema (written before the mark existed) is accepted and marked
//! on its first writable open; an empty file becomes a new database. The writable connection
//! holds SQLite's exclusive lock for its whole life, so a second emulator on the same file is
//! refused at open; on close it returns the file to rollback-journal mode so that read-only
//! openers ([`Store::open_read_only`]: no lock, no migration, nothing created) need no WAL files.
//!
//! Times are written as RFC 3339, which only has years 1 to 9999: a time outside that is refused
//! when written ([`StoreError::TimeOutOfRange`]), and a row that does not decode is named
//! ([`StoreError::Corrupt`]); [`Store::instance_listing`] returns the other rows beside it.
//!
//! Owns SQL and row <-> type mapping. Knows nothing of plugins, episodes or front ends.

use chrono::{DateTime, Utc};
use durable_sdk::FailureDetails;
use durable_sdk::history::{HistoryEvent, ParentInstance, RuntimeStatus};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod entities;

pub use entities::EntityRow;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = 6;

/// `PRAGMA application_id` of every durable-emu database: "DuEm" in ASCII.
pub const APPLICATION_ID: i32 = 0x4475_456d;

/// Migrations from version `index` to `index + 1`.
const MIGRATIONS: [&str; 6] = [
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
    // v4: the external events an instance's code waits for (history cannot tell).
    r"
ALTER TABLE instances ADD COLUMN awaited_events TEXT;
",
    // v5: what an SDK client starts an instance with (version, tags, a scheduled start).
    r"
ALTER TABLE instances ADD COLUMN version TEXT;
ALTER TABLE instances ADD COLUMN tags TEXT;
ALTER TABLE instances ADD COLUMN scheduled_start TEXT;
",
    // v6: durable entities (docs/semantics.md#entities): each entity's state and lock, its queue
    // of messages (a message leaves it in the transaction that records what running it did, so
    // a batch in flight when the process dies runs again), and its operation log.
    r"
ALTER TABLE builds ADD COLUMN entities TEXT NOT NULL DEFAULT '[]';
CREATE TABLE entities (
    instance_id      TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    key              TEXT NOT NULL,
    state            TEXT,
    last_modified    TEXT NOT NULL,
    locked_by        TEXT,
    critical_section TEXT
) WITHOUT ROWID;
CREATE TABLE entity_queue (
    id          INTEGER PRIMARY KEY,
    instance_id TEXT NOT NULL,
    message     TEXT NOT NULL,
    due_at      TEXT
);
CREATE INDEX entity_queue_by_entity ON entity_queue(instance_id, id);
CREATE TABLE entity_operations (
    instance_id   TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    request_id    TEXT NOT NULL,
    operation     TEXT NOT NULL,
    input         TEXT NOT NULL,
    requester     TEXT NOT NULL,
    awaits_answer INTEGER NOT NULL,
    outcome       TEXT NOT NULL,
    state_after   TEXT,
    state_known   INTEGER NOT NULL DEFAULT 1,
    at            TEXT NOT NULL,
    fault         TEXT,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;
",
];

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A throwaway in-memory database (`--db :memory:`).
    Memory,
    /// A database file, created (with its directory) if missing when opened for writing.
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
    /// The file is an SQLite database of another program.
    #[error(
        "{path} is not a durable-emu database: it is an SQLite database of another program ({why}); it was left untouched. Use --db to choose another file"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        why: String,
    },
    /// The path names something that is not a regular file.
    #[error(
        "{path} is {kind}, not a database file; it was left untouched. Use --db to name a file"
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is ("a directory", "a FIFO", ...).
        kind: &'static str,
    },
    /// A read-only open found nothing to read.
    #[error(
        "no durable-emu database at {path} ({why}); commands that only read create none. Run an orchestration (run, serve) to create one, or use --db"
    )]
    NoDatabase {
        /// The path.
        path: PathBuf,
        /// "no such file" or "the file is empty".
        why: &'static str,
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
    /// A read-only open found an older schema, which only a writable open migrates.
    #[error(
        "{path} was written by an older durable-emu (schema {found}); a command that writes (run, serve, import, ...) upgrades it, commands that only read do not"
    )]
    OlderSchema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i32,
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
    /// The path could not be inspected.
    #[error("cannot read {path}: {source}")]
    Inspect {
        /// The path.
        path: PathBuf,
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
    /// A time to be written is outside what the store can hold.
    #[error("{what}: {source}")]
    TimeOutOfRange {
        /// Which value.
        what: String,
        /// The time and the range.
        source: durable_sdk::history::TimeOutOfRange,
    },
    /// Any other SQLite failure.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Created, migrated, marked and locked: what the engine uses.
    ReadWrite,
    /// Read as it is: nothing created, migrated or locked.
    ReadOnly,
}

/// What `Store::instance_listing` (behind [`Reader::instances`](crate::Reader::instances)) found:
/// the instances that decode, and the others by id.
#[derive(Debug, Clone, Default)]
pub struct InstanceListing {
    /// Every instance that decodes, newest first.
    pub instances: Vec<InstanceRecord>,
    /// Every instance that does not, with why.
    pub unreadable: Vec<UnreadableInstance>,
}

/// An instance row that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableInstance {
    /// Its id (the one column always readable: it is the key).
    pub instance_id: String,
    /// What does not decode.
    pub reason: String,
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
    /// The external events its code waits for after its last episode, by name (empty when it
    /// waits for none, has ended, or its build predates the plugin reporting them).
    pub awaited_events: Vec<String>,
    /// The orchestration version a client started it with, if any (the emulator runs whatever
    /// build is loaded; the version is recorded and reported, not used to pick code).
    pub version: Option<String>,
    /// Tags a client started it with (empty: none).
    pub tags: BTreeMap<String, String>,
    /// When a client asked it to start, if later than its creation: it stays Pending until then
    /// on the engine's clock.
    pub scheduled_start: Option<DateTime<Utc>>,
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
    /// Its entities (lower-cased names).
    pub entities: Vec<String>,
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
    writable: bool,
}

impl Drop for Store {
    fn drop(&mut self) {
        // Back to rollback-journal mode (the close checkpoints the WAL first), so a read-only
        // opener later finds a plain file and creates no -wal/-shm beside it. Mid-transaction
        // (a crash path) the file is left as SQLite leaves it; the next open recovers it.
        if self.writable && !self.in_transaction && matches!(self.location, DbLocation::File(_)) {
            let _ = self.conn.pragma_update(None, "journal_mode", "DELETE");
        }
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the store, holding it exclusively. Anything that
    /// is not a durable-emu database is refused before a byte of it changes.
    pub fn open(location: &DbLocation) -> Result<Self, StoreError> {
        Self::open_with(location, Access::ReadWrite)
    }

    /// Opens an existing store for reading only: no file or directory is created, nothing is
    /// migrated, marked or locked, and every write fails. A missing or empty file is
    /// [`StoreError::NoDatabase`].
    pub fn open_read_only(location: &DbLocation) -> Result<Self, StoreError> {
        Self::open_with(location, Access::ReadOnly)
    }

    fn open_with(location: &DbLocation, access: Access) -> Result<Self, StoreError> {
        let path = match location {
            DbLocation::Memory => PathBuf::from(":memory:"),
            DbLocation::File(path) => path.clone(),
        };
        let conn = match location {
            DbLocation::Memory => Connection::open_in_memory()?,
            DbLocation::File(path) => open_file(path, access)?,
        };
        let classify = |error: rusqlite::Error| classify_error(&path, error);
        // Nothing else may share the file, so waiting for a lock would only delay the refusal.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        // Judge the file from reads alone: a foreign or newer file must stay byte-for-byte as it
        // was, so not even the journal mode may change before this.
        let found = Found::read(&conn).map_err(classify)?;
        let (version, marked) = match judge(&found) {
            Verdict::Fresh => (0, false),
            Verdict::Ours { version, marked } => (version, marked),
            Verdict::Newer { version } => {
                return Err(StoreError::NewerSchema {
                    path,
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            Verdict::Foreign { why } => return Err(StoreError::Foreign { path, why }),
        };
        if access == Access::ReadOnly && matches!(location, DbLocation::File(_)) {
            if version == 0 {
                return Err(StoreError::NoDatabase {
                    path,
                    why: "the file is empty",
                });
            }
            if version < SCHEMA_VERSION {
                return Err(StoreError::OlderSchema {
                    path,
                    found: version,
                });
            }
            return Ok(Self {
                conn,
                location: location.clone(),
                in_transaction: false,
                writable: false,
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
            writable: true,
        };
        store.migrate(version, marked)?;
        Ok(store)
    }

    /// Runs the migrations after `from` and marks the file as ours, in one transaction.
    fn migrate(&mut self, from: i32, marked: bool) -> Result<(), StoreError> {
        let start = usize::try_from(from).unwrap_or(0);
        if start >= MIGRATIONS.len() && marked {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        for migration in MIGRATIONS.iter().skip(start) {
            tx.execute_batch(migration)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.commit()?;
        Ok(())
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

    /// Inserts an instance row, or updates it in place: the row keeps its rowid, so rowids
    /// stay in the order instances were started (listings break ties in created time by it).
    pub fn put_instance(&self, record: &InstanceRecord) -> Result<(), StoreError> {
        let id = &record.instance_id;
        let created_at = time_text(record.created_at, || format!("created time of {id}"))?;
        let updated_at = time_text(record.updated_at, || format!("updated time of {id}"))?;
        let scheduled_start = record
            .scheduled_start
            .map(|at| time_text(at, || format!("scheduled start of {id}")))
            .transpose()?;
        self.conn
            .prepare_cached(
                "INSERT INTO instances(instance_id, name, execution_id, status, input, output, failure, custom_status, created_at, updated_at, parent, history_len, build, pinned, divergence, awaited_events, version, tags, scheduled_start)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
                 ON CONFLICT(instance_id) DO UPDATE SET name = excluded.name, execution_id = excluded.execution_id,
                   status = excluded.status, input = excluded.input, output = excluded.output,
                   failure = excluded.failure, custom_status = excluded.custom_status,
                   created_at = excluded.created_at, updated_at = excluded.updated_at,
                   parent = excluded.parent, history_len = excluded.history_len, build = excluded.build,
                   pinned = excluded.pinned, divergence = excluded.divergence,
                   awaited_events = excluded.awaited_events, version = excluded.version,
                   tags = excluded.tags, scheduled_start = excluded.scheduled_start",
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
                created_at,
                updated_at,
                record.parent.as_ref().map(to_json),
                record.history_len as i64,
                record.build,
                record.pinned,
                record.divergence.as_ref().map(to_json),
                (!record.awaited_events.is_empty()).then(|| to_json(&record.awaited_events)),
                record.version,
                (!record.tags.is_empty()).then(|| to_json(&record.tags)),
                scheduled_start,
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
            .optional()
            .map_err(|error| row_error(instance_id, error))?;
        row.map(decode_instance).transpose()
    }

    /// Every instance, newest first (of those created at the same time, the last started
    /// first); a row that does not decode is reported beside the others instead of hiding them.
    pub fn instance_listing(&self) -> Result<InstanceListing, StoreError> {
        self.listing("ORDER BY created_at DESC, rowid DESC")
    }

    /// Instances that are not terminal (they resume when the engine starts), oldest first; as
    /// [`instance_listing`](Self::instance_listing), a row that does not decode is reported.
    pub fn active_instance_listing(&self) -> Result<InstanceListing, StoreError> {
        self.listing("WHERE status NOT IN ('Completed', 'Failed', 'Canceled', 'Terminated') ORDER BY created_at, instance_id")
    }

    /// Instances with one of `statuses` (empty: any) whose id starts with `id_prefix` (None:
    /// any), in no particular order; rows that do not decode are reported beside them. The
    /// narrowing a client query can leave to SQL (times are compared after decoding: RFC 3339
    /// text with varying fractions does not sort as time).
    pub fn instance_listing_where(
        &self,
        statuses: &[RuntimeStatus],
        id_prefix: Option<&str>,
    ) -> Result<InstanceListing, StoreError> {
        let mut filter = String::from("WHERE 1 = 1");
        if !statuses.is_empty() {
            // The spellings are our own constants, never user text.
            let list: Vec<String> = statuses
                .iter()
                .map(|status| format!("'{}'", status.as_str()))
                .collect();
            filter.push_str(&format!(" AND status IN ({})", list.join(", ")));
        }
        match id_prefix {
            Some(prefix) if !prefix.is_empty() => {
                filter.push_str(" AND substr(instance_id, 1, length(?1)) = ?1");
                self.listing_with(&filter, &[&prefix])
            }
            _ => self.listing_with(&filter, &[]),
        }
    }

    fn listing(&self, filter_and_order: &str) -> Result<InstanceListing, StoreError> {
        self.listing_with(filter_and_order, &[])
    }

    fn listing_with(
        &self,
        filter_and_order: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<InstanceListing, StoreError> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances {filter_and_order}"
        ))?;
        let mut rows = statement.query(params)?;
        let mut listing = InstanceListing::default();
        while let Some(row) = rows.next()? {
            // The key is shown as whatever it holds, so even a row whose id was mangled is named.
            let instance_id = match row.get::<_, rusqlite::types::Value>(0)? {
                rusqlite::types::Value::Text(text) => text,
                other => format!("{other:?}"),
            };
            let decoded = raw_instance(row)
                .map_err(|error| row_error(&instance_id, error))
                .and_then(decode_instance);
            match decoded {
                Ok(record) => listing.instances.push(record),
                Err(error) => listing.unreadable.push(UnreadableInstance {
                    instance_id,
                    reason: error.to_string(),
                }),
            }
        }
        Ok(listing)
    }

    /// Records the start of an execution.
    pub fn add_execution(
        &self,
        instance_id: &str,
        execution: &ExecutionRecord,
    ) -> Result<(), StoreError> {
        let started_at = time_text(execution.started_at, || {
            format!(
                "start time of execution {} of {instance_id}",
                execution.execution_id
            )
        })?;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO executions(instance_id, execution_id, ordinal, input, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                instance_id,
                execution.execution_id,
                execution.ordinal,
                execution.input.to_string(),
                started_at,
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
                ordinal,
                input: from_json(
                    &input,
                    &format!("input of execution {execution_id} of {instance_id}"),
                )?,
                started_at: parse_time(&started_at, || {
                    format!("start time of execution {execution_id} of {instance_id}")
                })?,
                execution_id,
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
        for (offset, event) in events.iter().enumerate() {
            for time in event.times() {
                durable_sdk::history::check_time(time).map_err(|source| {
                    StoreError::TimeOutOfRange {
                        what: format!(
                            "{} (event {}) of {instance_id}",
                            event.kind.type_name(),
                            first_seq + offset
                        ),
                        source,
                    }
                })?;
            }
        }
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
        manifest: &durable_sdk::protocol::Manifest,
        content_hash: &str,
        origin: &str,
        loaded_at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let build_id = &manifest.build_id;
        let loaded_at = time_text(loaded_at, || format!("load time of build {build_id}"))?;
        self.conn
            .prepare_cached(
                "INSERT INTO builds(number, build_id, content_hash, origin, loaded_at, orchestrators, activities, entities)
                 VALUES ((SELECT COALESCE(MAX(number), 0) + 1 FROM builds), ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                build_id,
                content_hash,
                origin,
                loaded_at,
                to_json(&manifest.orchestrators),
                to_json(&manifest.activities),
                to_json(&manifest.entities)
            ])?;
        let number: i64 = self
            .conn
            .query_row("SELECT MAX(number) FROM builds", [], |row| row.get(0))?;
        Ok(u32::try_from(number).unwrap_or(u32::MAX))
    }

    /// The newest recorded build with this content hash: the same code, so the same build.
    pub fn build_with_hash(&self, content_hash: &str) -> Result<Option<u32>, StoreError> {
        let number: Option<i64> = self.conn.query_row(
            "SELECT MAX(number) FROM builds WHERE content_hash = ?1",
            [content_hash],
            |row| row.get(0),
        )?;
        Ok(number.map(|number| u32::try_from(number).unwrap_or(u32::MAX)))
    }

    /// Every build ever loaded into this database, oldest first.
    pub fn builds(&self) -> Result<Vec<BuildRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT number, build_id, content_hash, origin, loaded_at, orchestrators, activities, entities FROM builds ORDER BY number",
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
                row.get::<_, String>(7)?,
            ))
        })?;
        rows.map(|row| {
            let (
                number,
                build_id,
                content_hash,
                origin,
                loaded_at,
                orchestrators,
                activities,
                entities,
            ) = row?;
            Ok(BuildRecord {
                number,
                build_id,
                content_hash,
                origin,
                loaded_at: parse_time(&loaded_at, || format!("load time of build #{number}"))?,
                orchestrators: from_json(
                    &orchestrators,
                    &format!("build #{number} orchestrators"),
                )?,
                activities: from_json(&activities, &format!("build #{number} activities"))?,
                entities: from_json(&entities, &format!("build #{number} entities"))?,
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
        self.history_from(instance_id, execution_id, 0)
    }

    /// An execution's history from event `first_seq` on, in order.
    pub fn history_from(
        &self,
        instance_id: &str,
        execution_id: &str,
        first_seq: usize,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT event FROM history WHERE instance_id = ?1 AND execution_id = ?2 AND seq >= ?3 ORDER BY seq",
        )?;
        let rows = statement.query_map(
            params![instance_id, execution_id, first_seq as i64],
            |row| row.get::<_, String>(0),
        )?;
        rows.enumerate()
            .map(|(offset, row)| {
                from_json(
                    &row?,
                    &format!(
                        "history event {} of {instance_id} (execution {execution_id})",
                        first_seq + offset
                    ),
                )
            })
            .collect()
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
                event: from_json(&event, &format!("message {id} for {instance_id}"))?,
                instance_id,
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
                execution_id,
                task_id,
                name,
                input: from_json(
                    &input,
                    &format!("input of activity #{task_id} of {instance_id}"),
                )?,
                instance_id,
            })
        })
        .collect()
    }

    /// Records a pending timer.
    pub fn add_timer(&self, timer: &TimerRow) -> Result<(), StoreError> {
        let fire_at = time_text(timer.fire_at, || {
            format!("timer #{} of {}", timer.timer_id, timer.instance_id)
        })?;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO timers(instance_id, execution_id, timer_id, fire_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                timer.instance_id,
                timer.execution_id,
                timer.timer_id,
                fire_at
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
                execution_id,
                timer_id,
                fire_at: parse_time(&fire_at, || format!("timer #{timer_id} of {instance_id}"))?,
                instance_id,
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

    /// Outstanding work with deliveries that never finished, by (instance, execution, task id).
    pub fn work_deliveries(
        &self,
    ) -> Result<std::collections::HashMap<(String, String, i32), u32>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT instance_id, execution_id, task_id, deliveries FROM activity_work WHERE deliveries > 0",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                (
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i32>(2)?,
                ),
                row.get::<_, u32>(3)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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
            Ok((
                id,
                parse_time(&due_at, || format!("due time of inbox message {id}"))?,
            ))
        })
        .collect()
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

const _: () = assert!(
    MIGRATIONS.len() == SCHEMA_VERSION as usize,
    "one migration per schema version"
);

/// Refuses what is not a regular file and opens the connection: for reading only, a missing file
/// is refused (nothing is created); for writing, it is created with its directory.
fn open_file(path: &Path, access: Access) -> Result<Connection, StoreError> {
    match std::fs::metadata(path) {
        Ok(metadata) => {
            if let Some(kind) = not_a_file(&metadata.file_type()) {
                return Err(StoreError::NotAFile {
                    path: path.to_path_buf(),
                    kind,
                });
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if access == Access::ReadOnly {
                return Err(StoreError::NoDatabase {
                    path: path.to_path_buf(),
                    why: "no such file",
                });
            }
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                    dir: dir.to_path_buf(),
                    source,
                })?;
            }
        }
        Err(source) => {
            return Err(StoreError::Inspect {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let flags = match access {
        Access::ReadWrite => OpenFlags::default(),
        Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    };
    Connection::open_with_flags(path, flags).map_err(|error| classify_error(path, error))
}

/// What a path that is not a regular file is, for the refusal.
fn not_a_file(file_type: &std::fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        return None;
    }
    if file_type.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if file_type.is_char_device() {
            return Some("a character device");
        }
        if file_type.is_block_device() {
            return Some("a block device");
        }
        if file_type.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

fn classify_error(path: &Path, error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotADatabase {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
            path: path.to_path_buf(),
        },
        _ => StoreError::Sqlite(error),
    }
}

/// What a database holds, read without writing: its marks and its tables with their columns.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    application_id: i32,
    user_version: i32,
    /// Every table except SQLite's own, by name, with its column names in order.
    tables: Vec<(String, Vec<String>)>,
    /// Every object in the schema (tables, indexes, views, triggers), SQLite's own included.
    objects: i64,
}

impl Found {
    fn read(conn: &Connection) -> rusqlite::Result<Self> {
        let application_id = conn.query_row("PRAGMA application_id", [], |row| row.get(0))?;
        let user_version = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        let names: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
            )?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let mut tables = Vec::with_capacity(names.len());
        let mut columns = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
        for name in names {
            let names = columns
                .query_map([&name], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            tables.push((name, names));
        }
        let objects = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
        Ok(Self {
            application_id,
            user_version,
            tables,
            objects,
        })
    }

    /// The tables and columns our migrations up to `version` create.
    fn ours_at(version: i32) -> rusqlite::Result<Vec<(String, Vec<String>)>> {
        let conn = Connection::open_in_memory()?;
        for migration in MIGRATIONS
            .iter()
            .take(usize::try_from(version).unwrap_or(0))
        {
            conn.execute_batch(migration)?;
        }
        Ok(Self::read(&conn)?.tables)
    }
}

/// What a database is, judged before anything is written to it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// No tables and no marks: an empty file or a new database.
    Fresh,
    /// Ours, at `version`; `marked` once it carries our application id.
    Ours { version: i32, marked: bool },
    /// Ours, from a newer durable-emu.
    Newer { version: i32 },
    /// Another program's.
    Foreign { why: String },
}

fn judge(found: &Found) -> Verdict {
    if found.application_id == APPLICATION_ID {
        return if found.user_version > SCHEMA_VERSION {
            Verdict::Newer {
                version: found.user_version,
            }
        } else {
            Verdict::Ours {
                version: found.user_version,
                marked: true,
            }
        };
    }
    if found.application_id != 0 {
        return Verdict::Foreign {
            why: format!(
                "its application_id is {:#010x}, durable-emu's is {APPLICATION_ID:#010x}",
                found.application_id
            ),
        };
    }
    if found.objects == 0 && found.user_version == 0 {
        return Verdict::Fresh;
    }
    // Written by a durable-emu from before the mark: accepted only with exactly our schema.
    let ours = (1..=SCHEMA_VERSION).contains(&found.user_version)
        && Found::ours_at(found.user_version).is_ok_and(|tables| tables == found.tables);
    if ours {
        return Verdict::Ours {
            version: found.user_version,
            marked: false,
        };
    }
    let mut names: Vec<&str> = found.tables.iter().map(|(name, _)| name.as_str()).collect();
    let more = names.len().saturating_sub(6);
    names.truncate(6);
    let tables = if names.is_empty() {
        format!("no tables but {} schema objects", found.objects)
    } else if more > 0 {
        format!("tables {} and {more} more", names.join(", "))
    } else {
        format!("tables {}", names.join(", "))
    };
    Verdict::Foreign {
        why: format!(
            "{tables}, user_version {}, no durable-emu application_id",
            found.user_version
        ),
    }
}

const INSTANCE_COLUMNS: &str = "instance_id, name, execution_id, status, input, output, failure, custom_status, created_at, updated_at, parent, history_len, build, pinned, divergence, awaited_events, version, tags, scheduled_start";

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
    Option<String>,
    Option<String>,
    Option<String>,
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
        row.get(15)?,
        row.get(16)?,
        row.get(17)?,
        row.get(18)?,
    ))
}

/// A column of an instance row that SQLite could not convert, as a named corruption.
fn row_error(instance_id: &str, error: rusqlite::Error) -> StoreError {
    match error {
        rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..) => {
            StoreError::Corrupt {
                what: format!("a column of instance {instance_id}"),
                detail: error.to_string(),
            }
        }
        other => StoreError::Sqlite(other),
    }
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
        awaited_events,
        version,
        tags,
        scheduled_start,
    ) = raw;
    let what = |column: &str| format!("{column} of instance {instance_id}");
    Ok(InstanceRecord {
        status: status.parse().map_err(|detail| StoreError::Corrupt {
            what: what("status"),
            detail,
        })?,
        input: from_json(&input, &what("input"))?,
        output: from_json(&output, &what("output"))?,
        failure: failure
            .map(|text| from_json(&text, &what("failure")))
            .transpose()?,
        custom_status: custom_status
            .map(|text| from_json(&text, &what("custom status")))
            .transpose()?,
        created_at: parse_time(&created_at, || what("created time"))?,
        updated_at: parse_time(&updated_at, || what("updated time"))?,
        parent: parent
            .map(|text| from_json(&text, &what("parent")))
            .transpose()?,
        history_len: usize::try_from(history_len).unwrap_or(0),
        build,
        pinned,
        divergence: divergence
            .map(|text| from_json(&text, &what("divergence")))
            .transpose()?,
        awaited_events: awaited_events
            .map(|text| from_json(&text, &what("awaited events")))
            .transpose()?
            .unwrap_or_default(),
        version,
        tags: tags
            .map(|text| from_json(&text, &what("tags")))
            .transpose()?
            .unwrap_or_default(),
        scheduled_start: scheduled_start
            .map(|text| parse_time(&text, || what("scheduled start")))
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

fn parse_time(text: &str, what: impl FnOnce() -> String) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| StoreError::Corrupt {
            what: what(),
            detail: format!("'{text}' is not an RFC 3339 time: {error}"),
        })
}

/// A time as the store writes it, if it can be written (years 1 to 9999: RFC 3339 has no other).
fn time_text(time: DateTime<Utc>, what: impl FnOnce() -> String) -> Result<String, StoreError> {
    durable_sdk::history::check_time(time)
        .map(|time| time.to_rfc3339())
        .map_err(|source| StoreError::TimeOutOfRange {
            what: what(),
            source,
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
            conn.execute_batch(&format!(
                "CREATE TABLE future(x); PRAGMA user_version = 7; PRAGMA application_id = {APPLICATION_ID};"
            ))
            .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let error = Store::open(&DbLocation::File(path.clone())).unwrap_err();
        assert!(
            matches!(error, StoreError::NewerSchema { found: 7, .. }),
            "{error}"
        );
        assert!(error.to_string().contains(&format!(
            "schema 7, this build reads up to {SCHEMA_VERSION}"
        )));
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

    #[test]
    fn a_version_5_database_is_migrated_to_6_keeping_its_data_and_gaining_entities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        legacy_database(&path, 5);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('virtual_now', 'kept')",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO builds(number, build_id, content_hash, origin, loaded_at, orchestrators, activities)
                 VALUES (1, 'b1', 'h1', 'lib', '2026-01-01T00:00:00Z', '[\"A\"]', '[]')",
                [],
            )
            .unwrap();
        }
        // A read-only open does not migrate: it asks for a writable one.
        let error = Store::open_read_only(&DbLocation::File(path.clone())).unwrap_err();
        assert!(
            matches!(error, StoreError::OlderSchema { found: 5, .. }),
            "{error}"
        );
        let store = Store::open(&DbLocation::File(path.clone())).unwrap();
        assert_eq!(store.meta("virtual_now").unwrap().as_deref(), Some("kept"));
        let version: i32 = store
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, 6);
        let builds = store.builds().unwrap();
        assert_eq!(
            (builds[0].orchestrators.as_slice(), builds[0].entities.len()),
            (&["A".to_string()][..], 0),
            "a build recorded before entities reads back with none"
        );
        let row = EntityRow {
            instance_id: "@counter@a".into(),
            name: "counter".into(),
            key: "a".into(),
            state: Some(serde_json::json!(3)),
            last_modified: Utc::now(),
            locked_by: None,
            critical_section: None,
        };
        store.put_entity(&row).unwrap();
        let id = store
            .push_entity_message("@counter@a", &serde_json::json!({"op": "add"}), None)
            .unwrap();
        assert_eq!(store.entity("@counter@a").unwrap(), Some(row));
        let queue = store
            .entity_queue::<serde_json::Value>(Some("@counter@a"))
            .unwrap();
        assert_eq!(queue.len(), 1);
        assert_eq!(queue[0].id, id);
        drop(store);
        // Migrated and marked: a plain reopen and a read-only open accept it as it is.
        assert_eq!(application_id(&path), APPLICATION_ID);
        Store::open_read_only(&DbLocation::File(path)).unwrap();
    }

    fn legacy_database(path: &Path, version: i32) {
        let conn = Connection::open(path).unwrap();
        for migration in &MIGRATIONS[..usize::try_from(version).unwrap()] {
            conn.execute_batch(migration).unwrap();
        }
        conn.pragma_update(None, "user_version", version).unwrap();
    }

    fn application_id(path: &Path) -> i32 {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA application_id", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn another_programs_database_is_refused_before_any_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE notes(body TEXT); INSERT INTO notes VALUES ('mine');")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let error = Store::open(&DbLocation::File(path.clone())).unwrap_err();
        assert!(matches!(error, StoreError::Foreign { .. }), "{error}");
        assert!(error.to_string().contains("tables notes"), "{error}");
        let error = Store::open_read_only(&DbLocation::File(path.clone())).unwrap_err();
        assert!(matches!(error, StoreError::Foreign { .. }), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("app.db")]);
    }

    #[test]
    fn another_application_id_is_refused_even_with_our_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        legacy_database(&path, SCHEMA_VERSION);
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "application_id", 0x1234_5678)
            .unwrap();
        let error = Store::open(&DbLocation::File(path)).unwrap_err();
        assert!(
            error.to_string().contains("application_id is 0x12345678"),
            "{error}"
        );
    }

    #[test]
    fn an_unmarked_database_with_our_schema_is_accepted_and_marked_when_written() {
        for version in 1..=SCHEMA_VERSION {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.db");
            legacy_database(&path, version);
            let location = DbLocation::File(path.clone());
            if version == SCHEMA_VERSION {
                drop(Store::open_read_only(&location).unwrap());
                assert_eq!(application_id(&path), 0, "a read-only open marks nothing");
            } else {
                let error = Store::open_read_only(&location).unwrap_err();
                assert!(matches!(error, StoreError::OlderSchema { .. }), "{error}");
            }
            drop(Store::open(&location).unwrap());
            assert_eq!(application_id(&path), APPLICATION_ID);
            drop(Store::open_read_only(&location).unwrap());
        }
    }

    #[test]
    fn a_database_with_only_a_view_is_not_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("views.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE VIEW answer AS SELECT 42")
            .unwrap();
        let before = std::fs::read(&path).unwrap();
        let error = Store::open(&DbLocation::File(path.clone())).unwrap_err();
        assert!(
            error.to_string().contains("no tables but 1 schema objects"),
            "{error}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_near_copy_of_our_schema_is_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        legacy_database(&path, SCHEMA_VERSION);
        Connection::open(&path)
            .unwrap()
            .execute_batch("ALTER TABLE timers ADD COLUMN note TEXT")
            .unwrap();
        let error = Store::open(&DbLocation::File(path)).unwrap_err();
        assert!(matches!(error, StoreError::Foreign { .. }), "{error}");
    }

    #[test]
    fn an_empty_file_becomes_a_database_but_is_nothing_to_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(&path, b"").unwrap();
        let location = DbLocation::File(path.clone());
        let error = Store::open_read_only(&location).unwrap_err();
        assert!(error.to_string().contains("the file is empty"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        drop(Store::open(&location).unwrap());
        assert_eq!(application_id(&path), APPLICATION_ID);
    }

    #[test]
    fn a_read_only_open_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("state.db");
        let error = Store::open_read_only(&DbLocation::File(path)).unwrap_err();
        assert!(error.to_string().contains("no such file"), "{error}");
        assert!(!dir.path().join("missing").exists());
    }

    #[test]
    fn a_closed_database_is_read_without_wal_files_and_cannot_be_written_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let location = DbLocation::File(path.clone());
        drop(Store::open(&location).unwrap());
        let store = Store::open_read_only(&location).unwrap();
        assert!(store.instance_listing().unwrap().instances.is_empty());
        assert!(store.set_meta("virtual_now", "x").is_err());
        drop(store);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.db")]);
    }

    #[test]
    fn a_directory_is_refused_with_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let error = Store::open(&DbLocation::File(dir.path().to_path_buf())).unwrap_err();
        assert!(error.to_string().contains("is a directory"), "{error}");
    }

    fn record(id: &str) -> InstanceRecord {
        InstanceRecord {
            instance_id: id.into(),
            name: "Hello".into(),
            execution_id: "e1".into(),
            status: RuntimeStatus::Completed,
            input: Value::Null,
            output: Value::Null,
            failure: None,
            custom_status: None,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
            parent: None,
            history_len: 0,
            build: None,
            pinned: false,
            divergence: None,
            awaited_events: Vec::new(),
            version: None,
            tags: Default::default(),
            scheduled_start: None,
        }
    }

    #[test]
    fn instances_created_at_the_same_time_list_last_started_first_even_after_updates() {
        let store = Store::open(&DbLocation::Memory).unwrap();
        for id in ["z", "a", "m"] {
            store.put_instance(&record(id)).unwrap();
        }
        // An update (a status change, a continue-as-new) does not make an instance newer.
        let mut changed = record("z");
        changed.status = RuntimeStatus::Running;
        store.put_instance(&changed).unwrap();
        let ids: Vec<String> = store
            .instance_listing()
            .unwrap()
            .instances
            .into_iter()
            .map(|r| r.instance_id)
            .collect();
        assert_eq!(ids, ["m", "a", "z"]);
        assert_eq!(
            store.instance("z").unwrap().unwrap().status,
            RuntimeStatus::Running
        );
    }

    #[test]
    fn an_undecodable_row_is_named_beside_the_others() {
        let store = Store::open(&DbLocation::Memory).unwrap();
        for id in ["a", "b", "c"] {
            store.put_instance(&record(id)).unwrap();
        }
        store
            .conn
            .execute(
                "UPDATE instances SET updated_at = '+13434-01-01T00:00:00+00:00' WHERE instance_id = 'b'",
                [],
            )
            .unwrap();
        let listing = store.instance_listing().unwrap();
        let ids: Vec<_> = listing
            .instances
            .iter()
            .map(|r| r.instance_id.as_str())
            .collect();
        assert_eq!(ids, ["c", "a"]);
        assert_eq!(listing.unreadable.len(), 1);
        assert_eq!(listing.unreadable[0].instance_id, "b");
        assert!(
            listing.unreadable[0]
                .reason
                .contains("updated time of instance b"),
            "{}",
            listing.unreadable[0].reason
        );
        let error = store.instance("b").unwrap_err();
        assert!(
            error.to_string().contains("updated time of instance b"),
            "{error}"
        );
    }

    #[test]
    fn a_time_past_year_9999_is_refused_when_written() {
        let store = Store::open(&DbLocation::Memory).unwrap();
        let mut far = record("far");
        far.updated_at = DateTime::<Utc>::MAX_UTC;
        let error = store.put_instance(&far).unwrap_err();
        assert!(
            matches!(error, StoreError::TimeOutOfRange { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("updated time of far"), "{error}");
        assert!(store.instance("far").unwrap().is_none());
    }
}
