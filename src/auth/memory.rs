//! An authenticator with a fixed set of users and plain-text passwords, for tests and fuzzing.

use std::net::IpAddr;

use super::{AuthError, Authenticator, Identity};

/// One account: name, password, and whether it may write. Its home is the backend's default.
pub struct MemoryUser {
    pub name: &'static str,
    pub password: &'static str,
    pub writable: bool,
}

pub struct MemoryAuthenticator {
    users: Vec<MemoryUser>,
}

impl MemoryAuthenticator {
    pub fn new(users: Vec<MemoryUser>) -> MemoryAuthenticator {
        MemoryAuthenticator { users }
    }
}

impl Authenticator for MemoryAuthenticator {
    fn authenticate(&self, user: &str, password: &str, _peer: IpAddr) -> Result<Identity, AuthError> {
        let account =
            self.users.iter().find(|u| u.name == user).ok_or_else(|| AuthError::Denied("unknown user".into()))?;
        if account.password != password {
            return Err(AuthError::Denied("wrong password".into()));
        }
        Ok(Identity { user: user.into(), home: None, writable: account.writable, anonymous: false, credentials: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> MemoryAuthenticator {
        MemoryAuthenticator::new(vec![
            MemoryUser { name: "alice", password: "secret", writable: true },
            MemoryUser { name: "reader", password: "look", writable: false },
        ])
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn known_users_log_in_with_their_access() {
        let auth = authenticator();
        let alice = auth.authenticate("alice", "secret", PEER).unwrap();
        assert!(alice.user == "alice" && alice.writable && alice.home.is_none());
        assert!(!auth.authenticate("reader", "look", PEER).unwrap().writable);
    }

    #[test]
    fn wrong_passwords_and_unknown_users_are_denied() {
        let auth = authenticator();
        assert_eq!(auth.authenticate("alice", "Secret", PEER).unwrap_err(), AuthError::Denied("wrong password".into()));
        assert_eq!(auth.authenticate("mallory", "secret", PEER).unwrap_err(), AuthError::Denied("unknown user".into()));
    }
}
