#!/usr/bin/env python3
"""Read a Machi replay file (format versions 1 and 2; see docs/replay-format.md).

Needs Python 3.8+ and `zstandard` (pip install zstandard); everything else is the standard library.

    python read_replay.py run.machi                              # header, sizes per stream, chunk list
    python read_replay.py run.machi --verify                     # also check every chunk's CRC-32 and decode it
    python read_replay.py run.machi --agents-csv agents.csv      # every agent frame, all agent streams
    python read_replay.py run.machi --agents-csv a.csv --stream 0
    python read_replay.py run.machi --raster-csv depth.csv --stream 7   # every raster of stream 7, one row per cell
    python read_replay.py run.machi --static 0 > network.json    # a static payload, raw bytes to stdout

As a module:

    from read_replay import Replay
    r = Replay("run.machi")
    r.header, r.chunks                      # dict, list of Chunk
    for t_ms, agents in r.agent_frames(0):  # agents: list of (id, kind, state, x_m, y_m)
        ...
"""

import argparse
import csv
import json
import struct
import sys
import zlib
from collections import namedtuple

import zstandard

MAGIC = b"MACHIRPL"
END_MAGIC = b"MACHIEND"
VERSION = 2  # the newest version read; version 1 (positions not prediction-coded) is read too
PREAMBLE = struct.Struct("<8sHI")  # magic, version, header_len            (14 bytes)
CHUNK_HEADER = struct.Struct("<BHQQIII")  # kind, stream, t_first, t_last, raw_len, compressed_len, crc32 (31)
INDEX_RECORD = struct.Struct("<BHQQQIII")  # kind, stream, t_first, t_last, offset, raw_len, comp_len, crc32 (39)
TRAILER = struct.Struct("<Q8s")  # index_offset, end magic                 (16 bytes)
KINDS = {0: "static", 1: "agent-frames", 2: "raster", 3: "custom"}
STATIC, AGENT_FRAMES, RASTER, CUSTOM = 0, 1, 2, 3

Chunk = namedtuple("Chunk", "number kind stream t_first_ms t_last_ms offset raw_len compressed_len crc32")
Raster = namedtuple("Raster", "t_ms width height origin_x_m origin_y_m cell_m values")


class ReplayError(Exception):
    pass


def _column(fmt, data):
    """A little-endian column of `len(data) // size` values of struct format `fmt` (I, i or f)."""
    return struct.unpack(f"<{len(data) // struct.calcsize(fmt)}{fmt}", data)


class Replay:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self._data = f.read()
        data, n = self._data, len(self._data)
        if n < PREAMBLE.size or data[:8] != MAGIC:
            raise ReplayError(f"{path}: byte 0: not a Machi replay (or shorter than the preamble)")
        _, version, header_len = PREAMBLE.unpack_from(data, 0)
        if not 1 <= version <= VERSION:
            raise ReplayError(f"{path}: byte 8: format version {version} is not supported (this reads {VERSION})")
        header_end = PREAMBLE.size + header_len
        if header_end + TRAILER.size > n:
            raise ReplayError(f"{path}: byte {n}: truncated inside the header")
        self.version = version
        self.header = json.loads(data[PREAMBLE.size:header_end].decode("utf-8"))
        index_offset, end_magic = TRAILER.unpack_from(data, n - TRAILER.size)
        if end_magic != END_MAGIC:
            raise ReplayError(f"{path}: byte {n - 8}: no MACHIEND trailer (truncated, or the run never finished)")
        index_end = n - TRAILER.size
        if not header_end <= index_offset <= index_end - 8:
            raise ReplayError(f"{path}: byte {index_end}: index offset {index_offset} out of range")
        (count,) = struct.unpack_from("<I", data, index_offset)
        body_end = index_offset + 4 + count * INDEX_RECORD.size
        if body_end + 4 != index_end:
            raise ReplayError(f"{path}: byte {index_offset}: index of {count} records does not fit the file")
        (index_crc,) = struct.unpack_from("<I", data, body_end)
        if zlib.crc32(data[index_offset:body_end]) != index_crc:
            raise ReplayError(f"{path}: index (byte {index_offset}): checksum mismatch")
        self.chunks = []
        for i in range(count):
            fields = INDEX_RECORD.unpack_from(data, index_offset + 4 + i * INDEX_RECORD.size)
            self.chunks.append(Chunk(i, *fields))

    def streams(self, kind):
        return sorted({c.stream for c in self.chunks if c.kind == kind})

    def time_range(self):
        timed = [c for c in self.chunks if c.kind != STATIC]
        if not timed:
            return None
        return min(c.t_first_ms for c in timed), max(c.t_last_ms for c in timed)

    def payload(self, chunk):
        """The decompressed payload of a chunk, after checking its header and CRC-32."""
        data = self._data
        if chunk.offset + CHUNK_HEADER.size + chunk.compressed_len > len(data):
            raise ReplayError(f"{self.path}: chunk {chunk.number} (byte {chunk.offset}): truncated")
        head = CHUNK_HEADER.unpack_from(data, chunk.offset)
        expected = (chunk.kind, chunk.stream, chunk.t_first_ms, chunk.t_last_ms, chunk.raw_len,
                    chunk.compressed_len, chunk.crc32)
        if head != expected:
            raise ReplayError(f"{self.path}: chunk {chunk.number} (byte {chunk.offset}): header differs from index")
        start = chunk.offset + CHUNK_HEADER.size
        compressed = data[start:start + chunk.compressed_len]
        if zlib.crc32(compressed) != chunk.crc32:
            raise ReplayError(f"{self.path}: chunk {chunk.number} (byte {chunk.offset}): checksum mismatch")
        raw = zstandard.ZstdDecompressor().decompress(compressed, max_output_size=chunk.raw_len)
        if len(raw) != chunk.raw_len:
            raise ReplayError(f"{self.path}: chunk {chunk.number}: {len(raw)} bytes decompressed, not {chunk.raw_len}")
        return raw

    def static_payload(self, stream):
        for c in self.chunks:
            if c.kind == STATIC and c.stream == stream:
                return self.payload(c)
        return None

    def agent_frames(self, stream):
        """Yields (t_ms, [(id, kind, state, x_m, y_m), ...]) for every frame of an agent stream, in time order."""
        for c in self.chunks:
            if c.kind == AGENT_FRAMES and c.stream == stream:
                yield from decode_agent_frames(self.payload(c), self.version)

    def rasters(self, stream):
        for c in self.chunks:
            if c.kind == RASTER and c.stream == stream:
                yield decode_raster(self.payload(c))


