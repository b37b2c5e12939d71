//! Session state machines and what they share: the file layout in blocks and sections, NAK
//! bitmaps, and the shape of their outputs.
//!
//! Every state machine here follows one call order (after quinn-proto's `Connection`; the
//! firmware's receive loop, `serve` in `embedded-target/src/receive.rs`, is the reference
//! driver):
//! 1. feed input: `handle_datagram(now, from, bytes, ..)` for each datagram received, and
//!    `handle_timeout(now, ..)` when the instant from `poll_timeout` has passed;
//! 2. take the events first, `poll_event()` until `None`: a receiver joins a session's private
//!    group on `SessionStarted` before the REGISTER that makes the server send to it leaves;
//! 3. send: `poll_transmit(now, buf, ..)` until `None` (each `Some` is one datagram of `len`
//!    bytes at the start of `buf`, to send to `dest`), then `poll_event()` again;
//! 4. sleep until `poll_timeout()` or the next datagram.
//!
//! `Proxy::handle_datagram` returns the datagram it passes on: send it at once, from the
//! receive buffer. Every `poll_*` is `#[must_use]`.

mod client_keys;
pub mod layout;
pub mod nak;
pub mod proxy;
pub mod receiver;
pub mod security;
pub mod sender;
mod server_handshake;
#[cfg(test)]
mod test_rsa;
pub mod tfmcc;

pub use layout::FileLayout;

use core::net::SocketAddr;

/// One datagram to send: its first `len` bytes of the caller's buffer go to `dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where it goes (a multicast group or a unicast peer).
    pub dest: SocketAddr,
    /// Its length.
    pub len: usize,
}
