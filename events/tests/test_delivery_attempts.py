"""The per-attempt log of webhook deliveries (DeliveryAttempt) and the endpoint health read from
it, against a real HTTP receiver on loopback."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Delivery, DeliveryAttempt
from events.selectors import delivery_attempt_list, delivery_status_counts, subscription_health_list
from events.services import delivery_attempt, delivery_replay, subscription_create, subscription_send_test_event

pytestmark = pytest.mark.django_db


def test_each_attempt_is_logged_with_its_answer_and_a_replay_keeps_the_earlier_ones(
    fast_retries, receiver, django_capture_on_commit_callbacks
):
    receiver.default = 500
    subscription, _ = subscription_create(url=receiver.url, event_types=[])
    with django_capture_on_commit_callbacks(execute=True):
        delivery = subscription_send_test_event(subscription=subscription)
    delivery.refresh_from_db()
    # eager Celery may run a retry whose tiny backoff has passed: one attempt or more, all 500
    assert delivery.status in (Delivery.Status.FAILED, Delivery.Status.DEAD)
    failed_attempts = len(receiver.requests)

    receiver.default = 200
    with django_capture_on_commit_callbacks(execute=True):
        delivery_replay(delivery=delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SUCCEEDED, 1)

    latest, *earlier = delivery_attempt_list(delivery_id=delivery.pk)
    assert len(earlier) == failed_attempts and len(receiver.requests) == failed_attempts + 1
    assert [(a.number, a.status_code, a.succeeded) for a in reversed(earlier)] == [
        (number, 500, False) for number in range(1, failed_attempts + 1)
    ]
    assert earlier[0].response == "HTTP 500: receiver is unhappy"
    # the replay's attempt counter starts over; the log keeps the earlier attempts
    assert (latest.number, latest.status_code, latest.succeeded, latest.response) == (1, 200, True, "")
    assert earlier[0].started_at <= latest.started_at
    assert 0 <= latest.duration_ms < 10_000


def test_an_attempt_without_an_answer_is_logged_without_a_status(fast_retries, receiver):
    subscription, _ = subscription_create(url=receiver.url, event_types=[])
    delivery = subscription_send_test_event(subscription=subscription)  # not sent: on_commit never runs here
    receiver.answers = ["hang"]
    delivery_attempt(delivery_id=delivery.pk)

    (attempt,) = DeliveryAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code is None and not attempt.succeeded
    assert attempt.response.startswith("No ")  # "No answer within ..." or "No complete answer within ..."
    assert len(attempt.response) <= 500


def test_endpoint_health_counts_attempts_since_a_moment_and_names_the_last_failure(
    fast_retries, receiver, django_capture_on_commit_callbacks
):
    failing, _ = subscription_create(url=receiver.url, event_types=["someCustomEvent"], description="failing")
    healthy, _ = subscription_create(url=receiver.url, event_types=["otherCustomEvent"], description="healthy")
    subscription_create(url=receiver.url, event_types=["quietCustomEvent"], description="idle")
    receiver.answers = [200]
    with django_capture_on_commit_callbacks(execute=True):
        subscription_send_test_event(subscription=healthy)
    receiver.default = 503
    with django_capture_on_commit_callbacks(execute=True):
        delivery = subscription_send_test_event(subscription=failing)
    # its retry is due after a tiny backoff: attempt it once more, as the sweep would
    delivery_attempt(delivery_id=delivery.pk, now=timezone.now() + timedelta(seconds=5))

    health = {
        row.subscription.description: row for row in subscription_health_list(since=timezone.now() - timedelta(hours=1))
    }
    assert list(health) == ["failing", "healthy", "idle"]
    assert (health["healthy"].attempts, health["healthy"].succeeded, health["healthy"].success_rate) == (1, 1, 1.0)
    assert health["healthy"].last_failure is None
    failing_health = health["failing"]
    assert failing_health.attempts == len(receiver.requests) - 1
    assert failing_health.last_failure is not None and failing_health.last_failure.status_code == 503
    assert (failing_health.succeeded, failing_health.success_rate) == (0, 0.0)
    assert failing_health.attempts >= 2
    assert (health["idle"].attempts, health["idle"].success_rate, health["idle"].last_failure) == (0, None, None)

    later = subscription_health_list(since=timezone.now() + timedelta(minutes=1), subscription_id=failing.pk)
    assert [(row.subscription, row.attempts, row.success_rate) for row in later] == [(failing, 0, None)]


def test_delivery_status_counts_name_every_status():
    assert delivery_status_counts() == {"pending": 0, "succeeded": 0, "failed": 0, "dead": 0}
