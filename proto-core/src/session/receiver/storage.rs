//! The storage the driver lends to the receiver: file contents and the per-block "received"
//! bitmap live there, so the receiver's own memory is fixed whatever the file sizes.

use super::*;

/// What a FILEINFO asks for, as handed to [`Storage::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind<'a> {
    /// A regular file of `Item::size` bytes, delivered through [`Storage::write`].
    Regular,
    /// An (empty) directory to create.
    Directory,
    /// A symbolic link to create, pointing at `target` (bytes from the network: untrusted).
    Symlink {
        /// The link target.
        target: &'a [u8],
    },
    /// A request to delete the named item.
    Delete,
}

/// One item of a session, as handed to [`Storage::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    /// The session.
    pub session: SessionId,
    /// The item's file ID within the session.
    pub file_id: u16,
    /// Its `/`-separated path. The core has checked that it is not empty and holds no NUL and
    /// no `..` component; it may be absolute. Confining it is the storage's job.
    pub name: &'a [u8],
    /// What to do with it.
    pub kind: ItemKind<'a>,
    /// Size in bytes (regular files).
    pub size: u64,
    /// Modification time, UNIX seconds.
    pub mtime: u32,
    /// Block geometry (regular files); the block map needs `layout.bitmap_len()` bytes.
    pub layout: FileLayout,
}

/// A regular file already in an item's place (see [`Storage::existing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, UNIX seconds.
    pub mtime: i64,
}

/// Why an item is refused (answered with COMPLETE status REJECTED) or a file could not be
/// stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// The name is empty, holds `..` or a NUL, or falls outside every destination.
    BadName,
    /// Something that may not be replaced is in the way.
    Exists,
    /// Not enough free space.
    NoSpace,
    /// An I/O error.
    Io,
    /// The item type or geometry is not supported.
    Unsupported,
}

impl Reject {
    /// A short description for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::BadName => "bad name",
            Reject::Exists => "exists",
            Reject::NoSpace => "no space",
            Reject::Io => "I/O error",
            Reject::Unsupported => "unsupported",
        }
    }
}

/// Where received items go. The host implements it on files; tests keep items in memory.
///
/// Calls for one regular file: [`open`](Storage::open) (with a zeroed
/// [`block_map`](Storage::block_map) of at least `layout.bitmap_len()` bytes made ready for the
/// session), any number of [`write`](Storage::write)s, then exactly one of
/// [`finish`](Storage::finish) (every block written: make it visible under its final name) or
/// [`discard`](Storage::discard) (forget it; leave nothing under the final name). A session has
/// at most one regular file open at a time. Directories, symlinks and deletions are carried out
/// entirely within `open`. [`session_ended`](Storage::session_ended) comes once per session that
/// was started, after its last file; [`session_failed`](Storage::session_failed) comes just
/// before it when the session did not complete.
///
/// # Restarts
/// A session re-run for the clients that failed it (uftp's `-F`, digest §1.6) keeps the group
/// ID and raises the group instance. In such a session (instance above 0), the core asks
/// [`resumed`](Storage::resumed) after opening each regular file: a storage that kept the
/// blocks of that very file from an earlier instance (uftpd's `-T`) fills the block map with
/// them and says so, and the receiver then answers FILEINFO_ACK with the PARTIAL flag and NAKs
/// only what is missing (or COMPLETE, when nothing is). Such a storage keeps the temporary of
/// a file it [`discard`](Storage::discard)s, out of sight of the destination, for that later
/// instance; the others delete it.
pub trait Storage {
    /// Prepares an item. For a regular file: create its temporary and make a zeroed block map of
    /// at least `item.layout.bitmap_len()` bytes ready for the session. For the other kinds: do
    /// it now. An error rejects the item (COMPLETE status REJECTED).
    fn open(&mut self, item: &Item<'_>) -> Result<(), Reject>;
    /// Sync mode (digest §1.7): the size and modification time of the regular file already
    /// at `item`'s final place, asked before [`open`](Storage::open) (which is not called when
    /// sync mode keeps that copy). `None` (the default) when there is none, or it is not a
    /// regular file: the item is received as usual.
    fn existing(&mut self, item: &Item<'_>) -> Option<Existing> {
        let _ = item;
        None
    }
    /// The session's block map: bit `b` (LSB first, see [`nak`]) set once block `b` of the
    /// open file is stored. `None` (or too short) if there is none: the file is then rejected.
    fn block_map(&mut self, session: SessionId) -> Option<&mut [u8]>;
    /// Stores `data` at byte `offset` of the open file.
    fn write(
        &mut self,
        session: SessionId,
        file_id: u16,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Reject>;
    /// Every block is stored: make the file durable and visible under its final name.
    fn finish(&mut self, session: SessionId, file_id: u16) -> Result<(), Reject>;
    /// Forget the open file: nothing may remain under its final name, nor as a temporary,
    /// except one kept for a restart of the session (see [Restarts](Storage#restarts)).
    fn discard(&mut self, session: SessionId, file_id: u16);
    /// Free bytes in the primary destination, for `@FREESPACE` queries (`None`: unknown).
    fn free_space(&mut self, session: SessionId) -> Option<u64>;
    /// The session is over; release what was kept for it.
    fn session_ended(&mut self, session: SessionId) {
        let _ = session;
    }
    /// A restarted session (group instance above 0) opened the regular file `item`: `true` if
    /// the blocks of this very file (same name, size, modification time and block size) were
    /// kept from an earlier instance of the session and the block map now marks them; `false`
    /// (the default) and the core clears the block map.
    fn resumed(&mut self, item: &Item<'_>) -> bool {
        let _ = item;
        false
    }
    /// The session ended without completing (aborted by either side, or timed out): called
    /// before [`session_ended`](Storage::session_ended), after the unfinished file (if any)
    /// was discarded. A storage that keeps restart state keeps it for a later instance.
    fn session_failed(&mut self, session: SessionId) {
        let _ = session;
    }
}
