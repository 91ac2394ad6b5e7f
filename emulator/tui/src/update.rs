//! `update`: the only code that changes the model. A message in, the model changed, commands out
//! (engine calls and replays for the executor). Pure: no terminal, no threads, no clock reads;
//! tests drive it with scripted messages (`emulator/tui/tests/tui_update.rs`).

use crate::cmdline::{self, Action};
use crate::command::Command;
use crate::errors::{error_tree, failed_children};
use crate::fanout::fanout_groups;
use crate::input::TextInput;
use crate::keys;
use crate::layout::{self, areas, list_area, page, scroll_to, tab_positions};
use crate::logs::RING_CAPACITY;
use crate::model::{
    FEED_CAPACITY, FeedLine, ForkForm, HistoryState, InstanceRow, Model, Overlay, StartForm,
    Stepper, Tone, View, short_id,
};
use crate::msg::{Msg, Outcome};
use crate::replay::{CompletionEdit, calls_at, next_completion, plan_fork};
use crate::timeline::timeline;
use durable_emu_engine::engine::EngineEvent;
use durable_sdk::history::{EventKind, RuntimeStatus};
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use serde_json::Value;
use std::sync::Arc;

/// Applies `msg` to `model`; returns what to ask the engine or the plugin.
pub fn update(model: &mut Model, msg: Msg) -> Vec<Command> {
    let mut out = Vec::new();
    match msg {
        Msg::Key(key) => {
            if key.kind != KeyEventKind::Release {
                on_key(model, key, &mut out);
            }
        }
        Msg::Mouse(mouse) => on_mouse(model, mouse, &mut out),
        Msg::Resize(width, height) => model.area = Rect::new(0, 0, width, height),
        Msg::Engine(event) => on_engine(model, event),
        Msg::EventsLost(count) => {
            model.instances_stale = true;
            model.history_stale = model.history.is_some();
            model.timers_stale = true;
            model.status = Some((
                format!("the UI fell {count} events behind; reloading"),
                false,
            ));
        }
        Msg::Done(outcome) => on_outcome(model, outcome),
        Msg::Log(entry) => {
            if model.builds.logs.len() >= RING_CAPACITY {
                model.builds.logs.pop_front();
            }
            model.builds.logs.push_back(entry);
        }
        Msg::Tick => on_tick(model, &mut out),
        Msg::Episode(running) => {
            model.long_episode =
                running.filter(|episode| episode.elapsed >= crate::model::LONG_EPISODE);
        }
        Msg::Quit => model.quit = true,
    }
    out
}

// ----- ticks: work that waits for a quiet moment ------------------------------------------------

fn on_tick(model: &mut Model, out: &mut Vec<Command>) {
    if model.instances.dirty {
        model.instances.rebuild();
    }
    if model.instances_stale {
        model.instances_stale = false;
        out.push(Command::LoadInstances);
    }
    if model.builds_stale {
        model.builds_stale = false;
        out.push(Command::LoadBuilds);
    }
    if model.timers_stale
        && !model.timers_loading
        && (model.view == View::Clock || model.clock.now.is_none())
    {
        model.timers_stale = false;
        model.timers_loading = true;
        out.push(Command::LoadTimers);
    }
    if model.faults_stale && !model.faults.loading && model.view == View::Faults {
        model.faults_stale = false;
        model.faults.loading = true;
        out.push(Command::LoadFaults);
    }
    if model.history_stale {
        model.history_stale = false;
        if let Some(history) = &mut model.history {
            history.loading = true;
            out.push(Command::LoadHistory {
                instance_id: history.instance_id.clone(),
                child: false,
            });
        }
    }
    if needs_history(model.view) {
        ensure_history(model, out);
    }
    if model.view == View::Replay {
        ensure_stepper(model, out);
    }
    if matches!(model.view, View::Timeline | View::FanOut | View::Errors) {
        derive(model, out);
    }
    keep_in_view(model);
}

fn needs_history(view: View) -> bool {
    matches!(
        view,
        View::History | View::Timeline | View::FanOut | View::Errors | View::Replay
    )
}

/// Loads the selected instance's history if the one held is another's.
fn ensure_history(model: &mut Model, out: &mut Vec<Command>) {
    let Some(id) = model.selected_id().map(str::to_string) else {
        return;
    };
    if model
        .history
        .as_ref()
        .is_some_and(|history| history.instance_id == id)
    {
        return;
    }
    model.history = Some(HistoryState::loading(id.clone()));
    model.derived_offset = 0;
    out.push(Command::LoadHistory {
        instance_id: id,
        child: false,
    });
}

