//! The form that adds a fault rule (Faults view, `a`): one field per part of a rule
//! (docs/faults.md "A rule"), written out as the compact form and validated by the same
//! `faults::parse_compact` the command line uses, so the form accepts exactly what `--fault` and
//! `:fault` accept and shows the same message, which names the field at fault.
//!
//! Pure data and text; `update` moves the focus and edits the fields, `view::overlay` draws it.

use crate::input::TextInput;
use durable_emu_engine::faults::{FaultRule, TargetKind, parse_compact};

/// Target kinds, in the order Space cycles through them.
pub const TARGETS: [TargetKind; 5] = [
    TargetKind::Activity,
    TargetKind::Orchestration,
    TargetKind::SubOrchestration,
    TargetKind::Event,
    TargetKind::Entity,
];

/// Triggers, in the order Space cycles through them (their compact keys).
pub const TRIGGERS: [&str; 5] = ["every", "attempts", "call", "probability", "from"];

/// Effects, in the order Space cycles through them (their compact keys).
pub const EFFECTS: [&str; 9] = [
    "error",
    "panic",
    "delay",
    "timeout",
    "lose-result",
    "run-twice",
    "drop",
    "duplicate",
    "crash",
];

/// The compact key of a target kind.
pub fn target_key(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Activity => "activity",
        TargetKind::Orchestration => "orchestration",
        TargetKind::SubOrchestration => "sub-orchestration",
        TargetKind::Event => "event",
        TargetKind::Entity => "entity",
        TargetKind::Http => "http",
    }
}

/// A field of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultField {
    /// Activity, orchestration, sub-orchestration or event (a choice).
    Target,
    /// Name glob.
    Name,
    /// Instance id glob (optional).
    Instance,
    /// Every, attempts, call, probability or from (a choice).
    Trigger,
    /// The trigger's value (`1-2`, `3`, `0.2,seed=7`, `2h`).
    TriggerValue,
    /// Fire at most N times (optional).
    Limit,
    /// The effect (a choice).
    Effect,
    /// `error`: the error type.
    ErrorType,
    /// `error` and `panic`: the message.
    Message,
    /// `error`: retry policies give up at once (a switch).
    NonRetriable,
    /// `delay`: how long.
    Delay,
    /// A label for markers (optional).
    Label,
}

impl FaultField {
    /// The field's caption.
    pub fn caption(self) -> &'static str {
        match self {
            FaultField::Target => "target",
            FaultField::Name => "name glob",
            FaultField::Instance => "instance glob",
            FaultField::Trigger => "trigger",
            FaultField::TriggerValue => "trigger value",
            FaultField::Limit => "limit",
            FaultField::Effect => "effect",
            FaultField::ErrorType => "error type",
            FaultField::Message => "message",
            FaultField::NonRetriable => "non-retriable",
            FaultField::Delay => "delay",
            FaultField::Label => "label",
        }
    }

    /// Whether Space and ←/→ cycle it (else it is typed into).
    pub fn is_choice(self) -> bool {
        matches!(
            self,
            FaultField::Target
                | FaultField::Trigger
                | FaultField::Effect
                | FaultField::NonRetriable
        )
    }
}

/// The add-a-fault-rule form.
#[derive(Debug, Clone)]
pub struct FaultForm {
    /// Index in [`TARGETS`].
    pub target: usize,
    /// Name glob.
    pub name: TextInput,
    /// Instance id glob; empty: every instance.
    pub instance: TextInput,
    /// Index in [`TRIGGERS`].
    pub trigger: usize,
    /// The trigger's value.
    pub trigger_value: TextInput,
    /// Limit; empty: none.
    pub limit: TextInput,
    /// Index in [`EFFECTS`].
    pub effect: usize,
    /// `error`: the error type.
    pub error_type: TextInput,
    /// `error` / `panic`: the message; empty: the default.
    pub message: TextInput,
    /// `error`: non-retriable.
    pub non_retriable: bool,
    /// `delay`: the duration.
    pub delay: TextInput,
    /// Label; empty: `rule <id>`.
    pub label: TextInput,
    /// The focused field.
    pub field: FaultField,
}

