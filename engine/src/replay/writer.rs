//! Writing a replay while the run goes: [`ReplayWriter`] (synchronous, bounded memory, atomic on finish) and
//! [`ReplaySink`] (the same writer on its own thread behind a bounded channel, so the simulation tick never
//! compresses or touches the disk).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::format::{
    agent_frame_len, delta_code_positions, encode_agent_frame, encode_raster, AgentFrame, ChunkKind, ChunkRecord,
    DeltaCoding, RasterFrame, ReplayError, ReplayHeader, ReplayResult, CHUNK_HEADER_LEN, END_MAGIC, FORMAT_VERSION,
    MAGIC, MAX_CHUNK_RAW_BYTES, PREAMBLE_LEN,
};

/// Tuning of a [`ReplayWriter`].
#[derive(Debug, Clone, PartialEq)]
pub struct WriterConfig {
    /// An agent-frames chunk is closed before a frame at or after `t_first_ms + chunk_span_ms` is added, ms.
    /// Shorter spans make seeking cheaper (one chunk is decompressed per seek) and compression slightly worse.
    pub chunk_span_ms: u64,
    /// A chunk holds at least this many frames, however long they span (unless the buffer budget forces it
    /// out): positions are predicted from the frames before in the chunk, and a stream with a frame a minute
    /// (the population) would otherwise get one frame per chunk and nothing to predict from. 10: the
    /// population's chunks then span 10 min; one seek decodes 10 frames.
    pub min_frames_per_chunk: usize,
    /// Most encoded agent-frame bytes buffered across all streams before chunks are flushed early, bytes.
    pub buffer_budget_bytes: usize,
    /// zstd compression level.
    pub zstd_level: i32,
}

impl Default for WriterConfig {
    fn default() -> WriterConfig {
        WriterConfig { chunk_span_ms: 60_000, min_frames_per_chunk: 10, buffer_budget_bytes: 8 << 20, zstd_level: 3 }
    }
}

/// What a finished replay holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Where the replay is.
    pub path: PathBuf,
    /// Size of the file, bytes.
    pub file_bytes: u64,
    /// Number of chunks.
    pub chunks: usize,
    /// Number of agent frames over all streams.
    pub agent_frames: u64,
    /// Number of rasters over all streams.
    pub rasters: u64,
    /// Sum of decompressed chunk payloads, bytes.
    pub raw_bytes: u64,
    /// Sum of compressed chunk payloads, bytes.
    pub compressed_bytes: u64,
    /// First and last simulation time of any timed chunk, ms; `None` if there are only static chunks.
    pub time_range_ms: Option<(u64, u64)>,
}

/// Agent frames of one stream waiting to become a chunk.
#[derive(Debug, Default)]
struct AgentBuffer {
    /// Encoded frames back to back (the chunk payload so far).
    raw: Vec<u8>,
    /// Frames in `raw`.
    frames: usize,
    t_first_ms: u64,
    t_last_ms: u64,
}

/// Writes a replay file chunk by chunk.
///
/// The data goes to a temporary file beside `path` (`<file name>.part`); [`ReplayWriter::finish`] appends the
/// index and trailer, syncs, and renames it to `path`, so a reader never sees a half-written replay at `path`.
/// Dropping the writer without finishing deletes the temporary file.
///
/// Memory is bounded: agent frames are buffered per stream as encoded bytes, at most
/// [`WriterConfig::buffer_budget_bytes`] over all streams, plus the index (39 bytes per chunk).
pub struct ReplayWriter {
    path: PathBuf,
    tmp_path: PathBuf,
    out: Option<BufWriter<File>>,
    /// Bytes written so far, i.e. the offset of the next chunk.
    offset: u64,
    config: WriterConfig,
    compressor: zstd::bulk::Compressor<'static>,
    index: Vec<ChunkRecord>,
    agent_buffers: BTreeMap<u16, AgentBuffer>,
    buffered_bytes: usize,
    /// Last time written or buffered per timed stream, to enforce time order.
    last_t_ms: BTreeMap<(ChunkKind, u16), u64>,
    static_streams: BTreeSet<u16>,
    scratch: Vec<u8>,
    agent_frames: u64,
    rasters: u64,
    finished: bool,
}

