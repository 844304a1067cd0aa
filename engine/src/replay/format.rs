//! The byte layout of a replay file (format version 2; version 1 is read too): constants, the records and frames stored in it, their
//! encodings, and the error type shared by the writer and the reader.
//!
//! The normative description, with offsets and a worked example, is `docs/replay-format.md`; this file is its
//! implementation and the two must change together. All integers are little-endian.
//!
//! ```text
//! preamble   "MACHIRPL" | version u16 | header_len u32 | header JSON (header_len bytes, UTF-8)
//! chunk*     kind u8 | stream u16 | t_first_ms u64 | t_last_ms u64 | raw_len u32 | compressed_len u32
//!            | crc32 u32 (of the compressed bytes) | zstd frame (compressed_len bytes)
//! index      count u32 | count × (kind u8 | stream u16 | t_first_ms u64 | t_last_ms u64 | offset u64
//!            | raw_len u32 | compressed_len u32 | crc32 u32) | index_crc32 u32 (of count and records)
//! trailer    index_offset u64 | "MACHIEND"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The 8 bytes every replay file starts with.
pub const MAGIC: [u8; 8] = *b"MACHIRPL";
/// The 8 bytes every complete replay file ends with.
pub const END_MAGIC: [u8; 8] = *b"MACHIEND";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format version this build reads (version 1: agent positions not delta-coded).
pub const OLDEST_READABLE_VERSION: u16 = 1;
/// Bytes before the header JSON: magic (8), version (2), header length (4).
pub const PREAMBLE_LEN: u64 = 14;
/// Bytes of the fixed header in front of every chunk payload.
pub const CHUNK_HEADER_LEN: u64 = 31;
/// Bytes of one record in the index.
pub const INDEX_RECORD_LEN: u64 = 39;
/// Bytes of the trailer: index offset (8) and end magic (8).
pub const TRAILER_LEN: u64 = 16;
/// Largest decompressed chunk payload the writer produces and the reader accepts (1 GiB).
pub const MAX_CHUNK_RAW_BYTES: u32 = 1 << 30;
/// Bytes of one agent in an agent frame: id u32, kind u8, state u8, x i32, y i32.
pub const AGENT_BYTES: usize = 14;
/// Bytes in front of the agents of one agent frame: t_ms u64, count u32.
pub const AGENT_FRAME_HEADER_BYTES: usize = 12;
/// Bytes in front of the cell values of a raster: t_ms u64, width u32, height u32, three f32.
pub const RASTER_HEADER_BYTES: usize = 28;

/// Errors writing or reading a replay. Every variant names the file, and reading errors name the place
/// (a byte offset, or a chunk number and its byte offset).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The operating system failed to create, read, write, sync or rename the file.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// What was being done (`create`, `read`, `write`, `rename`, ...).
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file ends before the structure it announces does (a copy cut short, or a run that never finished).
    #[error("{}: byte {offset}: file is truncated: {message}", path.display())]
    Truncated {
        /// The file at fault.
        path: PathBuf,
        /// Where the missing data should have been.
        offset: u64,
        /// What is missing.
        message: String,
    },
    /// The file does not start with `MACHIRPL`: it is not a Machi replay.
    #[error("{}: byte 0: not a Machi replay (expected magic \"MACHIRPL\", found {found:?})", path.display())]
    BadMagic {
        /// The file at fault.
        path: PathBuf,
        /// The first bytes found, lossily decoded.
        found: String,
    },
    /// The file was written by a format version this build cannot read.
    #[error(
        "{}: byte 8: replay format version {found} is not supported (this build reads versions 1 to {supported})",
        path.display()
    )]
    UnsupportedVersion {
        /// The file at fault.
        path: PathBuf,
        /// The version in the file.
        found: u16,
        /// The newest version this build reads.
        supported: u16,
    },
    /// A chunk or the index does not match its CRC-32: the bytes were damaged after writing.
    #[error("{}: {place}: checksum mismatch (stored crc32 {expected:08x}, computed {actual:08x})", path.display())]
    Checksum {
        /// The file at fault.
        path: PathBuf,
        /// `chunk 3 (byte 1234)` or `index (byte 5678)`.
        place: String,
        /// The stored CRC-32.
        expected: u32,
        /// The CRC-32 of the bytes read.
        actual: u32,
    },
    /// The file is structurally invalid (bad lengths, offsets, kinds, ordering, header JSON or payload).
    #[error("{}: {place}: {message}", path.display())]
    Corrupt {
        /// The file at fault.
        path: PathBuf,
        /// `byte 14`, `chunk 3 (byte 1234)`, `index record 7`.
        place: String,
        /// What is wrong.
        message: String,
    },
    /// The writer was asked to store something the format cannot hold (out-of-order frames, non-finite or
    /// out-of-range positions, a malformed raster, a chunk over [`MAX_CHUNK_RAW_BYTES`]).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The replay being written.
        path: PathBuf,
        /// What was wrong with the input.
        message: String,
    },
    /// The background writer thread of a [`super::ReplaySink`] stopped (it failed earlier, or panicked).
    #[error("replay writer thread: {message}")]
    Sink {
        /// What happened.
        message: String,
    },
}

