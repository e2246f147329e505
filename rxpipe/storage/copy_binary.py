"""numba kernels for tick storage: PostgreSQL binary COPY encoding and idempotency filtering."""

from __future__ import annotations

import numpy as np
from numba import njit

# Row layout of ``ticks`` in COPY order: ts, symbol_id, source_id, seq, price, volume, side.
ROW_BYTES = 2 + (4 + 8) + (4 + 4) + (4 + 2) + (4 + 8) + (4 + 8) + (4 + 8) + (4 + 2)
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since the Unix epoch


@njit(cache=True, inline="always")
def _put(buf, pos, value, width):
    for k in range(width):
        buf[pos + k] = (value >> (8 * (width - 1 - k))) & 0xFF
    return pos + width


@njit(cache=True)
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
        pos = _put(buf, pos, 7, 2)
        pos = _put(buf, pos, 8, 4)
        pos = _put(buf, pos, np.int64(ts_ns[i] // 1000 - PG_EPOCH_US), 8)
        pos = _put(buf, pos, 4, 4)
        pos = _put(buf, pos, np.int64(symbol_id[i]), 4)
        pos = _put(buf, pos, 2, 4)
        pos = _put(buf, pos, np.int64(source_id[i]), 2)
        pos = _put(buf, pos, 8, 4)
        pos = _put(buf, pos, seq[i], 8)
        pos = _put(buf, pos, 8, 4)
        pos = _put(buf, pos, price_bits[i], 8)
        pos = _put(buf, pos, 8, 4)
        pos = _put(buf, pos, volume_bits[i], 8)
        pos = _put(buf, pos, 2, 4)
        pos = _put(buf, pos, np.int64(side[i]), 2)
    return pos


@njit(cache=True)
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