impl ReplayWriter {
    /// Starts a replay that will be at `path` once finished, with the default [`WriterConfig`].
    pub fn create(path: impl AsRef<Path>, header: &ReplayHeader) -> ReplayResult<ReplayWriter> {
        ReplayWriter::create_with(path, header, WriterConfig::default())
    }

    /// Starts a replay that will be at `path` once finished.
    pub fn create_with(
        path: impl AsRef<Path>,
        header: &ReplayHeader,
        config: WriterConfig,
    ) -> ReplayResult<ReplayWriter> {
        let path = path.as_ref().to_path_buf();
        let invalid = |message: String| ReplayError::Invalid { path: path.clone(), message };
        if config.chunk_span_ms == 0 {
            return Err(invalid("chunk_span_ms must be > 0".to_string()));
        }
        let Some(file_name) = path.file_name() else {
            return Err(invalid("the replay path has no file name".to_string()));
        };
        let mut tmp_name = file_name.to_os_string();
        tmp_name.push(".part");
        let tmp_path = path.with_file_name(tmp_name);
        let compressor = zstd::bulk::Compressor::new(config.zstd_level).map_err(|source| ReplayError::Io {
            path: path.clone(),
            op: "start zstd",
            source,
        })?;
        let header_json =
            serde_json::to_vec(header).map_err(|e| invalid(format!("header is not serialisable: {e}")))?;
        let header_len =
            u32::try_from(header_json.len()).map_err(|_| invalid("header JSON is over 4 GiB".to_string()))?;

        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .map_err(|source| ReplayError::Io { path: tmp_path.clone(), op: "create", source })?;
        let mut writer = ReplayWriter {
            path,
            tmp_path,
            out: Some(BufWriter::with_capacity(1 << 16, file)),
            offset: 0,
            config,
            compressor,
            index: Vec::new(),
            agent_buffers: BTreeMap::new(),
            buffered_bytes: 0,
            last_t_ms: BTreeMap::new(),
            static_streams: BTreeSet::new(),
            scratch: Vec::new(),
            agent_frames: 0,
            rasters: 0,
            finished: false,
        };
        writer.write_bytes(&MAGIC)?;
        writer.write_bytes(&FORMAT_VERSION.to_le_bytes())?;
        writer.write_bytes(&header_len.to_le_bytes())?;
        writer.write_bytes(&header_json)?;
        debug_assert_eq!(writer.offset, PREAMBLE_LEN + u64::from(header_len));
        Ok(writer)
    }

    /// Where the replay will be once finished.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encoded agent-frame bytes currently buffered over all streams (never more than the budget).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// The chunks written so far.
    pub fn chunks(&self) -> &[ChunkRecord] {
        &self.index
    }

    /// Writes the time-less payload of `stream` (JSON or binary, e.g. the road network). At most one per stream.
    pub fn write_static(&mut self, stream: u16, payload: &[u8]) -> ReplayResult<()> {
        if !self.static_streams.insert(stream) {
            return Err(self.invalid(format!("static stream {stream} was already written")));
        }
        self.write_chunk(ChunkKind::Static, stream, 0, 0, payload)
    }

    /// Adds an agent frame to `stream`. Frames of a stream must come in strictly increasing `t_ms`. Frames are
    /// buffered and written as one chunk per [`WriterConfig::chunk_span_ms`] (and at least
    /// [`WriterConfig::min_frames_per_chunk`] frames), or earlier when the buffer budget would be exceeded.
    pub fn push_agent_frame(&mut self, stream: u16, frame: &AgentFrame) -> ReplayResult<()> {
        self.check_time(ChunkKind::AgentFrames, stream, frame.t_ms)?;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        if let Err(message) = encode_agent_frame(frame, &mut scratch) {
            self.scratch = scratch;
            return Err(self.invalid(format!("agent stream {stream}: {message}")));
        }
        debug_assert_eq!(scratch.len(), agent_frame_len(frame.agents.len()));
        let result = self.buffer_encoded_frame(stream, frame.t_ms, &scratch);
        self.scratch = scratch;
        result?;
        self.last_t_ms.insert((ChunkKind::AgentFrames, stream), frame.t_ms);
        self.agent_frames += 1;
        Ok(())
    }

