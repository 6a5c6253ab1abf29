from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from events.models import Delivery
from events.selectors import deliveries_to_replay
from events.services import delivery_attempt, delivery_replay


def parse_since(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None and parse_date(value) is not None:
        moment = datetime.combine(parse_date(value), datetime.min.time())
    if moment is None:
        raise ValueError(value)
    return timezone.make_aware(moment, UTC) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Send again the webhook deliveries that failed or are dead (dead-letter), now, in this "
        "process, and report what happened. Deliveries that already succeeded are never sent twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--status",
            choices=("failed", "dead", "all"),
            default="all",
            help="Which deliveries: failed (still retrying), dead (gave up), or all of them (default)",
        )
        parser.add_argument(
            "--since", help="Only events created at or after this ISO-8601 time or date, e.g. 2026-11-25T18:00Z"
        )
        parser.add_argument("--dry-run", action="store_true", help="Only list what would be replayed")

    def handle(self, *args, **options):
        since = None
        if options["since"]:
            try:
                since = parse_since(options["since"])
            except ValueError:
                raise CommandError(
                    f"--since {options['since']!r} is not an ISO-8601 date or time: "
                    "use e.g. 2026-11-25 or 2026-11-25T18:00Z"
                ) from None
        statuses = [Delivery.Status.FAILED, Delivery.Status.DEAD] if options["status"] == "all" else [options["status"]]
        deliveries = list(deliveries_to_replay(statuses=statuses, since=since))
        if not deliveries:
            self.stdout.write("Nothing to replay.")
            return
        if options["dry_run"]:
            for delivery in deliveries:
                self.stdout.write(
                    f"{delivery.pk}  {delivery.event.detail_type}  {delivery.status}  {delivery.subscription.url}"
                )
            self.stdout.write(f"{len(deliveries)} deliveries would be replayed.")
            return
        outcomes = {"succeeded": 0, "failed": 0}
        for delivery in tqdm(deliveries, desc="Replaying deliveries", unit="delivery", disable=None):
            delivery_replay(delivery=delivery, enqueue=False)
            result = delivery_attempt(delivery_id=delivery.pk)
            if result is not None and result.status == Delivery.Status.SUCCEEDED:
                outcomes["succeeded"] += 1
            else:
                outcomes["failed"] += 1
                error = result.last_error[:200] if result is not None else "being sent by another worker"
                self.stderr.write(f"{delivery.pk} to {delivery.subscription.url}: {error}")
        self.stdout.write(
            f"Replayed {len(deliveries)} deliveries: {outcomes['succeeded']} succeeded, {outcomes['failed']} failed."
        )
        if outcomes["failed"]:
            self.stdout.write(
                "Failed ones keep retrying with backoff; check the receivers above, then run this again "
                "or use the admin action 'Replay delivery'."
            )
