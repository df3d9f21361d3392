//! Where a classic client's request ends: the quiet gap after its last read,
//! derived from the connection itself (what the kernel measured of the path,
//! and how this request's reads arrived) unless `request_gap_ms` fixes it.
//!
//! The rule (the README's "Where a request ends" gives the measurements):
//! - a request that came as one segment in one read has been written in one
//!   write: 1 ms of quiet ends it (unless it is only `module:`, which
//!   clients often write before their data);
//! - a request of several segments or reads may come in pieces: at least
//!   10 ms, twice the round trip (flights arrive one round trip apart), and
//!   four times the widest spacing seen between its reads;
//! - a request whose bytes end exactly on a full segment is probably cut
//!   short (a bulk sender fills every segment but the last): 250 ms, which
//!   also covers a lost last segment's retransmission (at least 200 ms);
//! - at most 1 s; and while the kernel holds segments out of order (one was
//!   lost and later ones arrived), the wait goes on in 250 ms steps.

use std::os::fd::AsRawFd;
use std::time::Duration;

/// Quiet that ends a request written in one write.
pub const ONE_WRITE: Duration = Duration::from_millis(1);
/// Least quiet that ends a request that came in pieces.
pub const PIECES: Duration = Duration::from_millis(10);
/// Quiet after a request that ends on a full segment, and each step of the
/// wait for a lost segment: above Linux's 200 ms minimum retransmission time.
pub const LOSS: Duration = Duration::from_millis(250);
/// The most any gap derived here waits (besides a lost segment's wait).
pub const CEILING: Duration = Duration::from_secs(1);

/// Slack between our advertised MSS and the segments a full-sized peer sends
/// (TCP options such as timestamps take up to 40 bytes).
const OPTION_SLACK: u32 = 40;

/// What the kernel knows about a connection (from `TCP_INFO`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    /// Smoothed round trip; before we send data, the handshake's.
    pub rtt: Duration,
    /// The receiver's own estimate of the round trip (0: none yet).
    pub rcv_rtt: Duration,
    /// The largest segment received (the peer's segment size once it sent
    /// a full one).
    pub rcv_mss: u32,
    /// The segment size we advertised: a full segment is within
    /// `OPTION_SLACK` of it.
    pub advmss: u32,
    /// Segments received out of order so far: each one means a hole.
    pub ooo_packets: u32,
}

/// The start of the kernel's `struct tcp_info` (linux/tcp.h) up to
/// `tcpi_rcv_ooopack` (Linux 5.4); the glibc copy in `libc` stops earlier.
/// Older kernels fill less, and the count then stays 0.
#[repr(C)]
#[derive(Default)]
struct TcpInfo {
    /// state, ca_state, retransmits, probes, backoff, options, wscales, flags
    flags: [u8; 8],
    /// rto, ato, snd_mss
    timers: [u32; 3],
    rcv_mss: u32,
    /// unacked, sacked, lost, retrans, fackets, the four last-seen times,
    /// pmtu, rcv_ssthresh
    counts: [u32; 11],
    rtt: u32,
    /// rttvar, snd_ssthresh, snd_cwnd
    window: [u32; 3],
    advmss: u32,
    reordering: u32,
    rcv_rtt: u32,
    /// rcv_space, total_retrans
    space: [u32; 2],
    /// pacing and max pacing rate, bytes acked and received
    rates: [u64; 4],
    /// segs out and in, notsent bytes, min_rtt, data segs in and out
    segs: [u32; 6],
    /// delivery rate, busy time, rwnd and sndbuf limited time
    times: [u64; 4],
    /// delivered, delivered_ce
    delivered: [u32; 2],
    /// bytes sent and retransmitted
    bytes: [u64; 2],
    /// dsack_dups, reord_seen
    seen: [u32; 2],
    rcv_ooopack: u32,
    snd_wnd: u32,
}

impl Link {
    /// Reads `TCP_INFO` of a socket; `None` if the kernel refuses.
    pub fn of(socket: &impl AsRawFd) -> Option<Link> {
        let mut info = TcpInfo::default();
        let mut len = std::mem::size_of::<TcpInfo>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `info`, a
        // plain-old-data struct of that size.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut TcpInfo).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return None;
        }
        Some(Link {
            rtt: Duration::from_micros(info.rtt.into()),
            rcv_rtt: Duration::from_micros(info.rcv_rtt.into()),
            rcv_mss: info.rcv_mss,
            advmss: info.advmss,
            ooo_packets: info.rcv_ooopack,
        })
    }

    /// True if `bytes`, read until the socket was empty, may be the start
    /// of one larger write: more than one segment arrived (the largest
    /// segment received is smaller), or one as large as the link carries.
    /// A peer whose segments are smaller than we advertised is not told
    /// apart: its one-segment reads count as whole.
    pub fn may_hold_more(&self, bytes: usize) -> bool {
        let mss = self.rcv_mss as usize;
        bytes > mss || (bytes == mss && self.rcv_mss + OPTION_SLACK >= self.advmss)
    }

    /// True if a request of `bytes` ends exactly on a full segment.
    fn ends_on_full_segment(&self, bytes: usize) -> bool {
        let mss = self.rcv_mss as usize;
        mss > 0
            && self.rcv_mss + OPTION_SLACK >= self.advmss
            && bytes >= mss
            && bytes.is_multiple_of(mss)
    }
}

