//! Deliveries that never finished: the start journal beside the store, and what recovery does
//! with it.
//!
//! User code can end the process (`std::process::abort()`, a stack overflow, a segfault in a C
//! library); `catch_unwind` only catches panics. Redelivering such work after a restart is right
//! (at-least-once), but work that ends the process on every delivery would take the emulator down
//! on every start. So, before user code runs (an activity on a worker, an orchestrator episode or
//! a reload check on the core), one line naming it is appended to `<db>-starts`, and another when
//! the code returned: one `write(2)` each on an `O_APPEND` file, which outlives the process dying
//! (an OS crash may lose it; then that start is simply not counted). A start without its end is a
//! delivery that never finished. Committing to SQLite instead would cost a transaction per
//! activity.
//!
//! On start-up, the lines of work still outstanding are added to the store's counters
//! (`activity_work.deliveries`, `unfinished_episodes`) in the recovery transaction, and the journal
//! is emptied once that commits. Work whose counter reaches `--max-deliveries` is failed instead of
//! run again, with a message that names it and says why; the rest is redelivered and named.
//! The journal is also emptied whenever nothing is in flight after a commit, so it stays small.
//!
//! Owns the journal's format; knows nothing of plugins (the core calls it around them).

use super::{Core, InFlight, Message, WorkKey, work_key};
use crate::engine::{EngineError, EngineEvent};
use crate::store::DbLocation;
use durable_sdk::FailureDetails;
use durable_sdk::history::{EventKind, RuntimeStatus};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Mutex;

/// The failure recorded when work keeps ending the process.
pub(crate) const DELIVERY_LIMIT: &str = "DeliveryLimitReached";

/// An append-only record of user code about to run.
#[derive(Debug)]
pub(crate) struct StartJournal {
    path: PathBuf,
    file: Mutex<File>,
}

/// One line of the journal.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Line {
    /// An activity attempt starts: instance, execution, task id.
    Activity(String, String, i32),
    /// That attempt returned.
    ActivityEnd(String, String, i32),
    /// Orchestrator code starts for an episode (or a replay of one): instance, execution,
    /// history length.
    Episode(String, String, usize),
    /// That code returned.
    EpisodeEnd(String, String, usize),
}

/// Starts found in the journal, per work item.
#[derive(Debug, Default)]
pub(super) struct Starts {
    activities: HashMap<WorkKey, u32>,
    episodes: HashMap<(String, String, usize), u32>,
}

impl StartJournal {
    /// The journal of a database file; `None` for an in-memory store (nothing to restart from).
    pub(crate) fn beside(location: &DbLocation) -> std::io::Result<Option<Self>> {
        let DbLocation::File(db) = location else {
            return Ok(None);
        };
        let mut name = db.as_os_str().to_owned();
        name.push("-starts");
        let path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        Ok(Some(Self {
            path,
            file: Mutex::new(file),
        }))
    }

    /// Notes that an activity attempt is about to run (`end`: that it returned).
    pub(crate) fn activity(&self, instance_id: &str, execution_id: &str, task_id: i32, end: bool) {
        let (instance, execution) = (instance_id.to_string(), execution_id.to_string());
        self.append(&if end {
            Line::ActivityEnd(instance, execution, task_id)
        } else {
            Line::Activity(instance, execution, task_id)
        });
    }

    /// Notes that orchestrator code is about to run for an instance at this point of its history
    /// (`end`: that it returned).
    pub(crate) fn episode(&self, instance_id: &str, execution_id: &str, len: usize, end: bool) {
        let (instance, execution) = (instance_id.to_string(), execution_id.to_string());
        self.append(&if end {
            Line::EpisodeEnd(instance, execution, len)
        } else {
            Line::Episode(instance, execution, len)
        });
    }

    fn append(&self, start: &Line) {
        let Ok(mut line) = serde_json::to_vec(start) else {
            return;
        };
        line.push(b'\n');
        // A journal that cannot be written only means a start is not counted; the work itself
        // must not fail for it.
        if let Ok(mut file) = self.file.lock() {
            let _ = file.write_all(&line);
        }
    }

