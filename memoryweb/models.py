"""Shared model infrastructure."""

from __future__ import annotations

from django.db import models


class OwnedQuerySet(models.QuerySet):
    """Rows that belong to a user. `owner` is the lookup path to that user (e.g.
    "conversation__user")."""

    owner = "user"

    def for_user(self, user):
        """Only `user`'s rows: every query on user data starts here."""
        return self.filter(**{self.owner: user})
