"""Write provisioning jobs to a JSON file (SBT's ScriptJob field names), to keep them in git."""

from provisioning import services
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = "Export provisioning jobs (all, or the NAMEs given) as JSON, to --output or standard output."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="job names (default: every job)")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, names, output, **options):
        document = services.provisioning_jobs_export(names=names)
        text = services.job_file_dumps(document)
        if output:
            with open(output, "w", encoding="utf-8") as file:
                file.write(text)
            self.stderr.write(f"Wrote {len(document['jobs'])} job(s) to {output}")
        else:
            self.stdout.write(text, ending="")
