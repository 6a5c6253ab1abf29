"""Usage from files: JSON-lines or CSV of any size, streamed in batches through
``usage_events_ingest``, resumable (the usage_ingest command)."""

import hashlib
import json
from dataclasses import dataclass

from metering.services.ingest import usage_events_ingest
from sbt_site.errors import InvalidInput


@dataclass
class FileIngestReport:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list = None  # [(line number, message)], the first 100

    def __post_init__(self):
        self.rejected = self.rejected or []
        self.rejected_count = 0


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _file_events(handle, file_format: str):
    """Yield (line number, raw line bytes, event dict or error text), streaming."""
    if file_format == "csv":
        import csv
        import io

        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        reader = csv.DictReader(text)
        try:
            for row in reader:
                event, dimensions = {}, {}
                for column, cell in row.items():
                    if column is None or cell in (None, ""):
                        continue
                    if column.startswith("dimensions."):
                        dimensions[column.removeprefix("dimensions.")] = cell
                    elif column == "timestamp" and cell.isdigit():
                        event[column] = int(cell)
                    else:
                        event[column] = cell
                if dimensions:
                    event["dimensions"] = dimensions
                yield reader.line_num, json.dumps(row, sort_keys=True).encode(), event
        finally:
            text.detach()  # the caller owns (and closes) the binary handle
        return
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            yield number, line, f"not a JSON object: {exc}"
            continue
        yield number, line, event


def usage_file_ingest(*, handle, file_format: str, batch_size: int = 1000, progress=None) -> FileIngestReport:
    """Ingest a JSON-lines or CSV file (binary ``handle``) in constant memory.

    An event without ``eventId`` gets one from the exact bytes of its line, so running the
    same file again adds nothing (resumable). A bad line is reported and skipped; the rest of
    its batch is still stored. ``progress(bytes_read)`` is called after each batch.
    """
    from django.db import reset_queries

    report = FileIngestReport()
    batch: list[tuple[int, dict]] = []

    def flush():
        pending = batch[:]
        batch.clear()
        while pending:
            try:
                # the operator's import: the tenants' ingestion quota is for what clients send
                result = usage_events_ingest(events=[event for _, event in pending], enforce_quota=False)
            except InvalidInput as exc:
                bad = {}
                for error in exc.detail or []:
                    if len(error["loc"]) > 2:
                        bad.setdefault(error["loc"][2], f"{'.'.join(map(str, error['loc'][3:]))}: {error['msg']}")
                if not bad:
                    raise
                for index, message in sorted(bad.items()):
                    _reject(report, pending[index][0], message)
                pending = [item for index, item in enumerate(pending) if index not in bad]
                continue
            report.accepted += result.accepted
            report.duplicates += result.duplicates
            pending = []
        reset_queries()  # DEBUG keeps every query otherwise: memory would grow with the file
        if progress is not None:
            progress(handle.tell())

    for number, line, event in _file_events(handle, file_format):
        report.lines += 1
        if not isinstance(event, dict):
            _reject(report, number, event if isinstance(event, str) else "not a JSON object")
            continue
        if "eventId" not in event:
            event["eventId"] = "line:" + hashlib.sha256(line.rstrip(b"\r\n")).hexdigest()
        batch.append((number, event))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return report


def _reject(report: FileIngestReport, line: int, message: str) -> None:
    report.rejected_count += 1
    if len(report.rejected) < 100:
        report.rejected.append((line, message))
