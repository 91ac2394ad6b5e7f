//! Paging of QueryInstances and ListInstanceIds: instances in instance-id order, the token the
//! last id of a page, so a page boundary stays put when instances are created or purged between
//! pages. Knows nothing of the engine.

use durable_emu_engine::InstanceRecord;
use tonic::Status;

/// Page size when the caller gives none (or zero).
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    size: usize,
    after: Option<String>,
}

impl Page {
    /// A page from the request's size and continuation token.
    pub fn from_wire(message: &str, size: i32, token: Option<&str>) -> Result<Self, Status> {
        let size = match size {
            0 => DEFAULT_PAGE_SIZE,
            size if size < 0 => {
                return Err(Status::invalid_argument(format!(
                    "{message} asks for a page of {size} instances; give a positive size (or 0 for {DEFAULT_PAGE_SIZE})"
                )));
            }
            size => usize::try_from(size).unwrap_or(DEFAULT_PAGE_SIZE),
        };
        Ok(Self {
            size,
            after: token.filter(|token| !token.is_empty()).map(str::to_string),
        })
    }

    /// This page of `records` (any order) and the token of the next page, if there is one.
    pub fn take(
        &self,
        records: impl Iterator<Item = InstanceRecord>,
    ) -> (Vec<InstanceRecord>, Option<String>) {
        let mut rest: Vec<InstanceRecord> = records
            .filter(|record| {
                self.after
                    .as_deref()
                    .is_none_or(|after| record.instance_id.as_str() > after)
            })
            .collect();
        rest.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        let more = rest.len() > self.size;
        rest.truncate(self.size);
        let next = more
            .then(|| rest.last().map(|record| record.instance_id.clone()))
            .flatten();
        (rest, next)
    }
}
