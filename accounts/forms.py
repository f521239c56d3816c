from django import forms
from django.contrib.auth.forms import UserCreationForm

from accounts.models import User


class SignupForm(UserCreationForm):
    remember = forms.BooleanField(
        required=False,
        label="Let the assistant remember what I tell it across conversations",
        help_text="You can see, change and delete everything it remembers, and withdraw this at any time.",
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username",)
