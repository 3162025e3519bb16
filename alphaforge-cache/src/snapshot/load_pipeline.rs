//! A snapshot's entries read into a [`Staging`]: this thread reads and checks the file and copies
//! the entries into blocks, and, for a large snapshot, a helper thread stages each block as it is
//! filled (hashing, records, the shards' recency lists), so that the two halves of the work
//! overlap.
//!
//! Copying into fresh memory is mostly page faults (the first touch of each page), and reading
//! is the longer half: so whenever the helper has no block to stage it makes blank blocks, whose
//! pages it has touched, and this thread starts its next block in one when one is ready. Before
//! blanks, it keeps the file read ahead of this thread (`read_ahead`), when it is a file. The
//! helper gets the staging only once it runs: a helper that cannot be started leaves the whole
//! load to this thread.

use super::read_ahead::ReadAhead;
use super::reader::{EntryData, SnapshotReader};
use super::SnapshotError;
use crate::entry_bytes::{blank_block, BlockFiller, LoadedBlock};
use crate::staging::{available_threads, Staging};
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};

/// Below this many entries a load stages its blocks on this thread: a helper would cost more
/// to start than it saves.
const HELPER_MIN_ENTRIES: usize = 1 << 15;

/// Filled blocks the reading thread may be ahead of the helper by.
const BLOCKS_IN_FLIGHT: usize = 16;

/// Blank blocks the helper may have ready for the reading thread.
const BLANKS_AHEAD: usize = 8;

/// Reads every entry of `reader` into `staging`, in file order, with a helper thread when
/// `expected` entries are many and the machine has more than one thread (which then keeps the
/// file read ahead, given its `read_ahead`). On an error the staging holds some of the entries
/// and must be dropped.
pub(super) fn read_into(
    staging: &mut Staging,
    reader: SnapshotReader<impl Read>,
    expected: usize,
    read_ahead: Option<ReadAhead>,
) -> Result<(), SnapshotError> {
    if expected < HELPER_MIN_ENTRIES || available_threads() < 2 {
        let filler = filler_for(&reader);
        return read_blocks(reader, filler, |block| staging.put_block(block));
    }
    std::thread::scope(|scope| {
        let (staging_to_helper, staging_in_helper) = sync_channel::<&mut Staging>(1);
        let (blocks_out, blocks_in) = sync_channel::<LoadedBlock>(BLOCKS_IN_FLIGHT);
        let (blanks_out, blanks_in) = sync_channel::<Vec<u8>>(BLANKS_AHEAD);
        let filler = filler_for(&reader).with_blanks(blanks_in);
        let blank_bytes = filler.block_bytes();
        let helper = std::thread::Builder::new()
            .name("afc-load".into())
            .spawn_scoped(scope, move || {
                stage_blocks(
                    staging_in_helper,
                    blocks_in,
                    blanks_out,
                    blank_bytes,
                    read_ahead,
                )
            });
        let Ok(helper) = helper else {
            return read_blocks(reader, filler, |block| staging.put_block(block));
        };
        // The helper waits for the staging: the send cannot fail while it runs.
        let sent = staging_to_helper.send(staging);
        debug_assert!(sent.is_ok());
        let read = read_blocks(reader, filler, |block| {
            // The helper stops receiving only by panicking, which the join below reports.
            let _ = blocks_out.send(block);
        });
        drop(blocks_out);
        if let Err(panic) = helper.join() {
            std::panic::resume_unwind(panic);
        }
        read
    })
}

/// The helper: stages every block received into the staging it is given and, whenever it has
/// no block to stage, asks for the next piece of the file (`read_ahead`) or else makes blank
/// blocks of `blank_bytes` for the reading thread (which would otherwise take the page faults
/// of every block's first touch itself).
fn stage_blocks(
    staging: Receiver<&mut Staging>,
    blocks: Receiver<LoadedBlock>,
    blanks: SyncSender<Vec<u8>>,
    blank_bytes: usize,
    mut read_ahead: Option<ReadAhead>,
) {
    let Ok(staging) = staging.recv() else { return };
    let mut spare = None;
    loop {
        let block = match blocks.try_recv() {
            Ok(block) => block,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {
                if read_ahead.as_mut().is_some_and(ReadAhead::step) {
                    continue;
                }
                let blank = spare.take().unwrap_or_else(|| blank_block(blank_bytes));
                match blanks.try_send(blank) {
                    Ok(()) => continue,
                    Err(TrySendError::Full(blank)) => spare = Some(blank),
                    Err(TrySendError::Disconnected(_)) => {}
                }
                // Blanks enough are ready: wait for the next block.
                match blocks.recv() {
                    Ok(block) => block,
                    Err(_) => return,
                }
            }
        };
        staging.put_block(block);
    }
}

/// A filler of blocks no larger than the snapshot's entries' bytes: a small (or lying) file
/// allocates little.
fn filler_for(reader: &SnapshotReader<impl Read>) -> BlockFiller {
    BlockFiller::new(usize::try_from(reader.header().body_len).unwrap_or(usize::MAX))
}

/// Reads every entry into `filler`'s blocks, handing each block to `filled` when it is full and
/// the last one at the end.
fn read_blocks(
    reader: SnapshotReader<impl Read>,
    mut filler: BlockFiller,
    mut filled: impl FnMut(LoadedBlock),
) -> Result<(), SnapshotError> {
    reader.read_entries(|head, data| {
        let key_len = head.key_len as usize;
        match data {
            EntryData::Buffered(data) => {
                if let Some(block) = filler.add(data, key_len, head.weight(), head.ttl_ns) {
                    filled(block);
                }
            }
            // An entry the reader assembled apart: its vector becomes its block, uncopied.
            EntryData::Large(data) => {
                let data = std::mem::take(data);
                let (before, own) = filler.add_own(data, key_len, head.weight(), head.ttl_ns);
                before.into_iter().chain([own]).for_each(&mut filled);
            }
        }
    })?;
    if let Some(block) = filler.finish() {
        filled(block);
    }
    Ok(())
}
