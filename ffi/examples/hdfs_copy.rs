//! The direct libhdfs copy `make bench` compares the FTP path with: the same ffi wrapper, the same 1 MiB
//! buffer, no FTP.
//!
//!   hdfs_copy put LOCAL REMOTE [COPIES]   |   hdfs_copy get REMOTE LOCAL [COPIES]
//!
//! COPIES (default 1) copies one after the other in the same JVM, the figures the last one's: the earlier
//! ones warm the JVM's JIT up, as a gateway's that has run a while is.
//! Connects to `HDFS_URI` (default `file:///`) as the current user, with `HDFS_CONF` (`key=value`,
//! comma-separated) set on the connection; CLASSPATH and LIBHDFS_OPTS as libhdfs reads them. Prints the
//! bytes copied, the seconds it took and the CPU seconds the process used meanwhile (every thread: the
//! JVM's too), the JVM's start-up excluded: `N bytes in S s CPU C s`.
//!
//! `get` overwrites LOCAL in place and cuts it to length at the end, as the benchmark's FTP client does:
//! a file written in an earlier round keeps its pages, so the kernel's page allocation (slow and erratic
//! on a VM with a memory balloon) stays out of the comparison.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use hdfsftpd_ffi::hdfs::{Builder, FileSystem};

const BUFFER: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (direction, from, to, copies) = match &args[..] {
        [direction, from, to] => (direction, from, to, 1),
        [direction, from, to, copies] if copies.parse::<u32>().is_ok_and(|n| n > 0) => {
            (direction, from, to, copies.parse().unwrap_or(1))
        }
        _ => {
            eprintln!("usage: hdfs_copy put LOCAL REMOTE [COPIES] | get REMOTE LOCAL [COPIES]");
            std::process::exit(2);
        }
    };
    let copied = connect().and_then(|fs| {
        for _ in 1..copies {
            copy(&fs, direction, from, to)?;
        }
        copy(&fs, direction, from, to)
    });
    match copied {
        Ok((bytes, seconds, cpu)) => println!("{bytes} bytes in {seconds:.3} s CPU {cpu:.3} s"),
        Err(e) => {
            eprintln!("hdfs_copy: {e}");
            std::process::exit(1);
        }
    }
}

/// User + system CPU seconds of this process so far, all threads.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn connect() -> Result<Arc<FileSystem>, String> {
    let uri = std::env::var("HDFS_URI").unwrap_or_else(|_| "file:///".into());
    let mut builder = Builder::new(&uri).force_new_instance();
    for pair in std::env::var("HDFS_CONF").unwrap_or_default().split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or(format!("HDFS_CONF entry {pair} is not key=value"))?;
        builder = builder.conf(key, value);
    }
    Ok(Arc::new(builder.connect().map_err(|e| e.to_string())?))
}

/// One copy: (bytes, seconds, CPU seconds).
fn copy(fs: &Arc<FileSystem>, direction: &str, from: &str, to: &str) -> Result<(u64, f64, f64), String> {
    let size = std::env::var("HDFS_BUFFER").ok().and_then(|v| v.parse().ok()).unwrap_or(BUFFER);
    let mut buffer = vec![0u8; size];
    let (started, cpu_before) = (Instant::now(), cpu_seconds());
    let mut bytes = 0u64;
    match direction {
        "put" => {
            let mut local = std::fs::File::open(from).map_err(|e| format!("{from}: {e}"))?;
            let mut remote = fs.create(to).map_err(|e| e.to_string())?;
            loop {
                let read = local.read(&mut buffer).map_err(|e| format!("{from}: {e}"))?;
                if read == 0 {
                    break;
                }
                let mut written = 0;
                while written < read {
                    written += remote.write(&buffer[written..read]).map_err(|e| e.to_string())?;
                }
                bytes += read as u64;
            }
            remote.close().map_err(|e| e.to_string())?;
        }
        "get" => {
            let mut remote = fs.open_read(from).map_err(|e| e.to_string())?;
            let mut local = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(to)
                .map_err(|e| format!("{to}: {e}"))?;
            loop {
                let read = remote.read(&mut buffer).map_err(|e| e.to_string())?;
                if read == 0 {
                    break;
                }
                local.write_all(&buffer[..read]).map_err(|e| format!("{to}: {e}"))?;
                bytes += read as u64;
            }
            local.set_len(bytes).map_err(|e| format!("{to}: {e}"))?;
        }
        other => return Err(format!("unknown direction {other} (put or get)")),
    }
    Ok((bytes, started.elapsed().as_secs_f64(), cpu_seconds() - cpu_before))
}
