"""Run a provisioning job now, in this process, for a stored event, printing the log as it comes."""

from django.core.management.base import CommandError

from provisioning import services
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Run JOB now for the event EVENT_ID (a new attempt, its outcome reported as a worker would), "
        "streaming the script's log. Refused once the job succeeded for that event."
    )
    service_error_hint = "See the jobs and their runs in the admin under Provisioning."

    def add_arguments(self, parser):
        parser.add_argument("job", help="the job's name")
        parser.add_argument("--event-id", required=True, help="the id of the event (Events in the admin)")

    def handle(self, *args, job, event_id, **options):
        run = services.provisioning_run_for_event_create(job_name=job, event_id=event_id)
        self.stderr.write(f"Running {run.job} (attempt {run.attempt}, run {run.pk}) for event {event_id}")
        self.stdout.ending = ""
        finished = services.provisioning_run_execute(run_id=run.pk, echo=self._echo)
        self.stdout.ending = "\n"
        if finished is None:
            raise CommandError(f"Run {run.pk} was taken by a worker meanwhile; see it in the admin.")
        if finished.status != finished.Status.SUCCEEDED:
            raise CommandError(f"Run {finished.pk} {finished.get_status_display()}: {finished.reason}")
        self.stderr.write(f"Run {finished.pk} succeeded; outputs: {', '.join(finished.outputs) or 'none'}")

    def _echo(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
