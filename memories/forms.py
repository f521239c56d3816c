from django import forms

from memories.models import Memory

MEMORY_MAX_CHARS = 500


class RememberForm(forms.Form):
    kind = forms.ChoiceField(choices=Memory.Kind.choices, initial=Memory.Kind.FACT)
    text = forms.CharField(
        max_length=MEMORY_MAX_CHARS,
        widget=forms.TextInput(attrs={"placeholder": "e.g. User is allergic to peanuts"}),
    )


class EditForm(forms.Form):
    text = forms.CharField(max_length=MEMORY_MAX_CHARS, widget=forms.Textarea(attrs={"rows": 2}))


class FilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    kind = forms.ChoiceField(required=False, choices=[("", "All kinds"), *Memory.Kind.choices])
    source = forms.ChoiceField(
        required=False, choices=[("", "All sources"), *Memory.Source.choices]
    )
