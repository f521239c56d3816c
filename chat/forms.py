from django import forms
from django.conf import settings


class MessageForm(forms.Form):
    message = forms.CharField(
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "Message the assistant…", "autofocus": True}
        ),
        max_length=settings.MESSAGE_MAX_CHARS,
        strip=True,
    )


class NewConversationForm(MessageForm):
    temporary = forms.BooleanField(
        required=False,
        label="Temporary chat (not remembered, not using memory; deleted after a while)",
    )
