from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import ConfirmDestructiveForm
from chat import selectors, services
from chat.forms import MessageForm, NewConversationForm
from chat.services import conversation_delete
from memories import selectors as memory_selectors


@login_required
def index(request):
    """The conversation list and a box to start a new conversation."""
    return render(
        request,
        "chat/index.html",
        {
            "conversations": selectors.conversation_list(user=request.user)[:50],
            "form": NewConversationForm(),
            "due_soon": memory_selectors.due_soon(user=request.user),
        },
    )


@login_required
def conversation(request, conversation_id: int):
    conv = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    return render(
        request,
        "chat/conversation.html",
        {
            "conversation": conv,
            "chat_messages": selectors.message_list(conversation=conv),
            "conversations": selectors.conversation_list(user=request.user)[:50],
            "form": MessageForm(),
            "due_soon": memory_selectors.due_soon(user=request.user, conversation=conv)
            if conv.is_open
            else [],
        },
    )


@login_required
@require_POST
def send(request, conversation_id: int | None = None):
    """Post a message (to a new conversation when no id is given), then show the conversation."""
    conv = (
        selectors.conversation_get(user=request.user, conversation_id=conversation_id)
        if conversation_id
        else None
    )
    form = MessageForm(request.POST) if conv else NewConversationForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("message", []):
            messages.error(request, error)
        return redirect("chat:conversation", conv.pk) if conv else redirect("chat:index")
    try:
        result = services.chat_turn(
            user=request.user,
            conversation=conv,
            text=form.cleaned_data["message"],
            temporary=form.cleaned_data.get("temporary", False),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("chat:conversation", conv.pk) if conv else redirect("chat:index")
    return redirect(f"/chat/{result.conversation.pk}/#message-{result.reply.pk}")


@login_required
@require_POST
def end(request, conversation_id: int):
    conv = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    if services.conversation_end(conversation=conv):
        messages.success(request, "Conversation ended. What you said in it is being remembered.")
    return redirect("chat:conversation", conv.pk)


@login_required
@require_http_methods(["GET", "POST"])
def delete(request, conversation_id: int):
    """Delete a conversation and what was learned only from it: password and typed "delete"
    required."""
    conv = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    form = ConfirmDestructiveForm(request.POST or None, request=request, phrase="delete")
    if request.method == "POST" and form.is_valid():
        result = conversation_delete(user=request.user, conversation=conv, receipt=True)
        messages.success(
            request,
            f"Conversation deleted, with {result['memories']} memory(ies) learned only from it. "
            "Its signed receipt is on the Erasure receipts page.",
        )
        return redirect("chat:index")
    return render(request, "chat/delete.html", {"conversation": conv, "form": form})
