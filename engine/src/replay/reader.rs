//! Reading a replay: [`ReplayReader`] validates the preamble, trailer and index on open, then reads chunks on
//! demand (one seek and one decompression per chunk, CRC checked every time), so a viewer can jump to any time.
//!
//! Nothing in a file is trusted: every length and offset is checked against the file size before anything is
//! allocated, and damage is reported as a [`ReplayError`] naming the file and the place, never as a panic.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::format::{
    decode_agent_frames, decode_raster, delta_code_positions, AgentFrame, ChunkKind, ChunkRecord, Cursor, DeltaCoding,
    RasterFrame, ReplayError, ReplayHeader, ReplayResult, CHUNK_HEADER_LEN, END_MAGIC, FORMAT_VERSION,
    INDEX_RECORD_LEN, MAGIC, MAX_CHUNK_RAW_BYTES, OLDEST_READABLE_VERSION, PREAMBLE_LEN, TRAILER_LEN,
};

trait Source: Read + Seek + Send {}
impl<T: Read + Seek + Send> Source for T {}

/// A decoded agent-frames chunk kept for the next seek.
struct CachedChunk {
    chunk: usize,
    frames: Arc<Vec<AgentFrame>>,
}

/// An open replay file. Methods take `&self` (the file handle and a one-chunk cache per agent stream sit behind
/// mutexes), so a
/// reader can be shared between threads.
pub struct ReplayReader {
    path: PathBuf,
    file_len: u64,
    /// The file's format version (2: agent positions delta-coded per chunk).
    version: u16,
    header: ReplayHeader,
    chunks: Vec<ChunkRecord>,
    /// Chunk numbers of each `(kind, stream)`, in file order (which is time order within a stream).
    streams: BTreeMap<(ChunkKind, u16), Vec<usize>>,
    source: Mutex<Box<dyn Source>>,
    /// The last decoded agent chunk of each agent stream (a viewer steps several streams through time at once).
    cache: Mutex<BTreeMap<u16, CachedChunk>>,
}