fn ensure_stepper(model: &mut Model, out: &mut Vec<Command>) {
    let Some(history) = &model.history else {
        return;
    };
    if history.loading || model.selected_id() != Some(history.instance_id.as_str()) {
        return;
    }
    let Some(execution) = history.current() else {
        return;
    };
    let current = model.stepper.as_ref().is_some_and(|stepper| {
        stepper.instance_id == history.instance_id
            && stepper.execution_id == execution.execution.execution_id
    });
    if current {
        return;
    }
    let events = Arc::new(execution.events.clone());
    let step = events.len();
    let all_calls = calls_at(&events, step);
    let names = crate::model::call_names(&events);
    let build = model
        .instances
        .rows
        .get(&history.instance_id)
        .and_then(|row| row.build);
    model.stepper = Some(Stepper {
        instance_id: history.instance_id.clone(),
        execution_id: execution.execution.execution_id.clone(),
        events,
        step,
        token: 0,
        result: None,
        calls: Vec::new(),
        all_calls,
        names,
        offset: 0,
        build,
    });
    step_to(model, step, out);
}

fn step_to(model: &mut Model, step: usize, out: &mut Vec<Command>) {
    let token = model.next_token;
    let Some(stepper) = &mut model.stepper else {
        return;
    };
    model.next_token += 1;
    stepper.step = step.min(stepper.events.len());
    let step = stepper.step;
    // The prefix's calls: those scheduled before the step, completed only if that was too.
    stepper.calls = stepper
        .all_calls
        .iter()
        .take_while(|call| call.scheduled_at < step)
        .map(|call| {
            let mut call = call.clone();
            if call.completed_at.is_some_and(|at| at >= step) {
                call.completed_at = None;
                call.failed = false;
            }
            call
        })
        .collect();
    stepper.token = token;
    out.push(Command::Step {
        token,
        instance_id: stepper.instance_id.clone(),
        execution_id: stepper.execution_id.clone(),
        events: Arc::clone(&stepper.events),
        step: stepper.step,
        build: stepper.build,
    });
}

fn derive(model: &mut Model, out: &mut Vec<Command>) {
    let Some(history) = &model.history else {
        return;
    };
    if history.loading {
        return;
    }
    let source = (
        model.view,
        history.instance_id.clone(),
        history.execution,
        history.revision,
        model.children_revision,
    );
    if model.derived.source.as_ref() == Some(&source) {
        return;
    }
    let events = history.events();
    for child in failed_children(events) {
        if !model.children.contains_key(&child) {
            model.children.insert(child.clone(), Vec::new());
            out.push(Command::LoadHistory {
                instance_id: child,
                child: true,
            });
        }
    }
    let (name, status) = model
        .instances
        .rows
        .get(&history.instance_id)
        .map_or(("?".to_string(), RuntimeStatus::Running), |row| {
            (row.name.clone(), row.status)
        });
    // Only the view shown: each derivation reads the whole history.
    match model.view {
        View::Timeline => model.derived.timeline = timeline(events, model.clock.now),
        View::FanOut => model.derived.fanout = fanout_groups(events),
        _ => model.derived.errors = error_tree(&name, status, events, &model.children),
    }
    model.derived.source = Some((
        model.view,
        history.instance_id.clone(),
        history.execution,
        history.revision,
        model.children_revision,
    ));
}

fn keep_in_view(model: &mut Model) {
    let area = model.area;
    let instances = &mut model.instances;
    instances.offset = scroll_to(
        instances.selected,
        instances.offset,
        page(View::Instances, area),
    );
    if let Some(history) = &mut model.history {
        history.offset = scroll_to(history.selected, history.offset, page(View::History, area));
    }
    let clock = &mut model.clock;
    clock.selected = clock.selected.min(clock.timers.len().saturating_sub(1));
    clock.offset = scroll_to(clock.selected, clock.offset, page(View::Clock, area));
    let faults = &mut model.faults;
    faults.selected = faults.selected.min(faults.rules.len().saturating_sub(1));
    faults.offset = scroll_to(faults.selected, faults.offset, page(View::Faults, area));
    if let Some(stepper) = &mut model.stepper {
        let cursor = stepper.step.saturating_sub(1);
        stepper.offset = scroll_to(cursor, stepper.offset, page(View::Replay, area));
    }
}

// ----- engine events ----------------------------------------------------------------------------

fn feed(model: &mut Model, tone: Tone, text: String) {
    if model.builds.feed.len() >= FEED_CAPACITY {
        model.builds.feed.pop_front();
    }
    model.builds.feed.push_back(FeedLine { tone, text });
}

