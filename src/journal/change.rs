//! A queue store change as a journal record.

use crate::journal::live::unix_ms;
use crate::journal::record::{Added, Finished, Record, Transport};
use crate::queue::store::{Arrival, Change};

/// A store change as a journal record.
pub(super) fn record_of(change: Change) -> Record {
    match change {
        Change::Added {
            id,
            counter,
            owner,
            client,
            arrival,
            module,
            data,
            added_at,
            options,
        } => {
            let (transport, peer) = match arrival {
                Arrival::Queue => (
                    Transport::Queue,
                    client.map(|c| c.to_string()).unwrap_or_default(),
                ),
                Arrival::Udp(peer) => (Transport::Udp, peer.to_string()),
            };
            Record::Added(Added {
                id,
                counter,
                owner,
                transport,
                peer,
                module,
                data,
                at_ms: unix_ms(added_at),
                options,
            })
        }
        Change::Started { id, attempt } => Record::Started { id, attempt },
        Change::Finished {
            id,
            owner,
            client,
            module,
            answer,
            receipt,
            finished_at,
            tries,
            again,
            key,
        } => Record::Finished(Finished {
            id,
            owner,
            peer: client.map(|c| c.to_string()).unwrap_or_default(),
            module,
            answer,
            receipt,
            at_ms: unix_ms(finished_at),
            tries,
            again,
            key,
        }),
        Change::Attempt { id, attempt } => Record::Attempt { id, attempt },
        Change::Removed { id, why } => Record::Removed { id, why },
        Change::Paused { module, paused } => Record::Paused { module, paused },
    }
}
