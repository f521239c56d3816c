"""Reads for the import pages and the API, always scoped to the requesting user."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from imports.models import ImportItem, ImportJob


def imports_list(*, user):
    """The user's imports, newest first."""
    return ImportJob.objects.for_user(user)


def import_get(*, user, job_id) -> ImportJob:
    """The user's import, or 404 (also for another user's id)."""
    return get_object_or_404(ImportJob.objects.for_user(user), pk=job_id)


def import_items(*, job: ImportJob):
    """The conversations found in an import's file, in file order."""
    return ImportItem.objects.filter(job=job).order_by("position")