    fn buffer_encoded_frame(&mut self, stream: u16, t_ms: u64, encoded: &[u8]) -> ReplayResult<()> {
        let span = self.config.chunk_span_ms;
        if let Some(buf) = self.agent_buffers.get(&stream) {
            let full = buf.frames >= self.config.min_frames_per_chunk;
            if !buf.raw.is_empty() && full && t_ms >= buf.t_first_ms.saturating_add(span) {
                self.flush_agent_stream(stream)?;
            }
        }
        let budget = self.config.buffer_budget_bytes;
        if self.buffered_bytes + encoded.len() > budget {
            self.flush_agent_stream(stream)?;
        }
        if self.buffered_bytes + encoded.len() > budget {
            self.flush_all_agent_streams()?;
        }
        if encoded.len() > budget {
            // A single frame over the budget becomes a chunk of its own without being buffered (as the first
            // frame of its chunk, its positions are stored as they are: no prediction coding to apply).
            return self.write_chunk(ChunkKind::AgentFrames, stream, t_ms, t_ms, encoded);
        }
        let buf = self.agent_buffers.entry(stream).or_default();
        if buf.raw.is_empty() {
            buf.t_first_ms = t_ms;
        }
        buf.t_last_ms = t_ms;
        buf.raw.extend_from_slice(encoded);
        buf.frames += 1;
        self.buffered_bytes += encoded.len();
        Ok(())
    }

    /// Writes a raster of `stream` at `raster.t_ms` as one chunk. Rasters of a stream must come in strictly
    /// increasing time.
    pub fn write_raster(&mut self, stream: u16, raster: &RasterFrame) -> ReplayResult<()> {
        self.check_time(ChunkKind::Raster, stream, raster.t_ms)?;
        let payload = encode_raster(raster).map_err(|m| self.invalid(format!("raster stream {stream}: {m}")))?;
        self.write_chunk(ChunkKind::Raster, stream, raster.t_ms, raster.t_ms, &payload)?;
        self.last_t_ms.insert((ChunkKind::Raster, stream), raster.t_ms);
        self.rasters += 1;
        Ok(())
    }

    /// Writes a domain-defined payload of `stream` covering `t_first_ms..=t_last_ms` (ms). Chunks of a custom
    /// stream must come with non-decreasing `t_first_ms`.
    pub fn write_custom(&mut self, stream: u16, t_first_ms: u64, t_last_ms: u64, payload: &[u8]) -> ReplayResult<()> {
        if t_last_ms < t_first_ms {
            return Err(
                self.invalid(format!("custom stream {stream}: t_last_ms {t_last_ms} < t_first_ms {t_first_ms}"))
            );
        }
        if let Some(&prev) = self.last_t_ms.get(&(ChunkKind::Custom, stream)) {
            if t_first_ms < prev {
                return Err(self.invalid(format!("custom stream {stream}: t_first_ms {t_first_ms} is before {prev}")));
            }
        }
        self.write_chunk(ChunkKind::Custom, stream, t_first_ms, t_last_ms, payload)?;
        self.last_t_ms.insert((ChunkKind::Custom, stream), t_first_ms);
        Ok(())
    }

    /// Applies one message (what [`ReplaySink`] does on its thread).
    pub fn apply(&mut self, message: ReplayMessage) -> ReplayResult<()> {
        match message {
            ReplayMessage::Static { stream, payload } => self.write_static(stream, &payload),
            ReplayMessage::AgentFrame { stream, frame } => self.push_agent_frame(stream, &frame),
            ReplayMessage::Raster { stream, raster } => self.write_raster(stream, &raster),
            ReplayMessage::Custom { stream, t_first_ms, t_last_ms, payload } => {
                self.write_custom(stream, t_first_ms, t_last_ms, &payload)
            }
        }
    }

