//! Zero-copy transfers: sendfile(2) moves file pages to a socket, splice(2) moves socket data through a
//! pipe into a file; neither passes the bytes through user space.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use crate::sys::{pipe, retry};

/// Sends up to `count` bytes from the file's current position to `socket`, advancing the position.
/// Returns how many bytes went out; 0 means end of file. A socket send timeout surfaces as
/// `WouldBlock`.
pub fn sendfile(socket: &impl AsFd, file: &File, count: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call; a null offset makes the kernel use
    // and advance the file's own position.
    retry(|| unsafe { libc::sendfile(socket.as_fd().as_raw_fd(), file.as_raw_fd(), std::ptr::null_mut(), count) })
}

/// A kernel pipe that carries spliced data from a socket to a file.
pub struct SplicePipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl SplicePipe {
    /// A pipe of (at least) `capacity` bytes, if the system allows that much; the default otherwise.
    pub fn new(capacity: usize) -> io::Result<SplicePipe> {
        let (read, write) = pipe()?;
        let size = libc::c_int::try_from(capacity).unwrap_or(libc::c_int::MAX);
        // SAFETY: F_SETPIPE_SZ takes an int; failure (above /proc/sys/fs/pipe-max-size) leaves the default.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
        Ok(SplicePipe { read, write })
    }

    /// Moves up to `max` bytes that arrived on `socket` into the pipe. 0 means the peer closed; a socket
    /// receive timeout surfaces as `WouldBlock`.
    pub fn fill_from(&self, socket: &impl AsFd, max: usize) -> io::Result<usize> {
        let socket = socket.as_fd().as_raw_fd();
        // SAFETY: both descriptors are open; null offsets are required for sockets and pipes.
        retry(|| unsafe {
            libc::splice(
                socket,
                std::ptr::null_mut(),
                self.write.as_raw_fd(),
                std::ptr::null_mut(),
                max,
                libc::SPLICE_F_MOVE,
            )
        })
    }

    /// Moves exactly `len` bytes from the pipe to `file` at its current position, advancing it.
    pub fn drain_to(&self, file: &File, mut len: usize) -> io::Result<()> {
        while len > 0 {
            // SAFETY: both descriptors are open; a null offset uses and advances the file position.
            let moved = retry(|| unsafe {
                libc::splice(
                    self.read.as_raw_fd(),
                    std::ptr::null_mut(),
                    file.as_raw_fd(),
                    std::ptr::null_mut(),
                    len,
                    libc::SPLICE_F_MOVE,
                )
            })?;
            if moved == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            len -= moved;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn sends_file_bytes_and_advances_the_position() {
        let mut file = tempfile("sendfile");
        file.write_all(b"hello, sendfile").unwrap();
        file.seek(io::SeekFrom::Start(7)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        assert_eq!(sendfile(&sender, &file, 100).unwrap(), 8);
        assert_eq!(sendfile(&sender, &file, 100).unwrap(), 0);
        drop(sender);
        let mut received = String::new();
        receiver.read_to_string(&mut received).unwrap();
        assert_eq!(received, "sendfile");
    }

    #[test]
    fn splices_socket_data_into_a_file() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (receiver, _) = listener.accept().unwrap();
        sender.write_all(b"spliced bytes").unwrap();
        drop(sender);
        let mut file = tempfile("splice");
        let pipe = SplicePipe::new(1 << 20).unwrap();
        let mut total = 0;
        loop {
            match pipe.fill_from(&receiver, 1 << 20).unwrap() {
                0 => break,
                n => {
                    pipe.drain_to(&file, n).unwrap();
                    total += n;
                }
            }
        }
        assert_eq!(total, 13);
        file.seek(io::SeekFrom::Start(0)).unwrap();
        let mut stored = String::new();
        file.read_to_string(&mut stored).unwrap();
        assert_eq!(stored, "spliced bytes");
    }

    fn tempfile(name: &str) -> File {
        let path = std::env::temp_dir().join(format!("hdfsftpd-{name}-{}", std::process::id()));
        let file = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }
}
