from datetime import UTC, timedelta

from django.core.management.base import CommandError
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from metering.services import usage_rollups_rebuild
from sbt_site.management.base import ServiceCommand


def _moment(raw: str, name: str):
    moment = parse_datetime(raw)
    if moment is None:
        raise CommandError(f"{name} {raw!r} is not an ISO-8601 time, e.g. 2026-01-31T00:00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(ServiceCommand):
    help = "Recompute a meter's rollups over a time range from its raw events (repairs drifted rollups)."
    service_error_hint = "List meters with GET /api/v1/meters or in the admin."

    def add_arguments(self, parser):
        parser.add_argument("--meter", required=True, help="the meter's API name")
        parser.add_argument("--from", dest="start", required=True, help="ISO-8601 start (UTC when no offset)")
        parser.add_argument("--to", dest="end", required=True, help="ISO-8601 end, exclusive")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        start, end = _moment(options["start"], "--from"), _moment(options["end"], "--to")
        if start >= end:
            raise CommandError("--from must be before --to")
        # one day per transaction: bounded locks and memory, and progress to show
        days = []
        cursor = start
        while cursor < end:
            days.append((cursor, min(cursor + timedelta(days=1), end)))
            cursor += timedelta(days=1)
        rows = 0
        for day_start, day_end in tqdm(days, unit="day", desc="rebuild", disable=options["no_progress"]):
            rows += usage_rollups_rebuild(meter_api_name=options["meter"], start=day_start, end=day_end)
        self.stdout.write(f"Rebuilt {rows} rollup rows of {options['meter']} from {start} to {end}.")