def _unzigzag(z):
    return (z >> 1) ^ -(z & 1)


def _wrap_i32(v):
    return (v + 2**31) % 2**32 - 2**31


def decode_agent_frames(raw, version):
    """Frames back to back: t_ms u64, n u32, then columns ids u32[n], kinds u8[n], states u8[n], x i32[n], y i32[n]
    (x, y in whole centimetres). In version 2, every frame of a chunk but the first stores each position column as
    four byte planes of zigzag-coded residuals against a prediction: the agent's previous position plus its last
    step, if it was in the previous frame (found by walking both frames' ids forward together), else 0."""
    pos = 0
    prev_ids, prev = [], []  # prev: per agent of the previous frame ((x, y), (step_x, step_y))
    first = True
    while pos < len(raw):
        t_ms, n = struct.unpack_from("<QI", raw, pos)
        pos += 12
        if pos + 14 * n > len(raw):
            raise ReplayError(f"agent frame at t = {t_ms} ms runs past its chunk")
        ids = _column("I", raw[pos:pos + 4 * n])
        pos += 4 * n
        kinds = raw[pos:pos + n]
        pos += n
        states = raw[pos:pos + n]
        pos += n
        columns = []
        for _ in range(2):
            data = raw[pos:pos + 4 * n]
            pos += 4 * n
            if version >= 2 and not first:
                codes = [data[i] | data[n + i] << 8 | data[2 * n + i] << 16 | data[3 * n + i] << 24 for i in range(n)]
                columns.append(codes)
            else:
                columns.append(list(_column("i", data)))
        matched, p = [], 0
        for agent_id in ids:
            while p < len(prev_ids) and prev_ids[p] < agent_id:
                p += 1
            matched.append(p if p < len(prev_ids) and prev_ids[p] == agent_id else None)
        here = []
        for i in range(n):
            xy = []
            for axis in range(2):
                v = columns[axis][i]
                if version >= 2 and not first:
                    k = matched[i]
                    predicted = 0 if k is None else prev[k][0][axis] + prev[k][1][axis]
                    v = _wrap_i32(_unzigzag(v) + predicted)
                xy.append(v)
            k = matched[i]
            step = (0, 0) if k is None else (xy[0] - prev[k][0][0], xy[1] - prev[k][0][1])
            here.append(((xy[0], xy[1]), step))
        prev_ids, prev, first = list(ids), here, False
        yield t_ms, [(ids[i], kinds[i], states[i], here[i][0][0] / 100.0, here[i][0][1] / 100.0) for i in range(n)]


def decode_raster(raw):
    t_ms, width, height, ox, oy, cell = struct.unpack_from("<QIIfff", raw, 0)
    values = _column("f", raw[28:])
    if len(values) != width * height:
        raise ReplayError(f"raster at t = {t_ms} ms: {len(values)} values for {width} x {height} cells")
    return Raster(t_ms, width, height, ox, oy, cell, values)


