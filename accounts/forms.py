from django import forms
from django.contrib.auth.forms import UserCreationForm

from accounts.models import (
    ConsentRecord,
    MemorySettings,
    SensitiveCategory,
    User,
    time_zone_names,
)
from accounts.scopes import APP_SCOPES, Scope
from accounts.services import password_recheck


class SignupForm(UserCreationForm):
    remember = forms.BooleanField(
        required=False,
        label="Let the assistant remember me across conversations",
        help_text="Ticking turns on two things: saved memories (facts, preferences and projects it picks "
        "out of what you say) and reference to your past chats (it may look back at earlier conversations). "
        "You can see, change and delete everything it remembers, and switch either off in Memory settings "
        "at any time.",
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "time_zone")
        # Filled in by static/js/time_zone.js with the browser's zone; UTC without JavaScript.
        widgets = {"time_zone": forms.HiddenInput(attrs={"data-detect-time-zone": ""})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].required = False  # no JavaScript: UTC

    def clean_time_zone(self) -> str:
        value = self.cleaned_data.get("time_zone") or "UTC"
        # an odd browser value is not the user's fault
        return value if value in time_zone_names() else "UTC"


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="My time zone",
        required=False,
        help_text="What 'today', 'yesterday' or 'next Friday' mean.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, initial={"time_zone": user.time_zone}, **kwargs)
        self.user = user
        self.fields["time_zone"].choices = [(name, name) for name in sorted(time_zone_names())]

    def clean_time_zone(self) -> str:
        return self.cleaned_data["time_zone"] or self.user.time_zone  # not sent: unchanged


class MemorySettingsForm(forms.ModelForm):
    class Meta:
        model = MemorySettings
        fields = ("memory_enabled", "use_past_chats", "temporary_chat_hours")
        labels = {
            "memory_enabled": "Saved memories",
            "use_past_chats": "Reference my past chats",
            "temporary_chat_hours": "Delete temporary chats after (hours)",
        }
        help_texts = {
            "memory_enabled": "Ticked: the assistant keeps facts, preferences and projects from what you "
            "say, and uses them in replies (with your consent). Unticked: nothing is learned or used.",
            "use_past_chats": "Ticked: it may also look back at your earlier conversations themselves, not "
            "only at the memories it saved.",
        }
        widgets = {"temporary_chat_hours": forms.NumberInput(attrs={"min": 1, "max": 720})}

    def clean_temporary_chat_hours(self) -> int:
        hours = self.cleaned_data["temporary_chat_hours"]
        if not 1 <= hours <= 720:
            raise forms.ValidationError("Between 1 and 720 hours.")
        return hours


class ConsentForm(forms.Form):
    purpose = forms.CharField(max_length=100)
    granted = forms.TypedChoiceField(
        choices=[("1", "grant"), ("0", "withdraw")], coerce=lambda v: v == "1"
    )

    def clean_purpose(self) -> str:
        purpose = self.cleaned_data["purpose"]
        if purpose not in consent_purposes():
            raise forms.ValidationError("Unknown purpose.")
        return purpose


def consent_purposes() -> dict[str, str]:
    """Every purpose a user can grant or withdraw on the consent page, with its label."""
    purposes = {ConsentRecord.Purpose.MEMORY.value: ConsentRecord.Purpose.MEMORY.label}
    for category in SensitiveCategory:
        purposes[ConsentRecord.SENSITIVE_PREFIX + category.value] = (
            f"Remember sensitive data: {category.label}"
        )
    return purposes


class ReauthenticateForm(forms.Form):
    """The password again, now, for a sensitive action: counted against guessing and refused while
    locked out (`password_recheck`)."""

    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request, self.user = request, request.user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not password_recheck(request=self.request, user=self.user, password=password):
            raise forms.ValidationError("That is not your password.")
        return password


class ConfirmDestructiveForm(ReauthenticateForm):
    """Re-authentication and a typed confirmation phrase for destructive actions."""

    confirmation = forms.CharField(max_length=100)

    def __init__(self, *args, request, phrase: str, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.phrase = phrase
        self.fields["confirmation"].label = f'Type "{phrase}" to confirm'

    def clean_confirmation(self) -> str:
        typed = self.cleaned_data["confirmation"].strip()
        if typed.lower() != self.phrase.lower():
            raise forms.ValidationError(f'Type exactly "{self.phrase}".')
        return typed


class ForgetEverythingForm(ConfirmDestructiveForm):
    delete_account = forms.BooleanField(required=False, label="Also delete my account")


class AppGrantForm(forms.Form):
    """Grant a registered app access to my memory, with the scopes I tick."""

    app = forms.IntegerField(widget=forms.HiddenInput)
    scopes = forms.MultipleChoiceField(
        choices=[(scope, Scope(scope).label) for scope in APP_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        label="What it may do",
    )


class ApiKeyCreateForm(ReauthenticateForm):
    """A new personal API key: its name, what it may do (the scopes I tick), when it stops working;
    with my password again."""

    EXPIRY_DAYS = [("", "Never"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")]

    name = forms.CharField(max_length=100, label="Name", help_text="What the key is for.")
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, label="What it may do"
    )
    expires_in_days = forms.TypedChoiceField(
        choices=EXPIRY_DAYS,
        coerce=int,
        empty_value=None,
        required=False,
        initial="90",
        label="Expires",
    )
    field_order = ["name", "scopes", "expires_in_days", "password"]
