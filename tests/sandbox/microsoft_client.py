"""Driving the Microsoft sandbox the way the product does: msal for sign-in, requests for Graph."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import msal
import requests

from sandbox.runner import SandboxProcess

CLIENT_ID = "aspire-sync-test-client"
CLIENT_SECRET = "sandbox-secret"
REDIRECT_URI = "http://localhost:8000/connect/microsoft/callback"
SCOPES = ["https://graph.microsoft.com/Mail.ReadWrite", "https://graph.microsoft.com/Mail.Send",
          "https://graph.microsoft.com/Calendars.ReadWrite", "https://graph.microsoft.com/User.Read"]


def ca_session(sandbox: SandboxProcess) -> requests.Session:
    """A session trusting only the sandbox CA. trust_env is off because REQUESTS_CA_BUNDLE in the
    environment would otherwise override session.verify."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_path)
    return session


def msal_app(sandbox: SandboxProcess, session: requests.Session, *, secret: str = CLIENT_SECRET,
             tenant: str = "organizations") -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        CLIENT_ID, client_credential=secret, authority=f"{sandbox.base_url}/{tenant}",
        instance_discovery=False, http_client=session,
    )


def create_account(sandbox: SandboxProcess, email: str, **spec: Any) -> dict[str, Any]:
    result: dict[str, Any] = sandbox.control("POST", "/accounts", json={"provider": "microsoft", "email": email,
                                                                        **spec})
    return result


class SignIn:
    """One interactive sign-in: the authorize page, the password form and maybe the code form."""

    def __init__(self, sandbox: SandboxProcess, session: requests.Session, app: msal.ConfidentialClientApplication):
        self.session = session
        self.app = app
        self.flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
        self.page = session.get(self.flow["auth_uri"])
        self.page.raise_for_status()
        self.action = self.flow["auth_uri"].split("?")[0]

    def flow_id(self) -> str:
        match = re.search(r"name='flow' value='([^']+)'", self.page.text)
        assert match, self.page.text
        return match.group(1)

    def submit(self, **fields: str) -> requests.Response:
        response = self.session.post(self.action, data={"flow": self.flow_id(), **fields}, allow_redirects=False)
        if response.status_code == 200:
            self.page = response
        return response

    def password(self, email: str, password: str = "password") -> requests.Response:
        return self.submit(login=email, passwd=password)

    def code(self, code: str) -> requests.Response:
        return self.submit(otc=code)

    def cancel(self) -> requests.Response:
        href = re.search(r"href='([^']*cancel\?flow=[^']+)'", self.page.text)
        assert href
        # Resolved against the page's URL, as a browser does.
        return self.session.get(urljoin(self.page.url, href.group(1)), allow_redirects=False)

    @staticmethod
    def redirect_params(response: requests.Response) -> dict[str, str]:
        assert response.status_code == 302, response.text
        location = response.headers["Location"]
        assert location.startswith(REDIRECT_URI)
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def redeem(self, response: requests.Response) -> dict[str, Any]:
        result: dict[str, Any] = self.app.acquire_token_by_auth_code_flow(self.flow, self.redirect_params(response))
        return result


def sign_in(sandbox: SandboxProcess, email: str, password: str = "password") -> dict[str, Any]:
    session = ca_session(sandbox)
    flow = SignIn(sandbox, session, msal_app(sandbox, session))
    result = flow.redeem(flow.password(email, password))
    assert "access_token" in result, result
    return result


class Graph:
    """Graph v1.0 over requests with a bearer token."""

    def __init__(self, sandbox: SandboxProcess, token: str) -> None:
        self.base = f"{sandbox.base_url}/v1.0"
        self.session = ca_session(sandbox)
        self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else f"{self.base}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url(path), timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json() if response.content else None

    def pages(self, path: str, **kwargs: Any) -> tuple[list[dict[str, Any]], str | None]:
        """Follow @odata.nextLink to the end; returns the items and the final deltaLink, if any."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        while url:
            body = self.ok("GET", url, **kwargs)
            items.extend(body["value"])
            url = body.get("@odata.nextLink")
            if url is None:
                return items, body.get("@odata.deltaLink")
        return items, None


def graph_for(sandbox: SandboxProcess, email: str, **spec: Any) -> Graph:
    create_account(sandbox, email, **spec)
    return Graph(sandbox, sign_in(sandbox, email)["access_token"])
