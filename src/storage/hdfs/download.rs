//! Downloads: libhdfs reads on a thread of their own, up to two chunks ahead of the socket.
//!
//! A libhdfs read (for HDFS, `DFSInputStream.read(ByteBuffer)` on a direct buffer over ours: the
//! packet's checksums verified, then its bytes copied in, no Java array) costs about as much CPU as
//! sending the bytes. With the reads on their own thread, the session sends one chunk while the next is read, so
//! a download runs at the pace of the slower of the two instead of their sum; on a cluster, the wait for
//! a DataNode overlaps the send as well. The thread starts only at the second chunk, so a small file
//! is read on the session's thread alone.

use std::io::{self, Read};
use std::thread;

use crossbeam_channel::{bounded, Receiver, Sender};
use hdfsftpd_ffi::hdfs;

use super::transfer_error;
use crate::storage::ReadFile;

/// What one read on the reader thread gathers.
const CHUNK: usize = 1 << 20;

/// Chunks in flight between the reader thread and the session: one being sent, one being read.
const AHEAD: usize = 2;

/// A chunk from the reader thread: its buffer and how much of it is filled. Fewer than [`CHUNK`]
/// bytes means the file ended there.
type Filled = io::Result<(Vec<u8>, usize)>;

pub struct HdfsReader {
    state: State,
}

enum State {
    /// Reads on the session's thread, until the first full buffer shows the file may be large.
    Inline { file: hdfs::File, full_buffer_seen: bool },
    /// Reads on the reader thread; `current` is the chunk being handed out, from `offset` on.
    Ahead { filled: Receiver<Filled>, empty: Sender<Vec<u8>>, current: Vec<u8>, offset: usize, len: usize, last: bool },
    /// The reader thread could not start: the download cannot go on.
    Failed,
}

impl HdfsReader {
    pub fn new(file: hdfs::File) -> HdfsReader {
        HdfsReader { state: State::Inline { file, full_buffer_seen: false } }
    }

    /// Moves the file to a reader thread. Its chunk buffers are allocated once, here, and go back and
    /// forth between the two threads; dropping the reader ends the thread after its current read.
    fn start_thread(file: hdfs::File) -> io::Result<State> {
        let (filled_tx, filled) = bounded::<Filled>(AHEAD);
        let (empty, empty_rx) = bounded::<Vec<u8>>(AHEAD);
        for _ in 0..AHEAD {
            empty.send(vec![0; CHUNK]).map_err(|_| io::Error::other("reader channel closed"))?;
        }
        thread::Builder::new().name("hdfs-read".into()).spawn(move || read_ahead(file, &empty_rx, &filled_tx))?;
        Ok(State::Ahead { filled, empty, current: Vec::new(), offset: 0, len: 0, last: false })
    }
}

/// The reader thread: fills each empty buffer it gets and passes it on, until the file ends, a read
/// fails, or the session lets go of the download.
fn read_ahead(mut file: hdfs::File, empty: &Receiver<Vec<u8>>, filled: &Sender<Filled>) {
    while let Ok(mut buffer) = empty.recv() {
        let chunk = fill(&mut file, &mut buffer).map(|len| (buffer, len));
        let ended = !matches!(chunk, Ok((_, len)) if len == CHUNK);
        if filled.send(chunk).is_err() || ended {
            return;
        }
    }
}

/// libhdfs reads return less than asked (a packet, a block's end); this gathers a full buffer so
/// the transfer loop writes to the socket in large chunks. Fewer bytes only at the end of the file.
fn fill(file: &mut hdfs::File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]).map_err(transfer_error)? {
            0 => break,
            read => filled += read,
        }
    }
    Ok(filled)
}

impl Read for HdfsReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if let State::Inline { file, full_buffer_seen } = &mut self.state {
            if !*full_buffer_seen {
                let read = fill(file, buffer)?;
                *full_buffer_seen = read == buffer.len();
                return Ok(read);
            }
            if let State::Inline { file, .. } = std::mem::replace(&mut self.state, State::Failed) {
                self.state = Self::start_thread(file)?;
            }
        }
        let chunk = self.lend(buffer.len())?;
        let n = chunk.len();
        buffer[..n].copy_from_slice(chunk);
        Ok(n)
    }
}

impl ReadFile for HdfsReader {
    /// Once the reader thread runs, a download sends from its chunks, saving a copy of each (7% of a
    /// RETR's CPU in a profile on the test cluster).
    fn lends(&self) -> bool {
        matches!(self.state, State::Ahead { .. })
    }

    fn lend(&mut self, max: usize) -> io::Result<&[u8]> {
        let State::Ahead { filled, empty, current, offset, len, last } = &mut self.state else {
            return Err(io::Error::other("the HDFS reader thread did not start"));
        };
        if *offset == *len {
            if *last {
                return Ok(&[]);
            }
            // The spent buffer goes back for a later chunk (there is none before the first one); a
            // thread that has ended after an error does not take it, and the recv below says so.
            if current.len() == CHUNK {
                let _ = empty.send(std::mem::take(current));
            }
            // A thread that ends without a last chunk has panicked: an error, never a short file.
            let (buffer, size) = filled.recv().map_err(|_| io::Error::other("the HDFS reader thread failed"))??;
            (*current, *offset, *len, *last) = (buffer, 0, size, size < CHUNK);
        }
        let n = max.min(*len - *offset);
        *offset += n;
        Ok(&current[*offset - n..*offset])
    }
}
