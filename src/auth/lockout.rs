//! Slows down password guessing across connections: after `--lockout-after` failed logins within
//! `--lockout-secs`, the user, or the address they came from, is locked out for `--lockout-secs`. A locked
//! login is refused (530 after the session's usual delay) without asking the authenticator, so a guess
//! made during a lockout tells nothing. Wraps any [`Authenticator`].

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{AuthError, Authenticator, Identity, ReloadError};
use crate::locks::lock;
use crate::settings::{value, ConfigError, Flag, Setting, Settings};

pub const LOCKOUT_AFTER: Setting<u32> =
    value("lockout-after", "N", "0", "failed logins of one user, or from one address, that lock it out; 0 = off");
pub const LOCKOUT_SECS: Setting<Duration> =
    value("lockout-secs", "SECS", "300", "window in which failures count, and how long a lockout lasts");
pub const FLAGS: &[Flag] = &[LOCKOUT_AFTER.flag(), LOCKOUT_SECS.flag()];

/// Records kept before expired ones are dropped, so guessing many names cannot grow memory without bound.
const PRUNE_ABOVE: usize = 10_000;

pub struct Lockout {
    inner: Box<dyn Authenticator>,
    after: u32,
    window: Duration,
    users: Mutex<Tracker<String>>,
    addresses: Mutex<Tracker<IpAddr>>,
}

/// Wraps `inner` as the settings say; `--lockout-after 0` leaves it alone.
pub fn wrap(settings: &Settings, inner: Box<dyn Authenticator>) -> Result<Box<dyn Authenticator>, ConfigError> {
    // Off by default: a per-user lockout lets anyone lock any user out, so it is the operator's choice.
    let after = settings.get(&LOCKOUT_AFTER)?;
    let window = settings.get(&LOCKOUT_SECS)?;
    if after == 0 {
        return Ok(inner);
    }
    if window.is_zero() {
        return Err(LOCKOUT_SECS.error("must be more than 0"));
    }
    let (users, addresses) = (Mutex::new(Tracker::new()), Mutex::new(Tracker::new()));
    Ok(Box::new(Lockout { inner, after, window, users, addresses }))
}

impl Authenticator for Lockout {
    fn authenticate(&self, user: &str, password: &str, peer: IpAddr) -> Result<Identity, AuthError> {
        let key = self.inner.canonical_user(user);
        let now = Instant::now();
        // SECURITY: lockout: a locked user or address is refused before any password check, and
        // checks still running count against the limit.
        let user_left = lock(&self.users).locked_for(&key, now);
        let peer_left = lock(&self.addresses).locked_for(&peer, now);
        if let Some(left) = user_left.or(peer_left) {
            let what = if user_left.is_some() { format!("user {key}") } else { format!("address {peer}") };
            log::warn!("lockout: refused {key} from {peer}: {what} is locked out for {}s more", left.as_secs() + 1);
            return Err(AuthError::Denied(format!("{what} is locked out")));
        }
        // Checks still running count against the limit too: a burst of slow (Kerberos) checks must
        // not get more guesses than the limit before the first failure is counted.
        let user_slot = Slot::begin(&self.users, key.clone(), now, self.after, self.window);
        let peer_slot = Slot::begin(&self.addresses, peer, now, self.after, self.window);
        let (Some(_user_slot), Some(_peer_slot)) = (&user_slot, &peer_slot) else {
            let what = if user_slot.is_some() { format!("address {peer}") } else { format!("user {key}") };
            log::warn!("lockout: refused {key} from {peer}: {what} has {} logins being checked already", self.after);
            return Err(AuthError::Denied(format!("too many logins of {what} at once")));
        };
        let result = self.inner.authenticate(user, password, peer);
        drop((user_slot, peer_slot));
        match &result {
            // The address is not cleared: one good account must not reset an address's guessing count.
            Ok(_) => lock(&self.users).clear(&key),
            Err(AuthError::Denied(_)) => self.count_failure(key, peer, now),
            Err(AuthError::Unavailable(_)) => {}
        }
        result
    }

    // Single sign-on has no password to guess: the lockout does not apply.
    #[cfg(feature = "krb5")]
    fn gss_service(&self) -> Option<&super::gssapi::GssService> {
        self.inner.gss_service()
    }

    fn reload(&self) -> Result<(), ReloadError> {
        self.inner.reload()
    }

    fn canonical_user(&self, user: &str) -> String {
        self.inner.canonical_user(user)
    }
}

impl Lockout {
    fn count_failure(&self, key: String, peer: IpAddr, now: Instant) {
        let secs = self.window.as_secs_f64();
        if lock(&self.users).fail(key.clone(), now, self.after, self.window) {
            log::warn!("lockout: user {key} locked out for {secs}s after {} failed logins", self.after);
        }
        if lock(&self.addresses).fail(peer, now, self.after, self.window) {
            log::warn!("lockout: address {peer} locked out for {secs}s after {} failed logins", self.after);
        }
    }
}

