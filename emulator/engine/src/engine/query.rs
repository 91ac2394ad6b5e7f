//! Instance queries for SDK clients: filters (statuses, a created-time range, an id prefix),
//! pages and continuation tokens, the id listing by completion time, and purge filters.
//!
//! Owns the query types and the paging rules: the stable order, what a token holds and how a
//! malformed one is refused. Pure: the core hands it the candidate records (already narrowed by
//! status and id prefix in SQL) and it filters, orders and cuts the page. Knows nothing of the
//! store's SQL, the core or any wire format (a token is an opaque string to clients).
//!
//! Paging is by key, not by offset: a token names the last instance handed out (its time and
//! id), and the next page starts after it. So an instance created or purged between two pages
//! neither repeats nor shifts an instance out of the listing (docs/semantics.md#queries).

use super::EngineError;
use crate::store::InstanceRecord;
use chrono::{DateTime, SecondsFormat, Utc};
use durable_sdk::history::RuntimeStatus;

/// Largest page a query hands out when it names no page size of its own (or 0).
pub(crate) const DEFAULT_PAGE_SIZE: usize = 100;

/// Which instances [`EngineHandle::query`](super::EngineHandle::query) lists, and which page.
///
/// Instances come oldest created first (ties by instance id), a stable order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceQuery {
    /// Only these statuses (empty: any).
    pub statuses: Vec<RuntimeStatus>,
    /// Only instances created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Only instances created before this time.
    pub created_to: Option<DateTime<Utc>>,
    /// Only instance ids that start with this (case-sensitive).
    pub instance_id_prefix: Option<String>,
    /// Most instances per page; 0 means [`DEFAULT_PAGE_SIZE`] (100).
    pub page_size: usize,
    /// Where to continue: the token the previous page returned (None: the first page).
    pub continuation: Option<String>,
}

/// Which ended instances [`EngineHandle::list_instance_ids`](super::EngineHandle::list_instance_ids)
/// lists (the `ListInstanceIds` call): only terminal instances, ordered by when they ended
/// (oldest first, ties by id). An ended instance's last update is its completion, so the
/// completed-time range is matched against that.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceIdsQuery {
    /// Only these statuses (empty: any terminal one; a non-terminal status matches nothing).
    pub statuses: Vec<RuntimeStatus>,
    /// Only instances that ended at or after this time.
    pub completed_from: Option<DateTime<Utc>>,
    /// Only instances that ended before this time.
    pub completed_to: Option<DateTime<Utc>>,
    /// Most ids per page; 0 means [`DEFAULT_PAGE_SIZE`] (100).
    pub page_size: usize,
    /// The key the previous page returned (None: the first page).
    pub last_instance_key: Option<String>,
}

/// Which ended instances [`EngineHandle::purge_where`](super::EngineHandle::purge_where)
/// deletes. Instances that have not ended are never purged, whatever the filter says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PurgeFilter {
    /// Only instances created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Only instances created before this time.
    pub created_to: Option<DateTime<Utc>>,
    /// Only these statuses (empty: every terminal status).
    pub statuses: Vec<RuntimeStatus>,
}

/// Which time a listing is ordered and paged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Created,
    Completed,
}

impl Order {
    /// Marks a token with the order it belongs to, so one from another listing is refused.
    fn tag(self) -> &'static str {
        match self {
            Order::Created => "c1",
            Order::Completed => "u1",
        }
    }

    fn time_of(self, record: &InstanceRecord) -> DateTime<Utc> {
        match self {
            Order::Created => record.created_at,
            Order::Completed => record.updated_at,
        }
    }
}

/// Where a page continues: after the instance with this time and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Cursor {
    time: DateTime<Utc>,
    instance_id: String,
}

impl Cursor {
    fn encode(&self, order: Order) -> String {
        format!(
            "{}:{}|{}",
            order.tag(),
            self.time.to_rfc3339_opts(SecondsFormat::Nanos, true),
            self.instance_id
        )
    }

    fn decode(token: &str, order: Order, what: &str) -> Result<Self, EngineError> {
        let refuse = || {
            EngineError::InvalidArgument(format!(
                "the {what} '{token}' was not issued by this listing; pass the token the previous page returned, or none to start from the first page"
            ))
        };
        let rest = token
            .strip_prefix(order.tag())
            .and_then(|rest| rest.strip_prefix(':'))
            .ok_or_else(refuse)?;
        // The time has no '|', so the first one ends it; the id may hold any character.
        let (time, instance_id) = rest.split_once('|').ok_or_else(refuse)?;
        let time = DateTime::parse_from_rfc3339(time)
            .map_err(|_| refuse())?
            .with_timezone(&Utc);
        Ok(Self {
            time,
            instance_id: instance_id.to_string(),
        })
    }
}

