"""The rule editor: create or edit a rule, see the rule language's errors inline (line, column,
caret), preview a backtest on stored history, save and enable."""

from __future__ import annotations

import asyncio
import html
from typing import Any

import panel as pn
from pydantic import ValidationError

from panel_app.store import DataStore
from rxpipe.rules.model import SEVERITIES, Rule

NEW = "(new rule)"


class RuleEditor(pn.viewable.Viewer):
    def __init__(self, store: DataStore, **params: Any) -> None:
        super().__init__(**params)
        self.store = store
        self._rules: dict[str, Rule] = {}
        self.pick = pn.widgets.Select(label="Rule", options=[NEW], css_classes=["rule-pick"])
        self.rule_name = pn.widgets.TextInput(
            label="Name", placeholder="BTC fast drop", css_classes=["rule-name"]
        )
        self.condition = pn.widgets.TextAreaInput(
            label="Condition",
            placeholder="change_pct(price, 5m) < -2 and abs(z_ret) > 4",
            height=80,
            css_classes=["rule-condition"],
        )
        self.symbols = pn.widgets.TextInput(
            label="Symbols (comma-separated, or *)", value="*", css_classes=["rule-symbols"]
        )
        self.severity = pn.widgets.Select(
            label="Severity",
            options=list(SEVERITIES),
            value="medium",
            css_classes=["rule-severity"],
        )
        self.for_ = pn.widgets.TextInput(label="For", value="0s", css_classes=["rule-for"])
        self.enabled = pn.widgets.Checkbox(
            label="Enabled", value=True, css_classes=["rule-enabled"]
        )
        self.validate_btn = pn.widgets.Button(label="Validate", css_classes=["rule-validate"])
        self.backtest_btn = pn.widgets.Button(label="Backtest 24h", css_classes=["rule-backtest"])
        self.save_btn = pn.widgets.Button(label="Save", color="primary", css_classes=["rule-save"])
        self.message = pn.pane.HTML("", css_classes=["rule-message"], sizing_mode="stretch_width")
        self.pick.param.watch(self._load, "value")
        # both may change in one browser event: param then passes one event per parameter
        self.condition.param.watch(
            lambda *events: self._check_condition(text=events[-1].new), ["value", "value_input"]
        )
        self.validate_btn.on_click(lambda _: self._check_condition(show_ok=True))
        self.backtest_btn.on_click(self._backtest)
        self.save_btn.on_click(self._save)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            "### Rule editor",
            self.pick,
            self.rule_name,
            self.condition,
            pn.Row(self.symbols, self.severity, self.for_),
            self.enabled,
            pn.Row(self.validate_btn, self.backtest_btn, self.save_btn),
            self.message,
            sizing_mode="stretch_width",
        )

    async def refresh(self) -> None:
        rules = await asyncio.to_thread(self.store.rules)
        self._rules = {f"{r.name} ({r.id})": r for r in rules}
        options = [NEW, *self._rules]
        if options != self.pick.options:
            self.pick.options = options

    def _load(self, event: Any) -> None:
        rule = self._rules.get(event.new)
        if rule is None:
            self.rule_name.value, self.condition.value, self.symbols.value = "", "", "*"
            self.severity.value, self.for_.value, self.enabled.value = "medium", "0s", True
            return
        self.rule_name.value = rule.name
        self.condition.value = rule.condition
        self.symbols.value = "*" if rule.symbols == "*" else ", ".join(rule.symbols)
        self.severity.value = rule.severity
        self.for_.value = f"{rule.for_s:g}s"
        self.enabled.value = rule.enabled

    def _show(self, kind: str, text: str, pre: str = "") -> None:
        colors = {"error": "#a50f15", "ok": "#006d2c", "info": "#08519c"}
        body = f'<div class="rule-{kind}" style="color:{colors[kind]}">{html.escape(text)}'
        if pre:
            body += f'<pre style="margin:4px 0">{html.escape(pre)}</pre>'
        self.message.object = body + "</div>"

    def _text(self) -> str:
        return str(self.condition.value_input or self.condition.value or "")

    def _check_condition(self, show_ok: bool = False, text: str | None = None) -> bool:
        text = self._text() if text is None else text
        if not text or not text.strip():
            self.message.object = ""
            return False
        error = self.store.check(text)
        if error is not None:
            head, _, excerpt = error.partition("\n")
            self._show("error", head, excerpt)
            return False
        if show_ok:
            self._show("ok", "the condition is valid")
        else:
            self.message.object = ""
        return True

    def _rule(self) -> Rule | None:
        current = self._rules.get(self.pick.value)
        fields: dict[str, Any] = {
            "name": self.rule_name.value,
            "condition": self._text(),
            "symbols": self.symbols.value.strip() or "*",
            "severity": self.severity.value,
            "for": self.for_.value or "0s",
            "enabled": self.enabled.value,
        }
        if current is not None:
            fields = {**current.model_dump(by_alias=True), **fields}
        try:
            return Rule.model_validate(fields)
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in exc.errors()
            ]
            head, _, excerpt = problems[0].partition("\n")
            self._show(
                "error",
                head,
                excerpt if len(problems) == 1 else "\n".join([excerpt, *problems[1:]]),
            )
            return None

    async def _save(self, _: Any) -> None:
        if not self._check_condition():
            if not self.message.object:
                self._show("error", "write a condition first")
            return
        rule = self._rule()
        if rule is None:
            return
        await asyncio.to_thread(self.store.save_rule, rule)
        self._show(
            "ok", f"saved rule {rule.name!r} ({rule.id}); the pipeline picks it up within seconds"
        )
        await self.refresh()
        self.pick.value = f"{rule.name} ({rule.id})"

    async def _backtest(self, _: Any) -> None:
        if not self._check_condition():
            return
        rule = self._rule()
        if rule is None:
            return
        self._show("info", "backtesting the last 24 hours of stored ticks ...")
        doc = await asyncio.to_thread(self.store.backtest, rule)
        lines = [
            f"{f['symbol']}: fired {f['fired_at']}, resolved {f['resolved_at'] or '-'}, value {f['value']}"
            for f in doc["firings"][:10]
        ]
        self._show(
            "info",
            f"{doc['alerts']} alert(s) over {doc['days']:.2f} days ({doc['alerts_per_day']:.1f}/day) on "
            f"{doc['ticks']:,} ticks; firing {doc['firing_fraction']:.1%} of the time",
            "\n".join(lines),
        )