    /// Flushes buffered frames, writes the index and trailer, syncs the file and renames it to its final path.
    pub fn finish(mut self) -> ReplayResult<ReplaySummary> {
        self.flush_all_agent_streams()?;
        let index_offset = self.offset;
        let count = u32::try_from(self.index.len()).map_err(|_| self.invalid("more than 2^32 - 1 chunks".into()))?;
        let mut index = Vec::with_capacity(8 + self.index.len() * 39);
        index.extend_from_slice(&count.to_le_bytes());
        for record in &self.index {
            record.write_index_record(&mut index);
        }
        let index_crc = crc32fast::hash(&index);
        index.extend_from_slice(&index_crc.to_le_bytes());
        index.extend_from_slice(&index_offset.to_le_bytes());
        index.extend_from_slice(&END_MAGIC);
        self.write_bytes(&index)?;

        let Some(out) = self.out.take() else {
            return Err(self.invalid("the writer has no open file".into()));
        };
        let file = out.into_inner().map_err(|e| self.io_tmp("write", e.into_error()))?;
        file.sync_all().map_err(|e| self.io_tmp("sync", e))?;
        drop(file);
        std::fs::rename(&self.tmp_path, &self.path).map_err(|source| ReplayError::Io {
            path: self.path.clone(),
            op: "rename the finished replay",
            source,
        })?;
        self.finished = true;
        sync_parent_dir(&self.path);

        let timed = self.index.iter().filter(|r| r.kind != ChunkKind::Static);
        let time_range_ms = timed.fold(None, |acc: Option<(u64, u64)>, r| match acc {
            None => Some((r.t_first_ms, r.t_last_ms)),
            Some((a, b)) => Some((a.min(r.t_first_ms), b.max(r.t_last_ms))),
        });
        Ok(ReplaySummary {
            path: self.path.clone(),
            file_bytes: self.offset,
            chunks: self.index.len(),
            agent_frames: self.agent_frames,
            rasters: self.rasters,
            raw_bytes: self.index.iter().map(|r| u64::from(r.raw_len)).sum(),
            compressed_bytes: self.index.iter().map(|r| u64::from(r.compressed_len)).sum(),
            time_range_ms,
        })
    }

    fn check_time(&self, kind: ChunkKind, stream: u16, t_ms: u64) -> ReplayResult<()> {
        match self.last_t_ms.get(&(kind, stream)) {
            Some(&prev) if t_ms <= prev => {
                Err(self.invalid(format!("{kind} stream {stream}: time {t_ms} ms does not come after {prev} ms")))
            }
            _ => Ok(()),
        }
    }

    fn flush_all_agent_streams(&mut self) -> ReplayResult<()> {
        let streams: Vec<u16> = self.agent_buffers.keys().copied().collect();
        for stream in streams {
            self.flush_agent_stream(stream)?;
        }
        Ok(())
    }

    fn flush_agent_stream(&mut self, stream: u16) -> ReplayResult<()> {
        let Some(buf) = self.agent_buffers.get_mut(&stream) else {
            return Ok(());
        };
        if buf.raw.is_empty() {
            return Ok(());
        }
        // Taking the vector releases its capacity, so memory stays within the budget after a flush.
        let mut raw = std::mem::take(&mut buf.raw);
        buf.frames = 0;
        let (t_first, t_last) = (buf.t_first_ms, buf.t_last_ms);
        self.buffered_bytes -= raw.len();
        delta_code_positions(&mut raw, DeltaCoding::Encode)
            .map_err(|m| self.invalid(format!("agent stream {stream}: {m}")))?;
        self.write_chunk(ChunkKind::AgentFrames, stream, t_first, t_last, &raw)
    }