/// Result alias for replay operations.
pub type ReplayResult<T> = Result<T, ReplayError>;

/// What a chunk holds. Stored as one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ChunkKind {
    /// A time-less payload (JSON or binary) written once per stream, e.g. the city network. Byte 0.
    Static = 0,
    /// A run of agent frames (see [`AgentFrame`]), time-ordered. Byte 1.
    AgentFrames = 1,
    /// One raster (see [`RasterFrame`]). Byte 2.
    Raster = 2,
    /// A domain-defined payload covering `t_first_ms..=t_last_ms`. Byte 3.
    Custom = 3,
}

impl ChunkKind {
    /// The kind stored as `byte`, if it is one this version knows.
    pub fn from_u8(byte: u8) -> Option<ChunkKind> {
        match byte {
            0 => Some(ChunkKind::Static),
            1 => Some(ChunkKind::AgentFrames),
            2 => Some(ChunkKind::Raster),
            3 => Some(ChunkKind::Custom),
            _ => None,
        }
    }

    /// The byte this kind is stored as.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for ChunkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ChunkKind::Static => "static",
            ChunkKind::AgentFrames => "agent-frames",
            ChunkKind::Raster => "raster",
            ChunkKind::Custom => "custom",
        };
        f.write_str(name)
    }
}

/// One entry of the index: where a chunk is and what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// What the chunk holds.
    pub kind: ChunkKind,
    /// The stream it belongs to; a stream is identified by `(kind, stream)`.
    pub stream: u16,
    /// Simulation time of the first item in the chunk, ms since the run's time zero (0 for static chunks).
    pub t_first_ms: u64,
    /// Simulation time of the last item in the chunk, ms (0 for static chunks).
    pub t_last_ms: u64,
    /// Byte offset of the chunk header from the start of the file.
    pub offset: u64,
    /// Bytes of the payload once decompressed.
    pub raw_len: u32,
    /// Bytes of the zstd-compressed payload following the chunk header.
    pub compressed_len: u32,
    /// CRC-32 (IEEE, as zlib's `crc32`) of the compressed payload.
    pub crc32: u32,
}

impl ChunkRecord {
    /// Byte offset one past the end of the chunk.
    pub fn end(&self) -> u64 {
        self.offset + CHUNK_HEADER_LEN + u64::from(self.compressed_len)
    }

