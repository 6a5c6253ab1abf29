"""python manage.py billing_webhook_reprocess [--status failed] [EVENT_ID ...]"""

from django.core.management.base import CommandError
from tqdm import tqdm

from billing import services
from billing.models import WebhookEvent
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = "Process stored billing webhook events again: the given provider event ids, or every event with --status."

    def add_arguments(self, parser):
        parser.add_argument("event_ids", nargs="*", metavar="EVENT_ID", help="provider event ids (evt_…)")
        parser.add_argument(
            "--status",
            default=WebhookEvent.Status.FAILED,
            choices=WebhookEvent.Status.values,
            help="without EVENT_IDs, reprocess every event in this status (default: failed)",
        )

    def handle(self, *args, event_ids, status, **options):
        if event_ids:
            targets = event_ids
        else:
            targets = list(
                WebhookEvent.objects.filter(status=status)
                .order_by("received", "id")
                .values_list("provider_event_id", flat=True)
            )
        if not targets:
            self.stdout.write(f"No webhook event with status {status}.")
            return
        events = []
        for batch_start in tqdm(range(0, len(targets), 100), desc="webhook events", unit="batch", file=self.stderr):
            events.extend(services.webhook_events_reprocess(event_ids=targets[batch_start : batch_start + 100]))
        counts = {}
        for event in events:
            counts[event.status] = counts.get(event.status, 0) + 1
        self.stdout.write(
            f"Reprocessed {len(events)} event(s): " + ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
        )
        failed = [event for event in events if event.status == WebhookEvent.Status.FAILED]
        for event in failed:
            self.stderr.write(f"{event.provider_event_id} ({event.event_type}): {event.error}")
        if failed:
            raise CommandError(f"{len(failed)} event(s) failed again; fix the cause shown above and rerun.")