    fn write_chunk(
        &mut self,
        kind: ChunkKind,
        stream: u16,
        t_first_ms: u64,
        t_last_ms: u64,
        raw: &[u8],
    ) -> ReplayResult<()> {
        let raw_len = u32::try_from(raw.len()).ok().filter(|&n| n <= MAX_CHUNK_RAW_BYTES).ok_or_else(|| {
            self.invalid(format!("{kind} stream {stream}: a chunk of {} bytes is over 1 GiB", raw.len()))
        })?;
        let compressed = self.compressor.compress(raw).map_err(|e| self.io_tmp("compress", e))?;
        let compressed_len = u32::try_from(compressed.len())
            .map_err(|_| self.invalid(format!("{kind} stream {stream}: compressed chunk is over 4 GiB")))?;
        let record = ChunkRecord {
            kind,
            stream,
            t_first_ms,
            t_last_ms,
            offset: self.offset,
            raw_len,
            compressed_len,
            crc32: crc32fast::hash(&compressed),
        };
        self.write_bytes(&record.chunk_header_bytes())?;
        self.write_bytes(&compressed)?;
        debug_assert_eq!(self.offset, record.offset + CHUNK_HEADER_LEN + u64::from(compressed_len));
        self.index.push(record);
        Ok(())
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> ReplayResult<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(self.invalid("the writer has no open file".into()));
        };
        if let Err(e) = out.write_all(bytes) {
            return Err(self.io_tmp("write", e));
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn invalid(&self, message: String) -> ReplayError {
        ReplayError::Invalid { path: self.path.clone(), message }
    }

    fn io_tmp(&self, op: &'static str, source: std::io::Error) -> ReplayError {
        ReplayError::Io { path: self.tmp_path.clone(), op, source }
    }
}

impl Drop for ReplayWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Close before removing (Windows cannot delete an open file); errors here have nowhere to go.
            drop(self.out.take());
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// Makes the rename durable where the platform allows (best effort: some file systems refuse).
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// One thing to record, sent to a [`ReplaySink`].
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayMessage {
    /// See [`ReplayWriter::write_static`].
    Static {
        /// Stream id.
        stream: u16,
        /// JSON or binary payload.
        payload: Vec<u8>,
    },
    /// See [`ReplayWriter::push_agent_frame`].
    AgentFrame {
        /// Stream id.
        stream: u16,
        /// The frame.
        frame: AgentFrame,
    },
    /// See [`ReplayWriter::write_raster`].
    Raster {
        /// Stream id.
        stream: u16,
        /// The raster.
        raster: RasterFrame,
    },
    /// See [`ReplayWriter::write_custom`].
    Custom {
        /// Stream id.
        stream: u16,
        /// First time covered, ms.
        t_first_ms: u64,
        /// Last time covered, ms.
        t_last_ms: u64,
        /// Domain-defined payload.
        payload: Vec<u8>,
    },
}

enum Command {
    Record(ReplayMessage),
    Finish,
}

/// A [`ReplayWriter`] running on its own thread (`machi-replay`), fed through a bounded channel: the caller
/// only moves messages, compression and I/O happen off the simulation thread. When the channel is full,
/// [`ReplaySink::send`] waits (back-pressure keeps memory bounded).
///
/// If the writer fails, the thread stops, deletes the temporary file, and later sends return
/// [`ReplayError::Sink`]; [`ReplaySink::finish`] returns the original error. Dropping the sink without
/// finishing abandons the replay (nothing is left at the path).
pub struct ReplaySink {
    tx: Option<Sender<Command>>,
    handle: Option<JoinHandle<ReplayResult<ReplaySummary>>>,
    abandon: Arc<AtomicBool>,
}

impl ReplaySink {
    /// Default number of messages the channel holds before [`ReplaySink::send`] waits.
    pub const DEFAULT_CAPACITY: usize = 256;

    /// Runs `writer` on a new thread with a channel of [`ReplaySink::DEFAULT_CAPACITY`] messages.
    pub fn spawn(writer: ReplayWriter) -> ReplaySink {
        ReplaySink::spawn_with_capacity(writer, ReplaySink::DEFAULT_CAPACITY)
    }

    /// Runs `writer` on a new thread with a channel of `capacity` messages (at least 1).
    pub fn spawn_with_capacity(writer: ReplayWriter, capacity: usize) -> ReplaySink {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        let abandon = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&abandon);
        let spawned =
            std::thread::Builder::new().name("machi-replay".into()).spawn(move || run_sink(writer, rx, &flag));
        match spawned {
            Ok(handle) => ReplaySink { tx: Some(tx), handle: Some(handle), abandon },
            // The closure (and the writer, which deletes its temporary file) was dropped; report it on use.
            Err(_) => ReplaySink { tx: None, handle: None, abandon },
        }
    }

