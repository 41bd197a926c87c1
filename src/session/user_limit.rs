//! `--max-per-user`: how many sessions each user has logged in (ProFTPD's MaxClientsPerUser, Pure-FTPd's
//! `-y`). A login takes a slot; the slot goes back when the login ends, however the session ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::locks;

#[derive(Default)]
pub struct UserSessions(Arc<Mutex<HashMap<String, usize>>>);

/// One logged-in session of `user`; dropping it gives the slot back.
pub struct UserSlot {
    sessions: Arc<Mutex<HashMap<String, usize>>>,
    user: String,
}

impl UserSessions {
    /// A slot for `user`, or `None` when `limit` (0: none) sessions of theirs are logged in already.
    pub fn take(&self, user: &str, limit: usize) -> Option<UserSlot> {
        let mut counts = locks::lock(&self.0);
        let count = counts.entry(user.to_string()).or_insert(0);
        if limit > 0 && *count >= limit {
            return None;
        }
        *count += 1;
        Some(UserSlot { sessions: Arc::clone(&self.0), user: user.to_string() })
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = locks::lock(&self.sessions);
        if let Some(count) = counts.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_user_and_given_back() {
        let sessions = UserSessions::default();
        let first = sessions.take("alice", 2).unwrap();
        let _second = sessions.take("alice", 2).unwrap();
        assert!(sessions.take("alice", 2).is_none());
        assert!(sessions.take("bob", 2).is_some(), "another user has slots of their own");
        drop(first);
        assert!(sessions.take("alice", 2).is_some());
        assert!(sessions.take("alice", 0).is_some(), "0 is no limit");
    }
}
