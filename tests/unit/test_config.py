from pathlib import Path

import pytest

from rxpipe.config import Settings
from rxpipe.durations import parse_duration
from rxpipe.errors import ConfigError, InputError


def test_layers_defaults_file_env_overrides(tmp_path: Path) -> None:
    f = tmp_path / "rx.yaml"
    f.write_text("server:\n  port: 9001\nbatch:\n  max_ticks: 100\nsymbols: [BTCUSDT]\n")
    s = Settings.load(
        f, env={"RXPIPE_BATCH_MAX_TICKS": "200", "RXPIPE_DATABASE_URL": "postgresql://u:pw@h/db"}
    )
    assert s.server.port == 9001 and s.batch.max_ticks == 200 and s.symbols == ["BTCUSDT"]
    assert s.storage.database_url is not None and "pw" not in repr(s)  # secrets stay out of logs
    s = Settings.load(f, env={}, **{"server.port": 9002, "data_dir": tmp_path})
    assert s.server.port == 9002 and s.data_dir == tmp_path and s.server.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("batch:\n  max_ticks: 0\n", {}, "batch.max_ticks: Input should be greater than 0"),
        ("server: [1, 2]\n", {}, "server"),
        ("- a\n- b\n", {}, "must hold a mapping"),
        ("a: [\n", {}, "not valid YAML"),
        ("", {"RXPIPE_PORT": "http"}, "server.port"),
        ("", {"RXPIPE_SOURCE": "kafka"}, "source is 'simulator' or 'replay:PATH"),
        ("bogus: 1\n", {}, "bogus: Extra inputs are not permitted"),
        ("detectors:\n  methods: [quantile]\n", {}, "detectors.methods.0: Input should be"),
    ],
)
def test_bad_settings_say_what_and_where(
    tmp_path: Path, text: str, env: dict, message: str
) -> None:
    f = tmp_path / "rx.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        Settings.load(f, env=env)
    assert message in str(err.value)


def test_durations() -> None:
    assert parse_duration("4h") == 14_400 and parse_duration("1.5m") == 90
    with pytest.raises(InputError, match="500ms, 30s"):
        parse_duration("soon")


def test_detector_methods_from_file_and_environment(tmp_path: Path) -> None:
    from typing import get_args

    from rxpipe.config import DetectorMethod
    from rxpipe.kernels.detect import OPTIONAL

    assert get_args(DetectorMethod) == OPTIONAL
    assert Settings.load(env={}).detectors.methods == list(OPTIONAL)
    f = tmp_path / "rx.yaml"
    f.write_text("detectors:\n  methods: [ci]\n")
    assert Settings.load(f, env={}).detectors.methods == ["ci"]
    env = {"RXPIPE_DETECTORS_METHODS": "quantiles, horizons"}
    assert Settings.load(env=env).detectors.methods == ["quantiles", "horizons"]
    assert Settings.load(env={"RXPIPE_DETECTORS_METHODS": ""}).detectors.methods == []
