//! Entity ids: `@{name}@{key}`, the instance id under which an entity's state and queue live
//! (docs/semantics.md#entities).
//!
//! Owns [`EntityId`] and its parsing. Knows nothing of how entities run or are stored.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An entity's identity: its entity name (case-insensitive, kept lower-cased) and its key
/// (case-sensitive). Written `@{name}@{key}`, e.g. `@counter@a`, as every Durable Task backend
/// writes it.
///
/// ```
/// use durable_sdk::EntityId;
///
/// let id = EntityId::new("Counter", "a");
/// assert_eq!(id.to_string(), "@counter@a");
/// assert_eq!(EntityId::parse("@Counter@a").unwrap(), id);
/// assert!(EntityId::parse("counter").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntityId {
    name: String,
    key: String,
}

/// A string that is not an entity id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{given}' is not an entity id: {why} (an entity id is @name@key, e.g. @counter@a)")]
pub struct InvalidEntityId {
    /// What was given.
    pub given: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl EntityId {
    /// The entity `key` of entity name `name` (lower-cased: entity names are case-insensitive).
    pub fn new(name: &str, key: &str) -> Self {
        Self {
            name: name.to_lowercase(),
            key: key.to_string(),
        }
    }

    /// Parses `@name@key`. The name must be non-empty and cannot contain `@`; the key is
    /// everything after the second `@` (it may contain `@`) and may be empty.
    pub fn parse(text: &str) -> Result<Self, InvalidEntityId> {
        let invalid = |why| InvalidEntityId {
            given: text.to_string(),
            why,
        };
        let rest = text
            .strip_prefix('@')
            .ok_or_else(|| invalid("it does not start with '@'"))?;
        let (name, key) = rest
            .split_once('@')
            .ok_or_else(|| invalid("it has no second '@' before the key"))?;
        if name.is_empty() {
            return Err(invalid("the entity name is empty"));
        }
        Ok(Self::new(name, key))
    }

    /// The entity name, lower-cased.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether `instance_id` looks like an entity id (starts with `@`): orchestration ids
    /// never do, by this convention of every Durable Task backend.
    pub fn is_entity_id(instance_id: &str) -> bool {
        instance_id.starts_with('@')
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}@{}", self.name, self.key)
    }
}

impl From<EntityId> for String {
    fn from(id: EntityId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for EntityId {
    type Error = InvalidEntityId;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl std::str::FromStr for EntityId {
    type Err = InvalidEntityId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_keys_are_not() {
        assert_eq!(EntityId::new("Account", "Bob").to_string(), "@account@Bob");
        assert_ne!(EntityId::new("a", "Bob"), EntityId::new("a", "bob"));
        let id = EntityId::parse("@Account@x@y").unwrap();
        assert_eq!((id.name(), id.key()), ("account", "x@y"));
        assert_eq!(EntityId::parse("@counter@").unwrap().key(), "");
        for bad in ["", "counter", "@counter", "@@a"] {
            assert!(EntityId::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"@account@x@y\"");
        assert!(serde_json::from_str::<EntityId>("\"nope\"").is_err());
    }
}
