"""The privacy registry: each app names its share of a user's data in its privacy.py, as a
`PrivacyArea` registered here, with how to export it and how to erase it. The data export and
"forget everything" (accounts) walk `areas()` instead of importing every app. Infrastructure: it
imports no app."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules


@dataclass
class Erasure:
    """What an erasure deleted, as its functions counted it: rows per kind (a model's plural name,
    e.g. "messages", "memory_revisions"), never what they held; and the ids of the data keys it
    destroyed. The erasure receipt is made from it."""

    counts: Counter[str] = field(default_factory=Counter)
    data_key_ids: list[str] = field(default_factory=list)

    def deleted(self, result: tuple[int, dict[str, int]]) -> int:
        """Count the result of a QuerySet's or model's `delete()` (cascades included), per model;
        rows of many-to-many tables are links, not data, and are not counted. Returns the total."""
        total, per_model = result
        for label, rows in per_model.items():
            model = apps.get_model(label)
            if rows and not model._meta.auto_created:
                self.counts[str(model._meta.verbose_name_plural).replace(" ", "_")] += rows
        return total

    def add(self, other: Erasure) -> Erasure:
        self.counts.update(other.counts)
        self.data_key_ids.extend(other.data_key_ids)
        return self


class PrivacyArea:
    """One app's share of a user's data. Subclass it in the app's privacy.py, give it a `label` (the
    area's name in the export's section order) and decorate it with `@register`."""

    label: ClassVar[str] = ""

    def export(self, user) -> dict[str, Any]:
        """The area's part of the data export: top-level keys of export.json
        (DjangoJSONEncoder-ready)."""
        raise NotImplementedError

    def erase(self, user) -> Erasure:
        """Delete the area's data of `user` (inside the caller's transaction); returns what went."""
        raise NotImplementedError


_registered: dict[str, PrivacyArea] = {}
_discovered = False


def register(cls: type[PrivacyArea]) -> type[PrivacyArea]:
    """Class decorator: register one instance of `cls` under its label."""
    if not cls.label:
        raise ImproperlyConfigured(f"{cls.__module__}.{cls.__qualname__} has no label")
    existing = _registered.get(cls.label)
    if existing is not None and _name(type(existing)) != _name(cls):
        raise ImproperlyConfigured(
            f"privacy area {cls.label!r} is registered twice: {_name(type(existing))}, {_name(cls)}"
        )
    _registered[cls.label] = cls()
    return cls


def areas() -> list[PrivacyArea]:
    """Every registered area, in the INSTALLED_APPS order of the apps defining them (each app after
    the apps it builds on). Erasure walks it backwards, so an app's data goes before what it was
    built on. The first call imports every app's privacy.py."""
    global _discovered
    if not _discovered:
        autodiscover_modules("privacy")
        _discovered = True
    order = [config.name for config in apps.get_app_configs()]
    return sorted(_registered.values(), key=lambda area: order.index(_app_of(area)))


def _app_of(area: PrivacyArea) -> str:
    config = apps.get_containing_app_config(type(area).__module__)
    if config is None:
        raise ImproperlyConfigured(
            f"privacy area {area.label!r} is not defined in an installed app"
        )
    return config.name


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
