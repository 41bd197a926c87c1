//! Stand-ins for a session's connections, for the handler unit tests (tests.rs) and the dispatch fuzz
//! target (`crate::fuzzing`): a control connection that records the replies, data connections in
//! memory, and a session of handlers over them. No socket, no wait: a command takes microseconds.

use std::collections::VecDeque;
use std::io::{self, Cursor};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use openssl::ssl::SslAcceptor;

use super::context::{Context, ControlPort, DataChannels, DataStream};
use super::reply::Reply;
use super::{DataPlan, Flow, Shared, State};
use crate::data::{ControlWatch, Interrupt, MemoryConnection, SetupError};
use crate::shutdown::Shutdown;

/// The client as the doubles give it.
pub(super) const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
/// This server's end of the control connection.
pub(super) const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 21);

/// A control connection that keeps what the server sent and answers transfer polls from a script.
#[derive(Default)]
pub(super) struct Recorder {
    pub(super) wire: Vec<u8>,
    pub(super) tls: bool,
    pub(super) relayed: bool,
    /// What the polls during the next transfers find, in order; `None` after.
    pub(super) interrupts: VecDeque<Interrupt>,
}

impl ControlWatch for Recorder {
    fn poll_abort(&mut self) -> io::Result<Interrupt> {
        Ok(self.interrupts.pop_front().unwrap_or(Interrupt::None))
    }

    fn poll_abort_within(&mut self, _wait: Duration) -> io::Result<Interrupt> {
        self.poll_abort()
    }
}

impl ControlPort for Recorder {
    fn peer(&self) -> SocketAddr {
        CLIENT
    }

    fn local(&self) -> SocketAddr {
        SERVER
    }

    fn relayed(&self) -> bool {
        self.relayed
    }

    fn is_tls(&self) -> bool {
        self.tls
    }

    fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        reply.to_wire(&mut self.wire);
        Ok(())
    }

    fn reply_part(&mut self, wire: &[u8]) -> io::Result<()> {
        self.wire.extend_from_slice(wire);
        Ok(())
    }

    fn start_tls(&mut self, _acceptor: &SslAcceptor, _limit: Duration) -> io::Result<()> {
        Err(io::Error::other("no TLS handshake over a recorded control connection"))
    }

    fn set_unseal(&mut self, _unseal: Box<dyn super::control::Unseal>) {
        unreachable!("no GSSAPI context without a keytab: tests/test_gssapi.py drives it with a real client")
    }
}

/// Passive ports and data connections in memory, whatever the plan: each connection uploads `upload`
/// and swallows what it is sent.
pub(super) struct MemoryData {
    pub(super) upload: &'static [u8],
}

impl DataChannels for MemoryData {
    /// The range's first port, or one from the kernel's usual ephemeral range.
    fn listen(&self, _local: IpAddr, range: Option<(u16, u16)>) -> io::Result<(DataPlan, u16)> {
        Ok((DataPlan::MemoryPassive, range.map_or(50000, |(low, _)| low)))
    }

    fn connect(
        &self,
        _plan: DataPlan,
        _peer: IpAddr,
        _timeout: Duration,
        _control: &mut dyn ControlWatch,
        _shutdown: &Shutdown,
    ) -> Result<DataStream, SetupError> {
        let connection = MemoryConnection { incoming: Cursor::new(self.upload.to_vec()), ..Default::default() };
        Ok(DataStream::Memory(Box::new(connection)))
    }
}

/// A session's handlers over a [`Recorder`] and [`MemoryData`], for the dispatch fuzz target.
pub struct MemorySession {
    shared: Shared,
    control: Recorder,
    data: MemoryData,
    state: State,
}

impl MemorySession {
    /// A session on `shared` whose uploads send `upload`.
    pub fn new(shared: Shared, upload: &'static [u8]) -> MemorySession {
        let state = State::new(&shared, CLIENT);
        MemorySession { shared, control: Recorder::default(), data: MemoryData { upload }, state }
    }

    /// Handles one command line: the flow after it, and what the server replied.
    pub fn handle_line(&mut self, line: &str) -> (Flow, Vec<u8>) {
        let mut cx =
            Context { shared: &self.shared, control: &mut self.control, data: &self.data, state: &mut self.state };
        let flow = cx.handle_line(line).expect("a recorded control connection never fails");
        (flow, std::mem::take(&mut self.control.wire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::memory::{MemoryAuthenticator, MemoryUser};
    use crate::config::Config;
    use crate::settings::Settings;
    use crate::storage::memory::MemoryBackend;

    fn send(session: &mut MemorySession, line: &str) -> String {
        let (flow, wire) = session.handle_line(line);
        assert_eq!(flow, Flow::Continue, "{line}");
        String::from_utf8(wire).expect("UTF-8 replies")
    }

    #[test]
    fn memory_data_connections_upload_their_script_and_take_downloads() {
        let config = Config::from_settings(&Settings::default()).expect("default configuration");
        let auth = MemoryAuthenticator::new(vec![MemoryUser { name: "alice", password: "secret", writable: true }]);
        let backend = MemoryBackend::with_homes(&["alice"]);
        let shared = Shared::new(config, Box::new(backend), Box::new(auth), None, None);
        let mut session = MemorySession::new(shared, b"twelve bytes");
        send(&mut session, "USER alice");
        assert_eq!(send(&mut session, "PASS secret"), "230 Login successful.\r\n");
        assert_eq!(send(&mut session, "RETR f"), "550 /f: No such file or directory\r\n");
        assert_eq!(send(&mut session, "TYPE I"), "200 Switching to Binary mode.\r\n");
        assert!(send(&mut session, "EPRT |1|127.0.0.1|5000|").starts_with("200 "));
        let stored = send(&mut session, "STOR f");
        assert_eq!(stored, "150 Opening BINARY mode data connection for /f.\r\n226 Transfer complete.\r\n");
        assert_eq!(send(&mut session, "SIZE f"), "213 12\r\n");
        assert_eq!(send(&mut session, "PASV"), "227 Entering Passive Mode (127,0,0,1,195,80).\r\n");
        let sent = send(&mut session, "RETR f");
        assert!(sent.starts_with("150 ") && sent.ends_with("\r\n226 Transfer complete.\r\n"), "{sent}");
        assert!(send(&mut session, "PORT 127,0,0,1,200,10").starts_with("200 "));
        assert!(send(&mut session, "LIST").ends_with("\r\n226 Directory send OK.\r\n"));
        assert_eq!(send(&mut session, "LIST"), "425 Use PORT, EPRT, PASV or EPSV first.\r\n");
    }
}