impl InstanceQuery {
    /// Whether the query's own fields make sense (checked before anything is read).
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        check_range(self.created_from, self.created_to, "created")?;
        if let Some(token) = &self.continuation {
            Cursor::decode(token, Order::Created, "continuation token")?;
        }
        Ok(())
    }

    /// Whether `record` passes every filter but the page (the core narrows by status and
    /// prefix in SQL; they are checked again here so the rule lives in one place).
    pub(crate) fn matches(&self, record: &InstanceRecord) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&record.status))
            && in_range(record.created_at, self.created_from, self.created_to)
            && self
                .instance_id_prefix
                .as_deref()
                .is_none_or(|prefix| record.instance_id.starts_with(prefix))
    }

    /// Filters, orders and cuts `candidates` into this query's page; returns it with the token
    /// of the next page (None: this is the last).
    pub(crate) fn page(
        &self,
        candidates: Vec<InstanceRecord>,
    ) -> Result<(Vec<InstanceRecord>, Option<String>), EngineError> {
        let after = self
            .continuation
            .as_deref()
            .map(|token| Cursor::decode(token, Order::Created, "continuation token"))
            .transpose()?;
        let matching = candidates.into_iter().filter(|record| self.matches(record));
        Ok(cut_page(matching, Order::Created, after, self.page_size))
    }
}

impl InstanceIdsQuery {
    /// Whether the query's own fields make sense (checked before anything is read).
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        check_range(self.completed_from, self.completed_to, "completed")?;
        if let Some(token) = &self.last_instance_key {
            Cursor::decode(token, Order::Completed, "last instance key")?;
        }
        Ok(())
    }

    /// The page of ids from `candidates`, with the key of the next page.
    pub(crate) fn page(
        &self,
        candidates: Vec<InstanceRecord>,
    ) -> Result<(Vec<String>, Option<String>), EngineError> {
        let after = self
            .last_instance_key
            .as_deref()
            .map(|token| Cursor::decode(token, Order::Completed, "last instance key"))
            .transpose()?;
        let matching = candidates.into_iter().filter(|record| {
            record.status.is_terminal()
                && (self.statuses.is_empty() || self.statuses.contains(&record.status))
                && in_range(record.updated_at, self.completed_from, self.completed_to)
        });
        let (page, next) = cut_page(matching, Order::Completed, after, self.page_size);
        Ok((
            page.into_iter().map(|record| record.instance_id).collect(),
            next,
        ))
    }
}

impl PurgeFilter {
    /// Whether the filter's own fields make sense.
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        check_range(self.created_from, self.created_to, "created")
    }

    /// Whether `record` is one this filter purges (ended, and matching every field).
    pub(crate) fn matches(&self, record: &InstanceRecord) -> bool {
        record.status.is_terminal()
            && (self.statuses.is_empty() || self.statuses.contains(&record.status))
            && in_range(record.created_at, self.created_from, self.created_to)
    }
}

fn in_range(time: DateTime<Utc>, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> bool {
    from.is_none_or(|from| time >= from) && to.is_none_or(|to| time < to)
}

fn check_range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    what: &str,
) -> Result<(), EngineError> {
    match (from, to) {
        (Some(from), Some(to)) if from > to => Err(EngineError::InvalidArgument(format!(
            "the {what}-time range starts ({from}) after it ends ({to}); swap them or leave one out"
        ))),
        _ => Ok(()),
    }
}

/// Orders `matching` by (time, id), skips everything up to and including `after`, and takes one
/// page; the token names the page's last instance when more follow it.
fn cut_page(
    matching: impl Iterator<Item = InstanceRecord>,
    order: Order,
    after: Option<Cursor>,
    page_size: usize,
) -> (Vec<InstanceRecord>, Option<String>) {
    let page_size = if page_size == 0 {
        DEFAULT_PAGE_SIZE
    } else {
        page_size
    };
    let cursor = |record: &InstanceRecord| Cursor {
        time: order.time_of(record),
        instance_id: record.instance_id.clone(),
    };
    let mut rest: Vec<(Cursor, InstanceRecord)> = matching
        .map(|record| (cursor(&record), record))
        .filter(|(key, _)| after.as_ref().is_none_or(|after| key > after))
        .collect();
    rest.sort_by(|(a, _), (b, _)| a.cmp(b));
    let more = rest.len() > page_size;
    rest.truncate(page_size);
    let next = if more {
        rest.last().map(|(key, _)| key.encode(order))
    } else {
        None
    };
    (rest.into_iter().map(|(_, record)| record).collect(), next)
}
