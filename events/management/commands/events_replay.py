from datetime import UTC, datetime

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from events.models import Delivery, HandlerRun
from events.selectors import deliveries_to_replay, handler_runs_to_replay
from events.services import delivery_attempt, delivery_replay, handler_run_replay
from sbt_site.management.base import ServiceCommand


def parse_since(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None and parse_date(value) is not None:
        moment = datetime.combine(parse_date(value), datetime.min.time())
    if moment is None:
        raise ValueError(value)
    return timezone.make_aware(moment, UTC) if timezone.is_naive(moment) else moment


class Command(ServiceCommand):
    help = (
        "Send again the webhook deliveries, and run again the in-process subscribers, that failed "
        "or are dead (dead-letter): now, in this process, reporting what happened. What already "
        "succeeded is never sent or run twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--status",
            choices=("failed", "dead", "all"),
            default="all",
            help="failed (still retrying), dead (gave up), or all of them (default)",
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
        statuses = ["failed", "dead"] if options["status"] == "all" else [options["status"]]
        deliveries = list(deliveries_to_replay(statuses=statuses, since=since))
        runs = list(handler_runs_to_replay(statuses=statuses, since=since))
        if not deliveries and not runs:
            self.stdout.write("Nothing to replay.")
            return
        if options["dry_run"]:
            for delivery in deliveries:
                self.stdout.write(
                    f"delivery {delivery.pk}  {delivery.event.detail_type}  {delivery.status}  "
                    f"subscription {delivery.subscription_id}"
                )
            for run in runs:
                self.stdout.write(
                    f"subscriber {run.handler}  {run.event.detail_type}  {run.status}  event {run.event_id}"
                )
            self.stdout.write(f"{len(deliveries)} deliveries and {len(runs)} subscriber runs would be replayed.")
            return

        succeeded = failed = 0
        with tqdm(total=len(deliveries) + len(runs), desc="Replaying", unit="item", disable=None) as progress:
            for delivery in deliveries:
                delivery_replay(delivery=delivery, enqueue=False)
                result = delivery_attempt(delivery_id=delivery.pk)
                if result is not None and result.status == Delivery.Status.SUCCEEDED:
                    succeeded += 1
                else:
                    failed += 1
                    error = result.last_error[:300] if result is not None else "being sent by another worker"
                    self.stderr.write(f"delivery {delivery.pk} to subscription {delivery.subscription_id}: {error}")
                progress.update()
            for run in runs:
                result = handler_run_replay(run=run)
                if result.status == HandlerRun.Status.SUCCEEDED:
                    succeeded += 1
                else:
                    failed += 1
                    self.stderr.write(f"subscriber {run.handler} on event {run.event_id}: {result.last_error[:300]}")
                progress.update()
        self.stdout.write(
            f"Replayed {len(deliveries)} deliveries and {len(runs)} subscriber runs: "
            f"{succeeded} succeeded, {failed} failed."
        )
        if failed:
            self.stdout.write(
                "What failed keeps retrying with backoff. Fix the receiver or subscriber named above, then run "
                "this again or use the admin actions 'Replay delivery' / 'Replay event'."
            )
