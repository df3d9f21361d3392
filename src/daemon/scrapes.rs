//! The metrics listener's sockets: the listener and its HTTP connections,
//! owned by the loop (see `metrics.rs` for what they are asked).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::Interest;

use crate::daemon::tokens;
use crate::error::Error;
use crate::io::OutBuf;
use crate::keys::{ScrapeKey, Table};

/// HTTP connections open at once; a new one beyond it closes the oldest,
/// so idle connections cannot lock a scraper out.
pub(super) const MAX_SCRAPES: usize = 16;
/// A connection open longer than this is closed (at the next housekeeping).
pub(super) const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// The metrics listener and its connections.
pub struct MetricsServer {
    pub(super) listener: TcpListener,
    pub addr: SocketAddr,
    pub(super) scrapes: Table<ScrapeKey, Scrape>,
}

/// One HTTP connection: reading its request head, then writing the answer.
pub(super) struct Scrape {
    pub(super) stream: TcpStream,
    pub(super) head: Vec<u8>,
    /// The answer, once the request is read.
    pub(super) out: Option<OutBuf>,
    pub(super) opened: Instant,
}

impl MetricsServer {
    /// Binds and watches the listener.
    pub fn bind(addr: SocketAddr, registry: &mio::Registry) -> Result<MetricsServer, Error> {
        let fail = |e| Error::Io(format!("cannot serve metrics on {addr}"), e);
        let mut listener = TcpListener::bind(addr).map_err(fail)?;
        registry
            .register(&mut listener, tokens::METRICS, Interest::READABLE)
            .map_err(fail)?;
        let addr = listener.local_addr().map_err(fail)?;
        Ok(MetricsServer {
            listener,
            addr,
            scrapes: Table::default(),
        })
    }
}
