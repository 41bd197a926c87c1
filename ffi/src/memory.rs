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

extern "C" {
    /// OpenSSL 1.1 and 3 (libcrypto): frees the calling thread's OpenSSL state.
    fn OPENSSL_thread_stop();
}

/// The glibc tunable that sets the per-thread caches of freed small blocks (tcache), and its value here.
const THREAD_CACHE: &str = "glibc.malloc.tcache_count=";
const NO_THREAD_CACHE: &str = "glibc.malloc.tcache_count=0";

/// Restarts the program in place (same pid, same arguments) with glibc's per-thread caches of freed
/// small blocks turned off, unless `GLIBC_TUNABLES` already sets them. Returns only then, with the
/// tunables the program runs with, or if the restart failed (the program runs on with the caches). A
/// thread's cache (up to 7 blocks of each size up to 1 KiB) goes back to its heap only when the thread
/// exits, and the worker threads of a fixed pool never do: each kept what its last TLS session freed,
/// pinning the heap pages around it. glibc reads this setting only when a program starts, hence the
/// restart; call it before any thread starts.
pub fn restart_without_thread_caches() -> std::io::Result<String> {
    use std::os::unix::process::CommandExt;
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if tunables.split(':').any(|tunable| tunable.starts_with(THREAD_CACHE)) {
        return Ok(tunables);
    }
    let tunables =
        if tunables.is_empty() { NO_THREAD_CACHE.to_owned() } else { format!("{tunables}:{NO_THREAD_CACHE}") };
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_default();
    // /proc/self/exe: the running binary even if argv[0] is a bare name or the file has been replaced.
    Err(std::process::Command::new("/proc/self/exe").arg0(program).args(args).env("GLIBC_TUNABLES", tunables).exec())
}

/// Hands back what the calling thread holds for the session it has just finished: OpenSSL's state for
/// the thread (its random generators and error queue, made again when next needed) and the pages of
/// its stack below the current depth, which a TLS handshake or a JNI call left resident.
pub fn release_thread_memory() {
    // Links libcrypto here too (OPENSSL_thread_stop is not declared by openssl-sys), and makes sure
    // OpenSSL is set up before its thread state is released.
    openssl_sys::init();
    // SAFETY: frees only the calling thread's OpenSSL state, which OpenSSL re-creates on next use; the
    // caller has no TLS object of the finished session left.
    unsafe { OPENSSL_thread_stop() };
    release_stack_below_here();
}

/// Below this much under the current frame, the stack is left resident: the frames of the calls that
/// follow (madvise's own included).
const STACK_MARGIN: usize = 4 << 10;

fn release_stack_below_here() {
    let marker = 0u8;
    let here = std::ptr::addr_of!(marker) as usize;
    let Some(lowest) = stack_lowest_address() else { return };
    let page = page_size();
    let start = lowest.next_multiple_of(page);
    let end = here.saturating_sub(STACK_MARGIN) / page * page;
    if end > start {
        // SAFETY: [start, end) lies in this thread's own stack (stack_lowest_address) and below its
        // current frame by STACK_MARGIN: nothing live is there, and only this thread uses it. The pages
        // read as zeros when next touched; a failure leaves them as they were.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

/// The lowest usable address of the calling thread's stack (its guard page excluded).
fn stack_lowest_address() -> Option<usize> {
    let mut lowest: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: pthread_getattr_np fills the zeroed attribute it is given (destroyed below only when it
    // succeeded); pthread_attr_getstack writes into the two locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let got = libc::pthread_attr_getstack(&attr, &mut lowest, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (got == 0 && !lowest.is_null()).then_some(lowest as usize)
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).ok().filter(|&size| size > 0).unwrap_or(4096)
}