/// A check in flight, counted against the limit until dropped: even when the authenticator panics, the
/// place is given back, so the key is not locked out for good.
struct Slot<'a, K: Hash + Eq> {
    tracker: &'a Mutex<Tracker<K>>,
    key: K,
}

impl<'a, K: Hash + Eq + Clone> Slot<'a, K> {
    /// A slot for `key`, if the failures so far and the checks in flight leave room for one.
    fn begin(tracker: &'a Mutex<Tracker<K>>, key: K, now: Instant, after: u32, window: Duration) -> Option<Self> {
        let begun = lock(tracker).begin(key.clone(), now, after, window);
        begun.then(|| Slot { tracker, key })
    }
}

impl<K: Hash + Eq> Drop for Slot<'_, K> {
    fn drop(&mut self) {
        lock(self.tracker).end(&self.key);
    }
}

/// Failures per key: counted from the first one in a window; at the limit, locked until a window later.
struct Tracker<K> {
    records: HashMap<K, Record>,
}

struct Record {
    failures: u32,
    /// Checks begun and not ended yet.
    in_flight: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

impl<K: Hash + Eq> Tracker<K> {
    fn new() -> Self {
        Tracker { records: HashMap::new() }
    }

    /// How long `key` stays locked, if it is.
    fn locked_for(&self, key: &K, now: Instant) -> Option<Duration> {
        let until = self.records.get(key)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// The record of `key`, in a fresh window once a lock has run out, or the old window has without a
    /// lock; never while a lock is in force (a late failure must not lift it).
    fn record(&mut self, key: K, now: Instant, window: Duration) -> &mut Record {
        if self.records.len() > PRUNE_ABOVE {
            self.records.retain(|_, r| {
                r.in_flight > 0 || now < r.window_start + window || r.locked_until.is_some_and(|t| now < t)
            });
        }
        let fresh = |in_flight| Record { failures: 0, in_flight, window_start: now, locked_until: None };
        let record = self.records.entry(key).or_insert_with(|| fresh(0));
        let locked = record.locked_until.is_some_and(|t| now < t);
        if !locked && (record.locked_until.is_some() || now >= record.window_start + window) {
            *record = fresh(record.in_flight);
        }
        record
    }

    /// Starts a check of `key`; false (and nothing started) when the failures so far and the checks
    /// still running already reach the limit.
    fn begin(&mut self, key: K, now: Instant, after: u32, window: Duration) -> bool {
        let record = self.record(key, now, window);
        if record.failures + record.in_flight >= after {
            return false;
        }
        record.in_flight += 1;
        true
    }

    /// Ends a check `begin` started (its failure, if any, is counted by `fail`).
    fn end(&mut self, key: &K) {
        if let Some(record) = self.records.get_mut(key) {
            record.in_flight = record.in_flight.saturating_sub(1);
        }
    }

    /// Counts a failure; true when it locks `key` out.
    fn fail(&mut self, key: K, now: Instant, after: u32, window: Duration) -> bool {
        let record = self.record(key, now, window);
        record.failures += 1;
        if record.failures >= after && record.locked_until.is_none() {
            record.locked_until = Some(now + window);
            return true;
        }
        false
    }

    fn clear(&mut self, key: &K) {
        self.records.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    #[test]
    fn locks_at_the_limit_and_unlocks_after_the_window() {
        let mut tracker = Tracker::new();
        let t0 = Instant::now();
        assert!(!tracker.fail("alice", t0, 3, WINDOW));
        assert!(!tracker.fail("alice", t0, 3, WINDOW));
        assert_eq!(tracker.locked_for(&"alice", t0), None);
        assert!(tracker.fail("alice", t0, 3, WINDOW));
        assert_eq!(tracker.locked_for(&"alice", t0 + Duration::from_secs(10)), Some(Duration::from_secs(50)));
        assert_eq!(tracker.locked_for(&"bob", t0), None);
        assert_eq!(tracker.locked_for(&"alice", t0 + WINDOW), None);
        assert!(!tracker.fail("alice", t0 + WINDOW, 3, WINDOW), "a lockout that ended starts a fresh count");
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let mut tracker = Tracker::new();
        let t0 = Instant::now();
        tracker.fail("alice", t0, 2, WINDOW);
        assert!(!tracker.fail("alice", t0 + WINDOW, 2, WINDOW));
        assert!(tracker.fail("alice", t0 + WINDOW + Duration::from_secs(1), 2, WINDOW));
    }

    #[test]
    fn a_late_failure_does_not_lift_a_lock() {
        let mut tracker = Tracker::new();
        let t0 = Instant::now();
        tracker.fail("alice", t0, 2, WINDOW);
        assert!(tracker.fail("alice", t0 + Duration::from_secs(50), 2, WINDOW));
        // Past the counting window that began at t0, but inside the lock that began at t0 + 50.
        tracker.fail("alice", t0 + Duration::from_secs(70), 2, WINDOW);
        assert!(tracker.locked_for(&"alice", t0 + Duration::from_secs(100)).is_some());
    }

    #[test]
    fn checks_in_flight_count_against_the_limit() {
        let mut tracker = Tracker::new();
        let t0 = Instant::now();
        assert!(tracker.begin("alice", t0, 3, WINDOW));
        assert!(tracker.begin("alice", t0, 3, WINDOW));
        tracker.fail("alice", t0, 3, WINDOW);
        tracker.end(&"alice");
        assert!(tracker.begin("alice", t0, 3, WINDOW), "one failure and one check running: one more may start");
        assert!(!tracker.begin("alice", t0, 3, WINDOW), "one failure and two checks running reach the limit");
        tracker.end(&"alice");
        assert!(tracker.begin("alice", t0, 3, WINDOW), "an ended check frees its place");
        assert!(tracker.begin("bob", t0, 3, WINDOW));
    }

    struct Fixed;

    impl Authenticator for Fixed {
        fn authenticate(&self, user: &str, password: &str, _peer: IpAddr) -> Result<Identity, AuthError> {
            if password == "right" {
                Ok(Identity { user: user.into(), home: None, writable: false, anonymous: false, credentials: None })
            } else {
                Err(AuthError::Denied("wrong password".into()))
            }
        }
    }

    #[test]
    fn locked_users_and_addresses_are_refused_even_with_the_right_password() {
        let settings =
            Settings::from_file_text("lockout-after = 2\nlockout-secs = 60", "t", &[("Login lockout", FLAGS)]).unwrap();
        let auth = wrap(&settings, Box::new(Fixed)).unwrap();
        let (a, b) = (IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 2]));
        assert!(auth.authenticate("alice", "right", a).is_ok());
        for _ in 0..2 {
            assert!(auth.authenticate("alice", "wrong", a).is_err());
        }
        let refused = auth.authenticate("alice", "right", b).unwrap_err();
        assert_eq!(refused, AuthError::Denied("user alice is locked out".into()));
        let refused = auth.authenticate("bob", "right", a).unwrap_err();
        assert_eq!(refused, AuthError::Denied(format!("address {a} is locked out")));
        assert!(auth.authenticate("bob", "right", b).is_ok());
    }

