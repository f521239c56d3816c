from itertools import groupby

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from memories import selectors
from memories.models import Memory


@login_required
def remembered(request):
    """ "What I remember": every current memory by kind, with the message it came from and when."""
    memories = list(selectors.memory_list(user=request.user))
    labels = dict(Memory.Kind.choices)
    groups = [(labels[kind], list(items)) for kind, items in groupby(memories, key=lambda m: m.kind)]
    return render(request, "memories/remembered.html", {"groups": groups, "total": len(memories)})


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
        },
    )
