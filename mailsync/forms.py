"""The compose form: what the office user types, checked before anything is queued."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from .outgoing import AttachmentFile, clean_subject, guess_content_type, parse_addresses


class ComposeForm(forms.Form):
    to = forms.CharField(label="To", max_length=5000,
                         help_text="Separate addresses with commas.")
    cc = forms.CharField(label="Cc", max_length=5000, required=False)
    subject = forms.CharField(label="Subject", max_length=900)
    body = forms.CharField(label="Message", widget=forms.Textarea(attrs={"rows": 12}), max_length=200_000)
    regarding = forms.ChoiceField(label="Regarding", required=False)

    def __init__(self, *args: Any, regarding_choices: list[tuple[str, str]],
                 files_list: list[UploadedFile] | None = None, message_required: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A forward may go without a message of its own (``replies.Mode.needs_words``).
        self.fields["body"].required = message_required
        if not message_required:
            self.fields["body"].help_text = "Optional: the forwarded email and its attachments follow."
        regarding = self.fields["regarding"]
        assert isinstance(regarding, forms.ChoiceField)
        regarding.choices = [("", "Nothing in particular"), *regarding_choices]
        self.uploaded = files_list or []
        limit_mb = settings.MAIL_SEND_MAX_ATTACHMENT_BYTES // (1024 * 1024)
        self.attachment_help = f"Up to {limit_mb} MB in all: mail providers refuse larger messages."

    def clean_to(self) -> list[str]:
        addresses = parse_addresses(self.cleaned_data["to"], field="To")
        if not addresses:
            raise forms.ValidationError("Enter at least one address to send to.")
        return addresses

    def clean_cc(self) -> list[str]:
        return parse_addresses(self.cleaned_data["cc"], field="Cc")

    def clean_subject(self) -> str:
        return clean_subject(self.cleaned_data["subject"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        total = sum(upload.size or 0 for upload in self.uploaded)
        if total > settings.MAIL_SEND_MAX_ATTACHMENT_BYTES:
            self.add_error(None, f"The attachments are {total / 1024 / 1024:.1f} MB in all. {self.attachment_help}")
        for upload in self.uploaded:
            if any(character in (upload.name or "") for character in "\r\n\x00"):
                self.add_error(None, "An attachment's name can't contain line breaks.")
        return cleaned

    def attachments(self) -> list[AttachmentFile]:
        files = []
        for upload in self.uploaded:
            name = upload.name or "attachment"
            files.append(AttachmentFile(name, guess_content_type(name, upload.content_type or ""), upload.read()))
        return files
