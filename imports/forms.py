from django import forms


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Your export",
        help_text="The zip ChatGPT or Claude mailed you, or the conversations.json inside it.",
        widget=forms.ClearableFileInput(
            attrs={"accept": ".zip,.json,application/zip,application/json"}
        ),
    )


class ChoiceForm(forms.Form):
    """Which conversations to leave out (all are imported by default): a tick per one left out, so
    that an export of thousands posts only what was ticked."""

    leave_out = forms.TypedMultipleChoiceField(coerce=int, required=False)

    def __init__(self, *args, positions: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["leave_out"].choices = [(p, p) for p in positions]