impl Default for FaultForm {
    fn default() -> Self {
        Self {
            target: 0,
            name: TextInput::default(),
            instance: TextInput::default(),
            trigger: 0,
            trigger_value: TextInput::default(),
            limit: TextInput::default(),
            effect: 0,
            error_type: TextInput::new("InjectedFailure"),
            message: TextInput::default(),
            non_retriable: false,
            delay: TextInput::new("10m"),
            label: TextInput::default(),
            field: FaultField::Name,
        }
    }
}

impl FaultForm {
    /// The fields that apply to the chosen trigger and effect, in order.
    pub fn fields(&self) -> Vec<FaultField> {
        let mut fields = vec![
            FaultField::Target,
            FaultField::Name,
            FaultField::Instance,
            FaultField::Trigger,
        ];
        if self.trigger_key() != "every" {
            fields.push(FaultField::TriggerValue);
        }
        fields.extend([FaultField::Limit, FaultField::Effect]);
        match self.effect_key() {
            "error" => fields.extend([
                FaultField::ErrorType,
                FaultField::Message,
                FaultField::NonRetriable,
            ]),
            "panic" => fields.push(FaultField::Message),
            "delay" => fields.push(FaultField::Delay),
            _ => {}
        }
        fields.push(FaultField::Label);
        fields
    }