    /// The starts without an end since the journal was last emptied. Lines that do not parse (a
    /// write cut short by the process dying) are skipped.
    pub(super) fn read(&self) -> std::io::Result<Starts> {
        let mut activities: HashMap<WorkKey, i64> = HashMap::new();
        let mut episodes: HashMap<(String, String, usize), i64> = HashMap::new();
        let reader = std::io::BufReader::new(File::open(&self.path)?);
        for line in reader.split(b'\n') {
            match serde_json::from_slice::<Line>(&line?) {
                Ok(Line::Activity(instance, execution, task)) => {
                    *activities
                        .entry(WorkKey::new(instance, execution, task))
                        .or_default() += 1;
                }
                Ok(Line::ActivityEnd(instance, execution, task)) => {
                    *activities
                        .entry(WorkKey::new(instance, execution, task))
                        .or_default() -= 1;
                }
                Ok(Line::Episode(instance, execution, len)) => {
                    *episodes.entry((instance, execution, len)).or_default() += 1;
                }
                Ok(Line::EpisodeEnd(instance, execution, len)) => {
                    *episodes.entry((instance, execution, len)).or_default() -= 1;
                }
                Err(_) => {}
            }
        }
        let unfinished = |count: i64| u32::try_from(count).ok().filter(|count| *count > 0);
        Ok(Starts {
            activities: activities
                .into_iter()
                .filter_map(|(key, count)| unfinished(count).map(|count| (key, count)))
                .collect(),
            episodes: episodes
                .into_iter()
                .filter_map(|(key, count)| unfinished(count).map(|count| (key, count)))
                .collect(),
        })
    }

    /// Forgets every start (they are counted in the store, or finished).
    pub(crate) fn clear(&self) {
        if let Ok(file) = self.file.lock() {
            let _ = file.set_len(0);
        }
    }
}

