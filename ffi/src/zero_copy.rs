//! sendfile(2): file pages go to a socket without passing through user space.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Sends up to `count` bytes from the file's current position to `socket`, advancing the position.
/// Returns how many bytes went out; 0 means end of file. A socket send timeout surfaces as
/// `WouldBlock`.
pub fn sendfile(socket: &impl AsFd, file: &File, count: usize) -> io::Result<usize> {
    loop {
        // SAFETY: both descriptors are open for the duration of the call; a null offset makes the
        // kernel use and advance the file's own position.
        let sent = unsafe { libc::sendfile(socket.as_fd().as_raw_fd(), file.as_raw_fd(), std::ptr::null_mut(), count) };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn sends_file_bytes_and_advances_the_position() {
        let mut file = tempfile();
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

    fn tempfile() -> File {
        let path = std::env::temp_dir().join(format!("hdfsftpd-sendfile-{}", std::process::id()));
        let file = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }
}