fn on_engine(model: &mut Model, event: EngineEvent) {
    match event {
        EngineEvent::InstanceCreated {
            instance_id,
            name,
            parent_instance_id,
        } => {
            let now = model.clock.now;
            let build = model.builds.active;
            model
                .instances
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
                    scheduled: 0,
                    completed: 0,
                    failed: 0,
                });
            model.instances.dirty = true;
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
                    row.status = status;
                    row.custom_status = custom_status;
                    row.updated_at = now.or(row.updated_at);
                }
                None => model.instances_stale = true,
            }
        }
        EngineEvent::HistoryAppended {
            instance_id,
            execution_id,
            first_seq,
            events,
        } => {
            if let Some(row) = model.instances.rows.get_mut(&instance_id) {
                row.history_len = first_seq + events.len();
                for event in &events {
                    match &event.kind {
                        EventKind::TaskScheduled { .. }
                        | EventKind::SubOrchestrationInstanceCreated { .. } => row.scheduled += 1,
                        EventKind::TaskCompleted { .. }
                        | EventKind::SubOrchestrationInstanceCompleted { .. } => {
                            row.completed += 1;
                        }
                        EventKind::TaskFailed { .. }
                        | EventKind::SubOrchestrationInstanceFailed { .. } => row.failed += 1,
                        EventKind::ExecutionStarted { .. } if row.created_at.is_none() => {
                            row.created_at = Some(event.timestamp);
                        }
                        _ => {}
                    }
                }
                if let Some(last) = events.last() {
                    row.updated_at = Some(last.timestamp);
                }
            }
            if let Some(history) = &mut model.history {
                if history.instance_id == instance_id {
                    if history.loading {
                        // Applied once the load arrives (it may or may not contain them).
                        history.held.push((execution_id, first_seq, events));
                    } else if !history.append(&execution_id, first_seq, &events) {
                        model.history_stale = true;
                    }
                }
            }
        }
        EngineEvent::ActivityStarted { .. } | EngineEvent::ActivityFinished { .. } => {}
        EngineEvent::TimerScheduled { .. } | EngineEvent::TimerFired { .. } => {
            model.timers_stale = true;
        }
        EngineEvent::ClockMoved { now } => {
            model.clock.now = Some(now);
            model.timers_stale = true;
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
            model.builds_stale = true;
            model.instances_stale = true;
            feed(
                model,
                Tone::Ok,
                format!("build #{number} loaded from {origin}"),
            );
        }
        EngineEvent::BuildStarted { target } => {
            feed(model, Tone::Info, format!("building {target} ..."));
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
        } => {
            feed(
                model,
                Tone::Error,
                format!("build of {target} failed: {reason}"),
            );
            for error in errors {
                for line in error.lines() {
                    feed(model, Tone::Error, format!("  {line}"));
                }
            }
            model.status = Some(("the build failed; see the Builds view (8)".into(), true));
        }
        EngineEvent::InstanceDiverged {
            instance_id,
            build,
            reason,
            ..
        } => {
            feed(
                model,
                Tone::Warn,
                format!(
                    "{} does not replay on build #{build} and was suspended: {reason}",
                    short_id(&instance_id)
                ),
            );
            model.instances_stale = true;
        }
        EngineEvent::FaultFired {
            instance_id,
            rule,
            effect,
            target,
        } => {
            // Counters changed; reloaded at the next tick in the faults view (one load however
            // many fire in between).
            model.faults_stale = true;
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
            model.instances_stale = true;
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
        #[allow(unreachable_patterns)]
        other => {
            // Events added to the engine after this view was written still reach the feed.
            let text = serde_json::to_string(&other).unwrap_or_default();
            feed(model, Tone::Info, text);
        }
    }
}

// ----- answers of background calls -------------------------------------------------------------

fn on_outcome(model: &mut Model, outcome: Outcome) {
    match outcome {
        Outcome::Instances(Ok(records)) => {
            let old = std::mem::take(&mut model.instances.rows);
            for record in records {
                let mut row = InstanceRow::from_record(&record);
                if let Some(previous) = old.get(&row.id) {
                    row.scheduled = previous.scheduled;
                    row.completed = previous.completed;
                    row.failed = previous.failed;
                    // A snapshot can be older than events already applied (they travel on
                    // different threads); an ended instance never runs again, so keep its end.
                    if previous.status.is_terminal() && !row.status.is_terminal() {
                        row.status = previous.status;
                        row.custom_status.clone_from(&previous.custom_status);
                        row.history_len = row.history_len.max(previous.history_len);
                    }
                }
                model.instances.rows.insert(row.id.clone(), row);
            }
            model.instances.dirty = true;
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
                            model.history_stale = true;
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
            model.timers_loading = false;
            match result {
                Ok((timers, now)) => {
                    model.clock.timers = timers;
                    model.clock.now = Some(now);
                }
                Err(error) => model.status = Some((error, true)),
            }
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
            model.faults.loading = false;
            let last = model.faults.rules.len().saturating_sub(1);
            model.faults.selected = model.faults.selected.min(last);
        }
        Outcome::Faults(Err(error)) => {
            model.faults.loading = false;
            model.status = Some((error, true));
        }
        Outcome::FaultChanged { label, result } => {
            model.faults_stale = true;
            model.status = Some(match result {
                Ok(message) => (format!("{label}: {message}"), false),
                Err(error) => (format!("{label} failed: {error}"), true),
            });
        }
        Outcome::Action { label, result } => {
            model.instances_stale = true;
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
                model.instances.selected_id = Some(id);
                model.instances.dirty = true;
                model.instances_stale = true;
            }
            Err(error) => model.status = Some((format!("{label} failed: {error}"), true)),
        },
        Outcome::Stepped { token, result } => {
            if let Some(stepper) = &mut model.stepper {
                if stepper.token == token {
                    stepper.result = Some(result.map(|step| *step));
                }
            }
        }
    }
}

// ----- keys -------------------------------------------------------------------------------------

