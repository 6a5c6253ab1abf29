"""Celery tasks of the accounts app: thin wrappers around services."""

from celery import shared_task

from accounts import services


@shared_task(name="accounts.clear_expired_tokens")
def clear_expired_tokens() -> None:
    services.tokens_clear_expired()
