from django.core.management.base import CommandError
from tqdm import tqdm

from metering.services import rollup_zone_add, rollup_zone_remove, rollup_zones_list
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "List, add or remove the time zones whose local days are rolled up ahead, so whole answers in "
        "those zones' days, weeks and months read one row per tenant and day (docs/metering.md)."
    )
    service_error_hint = "See docs/metering.md, 'Rollups in your customers' time zones'."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("list", "add", "remove"))
        parser.add_argument("zones", nargs="*", metavar="ZONE", help="IANA names, e.g. America/New_York")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        action, names = options["action"], options["zones"]
        if action == "list":
            zones = rollup_zones_list()
            for zone in zones:
                state = "ready" if zone.ready else "backfill unfinished: add it again"
                self.stdout.write(f"{zone.name}\t{state}\tadded {zone.created:%Y-%m-%d %H:%M} UTC")
            if not zones:
                self.stdout.write("No rollup time zones: every zone is answered from the UTC-aligned rollups.")
            return
        if not names:
            raise CommandError(f"Name the zones to {action}, e.g. America/New_York Asia/Kolkata.")
        for name in names:
            if action == "remove":
                rollup_zone_remove(name=name)
                self.stdout.write(f"Removed {name}: its rows are deleted, its answers read the UTC rollups again.")
                continue
            bars = []  # made at the first progress: a zone refused shows no bar

            def progress(done, total, name=name, bars=bars):
                if not bars:
                    bars.append(
                        tqdm(total=total, desc=f"backfill {name}", unit="tenant", file=self.stderr,
                             disable=options["no_progress"])
                    )  # fmt: skip
                bars[0].update(done - bars[0].n)

            try:
                zone = rollup_zone_add(name=name, progress=progress)
            finally:
                for bar in bars:
                    bar.close()
            self.stdout.write(f"Added {zone.name}: ready, its days are rolled up from now on and backfilled.")
