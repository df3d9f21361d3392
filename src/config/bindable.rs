//! Can the config's listeners be bound? `--check-config` tries each
//! address as start-up would (and so do start-up and SIGHUP, as findings),
//! so that an address this host does not have, or a port below 1024
//! without the right to it, is told before a start or reload fails on it.
//! An address already in use is not a finding: the daemon being checked,
//! or systemd's socket unit, may well hold it.

use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};

use crate::config::finding::{error, Finding, Subject};

/// The check of `check.rs`: one finding per listener that cannot be bound.
pub fn listeners_bindable(s: &Subject) -> Vec<Finding> {
    s.config
        .listeners
        .iter()
        .filter_map(|l| {
            let tcp = TcpListener::bind(l.addr).map(drop);
            let bound = tcp.and_then(|()| match l.udp {
                true => UdpSocket::bind(l.addr).map(drop),
                false => Ok(()),
            });
            match bound {
                Err(e) if e.kind() != ErrorKind::AddrInUse => Some(error(
                    format!("listener {} ({}) cannot be bound: {e}", l.addr, l.label),
                    "give an address of this host (ip addr), and a port from 1024 up unless bgjobd runs as root",
                )),
                _ => None,
            }
        })
        .collect()
}