fn on_key(model: &mut Model, key: KeyEvent, out: &mut Vec<Command>) {
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        model.quit = true;
        return;
    }
    if model.overlay.is_some() {
        on_overlay_key(model, key, out);
        return;
    }
    model.status = None;
    match key.code {
        KeyCode::Char('q') => {
            model.quit = true;
            return;
        }
        KeyCode::Char('?') => {
            model.overlay = Some(Overlay::Help { scroll: 0 });
            return;
        }
        KeyCode::Char(':') => {
            model.overlay = Some(Overlay::Command(TextInput::default()));
            return;
        }
        KeyCode::Char('/') => {
            model.overlay = Some(Overlay::Filter(TextInput::new(
                model.instances.filter.clone(),
            )));
            if model.view != View::Instances {
                switch_view(model, View::Instances, out);
            }
            return;
        }
        KeyCode::Tab => {
            let next = View::ALL[(model.view.index() + 1) % View::ALL.len()];
            switch_view(model, next, out);
            return;
        }
        KeyCode::BackTab => {
            let count = View::ALL.len();
            let previous = View::ALL[(model.view.index() + count - 1) % count];
            switch_view(model, previous, out);
            return;
        }
        KeyCode::Char(digit @ '1'..='9') => {
            let index = usize::from(digit as u8 - b'1');
            switch_view(model, View::ALL[index], out);
            return;
        }
        _ => {}
    }
    if view_key(model, key, out) {
        return;
    }
    if keys::has_instance_actions(model.view) {
        instance_key(model, key, out);
    }
}

/// Switches to `view`, loading what it shows.
pub fn switch_view(model: &mut Model, view: View, out: &mut Vec<Command>) {
    model.view = view;
    model.derived_offset = 0;
    if view == View::Clock {
        model.timers_stale = true;
    }
    if view == View::Faults {
        model.faults_stale = true;
    }
    if needs_history(view) {
        ensure_history(model, out);
    }
}

/// A new position after a movement key, for a list of `len` rows and pages of `page` rows.
fn moved(key: KeyCode, selected: usize, len: usize, page: usize) -> Option<usize> {
    let last = len.saturating_sub(1);
    Some(match key {
        KeyCode::Down | KeyCode::Char('j') => (selected + 1).min(last),
        KeyCode::Up | KeyCode::Char('k') => selected.saturating_sub(1),
        KeyCode::PageDown => (selected + page).min(last),
        KeyCode::PageUp => selected.saturating_sub(page),
        KeyCode::Home | KeyCode::Char('g') => 0,
        KeyCode::End | KeyCode::Char('G') => last,
        _ => return None,
    })
}

fn view_key(model: &mut Model, key: KeyEvent, out: &mut Vec<Command>) -> bool {
    let page_rows = page(model.view, model.area);
    match model.view {
        View::Instances => {
            let instances = &mut model.instances;
            if let Some(next) = moved(
                key.code,
                instances.selected,
                instances.visible.len(),
                page_rows,
            ) {
                select_instance(model, next);
                return true;
            }
            match key.code {
                KeyCode::Enter | KeyCode::Char('l') | KeyCode::Right => {
                    if model.selected_id().is_some() {
                        switch_view(model, View::History, out);
                    }
                }
                KeyCode::Char('s') => {
                    let next = model.instances.sort_key().next();
                    model.instances.sort = Some(next);
                    model.instances.dirty = true;
                    model.status = Some((format!("sorted by {}", next.label()), false));
                }
                KeyCode::Char('c') => {
                    model.instances.filter.clear();
                    model.instances.dirty = true;
                }
                _ => return false,
            }
            true
        }
        View::History => {
            let Some(history) = &mut model.history else {
                return false;
            };
            let len = history.events().len();
            if let Some(next) = moved(key.code, history.selected, len, page_rows) {
                history.selected = next;
                history.follow = next + 1 >= len;
                return true;
            }
            match key.code {
                KeyCode::Enter => {
                    if let Some(event) = history.events().get(history.selected) {
                        model.overlay = Some(json_overlay(
                            format!(
                                "event {} of {}",
                                history.selected,
                                short_id(&history.instance_id)
                            ),
                            &serde_json::to_value(event).unwrap_or(Value::Null),
                        ));
                    }
                }
                KeyCode::Char('h') | KeyCode::Left if history.execution > 0 => {
                    history.execution -= 1;
                    history.selected = 0;
                    history.follow = false;
                    history.revision += 1;
                }
                KeyCode::Char('l') | KeyCode::Right
                    if history.execution + 1 < history.executions.len() =>
                {
                    history.execution += 1;
                    history.selected = 0;
                    history.follow = history.execution + 1 == history.executions.len();
                    history.revision += 1;
                }
                KeyCode::Char('f') => {
                    history.follow = !history.follow;
                    if history.follow {
                        history.selected = len.saturating_sub(1);
                    }
                }
                _ => return false,
            }
            true
        }
        View::Timeline | View::FanOut | View::Errors => {
            let len = match model.view {
                View::Timeline => model.derived.timeline.bars.len(),
                View::FanOut => model.derived.fanout.len(),
                _ => model.derived.errors.len(),
            };
            match moved(key.code, model.derived_offset, len, page_rows) {
                Some(next) => {
                    model.derived_offset = next;
                    true
                }
                None => false,
            }
        }
        View::Replay => replay_key(model, key, out),
        View::Clock => {
            let clock = &mut model.clock;
            if let Some(next) = moved(key.code, clock.selected, clock.timers.len(), page_rows) {
                clock.selected = next;
                return true;
            }
            match key.code {
                KeyCode::Char('n') => out.push(Command::NextTimer),
                KeyCode::Char('a') => perform(model, Action::AutoSkip(None), out),
                KeyCode::Char('+') => {
                    model.overlay = Some(Overlay::Command(TextInput::new("advance ")));
                }
                _ => return false,
            }
            true
        }
        View::Faults => fault_key(model, key, out, page_rows),
        View::Builds => {
            let logs = &mut model.builds;
            match key.code {
                KeyCode::Up | KeyCode::Char('k') => {
                    logs.logs_back = (logs.logs_back + 1).min(logs.logs.len().saturating_sub(1));
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    logs.logs_back = logs.logs_back.saturating_sub(1)
                }
                KeyCode::PageUp => {
                    logs.logs_back =
                        (logs.logs_back + page_rows).min(logs.logs.len().saturating_sub(1));
                }
                KeyCode::PageDown => logs.logs_back = logs.logs_back.saturating_sub(page_rows),
                KeyCode::Char('G') | KeyCode::End => logs.logs_back = 0,
                _ => return false,
            }
            true
        }
    }
}

