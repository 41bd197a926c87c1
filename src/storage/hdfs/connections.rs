//! HDFS connections, shared by the sessions of one user.
//!
//! A libhdfs connection is a Hadoop `FileSystem` of its own: a `UserGroupInformation`, a DFSClient, its
//! NameNode connection and a lease renewer thread, which lingers for 60 s after the client closes. Made
//! per session, it cost each login a connect and left threads behind at the session rate. Under simple
//! authentication the user name is the whole identity HDFS sees, so the sessions of one user share one
//! connection: counted by the sessions holding it, closed once none has held it for `--hdfs-idle-close`.
//!
//! SECURITY: a connection is shared only by sessions of the same user name, and never when the session
//! authenticates with a Kerberos ticket of its own (SECURITY.md, "HDFS connections"): it would act in
//! HDFS on another session's ticket, which that session's logout destroys and whose lifetime is not its
//! own.
//!
//! A shared connection that fails the login's look at the home for a reason other than the path (a
//! closed DFSClient, a NameNode it cannot reach) is no longer handed to new sessions: the login that
//! saw it connects afresh, and its connection becomes the user's shared one. Sessions that hold the old
//! one keep it until they end.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use hdfsftpd_ffi::hdfs::{self, FileSystem};

/// The users' shared connections, and the thread that closes those left unused.
pub struct Connections {
    idle_close: Duration,
    shared: Mutex<HashMap<String, Shared>>,
    /// Signalled when a session lets go of a shared connection, or at shutdown.
    released: Condvar,
}

struct Shared {
    fs: Arc<FileSystem>,
    sessions: usize,
    /// When its last session let go of it.
    released_at: Instant,
}

/// A session's connection, shared with the other sessions of its user or its own alone.
pub struct Connection {
    fs: Arc<FileSystem>,
    shared_by: Option<(Arc<Connections>, String)>,
}

impl Deref for Connection {
    type Target = Arc<FileSystem>;

    fn deref(&self) -> &Arc<FileSystem> {
        &self.fs
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some((connections, user)) = &self.shared_by {
            connections.release(user, &self.fs);
        }
    }
}

impl Connection {
    /// A connection of the session's own, closed when the session ends.
    pub fn own(fs: FileSystem) -> Connection {
        Connection { fs: Arc::new(fs), shared_by: None }
    }

    pub fn is_shared(&self) -> bool {
        self.shared_by.is_some()
    }

    /// Hands this connection to no new session (it failed); the sessions holding it keep it.
    pub fn withdraw(&self) {
        if let Some((connections, user)) = &self.shared_by {
            let mut shared = connections.lock();
            if shared.get(user).is_some_and(|entry| Arc::ptr_eq(&entry.fs, &self.fs)) {
                shared.remove(user);
            }
        }
    }
}

impl Connections {
    /// Starts the thread that closes connections no session has held for `idle_close`.
    pub fn start(idle_close: Duration) -> std::io::Result<Arc<Connections>> {
        let connections = Arc::new(Connections { idle_close, shared: Mutex::default(), released: Condvar::new() });
        let closer = Arc::clone(&connections);
        thread::Builder::new().name("hdfs-idle-close".into()).spawn(move || closer.close_unused())?;
        Ok(connections)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Shared>> {
        self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `user`'s shared connection, made with `connect` if the user has none.
    // SECURITY: keyed by the user name alone; the caller connects only as that user, by name (simple
    // authentication) or as the gateway's proxy user for that name (a Kerberos session's connection with
    // its own ticket is its own: `Connection::own`).
    pub fn shared(
        self: &Arc<Self>,
        user: &str,
        connect: impl FnOnce() -> hdfs::Result<FileSystem>,
    ) -> hdfs::Result<Connection> {
        let held = |fs| Connection { fs, shared_by: Some((Arc::clone(self), user.to_string())) };
        if let Some(entry) = self.lock().get_mut(user) {
            entry.sessions += 1;
            return Ok(held(Arc::clone(&entry.fs)));
        }
        // Connected without the lock: other users' logins do not wait for it.
        let fresh = Arc::new(connect()?);
        let mut shared = self.lock();
        let entry = shared.entry(user.to_string()).or_insert_with(|| {
            log::info!("HDFS: connected as {user}, a connection for the user's sessions");
            Shared { fs: Arc::clone(&fresh), sessions: 0, released_at: Instant::now() }
        });
        entry.sessions += 1;
        let fs = Arc::clone(&entry.fs);
        drop(shared);
        // `fresh`, if another login made the user's connection meanwhile, is closed here, unlocked.
        Ok(held(fs))
    }

    fn release(&self, user: &str, fs: &Arc<FileSystem>) {
        let mut shared = self.lock();
        if let Some(entry) = shared.get_mut(user).filter(|entry| Arc::ptr_eq(&entry.fs, fs)) {
            entry.sessions -= 1;
            if entry.sessions == 0 {
                entry.released_at = Instant::now();
                self.released.notify_one();
            }
        }
    }

    /// Closes every connection that is not held (at shutdown, once uploads are closed).
    pub fn close_all(&self) {
        let unused: Vec<Shared> = {
            let mut shared = self.lock();
            let users: Vec<String> =
                shared.iter().filter(|(_, entry)| entry.sessions == 0).map(|(user, _)| user.clone()).collect();
            users.iter().filter_map(|user| shared.remove(user)).collect()
        };
        drop(unused);
    }

    /// When an unheld connection is to be closed; `None` while held, or never (an idle time too long to
    /// add to the clock).
    fn closing_time(&self, entry: &Shared) -> Option<Instant> {
        (entry.sessions == 0).then(|| entry.released_at.checked_add(self.idle_close)).flatten()
    }

    /// The closing thread: waits for the next connection to reach `idle_close` unheld, and closes it.
    fn close_unused(&self) {
        let mut shared = self.lock();
        loop {
            let now = Instant::now();
            let expired: Vec<String> = shared
                .iter()
                .filter(|(_, entry)| self.closing_time(entry).is_some_and(|time| now >= time))
                .map(|(user, _)| user.clone())
                .collect();
            if !expired.is_empty() {
                let closed: Vec<(String, Shared)> =
                    expired.into_iter().filter_map(|user| shared.remove_entry(&user)).collect();
                drop(shared);
                for (user, entry) in closed {
                    // Disconnected here unless an upload still holds it (then when that ends).
                    drop(entry.fs);
                    log::info!("HDFS: closed the connection of {user}, unused for {:?}", self.idle_close);
                }
                shared = self.lock();
                continue;
            }
            let next = shared.values().filter_map(|entry| self.closing_time(entry)).min();
            shared = match next {
                Some(deadline) => {
                    self.released.wait_timeout(shared, deadline - now).unwrap_or_else(|p| p.into_inner()).0
                }
                None => self.released.wait(shared).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }
}
