//! Consumers: created on demand by allocation writes with their project,
//! user and type, guarded by a generation from 1.28, deleted when left
//! without allocations. Answers to upstream's `handlers/util.py`
//! (`ensure_consumer`, `update_consumers`) and `objects/consumer.py`,
//! `project.py`, `user.py`, `consumer_type.py`.

use uuid::Uuid;

use crate::errors::{DomainError, ErrorCode};
use crate::storage::Connection;
use crate::storage::consumers::{self as store, ConsumerFields, ConsumerRow};

/// What the client says about the consumer's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedGeneration {
    /// Before 1.28: no check.
    Unchecked,
    /// `null`: the client expects the consumer not to exist.
    Absent,
    /// The generation the client last saw.
    Is(i64),
}

/// Who a consumer belongs to, as a request names it.
#[derive(Clone, Debug)]
pub struct ConsumerIdentity {
    pub project_id: String,
    pub user_id: String,
    /// From 1.38; `None` leaves an existing consumer's type as it is.
    pub consumer_type: Option<String>,
}

fn generation_conflict(expected: &str, got: &str) -> DomainError {
    DomainError::conflict(
        ErrorCode::ConcurrentUpdate,
        format!("consumer generation conflict - expected {expected} but got {got}"),
    )
}

/// 409 unless the client's expectation matches the consumer as read.
pub fn check_generation(
    existing: Option<&ConsumerRow>,
    expected: ExpectedGeneration,
) -> Result<(), DomainError> {
    match (existing, expected) {
        (_, ExpectedGeneration::Unchecked) | (None, ExpectedGeneration::Absent) => Ok(()),
        (None, ExpectedGeneration::Is(got)) => Err(generation_conflict("null", &got.to_string())),
        (Some(consumer), ExpectedGeneration::Absent) => Err(generation_conflict(
            &consumer.generation.to_string(),
            "None",
        )),
        (Some(consumer), ExpectedGeneration::Is(got)) if i64::from(consumer.generation) == got => {
            Ok(())
        }
        (Some(consumer), ExpectedGeneration::Is(got)) => Err(generation_conflict(
            &consumer.generation.to_string(),
            &got.to_string(),
        )),
    }
}

/// Looks up (creating if needed) the project, user and type rows.
pub fn resolve_identity(
    connection: &mut Connection,
    identity: &ConsumerIdentity,
) -> Result<ConsumerFields, DomainError> {
    let project_id = store::ensure_project(connection, &identity.project_id)?;
    let user_id = store::ensure_user(connection, &identity.user_id)?;
    let consumer_type_id = match &identity.consumer_type {
        Some(name) => Some(store::ensure_consumer_type(connection, name)?),
        None => None,
    };
    Ok(ConsumerFields {
        project_id,
        user_id,
        consumer_type_id,
    })
}

/// How recording a consumer's write went.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    Done,
    /// A concurrent transaction created the same consumer first: the
    /// caller's view is stale and the whole write must be redone.
    LostCreationRace,
}

/// Records a write on a consumer: creates it at generation 1, or moves it
/// one generation on (compare-and-swap against the generation read),
/// applying the request's project, user and type.
pub fn record_write(
    connection: &mut Connection,
    uuid: Uuid,
    existing: Option<&ConsumerRow>,
    fields: &ConsumerFields,
) -> Result<Recorded, DomainError> {
    match existing {
        None => match store::insert(connection, uuid, fields)? {
            Some(_) => Ok(Recorded::Done),
            None => Ok(Recorded::LostCreationRace),
        },
        Some(consumer) => {
            if store::bump_generation(connection, consumer, fields)? {
                Ok(Recorded::Done)
            } else {
                Err(DomainError::conflict(
                    ErrorCode::ConcurrentUpdate,
                    "Inventory and/or allocations changed while attempting to allocate: \
                     Another thread concurrently updated the data. Please retry your update",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(generation: i32) -> ConsumerRow {
        ConsumerRow {
            id: 1,
            uuid: Uuid::nil(),
            project_id: 1,
            user_id: 1,
            generation,
            consumer_type_id: None,
        }
    }

    fn detail(result: Result<(), DomainError>) -> String {
        match result {
            Err(DomainError::Conflict { detail, .. }) => detail,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn generation_expectations() {
        assert!(check_generation(None, ExpectedGeneration::Unchecked).is_ok());
        assert!(check_generation(Some(&consumer(3)), ExpectedGeneration::Unchecked).is_ok());
        assert!(check_generation(None, ExpectedGeneration::Absent).is_ok());
        assert!(check_generation(Some(&consumer(3)), ExpectedGeneration::Is(3)).is_ok());
        assert_eq!(
            detail(check_generation(None, ExpectedGeneration::Is(5))),
            "consumer generation conflict - expected null but got 5"
        );
        assert_eq!(
            detail(check_generation(
                Some(&consumer(3)),
                ExpectedGeneration::Is(1)
            )),
            "consumer generation conflict - expected 3 but got 1"
        );
        assert_eq!(
            detail(check_generation(
                Some(&consumer(1)),
                ExpectedGeneration::Absent
            )),
            "consumer generation conflict - expected 1 but got None"
        );
    }
}
