//! Engine events and the answers of background calls: what they change in the model, and what
//! they mark stale for the next tick. No keys here.

use crate::model::{FEED_CAPACITY, FeedLine, InstanceRow, Model, Part, Tone, View, short_id};
use crate::msg::Outcome;
use durable_emu_engine::engine::EngineEvent;
use durable_emu_engine::inspect::rows::CallCounts;
use durable_emu_engine::inspect::waiting::OpenCalls;
use durable_sdk::history::{EventKind, RuntimeStatus};

// ----- engine events ----------------------------------------------------------------------------

pub(super) fn feed(model: &mut Model, tone: Tone, text: String) {
    if model.builds.feed.len() >= FEED_CAPACITY {
        model.builds.feed.pop_front();
    }
    model.builds.feed.push_back(FeedLine { tone, text });
}

/// A failed build's compiler output: the first error that points into the source on top, then
/// every error as rustc rendered it.
fn compiler_output(first_error: Option<&str>, errors: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(first) = first_error {
        lines.push(format!("first error: {first}"));
        lines.push(String::new());
    }
    for (index, error) in errors.iter().enumerate() {
        if index > 0 {
            lines.push(String::new());
        }
        lines.extend(error.lines().map(str::to_string));
    }
    lines
}

pub(super) fn on_engine(model: &mut Model, event: EngineEvent) {
    match event {
        EngineEvent::InstanceCreated {
            instance_id,
            name,
            parent_instance_id,
        } => {
            let now = model.clock.now;
            let build = model.builds.active;
            let instances = &mut model.instances;
            if instances.rows.contains_key(&instance_id) {
                return;
            }
            let start_seq = instances.next_start();
            instances
                .rows
                .entry(instance_id.clone())
                .or_insert_with(|| InstanceRow {
                    id: instance_id,
                    name,
                    status: RuntimeStatus::Pending,
                    custom_status: None,
                    created_at: now,
                    updated_at: now,
                    parent: parent_instance_id,
                    build,
                    history_len: 0,
                    // A new instance's history starts empty; an imported one (a fork) arrives
                    // with a gap below, which unsets this again.
                    calls: Some(CallCounts::default()),
                    pinned: false,
                    divergence: None,
                    open: Some(OpenCalls::default()),
                    awaited_events: Vec::new(),
                    start_seq,
                });
            instances.dirty = true;
        }
        EngineEvent::InstanceChanged {
            instance_id,
            status,
            custom_status,
        } => {
            let now = model.clock.now;
            match model.instances.rows.get_mut(&instance_id) {
                // An older event overtaken by a snapshot: an ended instance stays ended.
                Some(row) if row.status.is_terminal() && !status.is_terminal() => {}
                Some(row) => {
                    if row.status != status {
                        model.instances.dirty = true;
                    }
                    super::builds::left_divergence(row, status);
                    row.status = status;
                    row.custom_status = custom_status;
                    row.updated_at = now.or(row.updated_at);
                }
                None => model.stale.mark(Part::Instances),
            }
        }
        EngineEvent::HistoryAppended {
            instance_id,
            execution_id,
            first_seq,
            events,
        } => {
            if let Some(row) = model.instances.rows.get_mut(&instance_id) {
                if first_seq == 0 {
                    // A new execution (start, continue-as-new) counts its own calls.
                    row.calls = Some(CallCounts::default());
                    row.open = Some(OpenCalls::default());
                } else if first_seq != row.history_len {
                    // Events this row never saw (an imported fork's history, events lost):
                    // counting on would pair completions with calls it did not count.
                    row.calls = None;
                    row.open = None;
                }
                row.history_len = first_seq + events.len();
                for event in &events {
                    if let Some(calls) = &mut row.calls {
                        calls.record(event);
                    }
                    if let Some(open) = &mut row.open {
                        open.record(event);
                    }
                    if let EventKind::ExecutionStarted { .. } = event.kind {
                        if row.created_at.is_none() {
                            row.created_at = Some(event.timestamp);
                        }
                    }
                }
                if let Some(last) = events.last() {
                    row.updated_at = Some(last.timestamp);
                }
            }
            super::replay::history_grew(model, &instance_id, &execution_id, first_seq, &events);
            if let Some(history) = &mut model.history {
                if history.instance_id == instance_id {
                    if history.loading {
                        // Applied once the load arrives (it may or may not contain them).
                        history.held.push((execution_id, first_seq, events));
                    } else if !history.append(&execution_id, first_seq, &events) {
                        model.stale.mark(Part::History);
                    }
                }
            }
        }
        EngineEvent::InstanceAwaits {
            instance_id,
            events,
        } => match model.instances.rows.get_mut(&instance_id) {
            Some(row) => row.awaited_events = events,
            None => model.stale.mark(Part::Instances),
        },
        EngineEvent::ActivityStarted { .. } | EngineEvent::ActivityFinished { .. } => {
            // The workers' in-flight and completed counts move with the work.
            if model.view == View::Builds && !model.workers.workers.is_empty() {
                model.stale.mark(Part::Workers);
            }
        }
        EngineEvent::TimerScheduled { .. } | EngineEvent::TimerFired { .. } => {
            model.stale.mark(Part::Timers);
        }
        EngineEvent::ClockMoved { now, playing } => {
            model.clock.heard(now, playing);
            model.stale.mark(Part::Timers);
        }
        EngineEvent::NonDeterminism { instance_id, diff } => feed(
            model,
            Tone::Error,
            format!("nondeterminism in {}: {diff}", short_id(&instance_id)),
        ),
        EngineEvent::BuildLoaded {
            number,
            origin,
            orchestrators,
            ..
        } => {
            model.builds.active = Some(number);
            model.orchestrators = orchestrators;
            model.stale.mark(Part::Builds);
            // Work parked for a name the new build has now runs.
            model.stale.mark(Part::Workers);
            model.stale.mark(Part::Instances);
            feed(
                model,
                Tone::Ok,
                format!("build #{number} loaded from {origin}"),
            );
            super::builds::build_loaded(model, number);
        }
        EngineEvent::BuildStarted { target } => {
            model.builds.compiler_output.clear();
            feed(model, Tone::Info, format!("building {target} ..."));
            super::builds::build_started(model, &target);
        }
        EngineEvent::BuildProgress { message, .. } => feed(model, Tone::Dim, message),
        EngineEvent::ReloadFinished {
            number,
            settled_to_active_ms,
        } => feed(
            model,
            Tone::Ok,
            format!("reloaded: build #{number} active after {settled_to_active_ms:.0} ms"),
        ),
        EngineEvent::BuildFailed {
            target,
            reason,
            errors,
            first_error,
        } => {
            feed(
                model,
                Tone::Error,
                format!("build of {target} failed: {reason}"),
            );
            // The feed gets one line per failure; the output itself opens with Enter, scrolled
            // and wrapped, the first located error on top.
            if let Some(first) = &first_error {
                feed(model, Tone::Error, format!("  {first}"));
            }
            if !errors.is_empty() {
                feed(
                    model,
                    Tone::Dim,
                    "  Enter shows the compiler output".to_string(),
                );
                model.builds.compiler_output = compiler_output(first_error.as_deref(), &errors);
            }
            model.status = Some(("the build failed; see the Builds view (8)".into(), true));
        }
        EngineEvent::InstanceDiverged {
            instance_id,
            build,
            pinned_build,
            reason,
            diff,
        } => {
            feed(
                model,
                Tone::Warn,
                format!(
                    "{} does not replay on {} and was suspended: {reason}",
                    short_id(&instance_id),
                    crate::model::code_label(build)
                ),
            );
            super::builds::instance_diverged(
                model,
                &instance_id,
                build,
                pinned_build,
                reason,
                diff,
            );
            model.stale.mark(Part::Instances);
        }
        EngineEvent::FaultFired {
            instance_id,
            rule,
            effect,
            target,
        } => {
            // Counters changed; reloaded at the next tick in the faults view (one load however
            // many fire in between).
            model.stale.mark(Part::Faults);
            feed(
                model,
                Tone::Warn,
                format!(
                    "fault {rule} fired on {target} of {}: {effect}",
                    short_id(&instance_id)
                ),
            );
        }
        EngineEvent::Warning {
            instance_id,
            message,
        } => {
            let text = match instance_id {
                Some(id) => format!("{}: {message}", short_id(&id)),
                None => message,
            };
            feed(model, Tone::Warn, text);
        }
        EngineEvent::StoreFailed { message, retrying } => {
            let what = if retrying {
                "the store refused a write; nothing of that batch was recorded, retrying"
            } else {
                "the store refused a write; the engine stopped"
            };
            feed(model, Tone::Error, format!("{what}: {message}"));
            model.status = Some((format!("{what} (see the Builds view, 8)"), true));
            // Memory went back to what the store holds: what is shown may be ahead of it.
            model.stale.mark(Part::Instances);
        }
        EngineEvent::Redelivered {
            instance_id,
            what,
            delivery,
            max_deliveries,
        } => {
            feed(
                model,
                Tone::Warn,
                format!(
                    "{}: redelivering {what} (delivery {delivery} of at most {max_deliveries}; the emulator stopped while it ran)",
                    short_id(&instance_id)
                ),
            );
        }
        EngineEvent::WorkerConnected { id, peer } => {
            model.stale.mark(Part::Workers);
            model.stale.mark(Part::Instances);
            feed(
                model,
                Tone::Ok,
                format!("worker #{id} connected from {peer}"),
            );
        }
        EngineEvent::WorkerDisconnected { id, requeued } => {
            model.stale.mark(Part::Workers);
            let text = if requeued == 0 {
                format!("worker #{id} disconnected")
            } else {
                format!(
                    "worker #{id} disconnected holding {requeued} work item(s): they go to the next worker that takes them"
                )
            };
            feed(model, Tone::Warn, text);
        }
        EngineEvent::DivergenceCleared { instance_id } => {
            if let Some(row) = model.instances.rows.get_mut(&instance_id) {
                row.divergence = None;
                model.instances.dirty = true;
            }
            feed(
                model,
                Tone::Ok,
                format!(
                    "{} replays on the connected worker's code again (still suspended: resume it to run on)",
                    short_id(&instance_id)
                ),
            );
        }
        EngineEvent::WorkParked {
            instance_id,
            kind,
            name,
        } => {
            model.stale.mark(Part::Workers);
            feed(
                model,
                Tone::Warn,
                format!(
                    "{}: no worker runs {kind} '{name}' and no loaded build has it; it waits (see the Builds view, 8)",
                    short_id(&instance_id)
                ),
            );
        }
        EngineEvent::EntityUpdated { instance_id } => {
            // One load per tick however many operations ran (a thousand signals are a thousand
            // events); loaded only while the Entities view shows.
            model.stale.mark(Part::Entities);
            if model.entities.detail.as_ref().is_some_and(|detail| detail.instance_id == instance_id)
            {
                model.stale.mark(Part::EntityDetail);
            }
            if model.entity_logs.contains_key(&instance_id) {
                // The errors tree asks for the changed log again when it next derives.
                model.entity_logs_asked.remove(&instance_id);
                model.children_revision += 1;
            }
        }
        #[allow(unreachable_patterns)]
        other => {
            // Events added to the engine after this view was written still reach the feed.
            let text = serde_json::to_string(&other).unwrap_or_default();
            feed(model, Tone::Info, text);
        }
    }
}

