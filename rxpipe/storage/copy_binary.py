"""numba kernels for tick storage: PostgreSQL binary COPY encoding and idempotency filtering."""

from __future__ import annotations

import numpy as np
from numba import njit

# Row layout of ``ticks`` in COPY order: ts, symbol_id, source_id, seq, price, volume, side.
ROW_BYTES = 2 + (4 + 8) + (4 + 4) + (4 + 2) + (4 + 8) + (4 + 8) + (4 + 8) + (4 + 2)
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since the Unix epoch


@njit(cache=True, nogil=True, inline="always")
def _put8(buf, pos, v):
    buf[pos] = (v >> 56) & 0xFF
    buf[pos + 1] = (v >> 48) & 0xFF
    buf[pos + 2] = (v >> 40) & 0xFF
    buf[pos + 3] = (v >> 32) & 0xFF
    buf[pos + 4] = (v >> 24) & 0xFF
    buf[pos + 5] = (v >> 16) & 0xFF
    buf[pos + 6] = (v >> 8) & 0xFF
    buf[pos + 7] = v & 0xFF


@njit(cache=True, nogil=True, inline="always")
def _put4(buf, pos, v):
    buf[pos] = (v >> 24) & 0xFF
    buf[pos + 1] = (v >> 16) & 0xFF
    buf[pos + 2] = (v >> 8) & 0xFF
    buf[pos + 3] = v & 0xFF


@njit(cache=True, nogil=True, inline="always")
def _put2(buf, pos, v):
    buf[pos] = (v >> 8) & 0xFF
    buf[pos + 1] = v & 0xFF


@njit(cache=True, nogil=True)
def encode_ticks(ts_ns, symbol_id, source_id, seq, price, volume, side, keep, buf):
    """Encode the rows where ``keep`` is true into ``buf``; return the number of bytes written.

    ``buf`` needs ``ROW_BYTES`` bytes per kept row. Timestamps go to microseconds since 2000.
    """
    pos = 0
    price_bits = price.view(np.int64)
    volume_bits = volume.view(np.int64)
    for i in range(ts_ns.shape[0]):
        if not keep[i]:
            continue
        _put2(buf, pos, 7)
        _put4(buf, pos + 2, 8)
        _put8(buf, pos + 6, np.int64(ts_ns[i] // 1000 - PG_EPOCH_US))
        _put4(buf, pos + 14, 4)
        _put4(buf, pos + 18, np.int64(symbol_id[i]))
        _put4(buf, pos + 22, 2)
        _put2(buf, pos + 26, np.int64(source_id[i]))
        _put4(buf, pos + 28, 8)
        _put8(buf, pos + 32, seq[i])
        _put4(buf, pos + 40, 8)
        _put8(buf, pos + 44, price_bits[i])
        _put4(buf, pos + 52, 8)
        _put8(buf, pos + 56, volume_bits[i])
        _put4(buf, pos + 64, 2)
        _put2(buf, pos + 68, np.int64(side[i]))
        pos += ROW_BYTES
    return pos


@njit(cache=True, nogil=True)
def above_watermark(pair, seq, watermark, keep):
    """Mark ticks whose seq is above their (source, symbol) pair's high-water mark.

    ``pair[i]`` indexes ``watermark``, which is advanced in place, so a tick repeated later in
    the same batch (or a tick whose seq goes backwards) is not kept. Returns the kept count.
    """
    kept = 0
    for i in range(seq.shape[0]):
        p = pair[i]
        if seq[i] > watermark[p]:
            watermark[p] = seq[i]
            keep[i] = True
            kept += 1
        else:
            keep[i] = False
    return kept


_PG_TYPES = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8", "timestamptz": ">i8"}


def encode_columns(columns: list[tuple[str, np.ndarray]]) -> bytes:
    """Binary COPY payload for fixed-width columns, vectorised with a numpy record layout.

    ``columns`` is ``[(pg_type, values), ...]`` with pg_type in int2/int4/int8/float8/timestamptz
    (timestamptz values are ns since the Unix epoch). NaN floats are stored as NaN.
    """
    n = len(columns[0][1])
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for k, (kind, _) in enumerate(columns):
        fields += [(f"len{k}", ">i4"), (f"val{k}", _PG_TYPES[kind])]
    rows = np.empty(n, np.dtype(fields))
    rows["count"] = len(columns)
    for k, (kind, values) in enumerate(columns):
        rows[f"len{k}"] = np.dtype(_PG_TYPES[kind]).itemsize
        rows[f"val{k}"] = values // 1000 - PG_EPOCH_US if kind == "timestamptz" else values
    return HEADER + rows.tobytes() + TRAILER
