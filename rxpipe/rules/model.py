"""Rule definitions as users write them (YAML files, REST bodies): validated at the boundary."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rxpipe.durations import parse_duration
from rxpipe.errors import InputError, RuleSyntaxError
from rxpipe.rules.compiler import CompiledRule, SharedSeries, compile_rule

SEVERITIES = ("info", "low", "medium", "high", "critical")
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}$")
_SEVERITY_ALIASES = {"warning": "medium"}


class Rule(BaseModel):
    """An alert rule: when ``condition`` holds for ``for`` on a symbol, an alert fires.

    >>> r = Rule.model_validate({"name": "BTC Price Breakout", "symbol": "BTCUSDT",
    ...                          "condition": "price > 50000", "severity": "warning"})
    >>> r.symbols, r.severity, r.for_s
    (['BTCUSDT'], 'medium', 0.0)
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(
        default_factory=lambda: uuid.uuid4().hex[:12], pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
    )
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    symbols: list[str] | str = "*"
    # the seed's field: kept, and used when the condition has no comparison (before condition:
    # the condition's check reads it)
    threshold: float | None = Field(None, allow_inf_nan=False)
    condition: str = Field(min_length=1, max_length=2000)
    severity: str = "medium"
    for_s: float = Field(0.0, alias="for", ge=0)
    keep_firing_for_s: float = Field(0.0, alias="keep_firing_for", ge=0)
    repeat_interval_s: float = Field(300.0, alias="repeat_interval", ge=0)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    channels: list[str] = Field(default_factory=lambda: ["log"])
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _seed_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {str(k).lower(): v for k, v in data.items()}  # the seed sent Capitalised keys
            if "symbol" in data:
                sym = data.pop("symbol")
                data.setdefault("symbols", [sym] if sym not in (None, "", "*") else "*")
            data.pop("metadata", None)
            data.pop("created_at", None)
            data.pop("updated_at", None)
        return data

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, v: Any) -> str:
        s = _SEVERITY_ALIASES.get(str(v).lower(), str(v).lower())
        if s not in SEVERITIES:
            raise ValueError(
                f"severity is one of {', '.join(SEVERITIES)} (or warning); found {v!r}"
            )
        return s

    @field_validator("for_s", "keep_firing_for_s", "repeat_interval_s", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        try:
            return parse_duration(v) if v is not None else 0.0
        except InputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols(cls, v: Any) -> Any:
        if isinstance(v, str) and v != "*":
            v = [s.strip() for s in v.split(",") if s.strip()]
        if isinstance(v, list):
            for s in v:
                if not isinstance(s, str) or not _SYMBOL.match(s):
                    raise ValueError(f"symbols are names such as BTCUSDT, or '*'; found {s!r}")
        return v

    @field_validator("condition")
    @classmethod
    def _condition_compiles(cls, v: str, info: ValidationInfo) -> str:
        try:
            compile_rule(effective_condition(v, info.data.get("threshold")))
        except RuleSyntaxError as exc:
            raise ValueError(str(exc)) from None
        return v

    def effective_condition(self) -> str:
        """The condition, completed with ``> threshold`` when it is a bare value (seed style)."""
        return effective_condition(self.condition, self.threshold)

    def compile(self, shared: SharedSeries | None = None) -> CompiledRule:
        return compile_rule(self.effective_condition(), shared=shared)

    def applies_to(self, symbol: str) -> bool:
        return self.symbols == "*" or symbol in self.symbols

    def to_json(self) -> dict[str, Any]:
        """The seed's field names (``symbol``, ``threshold``, ``metadata``) and ours."""
        doc = self.model_dump(by_alias=True)
        doc["symbol"] = (
            self.symbols[0] if isinstance(self.symbols, list) and len(self.symbols) == 1 else "*"
        )
        doc["metadata"] = {"channels": self.channels}
        return doc


def effective_condition(condition: str, threshold: float | None) -> str:
    """``condition``, completed with ``> threshold`` when it is a bare value (the seed's style).

    >>> effective_condition("price_change_4h", 15.0), effective_condition("price > 1", 15.0)
    ('price_change_4h > 15.0', 'price > 1')
    """
    if (
        threshold is not None
        and not any(op in condition for op in "<>=!")
        and "crosses" not in condition
        and "anomaly(" not in condition
    ):
        return f"{condition} > {threshold!r}"
    return condition


def load_rules(path: str | Path) -> list[Rule]:
    """Rules from a YAML file holding one rule or a list; errors name the rule and the field."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise InputError(f"cannot read rule file: {exc.strerror}", source=str(p)) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", source=str(p)) from None
    items = data if isinstance(data, list) else [data]
    rules = []
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(f"rule {k + 1} is not a mapping of fields", source=str(p))
        try:
            rules.append(Rule.model_validate(item))
        except ValidationError as exc:
            what = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'rule'}: {e['msg']}" for e in exc.errors()
            )
            raise InputError(
                f"rule {k + 1} ({item.get('name', 'unnamed')}): {what}", source=str(p)
            ) from None
    return rules
