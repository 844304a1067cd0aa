//! The replay container: what a run leaves behind for the viewer and for analysts.
//!
//! This module owns the replay file format (version 2; version 1 is read too) and nothing else: its byte layout ([`format`](mod@format)), the
//! streaming writer ([`ReplayWriter`], and [`ReplaySink`] which runs it on its own thread), and the seeking
//! reader ([`ReplayReader`]). What goes into the streams (which agents, which rasters, what the static payloads
//! mean) is decided by the domains and the simulation, not here.
//!
//! A replay is a header (city, scenario hash, seed, units, as JSON), then time-ordered chunks, each zstd
//! compressed with a CRC-32, then an index of all chunks and a fixed trailer, so a viewer can seek to any time by
//! reading the index and decompressing one chunk. Chunks belong to streams identified by `(kind, stream id)`:
//! static payloads, agent frames (positions quantised to whole centimetres, stored column-wise), rasters
//! (f32 grids such as flood depth) and domain-defined custom payloads.
//!
//! - Times are simulation milliseconds (`*_ms`, `u64`); positions are metres (`*_m`) in the city's local metric
//!   frame. Quantisation error on agent positions is at most 0.5 cm (plus f32 rounding on decode).
//! - The writer keeps memory bounded (a byte budget for buffered frames), writes to `<name>.part` and renames to
//!   the final path only when finished; the same input always produces byte-identical files.
//! - The reader trusts nothing in the file: damage is a [`ReplayError`] naming the file and the byte offset or
//!   chunk number, never a panic.
//!
//! The exact layout is documented for other readers in `docs/replay-format.md`; `docs/read_replay.py` is a
//! small Python reader (header, chunk list, agent frames to CSV).

pub mod format;
mod reader;
mod writer;

pub use format::{
    decode_raster, encode_raster, AgentFrame, AgentState, ChunkKind, ChunkRecord, RasterFrame, ReplayError,
    ReplayHeader, ReplayResult, FORMAT_VERSION,
};
pub use reader::{AgentFrames, ReplayReader};
pub use writer::{ReplayMessage, ReplaySink, ReplaySummary, ReplayWriter, WriterConfig};