fn fault_key(model: &mut Model, key: KeyEvent, out: &mut Vec<Command>, page_rows: usize) -> bool {
    let faults = &mut model.faults;
    if let Some(next) = moved(key.code, faults.selected, faults.rules.len(), page_rows) {
        faults.selected = next;
        return true;
    }
    match key.code {
        KeyCode::Char('a') => {
            model.overlay = Some(Overlay::Fault(Box::default()));
        }
        KeyCode::Char('t') | KeyCode::Char(' ') => {
            let Some(rule) = faults.rules.get_mut(faults.selected) else {
                model.status = Some(("no rule to switch; a adds one".into(), true));
                return true;
            };
            // Shown at once; the reload after the engine's answer confirms it.
            rule.enabled = !rule.enabled;
            out.push(Command::SetFaultEnabled {
                id: rule.id,
                enabled: rule.enabled,
            });
        }
        KeyCode::Char('d') | KeyCode::Delete => {
            let Some(rule) = faults.selected_rule() else {
                model.status = Some(("no rule to remove".into(), true));
                return true;
            };
            model.overlay = Some(Overlay::Confirm {
                prompt: format!(
                    "Remove fault rule #{} \"{}\" ({}, {})?",
                    rule.id,
                    rule.label(),
                    crate::view::target_text(&rule.rule),
                    rule.rule.effect
                ),
                command: Command::RemoveFault(rule.id),
            });
        }
        _ => return false,
    }
    true
}

fn select_instance(model: &mut Model, position: usize) {
    let instances = &mut model.instances;
    instances.selected = position;
    instances.selected_id = instances.visible.get(position).map(|(id, _)| id.clone());
}

fn replay_key(model: &mut Model, key: KeyEvent, out: &mut Vec<Command>) -> bool {
    let Some(stepper) = &model.stepper else {
        return false;
    };
    let (step, len) = (stepper.step, stepper.events.len());
    let next = match key.code {
        KeyCode::Right | KeyCode::Char('l') | KeyCode::Char('j') | KeyCode::Down => {
            Some((step + 1).min(len))
        }
        KeyCode::Left | KeyCode::Char('h') | KeyCode::Char('k') | KeyCode::Up => {
            Some(step.saturating_sub(1))
        }
        KeyCode::Home | KeyCode::Char('g') => Some(0),
        KeyCode::End | KeyCode::Char('G') => Some(len),
        KeyCode::PageDown => Some((step + page(View::Replay, model.area)).min(len)),
        KeyCode::PageUp => Some(step.saturating_sub(page(View::Replay, model.area))),
        _ => None,
    };
    if let Some(next) = next {
        if next != step {
            step_to(model, next, out);
        }
        return true;
    }
    match key.code {
        KeyCode::Char('f') => fork_here(model, None, out),
        KeyCode::Char('e') => open_fork_form(model),
        KeyCode::Enter => {
            if let Some(event) = step.checked_sub(1).and_then(|at| stepper.events.get(at)) {
                model.overlay = Some(json_overlay(
                    format!("event {} (step {step})", step - 1),
                    &serde_json::to_value(event).unwrap_or(Value::Null),
                ));
            }
        }
        _ => return false,
    }
    true
}

