//! Unpredictable numbers where guessing one costs nothing worse than a retry: the passive port a
//! session starts its search at, the name of an upload's temporary file. std's `RandomState` is seeded
//! from the OS once per thread and differs with every instance. Ticket cache names, which must not be
//! guessable, come from /dev/urandom instead (auth/krb5.rs).

use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}