def print_stream_sizes(r, out=sys.stdout):
    """One line per stream: its chunks, bytes before and after zstd, and its name from the header's
    `extra.streams` (keyed by stream id; `extra` is any JSON, null when unused, so a name may be missing)."""
    extra = r.header.get("extra")
    names = extra.get("streams") if isinstance(extra, dict) else None
    names = names if isinstance(names, dict) else {}
    totals = {}
    for c in r.chunks:
        chunks, raw, packed = totals.get((c.stream, c.kind), (0, 0, 0))
        totals[(c.stream, c.kind)] = (chunks + 1, raw + c.raw_len, packed + c.compressed_len)
    print("streams:", file=out)
    print(f"{'stream':>6} {'kind':<13}{'chunks':>7} {'raw bytes':>12} {'zstd bytes':>12}  name", file=out)
    for (stream, kind), (chunks, raw, packed) in sorted(totals.items()):
        print(f"{stream:>6} {KINDS.get(kind, '?'):<13}{chunks:>7} {raw:>12} {packed:>12}  {names.get(str(stream), '')}",
              file=out)


def print_summary(r, out=sys.stdout):
    print(f"file:     {r.path}", file=out)
    print(f"version:  {r.version}", file=out)
    print(f"time:     {r.time_range()} ms", file=out)
    print("header:", file=out)
    print(json.dumps(r.header, indent=2, ensure_ascii=False), file=out)
    print_stream_sizes(r, out)
    print(f"chunks:   {len(r.chunks)}", file=out)
    print(f"{'#':>5} {'kind':<13}{'stream':>6} {'t_first_ms':>12} {'t_last_ms':>12} {'offset':>10} "
          f"{'raw':>9} {'zstd':>9}  crc32", file=out)
    for c in r.chunks:
        print(f"{c.number:>5} {KINDS.get(c.kind, '?'):<13}{c.stream:>6} {c.t_first_ms:>12} {c.t_last_ms:>12} "
              f"{c.offset:>10} {c.raw_len:>9} {c.compressed_len:>9}  {c.crc32:08x}", file=out)


def main(argv=None):
    p = argparse.ArgumentParser(description="Read a Machi replay file (format versions 1 and 2).")
    p.add_argument("replay")
    p.add_argument("--verify", action="store_true", help="check every chunk's CRC-32 and decode it")
    p.add_argument("--agents-csv", metavar="OUT", help="write agent frames as CSV (t_ms,stream,id,kind,state,x_m,y_m)")
    p.add_argument("--raster-csv", metavar="OUT", help="write rasters as CSV (t_ms,stream,col,row,x_m,y_m,value)")
    p.add_argument("--stream", type=int, help="only this stream id (default: all streams of the kind)")
    p.add_argument("--static", type=int, metavar="STREAM", help="write the static payload of STREAM to stdout")
    args = p.parse_args(argv)
    try:
        r = Replay(args.replay)
        if args.static is not None:
            payload = r.static_payload(args.static)
            if payload is None:
                raise ReplayError(f"{args.replay}: no static stream {args.static}")
            sys.stdout.buffer.write(payload)
            return 0
        print_summary(r)
        if args.verify:
            for c in r.chunks:
                raw = r.payload(c)
                if c.kind == AGENT_FRAMES:
                    sum(1 for _ in decode_agent_frames(raw, r.version))
                elif c.kind == RASTER:
                    decode_raster(raw)
            print("verify:   all chunks OK")
        if args.agents_csv:
            streams = [args.stream] if args.stream is not None else r.streams(AGENT_FRAMES)
            rows = 0
            with open(args.agents_csv, "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(["t_ms", "stream", "id", "kind", "state", "x_m", "y_m"])
                for s in streams:
                    for t_ms, agents in r.agent_frames(s):
                        for a in agents:
                            w.writerow([t_ms, s, a[0], a[1], a[2], f"{a[3]:.2f}", f"{a[4]:.2f}"])
                            rows += 1
            print(f"wrote {rows} agent rows to {args.agents_csv}")
        if args.raster_csv:
            streams = [args.stream] if args.stream is not None else r.streams(RASTER)
            rows = 0
            with open(args.raster_csv, "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(["t_ms", "stream", "col", "row", "x_m", "y_m", "value"])
                for s in streams:
                    for g in r.rasters(s):
                        for i, v in enumerate(g.values):
                            col, row = i % g.width, i // g.width
                            # Cell centre.
                            x = g.origin_x_m + (col + 0.5) * g.cell_m
                            y = g.origin_y_m + (row + 0.5) * g.cell_m
                            w.writerow([g.t_ms, s, col, row, f"{x:.3f}", f"{y:.3f}", repr(v)])
                            rows += 1
            print(f"wrote {rows} raster rows to {args.raster_csv}")
    except (ReplayError, struct.error, zstandard.ZstdError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