impl Drop for StartJournal {
    /// An empty journal is removed, so a database that ended its work has no file beside it.
    fn drop(&mut self) {
        let empty = self
            .file
            .lock()
            .ok()
            .and_then(|file| file.metadata().ok())
            .is_some_and(|metadata| metadata.len() == 0);
        if empty {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Core {
    /// Recovery of outstanding activities: each gets the starts the journal holds for it added to
    /// its durable counter; one that reached the limit fails (non-retriable, so the orchestration
    /// can catch it), the rest are redelivered with their delivery number.
    pub(super) fn recover_work(&mut self, starts: &Starts) -> Result<(), EngineError> {
        // One read of the stored counts; a write only where the journal adds starts (a restart
        // after a fan-out would otherwise cost one UPDATE per outstanding activity).
        let stored = self.store.work_deliveries()?;
        for work in self.store.work()? {
            let key = work_key(&work);
            let started = starts.activities.get(&key).copied().unwrap_or(0);
            let unfinished = if started > 0 {
                self.store.add_work_deliveries(
                    &work.instance_id,
                    &work.execution_id,
                    work.task_id,
                    started,
                )?
            } else {
                stored
                    .get(&(
                        work.instance_id.clone(),
                        work.execution_id.clone(),
                        work.task_id,
                    ))
                    .copied()
                    .unwrap_or(0)
            };
            let what = format!("activity '{}' (#{})", work.name, work.task_id);
            if unfinished >= self.limits.max_deliveries {
                self.store
                    .remove_work(&work.instance_id, &work.execution_id, work.task_id)?;
                let message = format!(
                    "{what} was started {unfinished} times and the emulator stopped each time before it finished (limit: --max-deliveries {})",
                    self.limits.max_deliveries
                );
                tracing::warn!(target: "durable_emu::engine", "instance '{}': {message}", work.instance_id);
                self.warn(Some(&work.instance_id), message.clone());
                if self.mirror.live.contains_key(&work.instance_id) {
                    self.deliver(
                        &work.instance_id,
                        EventKind::TaskFailed {
                            task_scheduled_id: work.task_id,
                            failure: FailureDetails::new(DELIVERY_LIMIT, message).non_retriable(),
                        },
                    );
                }
                continue;
            }
            let delivery = unfinished + 1;
            if unfinished > 0 {
                self.redelivering(&work.instance_id, what, delivery);
            }
            let out = InFlight { work, delivery };
            self.mirror.in_flight.insert(key, out.clone());
            self.batch.to_dispatch.push(out);
        }
        Ok(())
    }

    /// Recovery of orchestrator episodes that started and never committed: counted per instance
    /// at its current point of history; an instance that reached the limit fails, recorded by the
    /// host without running its code again.
    pub(super) fn recover_episodes(&mut self, starts: &Starts) -> Result<(), EngineError> {
        let mut crashed: Vec<(String, String, usize, u32)> = self
            .mirror
            .live
            .values()
            .filter_map(|live| {
                let record = &live.record;
                let key = (
                    record.instance_id.clone(),
                    record.execution_id.clone(),
                    record.history_len,
                );
                starts
                    .episodes
                    .get(&key)
                    .map(|count| (key.0, key.1, key.2, *count))
            })
            .collect();
        crashed.sort();
        for (instance_id, execution_id, history_len, started) in crashed {
            let unfinished =
                self.store
                    .add_episode_starts(&instance_id, &execution_id, history_len, started)?;
            let name = self
                .mirror
                .live
                .get(&instance_id)
                .map(|live| live.record.name.clone())
                .unwrap_or_default();
            let what = format!("orchestrator '{name}' (episode at event {history_len})");
            if unfinished < self.limits.max_deliveries {
                self.redelivering(&instance_id, what, unfinished + 1);
                continue;
            }
            let message = format!(
                "{what} was started {unfinished} times and the emulator stopped each time before it finished (limit: --max-deliveries {})",
                self.limits.max_deliveries
            );
            tracing::warn!(target: "durable_emu::engine", "instance '{instance_id}': {message}");
            self.warn(Some(&instance_id), message.clone());
            // Its code is not run again: the queued messages and the failure are recorded by the
            // host, as a terminate without functions is.
            let queued: Vec<Message> = self
                .mirror
                .pending
                .remove(&instance_id)
                .map(Vec::from)
                .unwrap_or_default();
            let failure = FailureDetails::new(DELIVERY_LIMIT, message).non_retriable();
            self.record_host_episode(
                &instance_id,
                queued,
                vec![EventKind::ExecutionCompleted {
                    status: RuntimeStatus::Failed,
                    result: Value::Null,
                    failure: Some(failure.clone()),
                }],
            )?;
            self.finish_instance(
                &instance_id,
                RuntimeStatus::Failed,
                Value::Null,
                Some(failure),
            )?;
        }
        self.store.prune_unfinished_episodes()?;
        Ok(())
    }

    fn redelivering(&mut self, instance_id: &str, what: String, delivery: u32) {
        tracing::warn!(
            target: "durable_emu::engine",
            "redelivering {what} of instance '{instance_id}': delivery {delivery} of at most {} (the emulator stopped while it ran)",
            self.limits.max_deliveries
        );
        self.batch.outbox.push(EngineEvent::Redelivered {
            instance_id: instance_id.to_string(),
            what,
            delivery,
            max_deliveries: self.limits.max_deliveries,
        });
    }
}

impl Core {
    /// Remote work whose worker went away while holding it `lost` times (`--max-deliveries`):
    /// an activity fails (non-retriable, `DeliveryLimitReached`, which the code can catch); an
    /// episode fails its instance, recorded by the host without running its code again; each
    /// operation of an entity batch fails (its caller gets the failure), the state unchanged.
    pub(crate) fn remote_delivery_limit(&mut self, work: crate::remote::Work, lost: u32) {
        use crate::remote::Work;
        let limit = self.limits.max_deliveries;
        let gone = |what: &str| {
            format!(
                "{what} was delivered {lost} times and its worker went away each time before it answered (limit: --max-deliveries {limit})"
            )
        };
        match work {
            Work::Activity {
                name,
                instance_id,
                execution_id,
                task_id,
                ..
            } => {
                let message = gone(&format!("activity '{name}' (#{task_id})"));
                tracing::warn!(target: "durable_emu::engine", "instance '{instance_id}': {message}");
                self.warn(Some(&instance_id), message.clone());
                self.accept_activity_result(super::ActivityDone {
                    instance_id,
                    execution_id,
                    task_id,
                    name,
                    outcome: durable_sdk::protocol::ActivityOutcome::Failed {
                        failure: FailureDetails::new(DELIVERY_LIMIT, message).non_retriable(),
                    },
                });
            }
            Work::Episode { name, request, .. } => {
                let instance_id = request.instance_id;
                let Some(episode) = self.mirror.remote_episodes.remove(&instance_id) else {
                    return;
                };
                let message = gone(&format!(
                    "orchestrator '{name}' (episode at event {})",
                    request.history_len
                ));
                tracing::warn!(target: "durable_emu::engine", "instance '{instance_id}': {message}");
                self.warn(Some(&instance_id), message.clone());
                let failure = FailureDetails::new(DELIVERY_LIMIT, message).non_retriable();
                let recorded = self
                    .record_host_episode(
                        &instance_id,
                        episode.delivered,
                        vec![EventKind::ExecutionCompleted {
                            status: RuntimeStatus::Failed,
                            result: Value::Null,
                            failure: Some(failure.clone()),
                        }],
                    )
                    .and_then(|()| {
                        self.finish_instance(
                            &instance_id,
                            RuntimeStatus::Failed,
                            Value::Null,
                            Some(failure),
                        )
                    });
                if let Err(error) = recorded {
                    self.fail_batch(format!(
                        "cannot record that instance '{instance_id}' reached the delivery limit: {error}"
                    ));
                }
            }
            Work::Entity { request, .. } => {
                let message = gone(&format!(
                    "the batch of {} operation(s) of entity '{}'",
                    request.operations.len(),
                    request.instance_id
                ));
                tracing::warn!(target: "durable_emu::engine", "{message}");
                self.warn(Some(&request.instance_id), message.clone());
                let failure = FailureDetails::new(DELIVERY_LIMIT, message).non_retriable();
                self.fail_remote_entity_batch(&request, failure);
            }
            Work::Probe { .. } => {}
        }
    }
}
