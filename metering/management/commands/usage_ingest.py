import os

from django.core.management.base import CommandError
from tqdm import tqdm

from metering.services import usage_file_ingest
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Ingest usage events from a JSON-lines or CSV file of any size (constant memory). "
        "Re-running the same file adds nothing: events are stored exactly once."
    )
    service_error_hint = "Nothing of the current batch was stored; re-run to resume."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to a .jsonl (one event per line) or .csv file")
        parser.add_argument("--format", choices=["jsonl", "csv"], help="default: from the file extension")
        parser.add_argument("--batch-size", type=int, default=1000, help="events per transaction (1 to 1000)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        path = options["file"]
        file_format = options["format"] or ("csv" if path.lower().endswith(".csv") else "jsonl")
        if not 1 <= options["batch_size"] <= 1000:
            raise CommandError("--batch-size must be between 1 and 1000")
        try:
            size = os.path.getsize(path)
            handle = open(path, "rb")  # noqa: SIM115 - closed below, after the progress bar
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}. Check the path and its permissions.") from exc
        bar = tqdm(total=size, unit="B", unit_scale=True, desc="usage_ingest", disable=options["no_progress"])

        def progress(position: int) -> None:
            bar.update(position - bar.n)

        try:
            report = usage_file_ingest(
                handle=handle, file_format=file_format, batch_size=options["batch_size"], progress=progress
            )
        finally:
            bar.close()
            handle.close()
        self.stdout.write(
            f"{report.lines} lines: {report.accepted} events stored, {report.duplicates} already stored (duplicates), "
            f"{report.rejected_count} rejected"
        )
        for line, message in report.rejected:
            self.stderr.write(f"  line {line}: {message}")
        if report.rejected_count:
            raise CommandError(
                f"{report.rejected_count} lines were rejected (listed above, the first 100). Fix them and run the "
                "same file again: lines already stored are not added twice."
            )