fn instance_key(model: &mut Model, key: KeyEvent, out: &mut Vec<Command>) {
    let action = match key.code {
        KeyCode::Char('n') => {
            open_start_form(model);
            return;
        }
        KeyCode::Char('r') => {
            model.overlay = Some(Overlay::Command(TextInput::new("raise ")));
            return;
        }
        KeyCode::Char('F') => {
            switch_view(model, View::Replay, out);
            return;
        }
        KeyCode::Char('t') => Action::Terminate {
            instance: None,
            reason: "terminated from the UI".into(),
        },
        KeyCode::Char('p') => Action::Suspend(None),
        KeyCode::Char('u') => Action::Resume(None),
        KeyCode::Char('R') => Action::Restart(None),
        KeyCode::Char('D') => Action::Purge(None),
        _ => return,
    };
    perform(model, action, out);
}

fn open_start_form(model: &mut Model) {
    if model.orchestrators.is_empty() {
        model.status = Some(("no functions are loaded, so nothing can start".into(), true));
        return;
    }
    model.overlay = Some(Overlay::Start(StartForm {
        names: model.orchestrators.clone(),
        selected: 0,
        input: TextInput::default(),
        editing_input: false,
    }));
}

fn open_fork_form(model: &mut Model) {
    let Some(stepper) = &model.stepper else {
        return;
    };
    let Some(target) = next_completion(&stepper.events, stepper.step) else {
        model.status = Some((
            "nothing completes after this step, so there is nothing to edit".into(),
            true,
        ));
        return;
    };
    let event = &stepper.events[target];
    let (result, failure) = match &event.kind {
        EventKind::TaskCompleted { result, .. }
        | EventKind::SubOrchestrationInstanceCompleted { result, .. } => (result.to_string(), None),
        EventKind::EventRaised { input, .. } => (input.to_string(), None),
        EventKind::TaskFailed { failure, .. }
        | EventKind::SubOrchestrationInstanceFailed { failure, .. } => {
            ("null".to_string(), Some(failure.clone()))
        }
        other => {
            model.status = Some((
                format!(
                    "the next completion is a {}, which cannot be edited; press f to fork as is",
                    other.type_name()
                ),
                true,
            ));
            return;
        }
    };
    let name = event
        .kind
        .completes_task()
        .and_then(|id| {
            crate::model::call_names(&stepper.events[..target])
                .get(&id)
                .cloned()
        })
        .or_else(|| event.kind.name().map(str::to_string))
        .unwrap_or_default();
    model.overlay = Some(Overlay::Fork(ForkForm {
        target,
        target_text: format!("{} {name} (event {target})", event.kind.type_name()),
        fail: failure.is_some(),
        result: TextInput::new(result),
        error_type: TextInput::new(
            failure
                .as_ref()
                .map_or("EditedFailure".to_string(), |failure| {
                    failure.error_type.clone()
                }),
        ),
        message: TextInput::new(
            failure
                .as_ref()
                .map_or("failed in a fork".to_string(), |failure| {
                    failure.error_message.clone()
                }),
        ),
        field: 1,
    }));
}

fn fork_here(model: &mut Model, edit: Option<&CompletionEdit>, out: &mut Vec<Command>) {
    let Some(stepper) = &model.stepper else {
        return;
    };
    let Some(now) = model.clock.now else {
        model.status = Some(("the clock is not known yet; try again".into(), true));
        return;
    };
    let prefix = format!("{}-fork", stepper.instance_id);
    let count = model
        .instances
        .rows
        .keys()
        .filter(|id| id.starts_with(&prefix))
        .count();
    let new_id = format!("{prefix}{}", count + 1);
    match plan_fork(
        &stepper.instance_id,
        &stepper.events,
        stepper.step,
        edit,
        now,
        new_id,
    ) {
        Ok(plan) => {
            model.status = Some((format!("forking at step {} ...", stepper.step), false));
            out.push(Command::Fork {
                plan: Box::new(plan),
                build: stepper.build,
            });
        }
        Err(error) => model.status = Some((error, true)),
    }
}

fn json_overlay(title: String, value: &Value) -> Overlay {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    Overlay::Json {
        title,
        lines: text.lines().map(str::to_string).collect(),
        scroll: 0,
    }
}

// ----- overlays ---------------------------------------------------------------------------------

