"""Targets (system parts, apps) of a backup or a restore and their results (§2.2, §2.3)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

LEVELS = ["Unknown", "Success", "Warning", "Error", "Skipped"]


class Targets:
    """Which targets were asked for, and each one's result: the worst level wins."""

    def __init__(self) -> None:
        self.selected: dict[str, list[str]] = {"system": [], "apps": []}
        self.results: dict[str, dict[str, str]] = {"system": {}, "apps": {}}

    def set_result(self, category: str, element: str, value: str) -> None:
        """Record a result unless the element already has a worse (later) level."""
        current = self.results[category].get(element)
        if current is None or LEVELS.index(value) >= LEVELS.index(current):
            self.results[category][element] = value

    def set_wanted(
        self,
        category: str,
        wanted: list[str] | None,
        available: Iterable[str],
        on_unavailable: Callable[[str], None],
    ) -> list[str]:
        """None = no target, [] = every available target, else the asked ones that exist.

        Unavailable asked targets are reported through `on_unavailable` and "Skipped".
        Returns the selected targets that are not Skipped.
        """
        available = list(available)
        if wanted is None:
            self.selected[category] = []
        elif wanted == []:
            self.selected[category] = available
        else:
            self.selected[category] = [t for t in wanted if t in available]
            for target in wanted:
                if target not in available:
                    self.set_result(category, target, "Skipped")
                    on_unavailable(target)
        for target in self.selected[category]:
            self.set_result(category, target, "Unknown")
        return self.list(category, exclude=["Skipped"])

    def list(
        self,
        category: str,
        *,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
    ) -> list[str]:
        """Targets of `category` whose result is in `include` / not in `exclude`."""
        items = self.results[category].items()
        if include is not None:
            return [name for name, result in items if result in include]
        return [name for name, result in items if result not in (exclude or [])]
