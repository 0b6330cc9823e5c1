"""Pub/Sub push authentication, as Google does it: each push to an endpoint configured with a
service account carries ``Authorization: Bearer <JWT>``, an OpenID Connect token signed with a key
whose certificate is published at ``/oauth2/v1/certs`` (Google's own path), so a receiver checks it
exactly as it checks Google's.

The key is the sandbox's own, made at start; only the certificate URL differs from Google's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

# Reference: https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions#jwt_format
ISSUER = "https://accounts.google.com"
TOKEN_LIFETIME = 3600


class PushSigner:
    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = uuid.uuid4().hex
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox push signer")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256())
        )
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        self.signer = crypt.RSASigner.from_string(private_pem, key_id=self.key_id)

    def token(self, *, audience: str, service_account: str) -> str:
        issued = int(time.time())
        subject = str(int(hashlib.sha256(service_account.encode()).hexdigest()[:15], 16))
        claims = {"aud": audience, "azp": subject, "email": service_account, "email_verified": True,
                  "iat": issued, "exp": issued + TOKEN_LIFETIME, "iss": ISSUER, "sub": subject}
        return jwt.encode(self.signer, claims).decode("ascii")

    def routes(self) -> list[BaseRoute]:
        return [Route("/oauth2/v1/certs", self.certs, methods=["GET"])]

    async def certs(self, request: Request) -> Response:
        # Reference: https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken
        return JSONResponse({self.key_id: self.certificate_pem}, headers={"Cache-Control": "public, max-age=3600"})
