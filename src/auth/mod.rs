//! Authentication: turns a request's headers into the request's identity
//! (`policy::Credentials`) before policy runs. `noauth2` trusts the caller
//! (testing only); `keystone` validates the token as keystonemiddleware's
//! `auth_token` does in front of upstream Placement (`placement/deploy.py`,
//! `placement/auth.py`). The HTTP layer only calls [`Authenticator`].

pub mod keystone;
pub mod noauth2;

use std::sync::Arc;

use actix_web::http::header::HeaderMap;

use crate::config::{AuthStrategy, Config};
use crate::policy::Credentials;
use crate::telemetry::Metrics;

/// Why a request has no identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No token, or one that is invalid, revoked or expired: 401.
    Unauthorized,
    /// Keystone could not be asked, or failed: 503.
    KeystoneUnavailable,
}

/// The configured way of authenticating.
pub enum Authenticator {
    NoAuth2,
    Keystone(Arc<keystone::Keystone>),
}

impl Authenticator {
    pub fn from_config(
        config: &Config,
        metrics: Arc<Metrics>,
    ) -> Result<Self, keystone::SetupError> {
        Ok(match &config.auth {
            AuthStrategy::NoAuth2 => Authenticator::NoAuth2,
            AuthStrategy::KeystoneMisconfigured(message) => {
                return Err(keystone::SetupError::Misconfigured(message.clone()));
            }
            AuthStrategy::Keystone(options) => Authenticator::Keystone(Arc::new(
                keystone::Keystone::new((**options).clone(), metrics)?,
            )),
        })
    }

    /// The identity of the request `method path` with `headers`.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
    ) -> Result<Credentials, AuthError> {
        match self {
            Authenticator::NoAuth2 => noauth2::authenticate(headers).ok_or(AuthError::Unauthorized),
            Authenticator::Keystone(keystone) => keystone.authenticate(headers, method, path).await,
        }
    }
}

/// Credentials of an unauthenticated request (only `GET /` allows one).
pub fn anonymous() -> Credentials {
    Credentials::default()
}