impl std::fmt::Debug for ReplayReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayReader")
            .field("path", &self.path)
            .field("file_len", &self.file_len)
            .field("chunks", &self.chunks.len())
            .finish_non_exhaustive()
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ReplayReader {
    /// Opens the replay at `path` and validates its magic, version, header, trailer and index.
    pub fn open(path: impl AsRef<Path>) -> ReplayResult<ReplayReader> {
        let path = path.as_ref().to_path_buf();
        let io = |op, source| ReplayError::Io { path: path.clone(), op, source };
        let file = File::open(&path).map_err(|e| io("open", e))?;
        let file_len = file.metadata().map_err(|e| io("read metadata", e))?.len();
        ReplayReader::from_source(path, file_len, Box::new(std::io::BufReader::new(file)))
    }

    /// Reads a replay held in memory; `name` is used in error messages.
    pub fn from_bytes(name: impl Into<PathBuf>, bytes: Vec<u8>) -> ReplayResult<ReplayReader> {
        let len = bytes.len() as u64;
        ReplayReader::from_source(name.into(), len, Box::new(std::io::Cursor::new(bytes)))
    }

    fn from_source(path: PathBuf, file_len: u64, source: Box<dyn Source>) -> ReplayResult<ReplayReader> {
        let mut reader = ReplayReader {
            path,
            file_len,
            version: FORMAT_VERSION,
            header: ReplayHeader::default(),
            chunks: Vec::new(),
            streams: BTreeMap::new(),
            source: Mutex::new(source),
            cache: Mutex::new(BTreeMap::new()),
        };
        reader.load()?;
        Ok(reader)
    }

    fn load(&mut self) -> ReplayResult<()> {
        let len = self.file_len;
        // Preamble.
        let head = self.read_at(0, len.min(PREAMBLE_LEN) as usize)?;
        let magic_len = head.len().min(MAGIC.len());
        if head[..magic_len] != MAGIC[..magic_len] {
            return Err(ReplayError::BadMagic {
                path: self.path.clone(),
                found: String::from_utf8_lossy(&head[..magic_len]).into_owned(),
            });
        }
        if len < PREAMBLE_LEN {
            return Err(
                self.truncated(len, format!("the file has {len} bytes, fewer than the {PREAMBLE_LEN}-byte preamble"))
            );
        }
        let version = u16::from_le_bytes([head[8], head[9]]);
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(ReplayError::UnsupportedVersion {
                path: self.path.clone(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        self.version = version;
        let header_len = u64::from(u32::from_le_bytes([head[10], head[11], head[12], head[13]]));
        let header_end = PREAMBLE_LEN + header_len;
        if header_end + TRAILER_LEN > len {
            return Err(self.truncated(
                len,
                format!(
                    "the header announces {header_len} bytes; with the trailer that is more than the {len}-byte file"
                ),
            ));
        }
        let header_bytes = self.read_at(PREAMBLE_LEN, header_len as usize)?;
        self.header = serde_json::from_slice(&header_bytes)
            .map_err(|e| self.corrupt(format!("byte {PREAMBLE_LEN}"), format!("header JSON is invalid: {e}")))?;

        // Trailer.
        let trailer = self.read_at(len - TRAILER_LEN, TRAILER_LEN as usize)?;
        if trailer[8..16] != END_MAGIC {
            return Err(self.truncated(
                len - 8,
                "no end marker \"MACHIEND\": the file was cut short or the run never finished writing it".into(),
            ));
        }
        let mut index_offset_bytes = [0u8; 8];
        index_offset_bytes.copy_from_slice(&trailer[..8]);
        let index_offset = u64::from_le_bytes(index_offset_bytes);
        let index_end = len - TRAILER_LEN;
        if index_offset < header_end || index_offset.saturating_add(8) > index_end {
            return Err(self.corrupt(
                format!("byte {}", len - TRAILER_LEN),
                format!("index offset {index_offset} is outside the bytes {header_end}..{index_end} that can hold it"),
            ));
        }

        // Index.
        let index_bytes = self.read_at(index_offset, (index_end - index_offset) as usize)?;
        let (body, crc_bytes) = index_bytes.split_at(index_bytes.len() - 4);
        let mut cur = Cursor::new(body);
        let count = cur.u32().map_err(|m| self.corrupt(format!("byte {index_offset}"), m))?;
        let expected = u64::from(count) * INDEX_RECORD_LEN;
        if expected != cur.remaining() as u64 {
            return Err(self.corrupt(
                format!("byte {index_offset}"),
                format!(
                    "the index announces {count} chunks ({expected} bytes) but {} bytes lie between it and the trailer",
                    cur.remaining()
                ),
            ));
        }
        let stored_crc = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        let actual_crc = crc32fast::hash(body);
        if stored_crc != actual_crc {
            return Err(ReplayError::Checksum {
                path: self.path.clone(),
                place: format!("index (byte {index_offset})"),
                expected: stored_crc,
                actual: actual_crc,
            });
        }
        let mut next_offset = header_end;
        for i in 0..count as usize {
            let place = || format!("index record {i} (byte {})", index_offset + 4 + i as u64 * INDEX_RECORD_LEN);
            let record = read_index_record(&mut cur).map_err(|m| self.corrupt(place(), m))?;
            if record.offset != next_offset {
                return Err(self.corrupt(
                    place(),
                    format!(
                        "chunk {i} is recorded at byte {} but the previous chunk ends at byte {next_offset}",
                        record.offset
                    ),
                ));
            }
            if record.raw_len > MAX_CHUNK_RAW_BYTES {
                return Err(self.corrupt(
                    place(),
                    format!("chunk {i} announces {} decompressed bytes, over 1 GiB", record.raw_len),
                ));
            }
            if record.end() > index_offset {
                return Err(self.corrupt(place(), format!("chunk {i} ends at byte {}, past the index", record.end())));
            }
            if record.t_last_ms < record.t_first_ms
                || (record.kind == ChunkKind::Raster && record.t_first_ms != record.t_last_ms)
            {
                return Err(self.corrupt(
                    place(),
                    format!(
                        "chunk {i} covers {}..{} ms, which is not a valid range",
                        record.t_first_ms, record.t_last_ms
                    ),
                ));
            }
            let same_stream = self.streams.entry((record.kind, record.stream)).or_default();
            if let Some(&prev) = same_stream.last() {
                let prev: ChunkRecord = self.chunks[prev];
                let ordered = match record.kind {
                    ChunkKind::Static => false,
                    ChunkKind::AgentFrames | ChunkKind::Raster => record.t_first_ms > prev.t_last_ms,
                    ChunkKind::Custom => record.t_first_ms >= prev.t_first_ms,
                };
                if !ordered {
                    let message = match record.kind {
                        ChunkKind::Static => format!("static stream {} has a second chunk", record.stream),
                        kind => format!("{kind} stream {} goes back in time at chunk {i}", record.stream),
                    };
                    return Err(self.corrupt(place(), message));
                }
            }
            same_stream.push(i);
            self.chunks.push(record);
            next_offset = record.end();
        }
        if next_offset != index_offset {
            return Err(self.corrupt(
                format!("byte {next_offset}"),
                format!("the last chunk ends at byte {next_offset} but the index starts at byte {index_offset}"),
            ));
        }
        Ok(())
    }

    /// The path (or name) the replay was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run description.
    pub fn header(&self) -> &ReplayHeader {
        &self.header
    }

    /// The file's format version (1 or 2). [`ReplayReader::read_chunk`] hands out payloads as stored: the
    /// agent positions of a version-2 agent-frames chunk are still prediction-coded there (see
    /// [`crate::replay::format::delta_code_positions`]); the frame readers decode them.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// All chunk records, in file order.
    pub fn chunks(&self) -> &[ChunkRecord] {
        &self.chunks
    }

    /// Stream ids that have at least one chunk of `kind`, ascending.
    pub fn streams(&self, kind: ChunkKind) -> Vec<u16> {
        self.streams.keys().filter(|(k, _)| *k == kind).map(|&(_, s)| s).collect()
    }

    /// First and last simulation time over all timed chunks (agent frames, rasters, custom), ms; `None` if the
    /// replay has only static chunks.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        let timed = self.chunks.iter().filter(|r| r.kind != ChunkKind::Static);
        timed.fold(None, |acc, r| match acc {
            None => Some((r.t_first_ms, r.t_last_ms)),
            Some((a, b)) => Some((a.min(r.t_first_ms), b.max(r.t_last_ms))),
        })
    }

    /// The decompressed payload of chunk number `chunk` (an index into [`ReplayReader::chunks`]), after checking
    /// its header against the index and its CRC-32.
    pub fn read_chunk(&self, chunk: usize) -> ReplayResult<Vec<u8>> {
        let Some(record) = self.chunks.get(chunk).copied() else {
            return Err(self.corrupt(format!("chunk {chunk}"), format!("there are only {} chunks", self.chunks.len())));
        };
        let place = || format!("chunk {chunk} (byte {})", record.offset);
        let bytes = self.read_at(record.offset, CHUNK_HEADER_LEN as usize + record.compressed_len as usize)?;
        let (head, compressed) = bytes.split_at(CHUNK_HEADER_LEN as usize);
        if head != record.chunk_header_bytes() {
            return Err(self.corrupt(place(), "the chunk header does not match its index record".into()));
        }
        let actual = crc32fast::hash(compressed);
        if actual != record.crc32 {
            return Err(ReplayError::Checksum {
                path: self.path.clone(),
                place: place(),
                expected: record.crc32,
                actual,
            });
        }
        let raw_len = record.raw_len as usize;
        let mut raw = Vec::with_capacity(raw_len.min(compressed.len().saturating_mul(64).saturating_add(4096)));
        let decoder = zstd::stream::read::Decoder::new(compressed)
            .map_err(|e| self.corrupt(place(), format!("zstd payload is invalid: {e}")))?;
        // Read one byte more than announced so an over-long payload is detected without unbounded output.
        decoder
            .take(raw_len as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| self.corrupt(place(), format!("zstd payload is invalid: {e}")))?;
        if raw.len() != raw_len {
            return Err(self.corrupt(
                place(),
                format!(
                    "the payload decompresses to {}{} bytes, not the {raw_len} recorded",
                    raw.len(),
                    if raw.len() > raw_len { "+" } else { "" }
                ),
            ));
        }
        Ok(raw)
    }

    /// The static payload of `stream`, if one was written.
    pub fn static_payload(&self, stream: u16) -> ReplayResult<Option<Vec<u8>>> {
        match self.stream_chunks(ChunkKind::Static, stream).first() {
            Some(&chunk) => self.read_chunk(chunk).map(Some),
            None => Ok(None),
        }
    }

    /// The static payload of `stream` decoded as a raster (a static raster such as the ground elevation), if one
    /// was written.
    pub fn static_raster(&self, stream: u16) -> ReplayResult<Option<RasterFrame>> {
        let Some(&chunk) = self.stream_chunks(ChunkKind::Static, stream).first() else {
            return Ok(None);
        };
        let payload = self.read_chunk(chunk)?;
        decode_raster(&payload).map(Some).map_err(|message| self.corrupt(format!("chunk {chunk}"), message))
    }

    /// The latest agent frame of `stream` with `t_ms <= t_ms` (ms), or `None` if the stream starts later or does
    /// not exist. Finds the chunk by binary search in the index and decompresses at most one chunk; the last
    /// decoded chunk is cached, so stepping through time decompresses each chunk once.
    pub fn agent_frame_at(&self, stream: u16, t_ms: u64) -> ReplayResult<Option<AgentFrame>> {
        let Some(chunk) = self.chunk_at(ChunkKind::AgentFrames, stream, t_ms) else {
            return Ok(None);
        };
        let frames = self.cached_agent_chunk(stream, chunk)?;
        let after = frames.partition_point(|f| f.t_ms <= t_ms);
        Ok(after.checked_sub(1).and_then(|i| frames.get(i)).cloned())
    }

    /// The first agent frame of `stream` with `t_ms > t_ms` (ms), or `None` after the stream's last frame: with
    /// [`ReplayReader::agent_frame_at`], the pair of frames a viewer interpolates between. Decompresses at most
    /// the chunk holding `t_ms` and the next one (both through the per-stream cache).
    pub fn agent_frame_after(&self, stream: u16, t_ms: u64) -> ReplayResult<Option<AgentFrame>> {
        let chunks = self.stream_chunks(ChunkKind::AgentFrames, stream);
        let holding = chunks.partition_point(|&c| self.chunks[c].t_first_ms <= t_ms);
        // The chunk that holds `t_ms` (if any), then the next one.
        for &chunk in chunks.iter().skip(holding.saturating_sub(1)).take(2) {
            if self.chunks[chunk].t_last_ms <= t_ms {
                continue;
            }
            let frames = self.cached_agent_chunk(stream, chunk)?;
            let after = frames.partition_point(|f| f.t_ms <= t_ms);
            if let Some(frame) = frames.get(after) {
                return Ok(Some(frame.clone()));
            }
        }
        Ok(None)
    }

    /// Every agent frame of `stream` in time order, decompressing one chunk at a time. Yields an error (and then
    /// stops) at the first damaged chunk.
    pub fn agent_frames(&self, stream: u16) -> AgentFrames<'_> {
        AgentFrames {
            reader: self,
            chunks: self.stream_chunks(ChunkKind::AgentFrames, stream),
            next_chunk: 0,
            pending: Vec::new().into_iter(),
            failed: false,
        }
    }

    /// The payload of the latest custom chunk of `stream` with `t_first_ms <= t_ms` (ms) and that chunk's
    /// `t_first_ms`, or `None` if the stream starts later or does not exist.
    pub fn custom_at(&self, stream: u16, t_ms: u64) -> ReplayResult<Option<(u64, Vec<u8>)>> {
        match self.chunk_at(ChunkKind::Custom, stream, t_ms) {
            Some(chunk) => Ok(Some((self.chunks[chunk].t_first_ms, self.read_chunk(chunk)?))),
            None => Ok(None),
        }
    }

    /// The latest raster of `stream` with `t_ms <= t_ms` (ms), or `None`.
    pub fn raster_at(&self, stream: u16, t_ms: u64) -> ReplayResult<Option<RasterFrame>> {
        match self.chunk_at(ChunkKind::Raster, stream, t_ms) {
            Some(chunk) => self.read_raster(chunk).map(Some),
            None => Ok(None),
        }
    }

    /// Times of the rasters of `stream`, ms ascending (from the index, nothing is decompressed).
    pub fn raster_times(&self, stream: u16) -> Vec<u64> {
        self.stream_chunks(ChunkKind::Raster, stream).iter().map(|&c| self.chunks[c].t_first_ms).collect()
    }

    /// Reads every chunk, checking CRCs and decoding agent frames and rasters; the first problem is returned.
    pub fn verify(&self) -> ReplayResult<()> {
        for (i, record) in self.chunks.iter().enumerate() {
            match record.kind {
                ChunkKind::AgentFrames => {
                    self.load_agent_chunk(i)?;
                }
                ChunkKind::Raster => {
                    self.read_raster(i)?;
                }
                ChunkKind::Static | ChunkKind::Custom => {
                    self.read_chunk(i)?;
                }
            }
        }
        Ok(())
    }

    fn stream_chunks(&self, kind: ChunkKind, stream: u16) -> &[usize] {
        self.streams.get(&(kind, stream)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The last chunk of the stream whose `t_first_ms <= t_ms`.
    fn chunk_at(&self, kind: ChunkKind, stream: u16, t_ms: u64) -> Option<usize> {
        let chunks = self.stream_chunks(kind, stream);
        let after = chunks.partition_point(|&c| self.chunks[c].t_first_ms <= t_ms);
        after.checked_sub(1).map(|i| chunks[i])
    }

    fn load_agent_chunk(&self, chunk: usize) -> ReplayResult<Vec<AgentFrame>> {
        let mut raw = self.read_chunk(chunk)?;
        let record = self.chunks[chunk];
        let place = || format!("chunk {chunk} (byte {})", record.offset);
        if self.version >= 2 {
            delta_code_positions(&mut raw, DeltaCoding::Decode).map_err(|m| self.corrupt(place(), m))?;
        }
        let frames = decode_agent_frames(&raw).map_err(|m| self.corrupt(place(), m))?;
        match (frames.first(), frames.last()) {
            (Some(first), Some(last)) if first.t_ms == record.t_first_ms && last.t_ms == record.t_last_ms => Ok(frames),
            _ => Err(self.corrupt(
                place(),
                format!("the frames do not span {}..{} ms as the index says", record.t_first_ms, record.t_last_ms),
            )),
        }
    }

    fn cached_agent_chunk(&self, stream: u16, chunk: usize) -> ReplayResult<Arc<Vec<AgentFrame>>> {
        if let Some(cached) = lock(&self.cache).get(&stream) {
            if cached.chunk == chunk {
                return Ok(Arc::clone(&cached.frames));
            }
        }
        let frames = Arc::new(self.load_agent_chunk(chunk)?);
        lock(&self.cache).insert(stream, CachedChunk { chunk, frames: Arc::clone(&frames) });
        Ok(frames)
    }

    fn read_raster(&self, chunk: usize) -> ReplayResult<RasterFrame> {
        let raw = self.read_chunk(chunk)?;
        let record = self.chunks[chunk];
        let place = || format!("chunk {chunk} (byte {})", record.offset);
        let raster = decode_raster(&raw).map_err(|m| self.corrupt(place(), m))?;
        if raster.t_ms != record.t_first_ms {
            return Err(self.corrupt(place(), format!("raster time {} ms differs from the index", raster.t_ms)));
        }
        Ok(raster)
    }

    /// Reads `len` bytes at `offset`; callers have checked the range against the file length.
    fn read_at(&self, offset: u64, len: usize) -> ReplayResult<Vec<u8>> {
        if offset.saturating_add(len as u64) > self.file_len {
            return Err(
                self.truncated(offset, format!("{len} bytes are needed but the file has {} bytes", self.file_len))
            );
        }
        let mut buf = vec![0u8; len];
        let mut source = lock(&self.source);
        let result = source.seek(SeekFrom::Start(offset)).and_then(|_| source.read_exact(&mut buf));
        match result {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.truncated(offset, "the file ended early (was it changed while open?)".into()))
            }
            Err(source) => Err(ReplayError::Io { path: self.path.clone(), op: "read", source }),
        }
    }

    fn truncated(&self, offset: u64, message: String) -> ReplayError {
        ReplayError::Truncated { path: self.path.clone(), offset, message }
    }

    fn corrupt(&self, place: String, message: String) -> ReplayError {
        ReplayError::Corrupt { path: self.path.clone(), place, message }
    }
}

fn read_index_record(cur: &mut Cursor<'_>) -> Result<ChunkRecord, String> {
    let kind_byte = cur.u8()?;
    let kind = ChunkKind::from_u8(kind_byte).ok_or_else(|| format!("unknown chunk kind {kind_byte}"))?;
    Ok(ChunkRecord {
        kind,
        stream: cur.u16()?,
        t_first_ms: cur.u64()?,
        t_last_ms: cur.u64()?,
        offset: cur.u64()?,
        raw_len: cur.u32()?,
        compressed_len: cur.u32()?,
        crc32: cur.u32()?,
    })
}

/// Iterator over the agent frames of one stream; see [`ReplayReader::agent_frames`].
pub struct AgentFrames<'a> {
    reader: &'a ReplayReader,
    chunks: &'a [usize],
    next_chunk: usize,
    pending: std::vec::IntoIter<AgentFrame>,
    failed: bool,
}