/// How this request's bytes have arrived so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrival {
    /// Bytes of the request.
    pub bytes: usize,
    /// Reads that found new bytes, each until the socket was empty.
    pub reads: u32,
    /// The longest time between two of those reads.
    pub widest_spacing: Duration,
    /// The request so far ends at its module's `:`: the data is to follow.
    pub prefix_only: bool,
}

/// The quiet that ends a request that arrived as `arrival` over `link`.
pub fn quiet_gap(arrival: &Arrival, link: Option<&Link>) -> Duration {
    let link = link.copied().unwrap_or_default();
    let one_segment = link.rcv_mss == 0 || arrival.bytes <= link.rcv_mss as usize;
    let gap = if arrival.reads <= 1 && one_segment && !arrival.prefix_only {
        ONE_WRITE
    } else {
        PIECES
            .max(2 * link.rtt.max(link.rcv_rtt))
            .max(4 * arrival.widest_spacing)
    };
    let gap = if link.ends_on_full_segment(arrival.bytes) {
        gap.max(LOSS)
    } else {
        gap
    };
    gap.min(CEILING)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn lo() -> Link {
        Link {
            rtt: Duration::from_micros(40),
            rcv_rtt: Duration::ZERO,
            rcv_mss: 536,
            advmss: 65483,
            ooo_packets: 0,
        }
    }

    fn arrival(bytes: usize, reads: u32, widest_ms: u32) -> Arrival {
        Arrival {
            bytes,
            reads,
            widest_spacing: widest_ms * MS,
            prefix_only: false,
        }
    }

    #[test]
    fn more_may_follow_several_segments_or_one_full_one() {
        // A 900-byte segment raised rcv_mss to 900: one short segment.
        let one = Link {
            rcv_mss: 900,
            ..lo()
        };
        assert!(!one.may_hold_more(900));
        assert!(!one.may_hold_more(20));
        // Two segments arrived: more than the largest one.
        assert!(one.may_hold_more(1800));
        // One segment as large as we advertised: a larger write's start.
        let full = Link {
            rcv_mss: 65483,
            ..lo()
        };
        assert!(full.may_hold_more(65483));
        assert!(!full.may_hold_more(1000));
    }

    #[test]
    fn one_write_on_the_same_host_waits_a_millisecond() {
        assert_eq!(quiet_gap(&arrival(9, 1, 0), Some(&lo())), ONE_WRITE);
        assert_eq!(quiet_gap(&arrival(9, 1, 0), None), ONE_WRITE);
        let prefix = Arrival {
            prefix_only: true,
            ..arrival(6, 1, 0)
        };
        assert_eq!(quiet_gap(&prefix, Some(&lo())), PIECES);
    }

    #[test]
    fn pieces_wait_for_their_spacing_and_round_trip() {
        let big = Link {
            rcv_mss: 65483,
            ..lo()
        };
        assert_eq!(quiet_gap(&arrival(300_000, 1, 0), Some(&big)), PIECES);
        assert_eq!(quiet_gap(&arrival(900, 3, 0), Some(&lo())), PIECES);
        assert_eq!(quiet_gap(&arrival(900, 3, 6), Some(&lo())), 24 * MS);
        let far = Link {
            rtt: 80 * MS,
            ..lo()
        };
        assert_eq!(quiet_gap(&arrival(900, 2, 0), Some(&far)), 160 * MS);
        assert_eq!(quiet_gap(&arrival(900, 2, 900), Some(&far)), CEILING);
    }

    #[test]
    fn a_request_ending_on_a_full_segment_waits_for_more() {
        let eth = Link {
            rcv_mss: 1448,
            advmss: 1460,
            ..lo()
        };
        assert_eq!(quiet_gap(&arrival(1448, 1, 0), Some(&eth)), LOSS);
        assert_eq!(quiet_gap(&arrival(10 * 1448, 4, 6), Some(&eth)), LOSS);
        assert_eq!(
            quiet_gap(&arrival(10 * 1448 + 9, 4, 6), Some(&eth)),
            24 * MS
        );
        // A short segment is not a full one, whatever its size.
        let short = Link {
            rcv_mss: 1000,
            advmss: 1460,
            ..lo()
        };
        assert_eq!(quiet_gap(&arrival(1000, 1, 0), Some(&short)), ONE_WRITE);
    }

    #[test]
    fn the_kernel_fills_the_link() {
        let (a, b) = (
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            std::net::TcpStream::connect,
        );
        let _client = b(a.local_addr().unwrap()).unwrap();
        let (server, _) = a.accept().unwrap();
        let link = Link::of(&server).expect("TCP_INFO");
        assert!(link.advmss > 1000, "{link:?}");
        assert!(link.rtt < Duration::from_secs(1), "{link:?}");
    }
}
