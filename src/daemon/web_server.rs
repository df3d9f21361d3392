//! The dashboard's sockets: the listener and its HTTP connections, owned
//! by the loop (see `web.rs` for what they are asked), and this start's
//! token.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::Interest;

use crate::config::web::WebSettings;
use crate::daemon::tokens;
use crate::error::Error;
use crate::io::OutBuf;
use crate::keys::{Table, WebKey};

/// Dashboard connections open at once; a new one beyond it closes the
/// oldest, so idle connections cannot lock the page out.
pub(super) const MAX_WEB_CONNS: usize = 32;
/// A connection open longer than this is closed (at the next housekeeping).
pub(super) const WEB_TIMEOUT: Duration = Duration::from_secs(10);

/// The dashboard's listener, its connections and this start's token.
pub struct WebServer {
    pub(super) listener: TcpListener,
    pub addr: SocketAddr,
    pub(super) conns: Table<WebKey, WebConn>,
    /// The token the page carries and every action must bring.
    pub(super) token: String,
    pub settings: WebSettings,
}

/// One dashboard connection: reading its request, perhaps waiting for the
/// queue's answer to an action, then writing the answer.
pub(super) struct WebConn {
    pub(super) stream: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) buf: Vec<u8>,
    pub(super) out: Option<OutBuf>,
    /// An action handed to the queue, whose answer has not come yet.
    pub(super) acting: bool,
    /// The peer was in the allow list when it connected.
    pub(super) allowed: bool,
    pub(super) opened: Instant,
}

impl WebServer {
    /// Binds and watches the listener; the token is drawn once per start
    /// and kept across rebinds.
    pub fn bind(
        settings: WebSettings,
        token: Option<String>,
        registry: &mio::Registry,
    ) -> Result<WebServer, Error> {
        let addr = settings.listen;
        let fail = |e| Error::Io(format!("cannot serve the dashboard on {addr}"), e);
        let token = match token {
            Some(token) => token,
            None => {
                let mut bytes = [0u8; 32];
                crate::journal::frame::fill_random(&mut bytes).map_err(fail)?;
                crate::web::guard::token_from(&bytes)
            }
        };
        let mut listener = TcpListener::bind(addr).map_err(fail)?;
        registry
            .register(&mut listener, tokens::WEB, Interest::READABLE)
            .map_err(fail)?;
        let addr = listener.local_addr().map_err(fail)?;
        Ok(WebServer {
            listener,
            addr,
            conns: Table::default(),
            token,
            settings,
        })
    }
}
