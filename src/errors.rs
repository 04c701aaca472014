//! Errors: what the domain reports (`DomainError`) and what a client sees
//! (`ApiError`, rendered by `http::error_envelope`). Answers to upstream's
//! `placement/errors.py` and `placement/exception.py`.

use actix_web::http::StatusCode;

use crate::storage::StorageError;

/// Placement's machine-readable error codes (`code` in error bodies from 1.23).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Undefined,
    InventoryInUse,
    ConcurrentUpdate,
    DuplicateName,
    ProviderInUse,
    ProviderCannotDeleteParent,
    ProviderNotFound,
    QueryDuplicateKey,
    QueryBadValue,
    QueryMissingValue,
    // This server's extensions (`POST /claims`, `GET /changes`).
    ClaimNoCandidates,
    ClaimConsumerExists,
    ClaimAffinity,
    ClaimContention,
    ChangesCursorExpired,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Undefined => "placement.undefined_code",
            ErrorCode::InventoryInUse => "placement.inventory.inuse",
            ErrorCode::ConcurrentUpdate => "placement.concurrent_update",
            ErrorCode::DuplicateName => "placement.duplicate_name",
            ErrorCode::ProviderInUse => "placement.resource_provider.inuse",
            ErrorCode::ProviderCannotDeleteParent => {
                "placement.resource_provider.cannot_delete_parent"
            }
            ErrorCode::ProviderNotFound => "placement.resource_provider.not_found",
            ErrorCode::QueryDuplicateKey => "placement.query.duplicate_key",
            ErrorCode::QueryBadValue => "placement.query.bad_value",
            ErrorCode::QueryMissingValue => "placement.query.missing_value",
            ErrorCode::ClaimNoCandidates => "placement.claims.no_candidates",
            ErrorCode::ClaimConsumerExists => "placement.claims.consumer_exists",
            ErrorCode::ClaimAffinity => "placement.claims.affinity",
            ErrorCode::ClaimContention => "placement.claims.contention",
            ErrorCode::ChangesCursorExpired => "placement.changes.cursor_expired",
        }
    }

    /// A code of this server's extensions, not upstream's.
    pub fn is_extension(self) -> bool {
        matches!(
            self,
            ErrorCode::ClaimNoCandidates
                | ErrorCode::ClaimConsumerExists
                | ErrorCode::ClaimAffinity
                | ErrorCode::ClaimContention
                | ErrorCode::ChangesCursorExpired
        )
    }
}

/// A failure of a domain operation, with upstream's message text.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The input is invalid (400).
    #[error("{detail}")]
    BadRequest { code: ErrorCode, detail: String },
    /// Something named does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The write conflicts with the current state (409).
    #[error("{detail}")]
    Conflict { code: ErrorCode, detail: String },
    /// The database failed or is unreachable.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl DomainError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        DomainError::BadRequest {
            code: ErrorCode::Undefined,
            detail: detail.into(),
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        DomainError::NotFound(detail.into())
    }

    pub fn conflict(code: ErrorCode, detail: impl Into<String>) -> Self {
        DomainError::Conflict {
            code,
            detail: detail.into(),
        }
    }

    /// The same error with `prefix` before its detail, as upstream's
    /// handlers wrap the exceptions of its objects.
    pub fn prefixed(self, prefix: &str) -> Self {
        match self {
            DomainError::BadRequest { code, detail } => DomainError::BadRequest {
                code,
                detail: format!("{prefix}{detail}"),
            },
            DomainError::NotFound(detail) => DomainError::NotFound(format!("{prefix}{detail}")),
            DomainError::Conflict { code, detail } => DomainError::Conflict {
                code,
                detail: format!("{prefix}{detail}"),
            },
            other => other,
        }
    }

    /// A not-found turned into a 400 with the same detail (a name in a
    /// body, rather than in the path, that does not exist).
    pub fn not_found_as_bad_request(self) -> Self {
        match self {
            DomainError::NotFound(detail) => DomainError::bad_request(detail),
            other => other,
        }
    }

    /// Another writer got there first (upstream's ConcurrentUpdateDetected):
    /// a lost generation compare-and-swap, or a row the write relied on
    /// changed under it.
    pub fn concurrent_update() -> Self {
        DomainError::conflict(
            ErrorCode::ConcurrentUpdate,
            "Another thread concurrently updated the data. Please retry your update",
        )
    }

    /// A provider generation mismatch on a write that carried a generation.
    pub fn provider_generation_conflict(action: &str) -> Self {
        DomainError::conflict(
            ErrorCode::ConcurrentUpdate,
            format!("{action}: resource provider generation conflict. Please retry the request."),
        )
    }
}

impl From<diesel::result::Error> for DomainError {
    fn from(error: diesel::result::Error) -> Self {
        DomainError::Storage(StorageError::from(error))
    }
}

/// An error as the client sees it: status, code and detail text.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub detail: String,
    /// Extra headers, such as `Allow` on a 405.
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code: ErrorCode::Undefined,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code;
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    /// A 404 raised without a message (unknown path, or an endpoint absent
    /// at the requested microversion): only the status's explanation shows.
    pub fn resource_not_found() -> Self {
        ApiError::not_found("")
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, detail)
    }

    pub fn forbidden(action: &str) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!("Policy does not allow {action} to be performed."),
        )
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::BadRequest { code, detail } => {
                ApiError::bad_request(detail).with_code(code)
            }
            DomainError::NotFound(detail) => ApiError::not_found(detail),
            DomainError::Conflict { code, detail } => ApiError::conflict(detail).with_code(code),
            DomainError::Storage(StorageError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is not available. Please retry the request.",
                )
            }
            DomainError::Storage(StorageError::Contended(cause)) => {
                tracing::warn!(error = %cause, "write lost to a concurrent update");
                ApiError::from(DomainError::concurrent_update())
            }
            DomainError::Storage(StorageError::Query(cause)) => {
                tracing::error!(error = %cause, "database error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unexpected error occurred. It has been logged.",
                )
            }
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        ApiError::from(DomainError::Storage(error))
    }
}