impl Iterator for AgentFrames<'_> {
    type Item = ReplayResult<AgentFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(frame) = self.pending.next() {
                return Some(Ok(frame));
            }
            if self.failed {
                return None;
            }
            let &chunk = self.chunks.get(self.next_chunk)?;
            self.next_chunk += 1;
            match self.reader.load_agent_chunk(chunk) {
                Ok(frames) => self.pending = frames.into_iter(),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::format::AgentState;
    use crate::replay::writer::{ReplayWriter, WriterConfig};
    use proptest::prelude::*;

    fn header() -> ReplayHeader {
        let mut units = BTreeMap::new();
        units.insert("x_m".to_string(), "m east in the local metric frame".to_string());
        units.insert("depth".to_string(), "m".to_string());
        ReplayHeader {
            city: "kamakura".into(),
            scenario: "baseline".into(),
            scenario_hash: "00ff".repeat(8),
            seed: u64::MAX - 1,
            start_ms: 0,
            end_ms: 3_600_000,
            units,
            frame_interval_ms: 1000,
            agent_kinds: vec!["pedestrian".into(), "car".into()],
            extra: serde_json::json!({"streams": {"0": "people", "1": "vehicles"}}),
        }
    }

    /// Agents drift deterministically; ids are sparse and the count varies by frame.
    fn frame(t_ms: u64, stream: u16) -> AgentFrame {
        let n = 5 + (t_ms / 1000 % 7) as u32 + u32::from(stream);
        let agents = (0..n)
            .map(|i| AgentState {
                id: i * 3 + u32::from(stream) * 1000,
                kind: (i % 2) as u8,
                state: (t_ms / 5000 % 3) as u8,
                x_m: 100.0 + i as f32 * 2.5 + t_ms as f32 * 0.0013,
                y_m: -50.0 - i as f32 + t_ms as f32 * 0.0007,
            })
            .collect();
        AgentFrame { t_ms, agents }
    }

    fn raster(t_ms: u64) -> RasterFrame {
        let (width, height) = (8, 5);
        let values = (0..width * height).map(|i| (i as f32 * 0.01 + t_ms as f32 * 1e-6).max(0.0)).collect();
        RasterFrame { t_ms, width, height, origin_x_m: -100.0, origin_y_m: 200.0, cell_m: 2.0, values }
    }

    fn quantised(frame: &AgentFrame) -> AgentFrame {
        let q = |v: f32| crate::replay::format::dequantise_cm(crate::replay::format::quantise_m(v).unwrap_or(0));
        AgentFrame {
            t_ms: frame.t_ms,
            agents: frame.agents.iter().map(|a| AgentState { x_m: q(a.x_m), y_m: q(a.y_m), ..*a }).collect(),
        }
    }

    /// Frames every second for 5 minutes on streams 0 and 1 (20 s chunks), rasters every 30 s, one static.
    fn write_sample(path: &Path) -> crate::replay::ReplaySummary {
        let config = WriterConfig { chunk_span_ms: 20_000, min_frames_per_chunk: 1, ..WriterConfig::default() };
        let mut w = ReplayWriter::create_with(path, &header(), config).unwrap();
        w.write_static(0, br#"{"nodes":[[0,0],[10,0]],"edges":[[0,1]]}"#).unwrap();
        for t in (0..300_000).step_by(1000) {
            w.push_agent_frame(0, &frame(t, 0)).unwrap();
            if t % 2000 == 0 {
                w.push_agent_frame(1, &frame(t, 1)).unwrap();
            }
            if t % 30_000 == 0 {
                w.write_raster(7, &raster(t)).unwrap();
            }
        }
        w.write_custom(2, 0, 299_000, b"custom blob").unwrap();
        w.finish().unwrap()
    }

    fn sample_bytes() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.machi");
        write_sample(&path);
        std::fs::read(path).unwrap()
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.machi");
        let summary = write_sample(&path);
        let r = ReplayReader::open(&path).unwrap();
        assert_eq!(r.header(), &header());
        assert_eq!(r.time_range(), Some((0, 299_000)));
        assert_eq!(summary.time_range_ms, r.time_range());
        assert_eq!(summary.chunks, r.chunks().len());
        assert_eq!(r.streams(ChunkKind::AgentFrames), vec![0, 1]);
        assert_eq!(r.streams(ChunkKind::Raster), vec![7]);
        assert_eq!(r.static_payload(0).unwrap().unwrap(), br#"{"nodes":[[0,0],[10,0]],"edges":[[0,1]]}"#);
        assert_eq!(r.static_payload(1).unwrap(), None);
        assert_eq!(r.stream_chunks(ChunkKind::AgentFrames, 0).len(), 15);

        let frames: Vec<AgentFrame> = r.agent_frames(0).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 300);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f, &quantised(&frame(i as u64 * 1000, 0)));
            let original = frame(i as u64 * 1000, 0);
            for (a, b) in f.agents.iter().zip(&original.agents) {
                assert!((a.x_m - b.x_m).abs() <= 0.0051 && (a.y_m - b.y_m).abs() <= 0.0051);
            }
        }
        assert_eq!(r.agent_frames(1).count(), 150);
        // The frame after a time: inside a chunk, across a chunk boundary, before the start, after the end.
        let after = |t| r.agent_frame_after(0, t).unwrap().map(|f| f.t_ms);
        assert_eq!(after(4_500), Some(5_000));
        assert_eq!(after(19_000), Some(20_000));
        assert_eq!(after(19_999), Some(20_000));
        assert_eq!(after(299_000), None);
        assert_eq!(r.agent_frame_after(9, 0).unwrap(), None);
        for t in (0..300_000).step_by(997) {
            let (a, b) = (r.agent_frame_at(0, t).unwrap().unwrap(), r.agent_frame_after(0, t).unwrap());
            assert!(a.t_ms <= t && b.as_ref().is_none_or(|b| b.t_ms == a.t_ms + 1000), "{t}");
        }
        assert_eq!(r.agent_frames(9).count(), 0);

        assert_eq!(r.raster_times(7), (0..10).map(|i| i * 30_000).collect::<Vec<_>>());
        assert_eq!(r.raster_at(7, 95_000).unwrap().unwrap(), raster(90_000));
        assert_eq!(r.raster_at(7, 0).unwrap().unwrap(), raster(0));
        assert_eq!(r.raster_at(8, 0).unwrap(), None);
        let custom = r.stream_chunks(ChunkKind::Custom, 2)[0];
        assert_eq!(r.read_chunk(custom).unwrap(), b"custom blob");
        assert_eq!(r.custom_at(2, 299_000).unwrap().unwrap(), (0, b"custom blob".to_vec()));
        assert_eq!(r.custom_at(3, 0).unwrap(), None);
        r.verify().unwrap();
        assert!(summary.compressed_bytes < summary.raw_bytes / 2, "{summary:?}");
    }

    #[test]
    fn seek_finds_the_latest_frame_at_or_before() {
        let bytes = sample_bytes();
        let r = ReplayReader::from_bytes("sample.machi", bytes).unwrap();
        let at = |stream, t| r.agent_frame_at(stream, t).unwrap().map(|f| f.t_ms);
        // Stream 0: frames each 1000 ms, chunks of 20 s: boundaries at 20 000, 40 000, ...
        for t in [0, 999, 1000, 19_999, 20_000, 20_001, 39_999, 40_000, 123_456, 299_000, 299_999, u64::MAX] {
            let expected = (t.min(299_000) / 1000) * 1000;
            assert_eq!(at(0, t), Some(expected), "t = {t}");
            assert_eq!(r.agent_frame_at(0, t).unwrap().unwrap(), quantised(&frame(expected, 0)));
        }
        // Stream 1: frames each 2000 ms.
        assert_eq!(at(1, 21_999), Some(20_000));
        assert_eq!(at(1, 19_999), Some(18_000));
        assert_eq!(at(1, 1), Some(0));
        assert_eq!(at(5, 1000), None);
        // Going backwards and forwards across the cached chunk.
        assert_eq!(at(0, 250_500), Some(250_000));
        assert_eq!(at(0, 10_500), Some(10_000));
        assert_eq!(at(0, 10_700), Some(10_000));
    }

    #[test]
    fn nothing_before_the_first_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.machi");
        let mut w = ReplayWriter::create(&path, &header()).unwrap();
        w.push_agent_frame(0, &frame(5000, 0)).unwrap();
        w.finish().unwrap();
        let r = ReplayReader::open(&path).unwrap();
        assert_eq!(r.agent_frame_at(0, 4999).unwrap(), None);
        assert_eq!(r.agent_frame_at(0, 5000).unwrap().map(|f| f.t_ms), Some(5000));
    }

    #[test]
    fn same_input_gives_identical_bytes() {
        assert_eq!(sample_bytes(), sample_bytes());
    }

    #[test]
    fn empty_replay_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.machi");
        ReplayWriter::create(&path, &ReplayHeader::default()).unwrap().finish().unwrap();
        let r = ReplayReader::open(&path).unwrap();
        assert!(r.chunks().is_empty());
        assert_eq!(r.time_range(), None);
        assert_eq!(r.agent_frame_at(0, 0).unwrap(), None);
    }

    #[test]
    fn corrupt_byte_is_a_checksum_error_naming_the_chunk() {
        let mut bytes = sample_bytes();
        let r = ReplayReader::from_bytes("x", bytes.clone()).unwrap();
        let victim = r.stream_chunks(ChunkKind::AgentFrames, 0)[3];
        let record = r.chunks()[victim];
        bytes[(record.offset + CHUNK_HEADER_LEN + 5) as usize] ^= 0x40;
        let r = ReplayReader::from_bytes("damaged.machi", bytes).unwrap();
        let err = r.agent_frame_at(0, record.t_first_ms).unwrap_err();
        assert!(matches!(err, ReplayError::Checksum { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("damaged.machi") && message.contains(&format!("chunk {victim} (byte {})", record.offset)),
            "{message}"
        );
        // Other chunks still read; the iterator stops at the damaged one.
        assert!(r.agent_frame_at(0, 0).unwrap().is_some());
        let results: Vec<_> = r.agent_frames(0).collect();
        assert!(results.last().is_some_and(|x| x.is_err()));
        assert!(r.verify().is_err());
    }

    #[test]
    fn corrupt_index_is_a_checksum_error() {
        let mut bytes = sample_bytes();
        let n = bytes.len();
        bytes[n - TRAILER_LEN as usize - 10] ^= 1;
        let err = ReplayReader::from_bytes("x", bytes).unwrap_err();
        assert!(matches!(err, ReplayError::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("index (byte"), "{err}");
    }

    #[test]
    fn truncated_files_are_reported() {
        let bytes = sample_bytes();
        for cut in [0, 5, 13, 14, 100, bytes.len() / 2, bytes.len() - 1] {
            let err = ReplayReader::from_bytes("cut.machi", bytes[..cut].to_vec()).unwrap_err();
            assert!(matches!(err, ReplayError::Truncated { .. }), "cut at {cut}: {err}");
            assert!(err.to_string().starts_with("cut.machi: byte "), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.machi");
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(matches!(ReplayReader::open(&path), Err(ReplayError::Truncated { .. })));
    }

    #[test]
    fn bad_magic_and_version() {
        let mut bytes = sample_bytes();
        let err = ReplayReader::from_bytes("x", b"PK\x03\x04 not a replay".to_vec()).unwrap_err();
        assert!(matches!(err, ReplayError::BadMagic { .. }), "{err}");
        let mut future = bytes.clone();
        future[8] = 3;
        let err = ReplayReader::from_bytes("x", future).unwrap_err();
        assert!(matches!(err, ReplayError::UnsupportedVersion { found: 3, .. }), "{err}");
        // Version 1 files are read, their positions as stored (not decoded): this version-2 file's second
        // frame (the first of a chunk is stored as it is), read as version 1, shows the codes the writer
        // stored for its positions.
        bytes[8] = 1;
        let old = ReplayReader::from_bytes("x", bytes).unwrap();
        let second = old.agent_frames(0).nth(1).unwrap().unwrap();
        let mut stored = Vec::new();
        for t in [0, 1000] {
            crate::replay::format::encode_agent_frame(&frame(t, 0), &mut stored).unwrap();
        }
        crate::replay::format::delta_code_positions(&mut stored, crate::replay::format::DeltaCoding::Encode).unwrap();
        assert_eq!(second, crate::replay::format::decode_agent_frames(&stored).unwrap()[1]);
        assert_ne!(second, quantised(&frame(1000, 0)));
        let err = ReplayReader::open("/nonexistent/dir/x.machi").unwrap_err();
        assert!(matches!(err, ReplayError::Io { .. }), "{err}");
    }

    /// Opens `bytes` and reads everything; only the absence of panics matters.
    fn exercise(bytes: Vec<u8>) {
        if let Ok(r) = ReplayReader::from_bytes("fuzz", bytes) {
            let _ = r.verify();
            for i in 0..r.chunks().len() {
                let _ = r.read_chunk(i);
            }
            for stream in r.streams(ChunkKind::AgentFrames) {
                let _ = r.agent_frames(stream).count();
                let _ = r.agent_frame_at(stream, 12_345);
            }
            for stream in r.streams(ChunkKind::Raster) {
                let _ = r.raster_at(stream, u64::MAX);
            }
            for stream in r.streams(ChunkKind::Static) {
                let _ = r.static_payload(stream);
            }
            let _ = r.time_range();
        }
    }

    fn small_sample() -> &'static [u8] {
        static SAMPLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        SAMPLE.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("small.machi");
            let config = WriterConfig { chunk_span_ms: 3000, min_frames_per_chunk: 1, ..WriterConfig::default() };
            let mut w = ReplayWriter::create_with(&path, &header(), config).unwrap();
            w.write_static(0, b"{}").unwrap();
            for t in (0..10_000).step_by(1000) {
                w.push_agent_frame(0, &frame(t, 0)).unwrap();
            }
            w.write_raster(1, &raster(0)).unwrap();
            w.finish().unwrap();
            std::fs::read(&path).unwrap()
        })
    }

    /// Rewrites the chunk and index CRCs of a (mutated) file so damage gets past the checksums into the decoders.
    fn fix_checksums(bytes: &mut [u8]) {
        let n = bytes.len();
        if n < 30 {
            return;
        }
        let le64 = |b: &[u8]| b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
        let index_offset = le64(&bytes[n - 16..n - 8]) as usize;
        if index_offset.saturating_add(8) > n - 16 {
            return;
        }
        let count = le64(&bytes[index_offset..index_offset + 4]) as usize;
        for i in 0..count {
            let rec = index_offset + 4 + i * 39;
            if rec + 39 > n - 20 {
                break;
            }
            let offset = le64(&bytes[rec + 19..rec + 27]) as usize;
            let clen = le64(&bytes[rec + 31..rec + 35]) as usize;
            let Some(end) = offset.checked_add(31).and_then(|x| x.checked_add(clen)) else { continue };
            if end > index_offset {
                continue;
            }
            let crc = crc32fast::hash(&bytes[offset + 31..end]).to_le_bytes();
            bytes[offset + 27..offset + 31].copy_from_slice(&crc);
            bytes[rec + 35..rec + 39].copy_from_slice(&crc);
        }
        let crc_at = n - 20;
        let crc = crc32fast::hash(&bytes[index_offset..crc_at]);
        bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            exercise(bytes.clone());
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&1u16.to_le_bytes());
            with_magic.extend_from_slice(&bytes);
            exercise(with_magic);
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            use crate::replay::format::{delta_code_positions, DeltaCoding};
            let _ = crate::replay::format::decode_agent_frames(&bytes);
            let _ = crate::replay::format::decode_raster(&bytes);
            for direction in [DeltaCoding::Encode, DeltaCoding::Decode] {
                let _ = delta_code_positions(&mut bytes.clone(), direction);
            }
        }

        #[test]
        fn position_coding_round_trips_any_frames(
            frames in proptest::collection::vec(
                proptest::collection::vec((0u32..40, any::<i32>(), -3i32..3), 0..12),
                1..6,
            ),
        ) {
            use crate::replay::format::{delta_code_positions, encode_agent_frame, DeltaCoding};
            // Ids in any order, repeated, appearing and leaving; positions anywhere in the i32 range (wrapping).
            let mut raw = Vec::new();
            for (k, agents) in frames.iter().enumerate() {
                let agents = agents
                    .iter()
                    .map(|&(id, cm, step)| {
                        let x = cm.saturating_add(step * k as i32) as f32 / 100.0;
                        AgentState { id, kind: 0, state: 0, x_m: x.clamp(-2.1e7, 2.1e7), y_m: -x.clamp(-2.1e7, 2.1e7) }
                    })
                    .collect();
                encode_agent_frame(&AgentFrame { t_ms: k as u64, agents }, &mut raw).unwrap();
            }
            let mut coded = raw.clone();
            delta_code_positions(&mut coded, DeltaCoding::Encode).unwrap();
            delta_code_positions(&mut coded, DeltaCoding::Decode).unwrap();
            prop_assert_eq!(coded, raw);
        }

        #[test]
        fn mutated_files_never_panic(
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<proptest::sample::Index>(),
            truncate in any::<bool>(),
            fix in any::<bool>(),
        ) {
            let mut bytes = small_sample().to_vec();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if fix {
                fix_checksums(&mut bytes);
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            exercise(bytes);
        }
    }
}
