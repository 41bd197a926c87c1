//! What a verb's handler may touch, and nothing else: the reply sink (the control connection as a
//! [`ControlPort`]), the session's state, the shared server parts (configuration, storage backend,
//! authenticator, TLS, transfer log, shutdown) and where data connections come from
//! ([`DataChannels`]). The session builds one per command over its own socket; unit tests and the
//! dispatch fuzz target build one over the doubles in doubles.rs and memory storage.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use openssl::ssl::SslAcceptor;

use super::control::{Control, Unseal};
use super::reply::Reply;
use super::{DataPlan, Shared, State};
use crate::data::{self, ControlWatch, DataConnection, SetupError};
use crate::shutdown::Shutdown;
use crate::stream::Stream;

/// One command's view of its session.
pub(super) struct Context<'a> {
    pub(super) shared: &'a Shared,
    pub(super) control: &'a mut dyn ControlPort,
    pub(super) data: &'a dyn DataChannels,
    pub(super) state: &'a mut State,
}

/// The control connection as handlers use it: replies out, ABOR watched during transfers, the
/// addresses, and the switch to TLS.
pub(super) trait ControlPort: ControlWatch {
    /// The client: the socket's peer, or the one a balancer's PROXY header named.
    fn peer(&self) -> SocketAddr;
    /// This server's end of the connection.
    fn local(&self) -> SocketAddr;
    /// The client came through a load balancer.
    fn relayed(&self) -> bool;
    fn is_tls(&self) -> bool;
    fn reply(&mut self, reply: &Reply) -> io::Result<()>;
    /// Part of a reply written as it is made (a long multi-line reply).
    fn reply_part(&mut self, wire: &[u8]) -> io::Result<()>;
    /// The TLS handshake after AUTH's 234, finished within `limit`.
    fn start_tls(&mut self, acceptor: &SslAcceptor, limit: Duration) -> io::Result<()>;
    /// After ADAT's 235 (RFC 2228): command lines from now on unwrapped by `unseal`.
    #[cfg_attr(not(feature = "krb5"), allow(dead_code))]
    fn set_unseal(&mut self, unseal: Box<dyn Unseal>);
}

impl ControlPort for Control {
    fn peer(&self) -> SocketAddr {
        self.peer
    }

    fn local(&self) -> SocketAddr {
        self.local
    }

    fn relayed(&self) -> bool {
        self.relayed
    }

    fn is_tls(&self) -> bool {
        Control::is_tls(self)
    }

    fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        Control::reply(self, reply)
    }

    fn reply_part(&mut self, wire: &[u8]) -> io::Result<()> {
        Control::reply_part(self, wire)
    }

    fn start_tls(&mut self, acceptor: &SslAcceptor, limit: Duration) -> io::Result<()> {
        Control::start_tls(self, acceptor, limit)
    }

    fn set_unseal(&mut self, unseal: Box<dyn Unseal>) {
        Control::set_unseal(self, unseal)
    }
}

/// Where a transfer's data connection comes from, once PASV, EPSV, PORT or EPRT prepared one.
pub(super) trait DataChannels {
    /// Opens a passive port on `local` (the control connection's address), from `range` when one is
    /// configured: the plan that waits on it, and its number.
    fn listen(&self, local: IpAddr, range: Option<(u16, u16)>) -> io::Result<(DataPlan, u16)>;

    /// Waits for (passive) or makes (active) the connection `plan` names, watching `control` for ABOR
    /// and `shutdown` meanwhile.
    fn connect(
        &self,
        plan: DataPlan,
        peer: IpAddr,
        timeout: Duration,
        control: &mut dyn ControlWatch,
        shutdown: &Shutdown,
    ) -> Result<DataStream, SetupError>;
}

/// A data connection as handlers hold it: a socket (plain, or TLS after PROT P), or, in unit tests and
/// fuzzing, bytes in memory.
pub(super) enum DataStream {
    Socket(Stream),
    #[cfg(any(test, feature = "fuzzing"))]
    Memory(Box<dyn DataConnection>),
}

impl DataStream {
    /// The socket underneath, if there is one.
    pub(super) fn into_socket(self) -> Option<Stream> {
        match self {
            DataStream::Socket(stream) => Some(stream),
            #[cfg(any(test, feature = "fuzzing"))]
            DataStream::Memory(_) => None,
        }
    }

    fn connection(&mut self) -> &mut dyn DataConnection {
        match self {
            DataStream::Socket(stream) => stream,
            #[cfg(any(test, feature = "fuzzing"))]
            DataStream::Memory(connection) => connection.as_mut(),
        }
    }
}

impl Read for DataStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.connection().read(buf)
    }
}

impl Write for DataStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.connection().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.connection().flush()
    }
}

impl DataConnection for DataStream {
    fn plain_tcp(&mut self) -> Option<&mut TcpStream> {
        self.connection().plain_tcp()
    }

    fn ended_by_client(&mut self) -> Option<io::Error> {
        self.connection().ended_by_client()
    }
}

/// The real data connections: the passive listener's accept, or a connect to the client.
pub(super) struct Network;

impl DataChannels for Network {
    fn listen(&self, local: IpAddr, range: Option<(u16, u16)>) -> io::Result<(DataPlan, u16)> {
        let listener = data::listen_passive(local, range)?;
        let port = listener.local_addr()?.port();
        Ok((DataPlan::Passive(listener), port))
    }

    fn connect(
        &self,
        plan: DataPlan,
        peer: IpAddr,
        timeout: Duration,
        control: &mut dyn ControlWatch,
        shutdown: &Shutdown,
    ) -> Result<DataStream, SetupError> {
        let connected = match plan {
            DataPlan::Passive(listener) => data::accept_passive(&listener, peer, timeout, control, shutdown),
            DataPlan::Active(target) => data::connect_active(target, timeout, control, shutdown),
            DataPlan::None => Err(SetupError::Failed(io::Error::new(io::ErrorKind::NotConnected, "no data plan"))),
            #[cfg(any(test, feature = "fuzzing"))]
            DataPlan::MemoryPassive => Err(SetupError::Failed(io::ErrorKind::ConnectionRefused.into())),
        };
        connected.map(|tcp| DataStream::Socket(Stream::Plain(tcp)))
    }
}
