//! How glibc's allocator holds the memory of a server whose sessions come and go: large buffers in
//! mappings of their own, unmapped when freed, and freed small blocks handed back to the kernel on
//! request. On other C libraries these do nothing.

use std::time::{Duration, Instant};

/// Makes every allocation of `threshold` bytes or more a mapping of its own, returned to the kernel when
/// freed, and pages of it the program never writes never resident. glibc's default threshold moves
/// up to the size of the largest such block freed (up to 32 MiB), after which large buffers come from
/// the heaps and stay resident, whole, after they are freed; a value set here stays where it is.
pub fn map_large_blocks(threshold: usize) {
    #[cfg(target_env = "gnu")]
    {
        let threshold = libc::c_int::try_from(threshold).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets a parameter of the allocator; it fails (returns 0) on a bad value,
        // which leaves the default in place.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
    }
    #[cfg(not(target_env = "gnu"))]
    let _ = threshold;
}

/// Lets at most `count` heaps (arenas) serve the process's threads. glibc's default, 8 per core, spreads
/// sessions' small blocks over many heaps, each of which keeps some of them resident after the sessions
/// end. It only holds for threads that get their heap after the call.
pub fn limit_heaps(count: usize) {
    #[cfg(target_env = "gnu")]
    {
        let count = libc::c_int::try_from(count).unwrap_or(libc::c_int::MAX);
        // SAFETY: as in map_large_blocks.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, count) };
    }
    #[cfg(not(target_env = "gnu"))]
    let _ = count;
}

/// Hands the whole free pages of every heap back to the kernel; returns how long that took. glibc
/// gives back only the free end of a heap by itself, so the pages of blocks freed between live ones
/// stay resident.
pub fn release_free_memory() -> Duration {
    let started = Instant::now();
    // SAFETY: malloc_trim only reads and updates the allocator's own state, under its locks.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0)
    };
    started.elapsed()
}