fn on_overlay_key(model: &mut Model, key: KeyEvent, out: &mut Vec<Command>) {
    let Some(overlay) = model.overlay.take() else {
        return;
    };
    model.overlay = match overlay {
        Overlay::Help { scroll } => match key.code {
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter => None,
            code => Some(Overlay::Help {
                scroll: moved(code, scroll, 60, 10).unwrap_or(scroll),
            }),
        },
        Overlay::Filter(mut input) => match key.code {
            KeyCode::Enter => None,
            KeyCode::Esc => {
                model.instances.filter.clear();
                model.instances.dirty = true;
                None
            }
            _ => {
                input.edit(key);
                model.instances.filter = input.text().to_string();
                model.instances.dirty = true;
                Some(Overlay::Filter(input))
            }
        },
        Overlay::Command(mut input) => match key.code {
            KeyCode::Esc => None,
            KeyCode::Enter => {
                let text = input.text().to_string();
                let rows = &model.instances.rows;
                match cmdline::parse(&text, |word| rows.contains_key(word)) {
                    Ok(action) => {
                        model.status = None;
                        perform(model, action, out);
                        model.overlay.take()
                    }
                    Err(error) => {
                        model.status = Some((error, true));
                        Some(Overlay::Command(input))
                    }
                }
            }
            _ => {
                input.edit(key);
                Some(Overlay::Command(input))
            }
        },
        Overlay::Confirm { prompt, command } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                out.push(command);
                None
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                model.status = Some(("cancelled".into(), false));
                None
            }
            _ => Some(Overlay::Confirm { prompt, command }),
        },
        Overlay::Json {
            title,
            lines,
            mut scroll,
        } => {
            let page_rows = usize::from(model.area.height.saturating_sub(4)).max(1);
            match key.code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => None,
                code => {
                    if let Some(next) = moved(code, scroll, lines.len(), page_rows) {
                        scroll = next;
                    }
                    Some(Overlay::Json {
                        title,
                        lines,
                        scroll,
                    })
                }
            }
        }
        Overlay::Start(mut form) => match key.code {
            KeyCode::Esc => None,
            KeyCode::Tab | KeyCode::BackTab => {
                form.editing_input = !form.editing_input;
                Some(Overlay::Start(form))
            }
            KeyCode::Enter if !form.editing_input => {
                form.editing_input = true;
                Some(Overlay::Start(form))
            }
            KeyCode::Enter => match form.parsed_input() {
                Ok(input) => {
                    let name = form.names.get(form.selected).cloned().unwrap_or_default();
                    out.push(Command::Start { name, input });
                    None
                }
                Err(_) => Some(Overlay::Start(form)),
            },
            code if !form.editing_input => {
                if let Some(next) = moved(code, form.selected, form.names.len(), 10) {
                    form.selected = next;
                }
                Some(Overlay::Start(form))
            }
            _ => {
                form.input.edit(key);
                Some(Overlay::Start(form))
            }
        },
        Overlay::Fault(mut form) => match key.code {
            KeyCode::Esc => None,
            KeyCode::Tab | KeyCode::Down => {
                form.focus_next(true);
                Some(Overlay::Fault(form))
            }
            KeyCode::BackTab | KeyCode::Up => {
                form.focus_next(false);
                Some(Overlay::Fault(form))
            }
            KeyCode::Enter => match form.rule() {
                Ok(rule) => {
                    out.push(Command::AddFault {
                        spec: form.compact(),
                        rule: Box::new(rule),
                    });
                    None
                }
                Err(error) => {
                    model.status = Some((error, true));
                    Some(Overlay::Fault(form))
                }
            },
            KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right if form.field.is_choice() => {
                form.cycle(key.code != KeyCode::Left);
                Some(Overlay::Fault(form))
            }
            _ => {
                if let Some(input) = form.focused_input() {
                    input.edit(key);
                }
                Some(Overlay::Fault(form))
            }
        },
        Overlay::Fork(mut form) => match key.code {
            KeyCode::Esc => None,
            KeyCode::Tab | KeyCode::Down => {
                form.field = (form.field + 1) % if form.fail { 3 } else { 2 };
                Some(Overlay::Fork(form))
            }
            KeyCode::BackTab | KeyCode::Up => {
                let count = if form.fail { 3 } else { 2 };
                form.field = (form.field + count - 1) % count;
                Some(Overlay::Fork(form))
            }
            KeyCode::Char(' ') if form.field == 0 => {
                form.fail = !form.fail;
                Some(Overlay::Fork(form))
            }
            KeyCode::Enter => {
                let edit = if form.fail {
                    Ok(CompletionEdit::Failure {
                        error_type: form.error_type.text().trim().to_string(),
                        message: form.message.text().to_string(),
                    })
                } else {
                    serde_json::from_str(form.result.text())
                        .map(CompletionEdit::Result)
                        .map_err(|error| format!("the result is not JSON: {error}"))
                };
                match edit {
                    Ok(CompletionEdit::Failure { error_type, .. }) if error_type.is_empty() => {
                        model.status = Some(("a failure needs an error type".into(), true));
                        Some(Overlay::Fork(form))
                    }
                    Ok(edit) => {
                        fork_here(model, Some(&edit), out);
                        None
                    }
                    Err(error) => {
                        model.status = Some((error, true));
                        Some(Overlay::Fork(form))
                    }
                }
            }
            _ => {
                match (form.fail, form.field) {
                    (false, 1) => form.result.edit(key),
                    (true, 1) => form.error_type.edit(key),
                    (true, 2) => form.message.edit(key),
                    _ => false,
                };
                Some(Overlay::Fork(form))
            }
        },
    };
}

// ----- actions ----------------------------------------------------------------------------------

