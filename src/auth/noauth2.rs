//! noauth2, as upstream's `NoAuthMiddleware` (`placement/auth.py`):
//! `X-Auth-Token: user[:project]`, roles from `X-Roles`, else `admin` for
//! the user `admin`. For testing only: the caller says who it is.

use actix_web::http::header::HeaderMap;

use crate::policy::Credentials;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The caller's credentials, or `None` when no token was sent.
pub fn authenticate(headers: &HeaderMap) -> Option<Credentials> {
    let token = header(headers, "x-auth-token")?;
    let (user_id, project_id) = match token.split_once(':') {
        Some((user, project)) if !project.is_empty() => (user, project),
        Some((user, _)) => (user, user),
        None => (token, token),
    };
    let roles = match header(headers, "x-roles") {
        Some(roles) => roles
            .split(',')
            .map(str::trim)
            .filter(|role| !role.is_empty())
            .map(str::to_owned)
            .collect(),
        None if user_id == "admin" => vec!["admin".to_owned()],
        None => Vec::new(),
    };
    let system_scope = header(headers, "openstack-system-scope")
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned);
    let project_id = match header(headers, "x-project-id") {
        Some(explicit) => Some(explicit.to_owned()),
        None if system_scope.is_some() => None,
        None => Some(project_id.to_owned()),
    };
    Some(Credentials {
        user_id: user_id.to_owned(),
        project_id,
        roles,
        system_scope,
        is_admin_project: true,
        ..Credentials::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn no_token_is_unauthenticated() {
        assert_eq!(authenticate(&HeaderMap::new()), None);
    }

    #[test]
    fn token_gives_user_project_and_roles() {
        let admin = authenticate(&headers(&[("x-auth-token", "admin")])).expect("authenticated");
        assert_eq!(admin.roles, vec!["admin"]);
        assert_eq!(admin.project_id.as_deref(), Some("admin"));

        let user = authenticate(&headers(&[
            ("x-auth-token", "alice:proj"),
            ("x-roles", "reader,member"),
        ]))
        .expect("authenticated");
        assert_eq!(user.user_id, "alice");
        assert_eq!(user.project_id.as_deref(), Some("proj"));
        assert_eq!(user.roles, vec!["reader", "member"]);
    }

    #[test]
    fn system_scope_has_no_project() {
        let system = authenticate(&headers(&[
            ("x-auth-token", "admin"),
            ("openstack-system-scope", "all"),
        ]))
        .expect("authenticated");
        assert_eq!(system.project_id, None);
        assert_eq!(system.system_scope.as_deref(), Some("all"));
    }
}