    /// The chosen trigger's compact key.
    pub fn trigger_key(&self) -> &'static str {
        TRIGGERS[self.trigger % TRIGGERS.len()]
    }

    /// The chosen effect's compact key.
    pub fn effect_key(&self) -> &'static str {
        EFFECTS[self.effect % EFFECTS.len()]
    }

    /// Moves the focus to the next (or previous) field that applies.
    pub fn focus_next(&mut self, forward: bool) {
        let fields = self.fields();
        let at = fields
            .iter()
            .position(|field| *field == self.field)
            .unwrap_or(0);
        let count = fields.len();
        let next = if forward {
            (at + 1) % count
        } else {
            (at + count - 1) % count
        };
        self.field = fields[next];
    }

    /// Cycles a choice field (target, trigger, effect, non-retriable).
    pub fn cycle(&mut self, forward: bool) {
        let step = |value: usize, count: usize| {
            if forward {
                (value + 1) % count
            } else {
                (value + count - 1) % count
            }
        };
        match self.field {
            FaultField::Target => self.target = step(self.target, TARGETS.len()),
            FaultField::Trigger => self.trigger = step(self.trigger, TRIGGERS.len()),
            FaultField::Effect => self.effect = step(self.effect, EFFECTS.len()),
            FaultField::NonRetriable => self.non_retriable = !self.non_retriable,
            _ => {}
        }
    }

    /// The text input of a typed field.
    pub fn input(&self, field: FaultField) -> Option<&TextInput> {
        Some(match field {
            FaultField::Name => &self.name,
            FaultField::Instance => &self.instance,
            FaultField::TriggerValue => &self.trigger_value,
            FaultField::Limit => &self.limit,
            FaultField::ErrorType => &self.error_type,
            FaultField::Message => &self.message,
            FaultField::Delay => &self.delay,
            FaultField::Label => &self.label,
            _ => return None,
        })
    }

    /// The focused text input, if the focused field is typed into.
    pub fn focused_input(&mut self) -> Option<&mut TextInput> {
        Some(match self.field {
            FaultField::Name => &mut self.name,
            FaultField::Instance => &mut self.instance,
            FaultField::TriggerValue => &mut self.trigger_value,
            FaultField::Limit => &mut self.limit,
            FaultField::ErrorType => &mut self.error_type,
            FaultField::Message => &mut self.message,
            FaultField::Delay => &mut self.delay,
            FaultField::Label => &mut self.label,
            _ => return None,
        })
    }

    /// What a choice field shows.
    pub fn choice_text(&self, field: FaultField) -> String {
        match field {
            FaultField::Target => target_key(TARGETS[self.target % TARGETS.len()]).to_string(),
            FaultField::Trigger => self.trigger_key().to_string(),
            FaultField::Effect => self.effect_key().to_string(),
            FaultField::NonRetriable => if self.non_retriable { "[x]" } else { "[ ]" }.to_string(),
            _ => String::new(),
        }
    }

    /// Whether the rule targets entity operations: then the name field holds the entity id glob
    /// and the instance field the operation glob (`entity=@account@*,operation=deposit`).
    pub fn targets_entities(&self) -> bool {
        TARGETS[self.target % TARGETS.len()] == TargetKind::Entity
    }

    /// A field's caption, as it reads for the target chosen.
    pub fn caption(&self, field: FaultField) -> &'static str {
        match field {
            FaultField::Name if self.targets_entities() => "entity id glob",
            FaultField::Instance if self.targets_entities() => "operation glob",
            field => field.caption(),
        }
    }

    /// The rule as the compact form (`activity=ChargeCard,attempts=1-2,error=CardDeclined:...`).
    /// Empty optional fields are left out; empty required ones are written empty, so validation
    /// names them.
    pub fn compact(&self) -> String {
        let text = |input: &TextInput| input.text().trim().to_string();
        let mut parts = vec![format!(
            "{}={}",
            target_key(TARGETS[self.target % TARGETS.len()]),
            text(&self.name)
        )];
        let narrowed_by = if self.targets_entities() {
            "operation"
        } else {
            "instance"
        };
        if !text(&self.instance).is_empty() {
            parts.push(format!("{narrowed_by}={}", text(&self.instance)));
        }
        match self.trigger_key() {
            "every" => parts.push("every".into()),
            key => parts.push(format!("{key}={}", text(&self.trigger_value))),
        }
        if !text(&self.limit).is_empty() {
            parts.push(format!("limit={}", text(&self.limit)));
        }
        let message = text(&self.message);
        match self.effect_key() {
            "error" => {
                let mut error = format!("error={}", text(&self.error_type));
                if !message.is_empty() {
                    error.push(':');
                    error.push_str(&message);
                }
                parts.push(error);
                if self.non_retriable {
                    parts.push("non-retriable".into());
                }
            }
            "panic" if message.is_empty() => parts.push("panic".into()),
            "panic" => parts.push(format!("panic={message}")),
            "delay" => parts.push(format!("delay={}", text(&self.delay))),
            other => parts.push(other.to_string()),
        }
        if !text(&self.label).is_empty() {
            parts.push(format!("name={}", text(&self.label)));
        }
        parts.join(",")
    }

    /// The validated rule, or what `--fault` would say is wrong (it names the field).
    pub fn rule(&self) -> Result<FaultRule, String> {
        parse_compact(&self.compact(), 0).map_err(|error| error.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> TextInput {
        TextInput::new(text)
    }

    #[test]
    fn an_entity_rule_names_the_entity_id_and_the_operation() {
        let form = FaultForm {
            target: 4,
            name: typed("@account@*"),
            instance: typed("deposit"),
            error_type: typed("BankOffline"),
            ..FaultForm::default()
        };
        assert_eq!(form.caption(FaultField::Name), "entity id glob");
        assert_eq!(form.caption(FaultField::Instance), "operation glob");
        assert_eq!(
            form.compact(),
            "entity=@account@*,operation=deposit,every,error=BankOffline"
        );
        let rule = form.rule().unwrap();
        assert_eq!(rule.target.kind, TargetKind::Entity);
        assert_eq!(rule.target.instance.as_deref(), Some("@account@*"));
    }

    #[test]
    fn the_form_writes_the_compact_form_of_the_docs_example() {
        let form = FaultForm {
            name: typed("ChargeCard"),
            trigger: 1,
            trigger_value: typed("1-2"),
            error_type: typed("CardDeclined"),
            message: typed("insufficient funds"),
            ..FaultForm::default()
        };
        assert_eq!(
            form.compact(),
            "activity=ChargeCard,attempts=1-2,error=CardDeclined:insufficient funds"
        );
        assert!(form.rule().is_ok());
    }

    #[test]
    fn fields_follow_the_trigger_and_the_effect() {
        let mut form = FaultForm::default();
        assert!(!form.fields().contains(&FaultField::TriggerValue));
        assert!(form.fields().contains(&FaultField::ErrorType));
        form.field = FaultField::Effect;
        form.cycle(true); // panic
        form.cycle(true); // delay
        assert_eq!(form.effect_key(), "delay");
        assert!(form.fields().contains(&FaultField::Delay));
        assert!(!form.fields().contains(&FaultField::ErrorType));
    }

    #[test]
    fn an_invalid_rule_names_the_field() {
        let form = FaultForm {
            name: typed("A"),
            trigger: 1,
            trigger_value: typed("3-1"),
            ..FaultForm::default()
        };
        let error = form.rule().unwrap_err();
        assert!(error.contains("`attempts`"), "{error}");
    }
}
