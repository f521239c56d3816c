from itertools import groupby

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import ConfirmDestructiveForm
from memories import selectors, services
from memories.consolidation import Decision
from memories.erasure import memory_delete
from memories.forgetting import forget_confirmed, forget_request_for
from memories.forms import EditForm, EndForm, FilterForm, RememberForm
from memories.models import Memory


@login_required
def remembered(request):
    """ "What I remember": every current memory by kind, with where it came from, when it was learned
    and last used, its confidence and its history; search and filters; a form to add one by hand."""
    filters = FilterForm(request.GET or None)
    criteria = filters.cleaned_data if filters.is_valid() else {}
    memories = list(
        selectors.memory_list(
            user=request.user,
            query=criteria.get("q", ""),
            kind=criteria.get("kind", ""),
            source=criteria.get("source", ""),
        )
    )
    labels = dict(Memory.Kind.choices)
    groups = [
        (labels[kind], list(items)) for kind, items in groupby(memories, key=lambda m: m.kind)
    ]
    context = {
        "groups": groups,
        "total": len(memories),
        "filters": filters,
        "remember_form": RememberForm(),
    }
    return render(request, "memories/remembered.html", context)


@login_required
def memory_detail(request, memory_id: int):
    """One memory: its text, provenance and revision history."""
    memory = selectors.memory_get(user=request.user, memory_id=memory_id)
    return render(
        request,
        "memories/detail.html",
        {
            "memory": memory,
            "sources": memory.source_messages.select_related("conversation"),
            "revisions": memory.revisions.all(),
            "edit_form": EditForm(initial={"text": memory.text}),
            "end_form": EndForm(initial={"ends_on": memory.ends_on} if memory.ends_at else None),
        },
    )


@login_required
@require_POST
def remember(request):
    form = RememberForm(request.POST)
    if form.is_valid():
        memory, decision = services.memory_remember(user=request.user, **form.cleaned_data)
        messages.success(
            request, "Remembered." if decision == Decision.ADD else f"Remembered ({decision})."
        )
    else:
        messages.error(request, "Write what to remember (at most 500 characters).")
    return redirect("memories:remembered")


@login_required
@require_POST
def edit(request, memory_id: int):
    memory = selectors.memory_get(user=request.user, memory_id=memory_id)
    form = EditForm(request.POST)
    if form.is_valid():
        try:
            services.memory_edit(memory=memory, text=form.cleaned_data["text"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Memory updated.")
    else:
        messages.error(request, "The text must be between 1 and 500 characters.")
    return redirect("memories:detail", memory.pk)


@login_required
@require_POST
def set_use(request, memory_id: int):
    memory = selectors.memory_get(user=request.user, memory_id=memory_id)
    use = request.POST.get("use") == "1"
    services.memory_set_use(memory=memory, use_in_context=use)
    if not use:
        messages.success(request, "Kept, but it won't be used in replies any more.")
    return _back(request, memory)


@login_required
@require_POST
def set_end(request, memory_id: int):
    """ "True until …": after that day the memory is kept but not used; empty: for good."""
    memory = selectors.memory_get(user=request.user, memory_id=memory_id)
    form = EndForm(request.POST)
    if form.is_valid():
        services.memory_set_end(memory=memory, last_day=form.cleaned_data["ends_on"])
    else:
        messages.error(request, "That is not a date.")
    return redirect("memories:detail", memory.pk)


@login_required
@require_POST
def report(request, memory_id: int):
    """ "Wrong": the memory is held for review (never used until a moderator approves it)."""
    memory = selectors.memory_get(user=request.user, memory_id=memory_id)
    reason = request.POST.get("reason", "wrong")
    if services.memory_report(
        memory=memory, reason=reason if reason in services.REPORT_REASONS else "other"
    ):
        messages.success(request, "Reported: it won't be used until it is reviewed.")
    return _back(request, memory)


def _back(request, memory):
    """Where a control was used: the memory's page, the conversation whose "Memories used" showed
    it (its own view checks whose it is), or What I remember."""
    back = request.POST.get("next", "")
    if back == "detail":
        return redirect("memories:detail", memory.pk)
    if back.startswith("conversation:") and back.removeprefix("conversation:").isdigit():
        return redirect("chat:conversation", int(back.removeprefix("conversation:")))
    return redirect("memories:remembered")


@login_required
@require_http_methods(["GET", "POST"])
def delete(request, memory_id: int):
    """Delete one memory with its history: password and typed "delete" required."""
    memory = selectors.memory_get(user=request.user, memory_id=memory_id)
    form = ConfirmDestructiveForm(request.POST or None, request=request, phrase="delete")
    if request.method == "POST" and form.is_valid():
        memory_delete(user=request.user, memory=memory)
        messages.success(request, "Deleted, with its history.")
        return redirect("memories:remembered")
    return render(request, "memories/delete.html", {"memory": memory, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def forget(request):
    """ "Forget about …": what would go (a dry run), then the password and typed "forget" to erase
    exactly that. Where a chat's request to forget leads."""
    data = request.POST if request.method == "POST" else request.GET
    about, subject = data.get("about", "").strip(), data.get("subject", "").strip()
    if subject == "*":
        return redirect("accounts:forget_everything")
    preview = forget_request_for(user=request.user, about=about, subject=subject) if about else None
    form = ConfirmDestructiveForm(request.POST or None, request=request, phrase="forget")
    if request.method == "POST" and preview is not None and form.is_valid():
        shown = request.POST.getlist("memory")
        erased = forget_confirmed(
            user=request.user, subject=subject, text=preview.text, memory_ids=_ids(shown)
        )
        messages.success(
            request, f"Forgot {erased} memor{'y' if erased == 1 else 'ies'}, with their history."
        )
        return redirect("memories:remembered")
    context = {"about": about, "subject": subject, "preview": preview, "form": form}
    return render(request, "memories/forget.html", context)


def _ids(values) -> set[int]:
    return {int(v) for v in values if v.isdigit()}
