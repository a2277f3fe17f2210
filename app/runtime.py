"""The explorer's state for this server process, set once by ``create_app``."""

from __future__ import annotations

from app.state import ExplorerState

_state: ExplorerState | None = None


def configure(state: ExplorerState) -> None:
    global _state
    _state = state


def explorer_state() -> ExplorerState:
    if _state is None:
        raise RuntimeError("the explorer has no corpus: create it with app.main.create_app(paths)")
    return _state
