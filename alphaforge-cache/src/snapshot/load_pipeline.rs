//! A snapshot's entries read into a [`Staging`]: this thread reads and checks the file and copies
//! the entries into blocks, and, for a large snapshot, a helper thread stages each block as it is
//! filled (hashing, records, the shards' recency lists), so that the two halves of the work
//! overlap.
//!
//! The blocks are allocated on this thread, so memory comes from its malloc arena (a helper's
//! arena of its own could not reuse what this thread's frees left). The helper gets the staging
//! only once it runs: a helper that cannot be started leaves the whole load to this thread.

use super::reader::SnapshotReader;
use super::SnapshotError;
use crate::entry_bytes::{BlockFiller, LoadedBlock};
use crate::staging::Staging;
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver};

/// Below this many entries a load stages its blocks on this thread: a helper would cost more
/// to start than it saves.
const HELPER_MIN_ENTRIES: usize = 1 << 15;

/// Filled blocks the reading thread may be ahead of the helper by.
const BLOCKS_IN_FLIGHT: usize = 16;

/// Reads every entry of `reader` into `staging`, in file order, with a helper thread when
/// `expected` entries are many and the machine has more than one thread. On an error the
/// staging holds some of the entries and must be dropped.
pub(super) fn read_into(
    staging: &mut Staging,
    reader: SnapshotReader<impl Read>,
    expected: usize,
) -> Result<(), SnapshotError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if expected < HELPER_MIN_ENTRIES || threads < 2 {
        return read_blocks(reader, |block| staging.put_block(block));
    }
    std::thread::scope(|scope| {
        let (staging_to_helper, staging_in_helper) = sync_channel::<&mut Staging>(1);
        let (blocks_out, blocks_in) = sync_channel::<LoadedBlock>(BLOCKS_IN_FLIGHT);
        let helper = std::thread::Builder::new()
            .name("afc-load".into())
            .spawn_scoped(scope, move || stage_blocks(staging_in_helper, blocks_in));
        let Ok(helper) = helper else {
            return read_blocks(reader, |block| staging.put_block(block));
        };
        // The helper waits for the staging: the send cannot fail while it runs.
        let sent = staging_to_helper.send(staging);
        debug_assert!(sent.is_ok());
        let read = read_blocks(reader, |block| {
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

/// The helper: stages every block received into the staging it is given.
fn stage_blocks(staging: Receiver<&mut Staging>, blocks: Receiver<LoadedBlock>) {
    let Ok(staging) = staging.recv() else { return };
    for block in blocks {
        staging.put_block(block);
    }
}

/// Reads every entry into blocks, handing each block to `filled` when it is full and the last
/// one at the end.
fn read_blocks(
    reader: SnapshotReader<impl Read>,
    mut filled: impl FnMut(LoadedBlock),
) -> Result<(), SnapshotError> {
    // No block larger than the entries' bytes: a small (or lying) file allocates little.
    let body_len = usize::try_from(reader.header().body_len).unwrap_or(usize::MAX);
    let mut filler = BlockFiller::new(body_len);
    reader.read_entries(|head, data| {
        let key_len = head.key_len as usize;
        if let Some(block) = filler.add(data, key_len, head.weight(), head.ttl_ns) {
            filled(block);
        }
    })?;
    if let Some(block) = filler.finish() {
        filled(block);
    }
    Ok(())
}
