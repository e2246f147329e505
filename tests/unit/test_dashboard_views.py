"""Dashboard views without a browser: what the rule editor shows as the condition changes."""

from panel_app.store import DataStore
from panel_app.views.rules import RuleEditor


class _Store:
    check = staticmethod(DataStore.check)


def test_the_editor_shows_the_error_with_its_caret_and_clears_it() -> None:
    editor = RuleEditor(_Store())  # type: ignore[arg-type]
    # a browser event may change value and value_input together: one callback, two events
    editor.condition.param.update(value="price > > 3", value_input="price > > 3")
    assert "line 1, column 9" in editor.message.object and "^" in editor.message.object
    editor.condition.value_input = "price > 3"
    assert editor.message.object == ""
    editor.condition.value_input = "zscore(price) > 3"
    assert "zscore() takes 2 argument(s)" in editor.message.object
