"""The portal's Import page (Privacy → Import): upload, choose, follow, cancel, delete. Pages
reload themselves while an import runs (a Refresh header: no script under the CSP)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import ConfirmDestructiveForm
from accounts.selectors import memory_policy
from imports import selectors, services
from imports.forms import ChoiceForm, UploadForm
from imports.models import ImportItem, ImportJob

REFRESH_SECONDS = 3


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def imports_page(request):
    """Upload an export; the earlier imports."""
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job, created = services.import_upload(
                user=request.user, upload=form.cleaned_data["file"], choose=True
            )
        except ValidationError as error:
            form.add_error("file", error)
        else:
            if not created:
                messages.info(request, "This file was imported already: here is that import.")
            return redirect("imports:detail", job.pk)
    jobs = list(selectors.imports_list(user=request.user)[:50])
    response = render(
        request,
        "imports/index.html",
        {
            "form": form,
            "jobs": jobs,
            "memory_on": memory_policy(user=request.user).extract,
            "max_bytes": settings.IMPORT_MAX_UPLOAD_BYTES,
        },
        status=400 if form.errors else 200,
    )
    return _refreshing(response, any(job.status in _MOVING for job in jobs))


@login_required
@never_cache
def import_page(request, import_id: int):
    """One import: its progress, the conversations found (to choose from while it waits)."""
    job = selectors.import_get(user=request.user, job_id=import_id)
    moving = job.status in _MOVING
    # While it runs the page reloads itself: the list (thousands of titles) waits for the end.
    items = [] if moving else list(selectors.import_items(job=job))
    choosable = [i.position for i in items if i.state == ImportItem.State.PENDING]
    response = render(
        request,
        "imports/detail.html",
        {
            "job": job,
            "items": items,
            "choosing": job.status == ImportJob.Status.CHOOSING,
            "choosable": len(choosable),
            "moving": moving,
        },
    )
    return _refreshing(response, moving)


@login_required
@require_POST
def import_start_view(request, import_id: int):
    job = selectors.import_get(user=request.user, job_id=import_id)
    pending = selectors.import_items(job=job).filter(state=ImportItem.State.PENDING)
    positions = list(pending.values_list("position", flat=True))
    form = ChoiceForm(request.POST, positions=positions)
    if not form.is_valid():
        messages.error(request, "That choice does not match this import's conversations.")
        return redirect("imports:detail", job.pk)
    left_out = set(form.cleaned_data["leave_out"])
    try:
        services.import_start(job=job, positions=[p for p in positions if p not in left_out])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("imports:detail", job.pk)


@login_required
@require_POST
def import_cancel_view(request, import_id: int):
    job = selectors.import_get(user=request.user, job_id=import_id)
    if services.import_cancel(job=job):
        messages.success(
            request,
            "Import cancelled. What it had imported stays; delete the import to remove that too.",
        )
    return redirect("imports:detail", job.pk)


@login_required
@require_http_methods(["GET", "POST"])
def import_delete_view(request, import_id: int):
    """Delete an import with what it brought: password and typed "delete" required."""
    job = selectors.import_get(user=request.user, job_id=import_id)
    form = ConfirmDestructiveForm(request.POST or None, request=request, phrase="delete")
    if request.method == "POST" and form.is_valid():
        gone = services.import_delete(job=job)
        messages.success(
            request,
            f"Import deleted, with {gone['conversations']} conversation(s), {gone['messages']} "
            f"message(s) and {gone['memories']} memory(ies) learned only from them.",
        )
        return redirect("imports:index")
    return render(request, "imports/delete.html", {"job": job, "form": form})


_MOVING = (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)


def _refreshing(response, moving: bool):
    if moving:
        response["Refresh"] = str(REFRESH_SECONDS)
    return response