    /// A bug in an authenticator: it panics.
    struct Panicking;

    impl Authenticator for Panicking {
        fn authenticate(&self, user: &str, password: &str, _peer: IpAddr) -> Result<Identity, AuthError> {
            if password == "crash" {
                panic!("authenticator bug");
            }
            Fixed.authenticate(user, password, _peer)
        }
    }

    #[test]
    fn a_panicking_authenticator_does_not_leave_its_check_in_flight() {
        let settings =
            Settings::from_file_text("lockout-after = 2\nlockout-secs = 60", "t", &[("Login lockout", FLAGS)]).unwrap();
        let auth = wrap(&settings, Box::new(Panicking)).unwrap();
        let peer = IpAddr::from([127, 0, 0, 1]);
        for _ in 0..5 {
            let crashed =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| auth.authenticate("alice", "crash", peer)));
            assert!(crashed.is_err());
        }
        assert!(auth.authenticate("alice", "right", peer).is_ok(), "the user and address are not locked");
    }

    /// Counts the passwords it is asked to check, slowly, like a distant KDC.
    struct Slow(std::sync::atomic::AtomicU32);

    impl Authenticator for Slow {
        fn authenticate(&self, _user: &str, _password: &str, _peer: IpAddr) -> Result<Identity, AuthError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(200));
            Err(AuthError::Denied("wrong password".into()))
        }
    }

    #[test]
    fn a_burst_of_slow_guesses_gets_no_more_than_the_limit() {
        let settings =
            Settings::from_file_text("lockout-after = 3\nlockout-secs = 60", "t", &[("Login lockout", FLAGS)]).unwrap();
        let slow = std::sync::Arc::new(Slow(std::sync::atomic::AtomicU32::new(0)));
        struct Shared(std::sync::Arc<Slow>);
        impl Authenticator for Shared {
            fn authenticate(&self, user: &str, password: &str, peer: IpAddr) -> Result<Identity, AuthError> {
                self.0.authenticate(user, password, peer)
            }
        }
        let auth = std::sync::Arc::new(wrap(&settings, Box::new(Shared(slow.clone()))).unwrap());
        let guesses: Vec<_> = (0..20)
            .map(|i| {
                let auth = auth.clone();
                std::thread::spawn(move || {
                    auth.authenticate("alice", &format!("guess{i}"), IpAddr::from([127, 0, 0, 1]))
                })
            })
            .collect();
        for guess in guesses {
            assert!(guess.join().unwrap().is_err());
        }
        assert_eq!(slow.0.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