// ----- answers of background calls -------------------------------------------------------------

pub(super) fn on_outcome(model: &mut Model, outcome: Outcome) {
    match outcome {
        Outcome::Instances(Ok(records)) => {
            model.instances.replace_rows(records, |row, previous| {
                if let Some(previous) = previous {
                    if previous.calls.is_some() {
                        // Counts go with the history length they were counted at, so the next
                        // event is checked against them, not against a snapshot's length.
                        row.calls = previous.calls;
                        row.open.clone_from(&previous.open);
                        row.history_len = previous.history_len;
                    }
                    // A snapshot can be older than events already applied (they travel on
                    // different threads); an ended instance never runs again, so keep its end.
                    if previous.status.is_terminal() && !row.status.is_terminal() {
                        row.status = previous.status;
                        row.custom_status.clone_from(&previous.custom_status);
                        row.history_len = row.history_len.max(previous.history_len);
                    }
                }
            });
        }
        Outcome::Counts(counted) => {
            for (instance_id, counts) in counted {
                let Some((history_len, calls, open)) = counts else {
                    // Unreadable (purged meanwhile): stays in `counting`, so it is not asked again.
                    continue;
                };
                model.instances.counting.remove(&instance_id);
                if let Some(row) = model.instances.rows.get_mut(&instance_id) {
                    // Live events that came after the load leave it unknown, to be asked again.
                    if row.calls.is_none() && history_len >= row.history_len {
                        row.calls = Some(calls);
                        row.open = Some(open);
                        row.history_len = history_len;
                    }
                }
            }
        }
        Outcome::History {
            instance_id,
            result,
            child: true,
        } => {
            if let Ok(executions) = result {
                model.children.insert(instance_id, executions);
                model.children_revision += 1;
            }
        }
        Outcome::History {
            instance_id,
            result,
            child: false,
        } => {
            let Some(history) = &mut model.history else {
                return;
            };
            if history.instance_id != instance_id {
                return;
            }
            match result {
                Ok(executions) => {
                    history.set_executions(executions);
                    for (execution_id, first_seq, events) in std::mem::take(&mut history.held) {
                        if !history.append(&execution_id, first_seq, &events) {
                            model.stale.mark(Part::History);
                        }
                    }
                }
                Err(error) => {
                    history.loading = false;
                    model.status = Some((error, true));
                }
            }
        }
        Outcome::Timers(result) => {
            model.stale.loaded(Part::Timers);
            match result {
                Ok((timers, clock)) => {
                    model.clock.timers = timers;
                    model.clock.heard(clock.now, clock.playing);
                    model.clock.auto_skip = clock.auto_skip;
                    model.clock.advancing_to = clock.advancing_to;
                }
                Err(error) => model.status = Some((error, true)),
            }
        }
        Outcome::Workers(workers, parked) => {
            model.stale.loaded(Part::Workers);
            model.workers.workers = workers;
            model.workers.parked = parked;
        }
        Outcome::Builds(Ok((builds, active))) => {
            model.builds.builds = builds;
            model.builds.active = active;
        }
        Outcome::Instances(Err(error)) | Outcome::Builds(Err(error)) => {
            model.status = Some((error, true));
        }
        Outcome::Faults(Ok(rules)) => {
            model.faults.rules = rules;
            model.faults.loaded = true;
            model.stale.loaded(Part::Faults);
            let last = model.faults.rules.len().saturating_sub(1);
            model.faults.selected = model.faults.selected.min(last);
        }
        Outcome::Faults(Err(error)) => {
            model.stale.loaded(Part::Faults);
            model.status = Some((error, true));
        }
        Outcome::Entities(result) => {
            model.stale.loaded(Part::Entities);
            match result {
                Ok(list) => super::entities::listed(model, list),
                Err(error) => model.status = Some((error, true)),
            }
        }
        Outcome::Entity {
            instance_id,
            result,
            for_errors: true,
        } => {
            if let Ok((_, operations)) = result {
                model.entity_logs.insert(instance_id, operations);
                model.children_revision += 1;
            }
        }
        Outcome::Entity {
            instance_id,
            result,
            for_errors: false,
        } => {
            model.stale.loaded(Part::EntityDetail);
            match result {
                Ok((metadata, operations)) => {
                    model.entities.detail = Some(crate::model::EntityDetail {
                        instance_id,
                        metadata,
                        operations,
                    });
                }
                Err(error) => model.status = Some((error, true)),
            }
        }
        Outcome::FaultChanged { label, result } => {
            model.stale.mark(Part::Faults);
            model.status = Some(match result {
                Ok(message) => (format!("{label}: {message}"), false),
                Err(error) => (format!("{label} failed: {error}"), true),
            });
        }
        Outcome::Action { label, result } => {
            model.stale.mark(Part::Instances);
            // An advance, a jump or a pause answered: the clock view shows where time is going.
            model.stale.mark(Part::Timers);
            model.status = Some(match result {
                Ok(message) => (format!("{label}: {message}"), false),
                Err(error) => (format!("{label} failed: {error}"), true),
            });
        }
        Outcome::Started { label, result } => match result {
            Ok(id) => {
                model.status = Some((format!("{label}: started {id}"), false));
                if label.starts_with("fork") {
                    model.view = View::History;
                }
                model.instances.selected_id = Some(id.clone());
                model.instances.wanted = Some(id);
                model.instances.dirty = true;
                model.stale.mark(Part::Instances);
            }
            Err(error) => model.status = Some((format!("{label} failed: {error}"), true)),
        },
        Outcome::ReplayedOnActive { token, result } => {
            super::replay::replayed_on_active(model, token, result);
        }
        Outcome::Stepped { token, result } => {
            if let Some(stepper) = &mut model.stepper {
                if stepper.token == token {
                    stepper.result = Some(result.map(|step| *step));
                }
            }
        }
    }
}
