"""Subscription signing secrets: generated, encrypted at rest, and used to sign deliveries.

A signing secret must be readable to sign with, so unlike an OAuth client secret it cannot be
hashed. It is encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived with HKDF
from ``SBT["EVENT_SECRET_ENCRYPTION_KEY"]``, or from ``SECRET_KEY`` when that is empty. Rotating
the key therefore makes existing secrets unreadable: re-create the subscriptions afterwards.
"""

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from sbt_site.conf import sbt_settings

SIGNATURE_VERSION = "v1"


def _fernet() -> Fernet:
    master = sbt_settings.EVENT_SECRET_ENCRYPTION_KEY or settings.SECRET_KEY
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sbt.events.subscription-secret").derive(
        master.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def secret_generate() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def secret_encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode("ascii")


def secret_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise ValueError(
            "The subscription's signing secret cannot be decrypted: the encryption key "
            "(SBT EVENT_SECRET_ENCRYPTION_KEY or SECRET_KEY) changed since it was stored. "
            "Create the subscription again with a new secret."
        ) from None


def signature(*, secret: str, event_id: str, timestamp: str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "{event_id}.{timestamp}." + body)>`` (docs/events.md)."""
    message = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"
