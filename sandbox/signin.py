"""Drive the sandbox's sign-in pages over HTTP as a person would: it reads whatever form the page
shows and fills it (email, password, then a one-time code if asked). For tests and benchmarks."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import requests

from .runner import SandboxProcess


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: list[dict[str, str]] = []
        self.buttons: list[dict[str, str]] = []
        self.links: list[dict[str, str]] = []
        self._in_form = False
        self._link: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self._in_form = a.get("action", ""), True
        elif tag == "input" and self._in_form:
            self.inputs.append(a)
        elif tag == "button" and self._in_form:
            self.buttons.append({**a, "text": ""})
        elif tag == "a":
            self._link = {**a, "text": ""}
            self.links.append(self._link)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        if tag == "a":
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link["text"] += data.strip()
        elif self.buttons and self._in_form:
            self.buttons[-1]["text"] += data.strip()


class ProviderSignIn:
    """Follows the sign-in from the authorize URL until the provider sends the browser back."""

    def __init__(self, sandbox: SandboxProcess, authorize_url: str, redirect_uri: str) -> None:
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(sandbox.ca_path)
        self.redirect_uri = redirect_uri
        self.response = self.session.get(authorize_url, allow_redirects=False, timeout=30)
        self.url = authorize_url

    @property
    def text(self) -> str:
        return self.response.text

    def _form(self) -> _Form:
        form = _Form()
        form.feed(self.response.text)
        assert form.action is not None, f"no form on the page: {self.response.text[:500]}"
        return form

    def _submit(self, values: dict[str, str], button_text: str | None = None) -> str | None:
        form = self._form()
        data = {i["name"]: i.get("value", "") for i in form.inputs if i.get("name") and i.get("type") == "hidden"}
        for field in form.inputs:
            kind, name = field.get("type", "text"), field.get("name")
            if name and kind in values:
                data[name] = values[kind]
        submit = next((b for b in form.buttons if button_text is None or b["text"] == button_text), None)
        if submit and submit.get("name"):
            data[submit["name"]] = submit.get("value", "")
        return self._go("POST", urljoin(self.url, form.action or ""), data=data)

    def _go(self, method: str, url: str, **kwargs: Any) -> str | None:
        response = self.session.request(method, url, allow_redirects=False, timeout=30, **kwargs)
        while response.is_redirect:
            location = urljoin(url, response.headers["Location"])
            if location.startswith(self.redirect_uri):
                return location
            url = location
            response = self.session.get(url, allow_redirects=False, timeout=30)
        self.response, self.url = response, url
        return None

    def sign_in(self, email: str, password: str = "password") -> str | None:
        """Returns the callback URL when the provider is done, or None if it shows another page."""
        return self._submit({"email": email, "password": password},
                            button_text=None)

    def enter_code(self, code: str) -> str | None:
        return self._submit({"text": code})

    def cancel(self) -> str:
        form = self._form()
        link = next((a for a in form.links if a["text"] == "Cancel"), None)
        if link is not None:
            result = self._go("GET", urljoin(self.url, link["href"]))
        else:
            result = self._submit({}, button_text="Cancel")
        assert result is not None, self.response.text[:500]
        return result
