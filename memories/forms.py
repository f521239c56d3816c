from django import forms

from memories.models import Memory

MEMORY_MAX_CHARS = 500


class RememberForm(forms.Form):
    """ "Remember this" on the page that also has the search form: its own ids ("remember_kind")."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "remember_%s")
        super().__init__(*args, **kwargs)

    kind = forms.ChoiceField(
        label="Kind of memory", choices=Memory.Kind.choices, initial=Memory.Kind.FACT
    )
    text = forms.CharField(
        label="What to remember",
        max_length=MEMORY_MAX_CHARS,
        widget=forms.TextInput(attrs={"placeholder": "e.g. User is allergic to peanuts"}),
    )


class EditForm(forms.Form):
    text = forms.CharField(max_length=MEMORY_MAX_CHARS, widget=forms.Textarea(attrs={"rows": 2}))


class FilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search my memories",
        widget=forms.TextInput(
            attrs={"placeholder": "Search, e.g. diet or Lisbon", "type": "search"}
        ),
    )
    kind = forms.ChoiceField(
        required=False, label="Kind", choices=[("", "All kinds"), *Memory.Kind.choices]
    )
    source = forms.ChoiceField(
        required=False, label="Source", choices=[("", "All sources"), *Memory.Source.choices]
    )


class EndForm(forms.Form):
    ends_on = forms.DateField(
        required=False,
        label="True until (the last day it is used)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