    /// The 31-byte chunk header as stored in front of the payload.
    pub(crate) fn chunk_header_bytes(&self) -> [u8; CHUNK_HEADER_LEN as usize] {
        let mut out = [0u8; CHUNK_HEADER_LEN as usize];
        out[0] = self.kind.as_u8();
        out[1..3].copy_from_slice(&self.stream.to_le_bytes());
        out[3..11].copy_from_slice(&self.t_first_ms.to_le_bytes());
        out[11..19].copy_from_slice(&self.t_last_ms.to_le_bytes());
        out[19..23].copy_from_slice(&self.raw_len.to_le_bytes());
        out[23..27].copy_from_slice(&self.compressed_len.to_le_bytes());
        out[27..31].copy_from_slice(&self.crc32.to_le_bytes());
        out
    }

    /// Appends the 39-byte index record.
    pub(crate) fn write_index_record(&self, out: &mut Vec<u8>) {
        out.push(self.kind.as_u8());
        out.extend_from_slice(&self.stream.to_le_bytes());
        out.extend_from_slice(&self.t_first_ms.to_le_bytes());
        out.extend_from_slice(&self.t_last_ms.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.compressed_len.to_le_bytes());
        out.extend_from_slice(&self.crc32.to_le_bytes());
    }
}

/// The run description stored as JSON at the start of the file. Unknown fields are ignored on reading so that
/// later writers can add fields without breaking older readers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReplayHeader {
    /// Name of the city (the reference to the imported city data), e.g. `"kamakura"`.
    pub city: String,
    /// Name of the scenario that was run.
    pub scenario: String,
    /// Hash of the resolved scenario, lowercase hex.
    pub scenario_hash: String,
    /// Seed of the run's random number generators.
    pub seed: u64,
    /// Planned start of the run, ms of simulation time.
    pub start_ms: u64,
    /// Planned end of the run, ms of simulation time (the run may have stopped earlier; see the index).
    pub end_ms: u64,
    /// Units of the stored quantities, e.g. `{"x_m": "m, local metric frame, east", "depth": "m"}`.
    #[serde(default)]
    pub units: BTreeMap<String, String>,
    /// Interval between agent frames, ms.
    pub frame_interval_ms: u64,
    /// Names of agent kinds; `AgentState::kind` indexes this list.
    #[serde(default)]
    pub agent_kinds: Vec<String>,
    /// Anything else a domain wants to record (stream names, raster meanings, ...).
    #[serde(default)]
    pub extra: serde_json::Value,
}

/// One agent at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct AgentState {
    /// Agent id, stable over the run.
    pub id: u32,
    /// Index into [`ReplayHeader::agent_kinds`].
    pub kind: u8,
    /// Domain-defined state code (e.g. walking, driving, sheltered).
    pub state: u8,
    /// East coordinate in the city's local metric frame, m. Stored quantised to whole centimetres.
    pub x_m: f32,
    /// North coordinate in the city's local metric frame, m. Stored quantised to whole centimetres.
    pub y_m: f32,
}

/// All agents of one stream at one instant.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AgentFrame {
    /// Simulation time, ms since the run's time zero.
    pub t_ms: u64,
    /// The agents, in the order the simulation gives them (the order is kept).
    pub agents: Vec<AgentState>,
}

/// A grid of values at one instant (flood depth, grid load, ...), stored as little-endian f32.
///
/// Cell `(col, row)` covers `x ∈ [origin_x_m + col·cell_m, origin_x_m + (col+1)·cell_m)` and
/// `y ∈ [origin_y_m + row·cell_m, origin_y_m + (row+1)·cell_m)`; its value is `values[row·width + col]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RasterFrame {
    /// Simulation time, ms since the run's time zero.
    pub t_ms: u64,
    /// Number of columns.
    pub width: u32,
    /// Number of rows.
    pub height: u32,
    /// x of the corner of cell (0, 0), m in the local metric frame.
    pub origin_x_m: f32,
    /// y of the corner of cell (0, 0), m in the local metric frame.
    pub origin_y_m: f32,
    /// Side of a (square) cell, m.
    pub cell_m: f32,
    /// `width × height` values, row-major; the unit is the stream's (see [`ReplayHeader::units`]).
    pub values: Vec<f32>,
}

