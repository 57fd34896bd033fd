"""The staff console for the manager app."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from linkismanager.models import Token


class TokenForm(forms.ModelForm):
    code = forms.CharField(
        required=False,
        strip=True,
        max_length=256,
        help_text="The token code clients send as Token-Code. Leave empty to generate one (new "
        "tokens) or to keep the current one. It is shown once and stored only as a hash.",
    )

    class Meta:
        model = Token
        fields = ["name", "code", "legal_users", "legal_hosts", "is_admin", "expires_at"]


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    form = TokenForm
    list_display = ["name", "key_prefix", "legal_users", "legal_hosts", "is_admin", "expires_at", "modified"]
    list_filter = ["is_admin"]
    search_fields = ["name", "legal_users"]
    readonly_fields = ["key_prefix", "created", "modified"]

    def save_model(self, request, obj: Token, form: TokenForm, change: bool) -> None:
        code = form.cleaned_data.get("code") or ""
        if not code and not change:
            code = Token.generate_code()
        if code:
            obj.set_code(code)
        super().save_model(request, obj, form, change)
        if code:
            messages.warning(request, f"Token code for {obj.name}: {code} — copy it now, it is not shown again.")
