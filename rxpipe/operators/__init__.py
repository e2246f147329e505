"""Rx operators over tick batches; import as ``import rxpipe.operators as rxo``.

Each is a function returning ``Callable[[Observable], Observable]``, to compose with
``source.pipe(rxo.validate(), rxo.rebatch(), rxo.detect())`` (``rebatch`` closes batches on the
calling thread and a timer; ``drain``, what the app's pipeline uses, hands them to a worker
thread that closes them when they are worth processing). The stateful detectors behind
them (:class:`DetectorSet`, :class:`ZScore`, :class:`Rollups`, :class:`TickValidator`) have one
verb, ``update(batch)``, and can be used without Rx.
"""

from rxpipe.operators.detectors import DetectorConfig, DetectorSet
from rxpipe.operators.drain import drain
from rxpipe.operators.rebatch import rebatch
from rxpipe.operators.rollups import Rollups
from rxpipe.operators.validate import TickValidator, validate
from rxpipe.operators.zscore import ZScore, detect, zscore

__all__ = [
    "DetectorConfig",
    "DetectorSet",
    "Rollups",
    "TickValidator",
    "ZScore",
    "detect",
    "drain",
    "rebatch",
    "validate",
    "zscore",
]