    /// Queues a message for the writer thread, waiting if the channel is full.
    pub fn send(&self, message: ReplayMessage) -> ReplayResult<()> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(ReplayError::Sink { message: "the writer thread could not be started".into() });
        };
        tx.send(Command::Record(message)).map_err(|_| ReplayError::Sink {
            message: "the writer thread has stopped; finish() returns its error".into(),
        })
    }

    /// Writes everything queued, finishes the replay and joins the thread; returns the writer's first error.
    pub fn finish(mut self) -> ReplayResult<ReplaySummary> {
        if let Some(tx) = self.tx.take() {
            // If the thread already stopped on an error, this fails and the join below returns that error.
            let _ = tx.send(Command::Finish);
        }
        let Some(handle) = self.handle.take() else {
            return Err(ReplayError::Sink { message: "the writer thread could not be started".into() });
        };
        handle.join().unwrap_or_else(|_| Err(ReplayError::Sink { message: "the writer thread panicked".into() }))
    }
}

impl Drop for ReplaySink {
    fn drop(&mut self) {
        self.abandon.store(true, Ordering::Relaxed);
        drop(self.tx.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn run_sink(mut writer: ReplayWriter, rx: Receiver<Command>, abandon: &AtomicBool) -> ReplayResult<ReplaySummary> {
    loop {
        if abandon.load(Ordering::Relaxed) {
            return Err(ReplayError::Sink { message: "the replay was abandoned".into() });
        }
        match rx.recv() {
            Ok(Command::Record(message)) => writer.apply(message)?,
            Ok(Command::Finish) => return writer.finish(),
            // The sink was dropped without finish: abandon; dropping the writer deletes the temporary file.
            Err(_) => return Err(ReplayError::Sink { message: "the replay was abandoned".into() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::format::AgentState;

    fn header() -> ReplayHeader {
        ReplayHeader { city: "test".into(), frame_interval_ms: 1000, ..ReplayHeader::default() }
    }

    fn frame(t_ms: u64, n: u32) -> AgentFrame {
        let agents = (0..n)
            .map(|i| AgentState { id: i, kind: 0, state: 1, x_m: i as f32 + t_ms as f32 * 0.001, y_m: -(i as f32) })
            .collect();
        AgentFrame { t_ms, agents }
    }

    #[test]
    fn buffered_bytes_never_exceed_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let config = WriterConfig {
            chunk_span_ms: 1_000_000,
            min_frames_per_chunk: 1,
            buffer_budget_bytes: 5_000,
            zstd_level: 3,
        };
        let mut w = ReplayWriter::create_with(dir.path().join("r.machi"), &header(), config).unwrap();
        for t in 0..500u64 {
            for stream in 0..3u16 {
                w.push_agent_frame(stream, &frame(t * 100, 20 + (t % 50) as u32)).unwrap();
                assert!(w.buffered_bytes() <= 5_000, "{} > budget", w.buffered_bytes());
            }
        }
        // A frame larger than the whole budget becomes its own chunk.
        w.push_agent_frame(0, &frame(1_000_000, 1_000)).unwrap();
        assert!(w.buffered_bytes() <= 5_000);
        assert!(w.chunks().len() > 10);
        let summary = w.finish().unwrap();
        assert_eq!(summary.agent_frames, 1501);
    }

    #[test]
    fn chunks_follow_the_span() {
        let dir = tempfile::tempdir().unwrap();
        let config = WriterConfig { chunk_span_ms: 10_000, min_frames_per_chunk: 1, ..WriterConfig::default() };
        let mut w = ReplayWriter::create_with(dir.path().join("r.machi"), &header(), config).unwrap();
        for t in 0..35u64 {
            w.push_agent_frame(1, &frame(t * 1000, 3)).unwrap();
        }
        let summary = w.finish().unwrap();
        assert_eq!(summary.chunks, 4);
        assert_eq!(summary.time_range_ms, Some((0, 34_000)));
    }

    #[test]
    fn sparse_frames_gather_until_a_chunk_holds_its_least_frame_count() {
        let dir = tempfile::tempdir().unwrap();
        let config = WriterConfig { chunk_span_ms: 10_000, min_frames_per_chunk: 4, ..WriterConfig::default() };
        let mut w = ReplayWriter::create_with(dir.path().join("r.machi"), &header(), config).unwrap();
        // A frame a minute: the 10 s span alone would close a chunk at every frame.
        for t in 0..10u64 {
            w.push_agent_frame(1, &frame(t * 60_000, 3)).unwrap();
        }
        // 4 + 4 + 2 frames.
        assert_eq!(w.finish().unwrap().chunks, 3);
    }

    #[test]
    fn dropping_without_finish_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.machi");
        let mut w = ReplayWriter::create(&path, &header()).unwrap();
        w.write_static(0, b"{}").unwrap();
        w.push_agent_frame(0, &frame(0, 10)).unwrap();
        assert!(dir.path().join("r.machi.part").exists());
        drop(w);
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn finish_replaces_the_part_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.machi");
        let mut w = ReplayWriter::create(&path, &header()).unwrap();
        w.push_agent_frame(0, &frame(0, 10)).unwrap();
        assert!(!path.exists());
        let summary = w.finish().unwrap();
        assert_eq!(summary.file_bytes, std::fs::metadata(&path).unwrap().len());
        assert!(!dir.path().join("r.machi.part").exists());
    }

    #[test]
    fn rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ReplayWriter::create(dir.path().join("r.machi"), &header()).unwrap();
        w.push_agent_frame(0, &frame(10, 1)).unwrap();
        assert!(matches!(w.push_agent_frame(0, &frame(10, 1)), Err(ReplayError::Invalid { .. })));
        assert!(matches!(w.push_agent_frame(0, &frame(5, 1)), Err(ReplayError::Invalid { .. })));
        w.push_agent_frame(1, &frame(5, 1)).unwrap(); // another stream has its own clock
        let nan = AgentFrame { t_ms: 20, agents: vec![AgentState { y_m: f32::NAN, ..AgentState::default() }] };
        let err = w.push_agent_frame(0, &nan).unwrap_err();
        assert!(err.to_string().contains("y_m"), "{err}");
        w.write_static(3, b"a").unwrap();
        assert!(w.write_static(3, b"b").is_err());
        let bad = RasterFrame { t_ms: 0, width: 2, height: 2, cell_m: 1.0, values: vec![0.0; 3], ..Default::default() };
        assert!(w.write_raster(0, &bad).is_err());
        assert!(w.write_custom(0, 5, 4, b"x").is_err());
        // The writer is still usable after rejected input.
        w.push_agent_frame(0, &frame(20, 1)).unwrap();
        assert_eq!(w.finish().unwrap().agent_frames, 3);
    }

    #[test]
    fn sink_writes_on_its_thread_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ok.machi");
        let sink = ReplaySink::spawn_with_capacity(ReplayWriter::create(&path, &header()).unwrap(), 4);
        sink.send(ReplayMessage::Static { stream: 0, payload: b"{\"roads\":[]}".to_vec() }).unwrap();
        for t in 0..100 {
            sink.send(ReplayMessage::AgentFrame { stream: 0, frame: frame(t * 1000, 5) }).unwrap();
        }
        let summary = sink.finish().unwrap();
        assert_eq!(summary.agent_frames, 100);
        assert!(path.exists());

        let bad_path = dir.path().join("bad.machi");
        let sink = ReplaySink::spawn_with_capacity(ReplayWriter::create(&bad_path, &header()).unwrap(), 1);
        sink.send(ReplayMessage::AgentFrame { stream: 0, frame: frame(1000, 5) }).unwrap();
        sink.send(ReplayMessage::AgentFrame { stream: 0, frame: frame(0, 5) }).unwrap();
        // Later sends may fail once the thread has stopped; finish reports the original error.
        for t in 2..10 {
            let _ = sink.send(ReplayMessage::AgentFrame { stream: 0, frame: frame(t * 1000, 5) });
        }
        let err = sink.finish().unwrap_err();
        assert!(matches!(err, ReplayError::Invalid { .. }), "{err}");
        assert!(!bad_path.exists());
        assert!(!dir.path().join("bad.machi.part").exists());

        let dropped = dir.path().join("dropped.machi");
        let sink = ReplaySink::spawn(ReplayWriter::create(&dropped, &header()).unwrap());
        sink.send(ReplayMessage::AgentFrame { stream: 0, frame: frame(0, 5) }).unwrap();
        drop(sink);
        assert!(!dropped.exists());
        assert!(!dir.path().join("dropped.machi.part").exists());
    }
}
