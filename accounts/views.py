from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import ConsentForm, ForgetEverythingForm, MemorySettingsForm, SignupForm, consent_purposes
from accounts.models import AccessEvent, ConsentRecord
from accounts.privacy import forget_everything
from accounts.selectors import consents_in_force, memory_settings_get
from accounts.services import consent_set, memory_settings_update


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("chat:index")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        if form.cleaned_data["remember"]:
            consent_set(user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=True, method="signup form")
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat:index")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def memory_settings(request):
    """Memory on/off, use of past chats, how long temporary chats are kept."""
    form = MemorySettingsForm(request.POST or None, instance=memory_settings_get(user=request.user))
    if request.method == "POST" and form.is_valid():
        memory_settings_update(user=request.user, **form.cleaned_data)
        messages.success(request, "Memory settings saved. They apply from your next message.")
        return redirect("memory_settings")
    return render(request, "accounts/memory_settings.html", {"form": form})


@login_required
def consent(request):
    """Each purpose with the consent in force (when, how, which policy version) and its history."""
    in_force = consents_in_force(user=request.user)
    purposes = [(purpose, label, in_force.get(purpose)) for purpose, label in consent_purposes().items()]
    history = ConsentRecord.objects.for_user(request.user)[:100]
    return render(request, "accounts/consent.html", {"purposes": purposes, "history": history})


@login_required
@require_POST
def consent_change(request):
    """Grant or withdraw one purpose: one click, in force at once."""
    form = ConsentForm(request.POST)
    if form.is_valid():
        consent_set(
            user=request.user,
            purpose=form.cleaned_data["purpose"],
            granted=form.cleaned_data["granted"],
            method="consent page",
        )
        messages.success(request, "Saved. It applies from now on.")
    else:
        messages.error(request, "That consent could not be changed.")
    return redirect("consent")


FORGET_PHRASE = "forget everything"


@login_required
@require_http_methods(["GET", "POST"])
def forget_everything_view(request):
    """Erase all memory and chat data (optionally the account): password and typed phrase required."""
    form = ForgetEverythingForm(request.POST or None, user=request.user, phrase=FORGET_PHRASE)
    if request.method == "POST" and form.is_valid():
        delete_account = form.cleaned_data["delete_account"]
        forget_everything(user=request.user, delete_account=delete_account)
        if delete_account:
            logout(request)
            messages.success(request, "Your account and everything in it are deleted.")
            return redirect("login")
        messages.success(request, "Done: every conversation and everything remembered is erased.")
        return redirect("memories:remembered")
    return render(request, "accounts/forget_everything.html", {"form": form})


@login_required
def access_log(request):
    """Who used or read my memories, and when: the assistant (in which conversation), API keys, admins."""
    events = AccessEvent.objects.for_user(request.user).select_related("conversation", "api_key")[:500]
    return render(request, "accounts/access_log.html", {"events": events})