/// Carries out an action from a key or the command line (destructive ones ask first).
pub fn perform(model: &mut Model, action: Action, out: &mut Vec<Command>) {
    let target = |model: &mut Model, instance: Option<String>| -> Option<String> {
        let id = instance.or_else(|| model.selected_id().map(str::to_string));
        if id.is_none() {
            model.status = Some(("select an instance first (or give its id)".into(), true));
        }
        id
    };
    match action {
        Action::Start { name, input } => out.push(Command::Start { name, input }),
        Action::Raise {
            instance,
            name,
            data,
        } => {
            if let Some(instance_id) = target(model, instance) {
                out.push(Command::Raise {
                    instance_id,
                    name,
                    data,
                });
            }
        }
        Action::Terminate { instance, reason } => {
            if let Some(instance_id) = target(model, instance) {
                model.overlay = Some(Overlay::Confirm {
                    prompt: format!(
                        "Terminate {}? It cannot be undone.",
                        describe(model, &instance_id)
                    ),
                    command: Command::Terminate {
                        instance_id,
                        reason,
                    },
                });
            }
        }
        Action::Purge(instance) => {
            if let Some(instance_id) = target(model, instance) {
                model.overlay = Some(Overlay::Confirm {
                    prompt: format!(
                        "Purge {} and all its history? It cannot be undone.",
                        describe(model, &instance_id)
                    ),
                    command: Command::Purge(instance_id),
                });
            }
        }
        Action::Suspend(instance) => {
            if let Some(id) = target(model, instance) {
                out.push(Command::Suspend(id));
            }
        }
        Action::Resume(instance) => {
            if let Some(id) = target(model, instance) {
                out.push(Command::Resume(id));
            }
        }
        Action::Restart(instance) => {
            if let Some(id) = target(model, instance) {
                out.push(Command::Restart(id));
            }
        }
        Action::Advance(by) => out.push(Command::Advance(by)),
        Action::NextTimer => out.push(Command::NextTimer),
        Action::AutoSkip(on) => {
            let on = on.unwrap_or(!model.clock.auto_skip);
            model.clock.auto_skip = on;
            out.push(Command::SetAutoSkip(on));
        }
        Action::Fork => {
            if model.stepper.is_none() {
                model.status = Some(("open the replay stepper (F) to fork".into(), true));
            } else {
                fork_here(model, None, out);
            }
        }
        Action::Fault { spec, rule } => out.push(Command::AddFault { spec, rule }),
        Action::View(view) => switch_view(model, view, out),
        Action::Filter(text) => {
            model.instances.filter = text;
            model.instances.dirty = true;
            switch_view(model, View::Instances, out);
        }
        Action::Sort(key) => {
            model.instances.sort = Some(key);
            model.instances.dirty = true;
        }
        Action::Help => model.overlay = Some(Overlay::Help { scroll: 0 }),
        Action::Quit => model.quit = true,
    }
}

fn describe(model: &Model, id: &str) -> String {
    match model.instances.rows.get(id) {
        Some(row) => format!("{} {} ({})", row.name, short_id(id), row.status),
        None => id.to_string(),
    }
}

// ----- mouse ------------------------------------------------------------------------------------

fn on_mouse(model: &mut Model, mouse: MouseEvent, out: &mut Vec<Command>) {
    if model.overlay.is_some() {
        return;
    }
    let bands = areas(model.area);
    match mouse.kind {
        MouseEventKind::Down(MouseButton::Left) => {
            if mouse.row == bands.tabs.y {
                let tab = tab_positions(bands.tabs)
                    .into_iter()
                    .find(|(start, end, _)| (*start..*end).contains(&mouse.column));
                if let Some((_, _, view)) = tab {
                    switch_view(model, view, out);
                }
                return;
            }
            let list = list_area(model.view, bands.body);
            if !contains(list, mouse.column, mouse.row) {
                return;
            }
            let row = usize::from(mouse.row - list.y);
            match model.view {
                View::Instances => {
                    let position = model.instances.offset + row;
                    if position < model.instances.visible.len() {
                        select_instance(model, position);
                    }
                }
                View::History => {
                    if let Some(history) = &mut model.history {
                        let position = history.offset + row;
                        if position < history.events().len() {
                            history.selected = position;
                            history.follow = false;
                        }
                    }
                }
                View::Clock => {
                    let position = model.clock.offset + row;
                    if position < model.clock.timers.len() {
                        model.clock.selected = position;
                    }
                }
                View::Faults => {
                    let position = model.faults.offset + row;
                    if position < model.faults.rules.len() {
                        model.faults.selected = position;
                    }
                }
                View::Replay => {
                    if let Some(stepper) = &model.stepper {
                        let step = (stepper.offset + row + 1).min(stepper.events.len());
                        step_to(model, step, out);
                    }
                }
                _ => {}
            }
        }
        MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
            let code = if mouse.kind == MouseEventKind::ScrollDown {
                KeyCode::Down
            } else {
                KeyCode::Up
            };
            for _ in 0..3 {
                view_key(model, KeyEvent::new(code, KeyModifiers::NONE), out);
            }
        }
        _ => {}
    }
}

fn contains(area: Rect, column: u16, row: u16) -> bool {
    column >= area.x && column < area.x + area.width && row >= area.y && row < area.y + area.height
}

/// The layout module is shared with the views; re-exported for tests that click.
pub use layout::list_area as clickable_list;