/// Quantises a coordinate in metres to whole centimetres (round half away from zero); `None` if it is not
/// finite or outside ±21 474 836.47 m.
pub fn quantise_m(v: f32) -> Option<i32> {
    if !v.is_finite() {
        return None;
    }
    let cm = (f64::from(v) * 100.0).round();
    if cm < f64::from(i32::MIN) || cm > f64::from(i32::MAX) {
        return None;
    }
    Some(cm as i32)
}

/// The coordinate in metres of a quantised value in centimetres (the nearest f32 to `cm / 100`).
pub fn dequantise_cm(cm: i32) -> f32 {
    (f64::from(cm) / 100.0) as f32
}

/// Bytes one frame of `agents` agents takes in an agent-frames payload.
pub fn agent_frame_len(agents: usize) -> usize {
    AGENT_FRAME_HEADER_BYTES.saturating_add(agents.saturating_mul(AGENT_BYTES))
}

/// Appends the encoding of `frame` to `out`: `t_ms u64 | n u32 | ids [u32; n] | kinds [u8; n] | states [u8; n]
/// | x_cm [i32; n] | y_cm [i32; n]`. On error `out` is left unchanged.
pub fn encode_agent_frame(frame: &AgentFrame, out: &mut Vec<u8>) -> Result<(), String> {
    let n = u32::try_from(frame.agents.len())
        .map_err(|_| format!("frame at t = {} ms has {} agents, more than 2^32 - 1", frame.t_ms, frame.agents.len()))?;
    let start = out.len();
    out.reserve(agent_frame_len(frame.agents.len()));
    out.extend_from_slice(&frame.t_ms.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend(frame.agents.iter().flat_map(|a| a.id.to_le_bytes()));
    out.extend(frame.agents.iter().map(|a| a.kind));
    out.extend(frame.agents.iter().map(|a| a.state));
    for axis in 0..2 {
        for a in &frame.agents {
            let v = if axis == 0 { a.x_m } else { a.y_m };
            match quantise_m(v) {
                Some(cm) => out.extend_from_slice(&cm.to_le_bytes()),
                None => {
                    out.truncate(start);
                    let name = if axis == 0 { "x_m" } else { "y_m" };
                    return Err(format!(
                        "agent {} at t = {} ms has {name} = {v}, which is not finite or not within ±21474836 m",
                        a.id, frame.t_ms
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Decodes an agent-frames payload (frames back to back until the payload ends). A version-2 payload must
/// first be turned back into positions with [`delta_code_positions`] ([`DeltaCoding::Decode`]).
pub fn decode_agent_frames(payload: &[u8]) -> Result<Vec<AgentFrame>, String> {
    let mut cur = Cursor::new(payload);
    let mut frames = Vec::new();
    while !cur.is_empty() {
        let at = cur.pos;
        let (t_ms, n) = agent_frame_header(payload, at)?;
        cur.take(AGENT_FRAME_HEADER_BYTES)?;
        let ids = cur.take(4 * n)?;
        let kinds = cur.take(n)?;
        let states = cur.take(n)?;
        let xs = cur.take(4 * n)?;
        let ys = cur.take(4 * n)?;
        let agents = (0..n)
            .map(|i| AgentState {
                id: le_u32(&ids[4 * i..4 * i + 4]),
                kind: kinds[i],
                state: states[i],
                x_m: dequantise_cm(le_i32(&xs[4 * i..4 * i + 4])),
                y_m: dequantise_cm(le_i32(&ys[4 * i..4 * i + 4])),
            })
            .collect();
        if let Some(prev) = frames.last().map(|f: &AgentFrame| f.t_ms) {
            if t_ms <= prev {
                return Err(format!("payload byte {at}: frame time {t_ms} ms does not follow {prev} ms"));
            }
        }
        frames.push(AgentFrame { t_ms, agents });
    }
    Ok(frames)
}

/// The header of the agent frame that starts at byte `at` of a payload: its time (ms) and agent count,
/// checked to fit in the bytes that follow; an error names the byte.
fn agent_frame_header(payload: &[u8], at: usize) -> Result<(u64, usize), String> {
    let left = payload.len().saturating_sub(at);
    if left < AGENT_FRAME_HEADER_BYTES {
        return Err(format!(
            "payload byte {at}: a frame header needs {AGENT_FRAME_HEADER_BYTES} bytes, only {left} remain"
        ));
    }
    let mut cur = Cursor::new(&payload[at..]);
    let (t_ms, n) = (cur.u64()?, cur.u32()? as usize);
    match n.checked_mul(AGENT_BYTES) {
        Some(bytes) if bytes <= cur.remaining() => Ok((t_ms, n)),
        _ => Err(format!(
            "payload byte {at}: frame at t = {t_ms} ms announces {n} agents but only {} bytes remain",
            cur.remaining()
        )),
    }
}

/// Which way [`delta_code_positions`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaCoding {
    /// Absolute positions to deltas (the writer, before compression).
    Encode,
    /// Deltas back to absolute positions (the reader, after decompression).
    Decode,
}

/// Turns the positions of an agent-frames payload (format version 2) into prediction residuals, or back, in
/// place.
///
/// The chunk's first frame is left as it is. In every later frame, each position is predicted from the
/// frames before: an agent seen in the previous frame is expected to have moved on by the step it made there
/// (its previous position plus its last step, or plus nothing when it was new in that frame); anyone else
/// is predicted at 0. What is stored is
/// `zigzag(x_cm − predicted)` (and the same for y), `zigzag(d) = (d << 1) ^ (d >> 31)` keeping small
/// residuals of either sign small, and each frame's residual column is stored as four byte planes (all low
/// bytes, then all second bytes, ...), so the mostly-zero high bytes sit together. Agents walk and drive
/// steadily, so residuals are a few centimetres where positions need four bytes: zstd then packs them far
/// tighter. "Seen in the previous frame" is found by walking both frames' ids forward together, which finds
/// every agent when the ids ascend (as the simulation writes them) and some of them otherwise; the encoder
/// and decoder walk the same way, so the coding is exact either way.
pub fn delta_code_positions(payload: &mut [u8], direction: DeltaCoding) -> Result<(), String> {
    let zigzag = |d: i32| ((d << 1) ^ (d >> 31)) as u32;
    let unzigzag = |z: u32| ((z >> 1) as i32) ^ -((z & 1) as i32);
    // Per agent of the previous frame: id, position and last step (cm).
    let (mut prev_ids, mut prev): (Vec<u32>, Vec<[[i32; 2]; 2]>) = (Vec::new(), Vec::new());
    let (mut ids, mut here): (Vec<u32>, Vec<[[i32; 2]; 2]>) = (Vec::new(), Vec::new());
    let mut column: Vec<u8> = Vec::new();
    let mut matched: Vec<Option<usize>> = Vec::new();
    let mut at = 0usize;
    while at < payload.len() {
        let frame_start = at;
        let (_, n) = agent_frame_header(payload, at)?;
        let needed = n * AGENT_BYTES;
        at += AGENT_FRAME_HEADER_BYTES;
        let ids_at = at;
        let first = frame_start == 0;
        ids.clear();
        ids.extend((0..n).map(|i| le_u32(&payload[ids_at + 4 * i..ids_at + 4 * i + 4])));
        // Each agent's prediction: index into the previous frame, if it was there.
        let mut p = 0usize;
        matched.clear();
        matched.extend(ids.iter().map(|&id| {
            while p < prev_ids.len() && prev_ids[p] < id {
                p += 1;
            }
            (prev_ids.get(p) == Some(&id)).then_some(p)
        }));
        let predicted =
            |i: usize, axis: usize| matched[i].map_or(0, |k| prev[k][0][axis].wrapping_add(prev[k][1][axis]));
        here.clear();
        here.resize(n, [[0; 2]; 2]);
        for axis in 0..2 {
            let slot_at = at + 6 * n + axis * 4 * n;
            let slots = &mut payload[slot_at..slot_at + 4 * n];
            if first {
                // Nothing to predict from: the positions stay as they are (repeats among them, persons
                // at the same building, are what zstd finds there).
                for (i, h) in here.iter_mut().enumerate() {
                    h[0][axis] = le_u32(&slots[4 * i..4 * i + 4]) as i32;
                }
                continue;
            }
            column.clear();
            column.resize(4 * n, 0);
            match direction {
                DeltaCoding::Encode => {
                    for i in 0..n {
                        let v = le_u32(&slots[4 * i..4 * i + 4]) as i32;
                        here[i][0][axis] = v;
                        let code = zigzag(v.wrapping_sub(predicted(i, axis))).to_le_bytes();
                        for (plane, byte) in code.into_iter().enumerate() {
                            column[plane * n + i] = byte;
                        }
                    }
                }
                DeltaCoding::Decode => {
                    for i in 0..n {
                        let code = std::array::from_fn(|plane| slots[plane * n + i]);
                        let v = unzigzag(u32::from_le_bytes(code)).wrapping_add(predicted(i, axis));
                        here[i][0][axis] = v;
                        column[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
            slots.copy_from_slice(&column);
            for (i, m) in matched.iter().enumerate() {
                here[i][1][axis] = m.map_or(0, |k| here[i][0][axis].wrapping_sub(prev[k][0][axis]));
            }
        }
        std::mem::swap(&mut prev_ids, &mut ids);
        std::mem::swap(&mut prev, &mut here);
        at += needed;
    }
    Ok(())
}

/// Checks that `raster` is well formed (`values.len() == width × height`, finite origin, positive finite
/// cell size).
pub fn validate_raster(raster: &RasterFrame) -> Result<(), String> {
    let cells = u64::from(raster.width) * u64::from(raster.height);
    if cells != raster.values.len() as u64 {
        return Err(format!(
            "raster at t = {} ms is {} × {} but has {} values",
            raster.t_ms,
            raster.width,
            raster.height,
            raster.values.len()
        ));
    }
    if !(raster.origin_x_m.is_finite() && raster.origin_y_m.is_finite()) {
        return Err(format!("raster at t = {} ms has a non-finite origin", raster.t_ms));
    }
    if !(raster.cell_m.is_finite() && raster.cell_m > 0.0) {
        return Err(format!("raster at t = {} ms has cell size {} m; it must be > 0", raster.t_ms, raster.cell_m));
    }
    Ok(())
}

/// Encodes a raster payload: `t_ms u64 | width u32 | height u32 | origin_x_m f32 | origin_y_m f32 | cell_m f32
/// | values [f32; width·height]`.
pub fn encode_raster(raster: &RasterFrame) -> Result<Vec<u8>, String> {
    validate_raster(raster)?;
    let mut out = Vec::with_capacity(RASTER_HEADER_BYTES + 4 * raster.values.len());
    out.extend_from_slice(&raster.t_ms.to_le_bytes());
    out.extend_from_slice(&raster.width.to_le_bytes());
    out.extend_from_slice(&raster.height.to_le_bytes());
    out.extend_from_slice(&raster.origin_x_m.to_le_bytes());
    out.extend_from_slice(&raster.origin_y_m.to_le_bytes());
    out.extend_from_slice(&raster.cell_m.to_le_bytes());
    out.extend(raster.values.iter().flat_map(|v| v.to_le_bytes()));
    Ok(out)
}

/// Decodes a raster payload.
pub fn decode_raster(payload: &[u8]) -> Result<RasterFrame, String> {
    let mut cur = Cursor::new(payload);
    let t_ms = cur.u64()?;
    let width = cur.u32()?;
    let height = cur.u32()?;
    let origin_x_m = cur.f32()?;
    let origin_y_m = cur.f32()?;
    let cell_m = cur.f32()?;
    let cells = u64::from(width) * u64::from(height);
    if cells.checked_mul(4) != Some(cur.remaining() as u64) {
        return Err(format!(
            "raster is {width} × {height} ({cells} cells) but the payload holds {} value bytes",
            cur.remaining()
        ));
    }
    let values =
        cur.take(cur.remaining())?.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok(RasterFrame { t_ms, width, height, origin_x_m, origin_y_m, cell_m, values })
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_i32(b: &[u8]) -> i32 {
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// A bounds-checked little-endian reader over a byte slice; every read reports running out as an error.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    /// Position in `bytes`.
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!("payload byte {}: needs {n} more bytes, only {} remain", self.pos, self.remaining()));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, String> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    pub(crate) fn f32(&mut self) -> Result<f32, String> {
        self.array().map(f32::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_rounds_to_centimetres() {
        assert_eq!(quantise_m(1.234), Some(123));
        assert_eq!(quantise_m(1.235_001), Some(124));
        assert_eq!(quantise_m(-0.004), Some(0));
        assert_eq!(quantise_m(-0.006), Some(-1));
        assert_eq!(quantise_m(f32::NAN), None);
        assert_eq!(quantise_m(f32::INFINITY), None);
        assert_eq!(quantise_m(3.0e7), None);
        for v in [0.0f32, 0.004, 12.345, -9876.543, 20_000.126] {
            let back = dequantise_cm(quantise_m(v).unwrap_or_default());
            // 0.5 cm from quantisation plus half an f32 ulp from the decode.
            assert!((back - v).abs() <= 0.005 + v.abs() * f32::EPSILON, "{v} -> {back}");
        }
    }

    #[test]
    fn delta_coded_positions_round_trip_and_shrink_steps_to_small_numbers() {
        let agent = |id, x_m, y_m| AgentState { id, kind: 0, state: 0, x_m, y_m };
        // Agent 3 stands, 5 walks, 8 leaves, 6 arrives; the last frame's ids are out of order.
        let frames = [
            AgentFrame { t_ms: 0, agents: vec![agent(3, 10.0, -4.0), agent(5, 250.0, 80.0), agent(8, -3.0, 1.0)] },
            AgentFrame { t_ms: 1000, agents: vec![agent(3, 10.0, -4.0), agent(5, 251.3, 79.9), agent(6, 5.0, 5.0)] },
            AgentFrame { t_ms: 2000, agents: vec![agent(6, 5.5, 5.0), agent(3, 10.0, -4.0), agent(5, 252.6, 79.8)] },
        ];
        let mut raw = Vec::new();
        for f in &frames {
            encode_agent_frame(f, &mut raw).unwrap();
        }
        let mut coded = raw.clone();
        delta_code_positions(&mut coded, DeltaCoding::Encode).unwrap();
        // The stored code of agent i on an axis: four byte planes of the frame's column.
        let code = |bytes: &[u8], frame: usize, axis: usize, i: usize| {
            let at = frame * agent_frame_len(3) + AGENT_FRAME_HEADER_BYTES + 6 * 3 + axis * 12;
            u32::from_le_bytes(std::array::from_fn(|plane| bytes[at + plane * 3 + i]))
        };
        // First frame: as it was. Second: agents predicted where they were (no step yet): standing 0,
        // walking 1.3 m = 130 cm -> 260, -10 cm -> 19; the newcomer stores its position's zigzag.
        assert_eq!(coded[..agent_frame_len(3)], raw[..agent_frame_len(3)]);
        assert_eq!(code(&coded, 1, 0, 0), 0);
        assert_eq!(code(&coded, 1, 0, 1), 260);
        assert_eq!(code(&coded, 1, 1, 1), 19);
        assert_eq!(code(&coded, 1, 0, 2), 1000);
        // Third frame, ids out of order: 6 is found (moved 50 cm, predicted to stand: 100); 3 and 5 are not
        // found walking forward past 6, so they store their positions, though 5 kept its pace exactly.
        assert_eq!(code(&coded, 2, 0, 0), 100);
        assert_eq!(code(&coded, 2, 0, 1), 2000);
        assert_eq!(code(&coded, 2, 0, 2), 2 * 25260);
        // In order, the steady walker's residual is 0: it kept its step.
        let mut sorted = Vec::new();
        let mut last = frames[2].clone();
        last.agents.sort_by_key(|a| a.id);
        for f in [&frames[0], &frames[1], &last] {
            encode_agent_frame(f, &mut sorted).unwrap();
        }
        let raw_sorted = sorted.clone();
        delta_code_positions(&mut sorted, DeltaCoding::Encode).unwrap();
        assert_eq!((code(&sorted, 2, 0, 0), code(&sorted, 2, 0, 1), code(&sorted, 2, 0, 2)), (0, 0, 100));
        delta_code_positions(&mut sorted, DeltaCoding::Decode).unwrap();
        assert_eq!(sorted, raw_sorted);
        let mut back = coded.clone();
        delta_code_positions(&mut back, DeltaCoding::Decode).unwrap();
        assert_eq!(back, raw);
        assert_eq!(decode_agent_frames(&back).unwrap().len(), 3);
        // A frame cut short is an error, not a panic.
        let mut cut = coded[..coded.len() - 3].to_vec();
        assert!(delta_code_positions(&mut cut, DeltaCoding::Decode).is_err());
    }

    #[test]
    fn agent_frames_round_trip_and_reject_bad_values() {
        let frame = AgentFrame {
            t_ms: 42,
            agents: vec![
                AgentState { id: 7, kind: 1, state: 2, x_m: 1.5, y_m: -2.25 },
                AgentState { id: 9, kind: 0, state: 0, x_m: 100.0, y_m: 0.01 },
            ],
        };
        let mut buf = Vec::new();
        encode_agent_frame(&frame, &mut buf).unwrap();
        assert_eq!(buf.len(), agent_frame_len(2));
        let next = AgentFrame { t_ms: 43, agents: vec![] };
        encode_agent_frame(&next, &mut buf).unwrap();
        assert_eq!(decode_agent_frames(&buf).unwrap(), vec![frame, next]);

        let bad = AgentFrame { t_ms: 44, agents: vec![AgentState { x_m: f32::NAN, ..AgentState::default() }] };
        let before = buf.len();
        assert!(encode_agent_frame(&bad, &mut buf).is_err());
        assert_eq!(buf.len(), before);
        assert!(decode_agent_frames(&buf[..buf.len() - 1]).is_err());
    }

    #[test]
    fn rasters_round_trip_and_reject_bad_shapes() {
        let raster = RasterFrame {
            t_ms: 5,
            width: 3,
            height: 2,
            origin_x_m: -10.0,
            origin_y_m: 20.0,
            cell_m: 5.0,
            values: vec![0.0, 0.5, 1.0, 1.5, 2.0, f32::MAX],
        };
        let bytes = encode_raster(&raster).unwrap();
        assert_eq!(bytes.len(), RASTER_HEADER_BYTES + 24);
        assert_eq!(decode_raster(&bytes).unwrap(), raster);
        assert!(decode_raster(&bytes[..bytes.len() - 4]).is_err());
        assert!(encode_raster(&RasterFrame { width: 4, ..raster.clone() }).is_err());
        assert!(encode_raster(&RasterFrame { cell_m: 0.0, ..raster }).is_err());
    }
}
