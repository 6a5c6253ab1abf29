import json

from events.services import subscription_create
from sbt_site.management.base import ServiceCommand


class Command(ServiceCommand):
    help = (
        "Create an outbound webhook subscription and print its id and signing secret. "
        "The secret is stored encrypted and never shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", required=True, help="The receiver's http(s) URL, e.g. https://app.example.com/sbt")
        parser.add_argument(
            "--events",
            default="",
            help='Comma-separated event types, e.g. "onboardingRequest,offboardingRequest"; '
            "omit for every control-plane event",
        )
        parser.add_argument("--secret", help="Signing secret (16+ characters); generated when omitted")
        parser.add_argument("--description", default="", help="A note for operators, e.g. 'application plane'")
        parser.add_argument(
            "--json", action="store_true", help='Print {"subscriptionId", "url", "eventTypes", "secret"}'
        )

    def handle(self, *args, **options):
        event_types = [name for name in options["events"].split(",") if name.strip()]
        subscription, secret = subscription_create(
            url=options["url"],
            event_types=event_types,
            secret=options["secret"],
            description=options["description"],
        )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "subscriptionId": str(subscription.pk),
                        "url": subscription.url,
                        "eventTypes": subscription.event_types,
                        "secret": secret,
                    }
                )
            )
            return
        self.stdout.write(self.style.SUCCESS(f"Created subscription {subscription.pk}"))
        self.stdout.write(f"  url:            {subscription.url}")
        self.stdout.write(f"  event types:    {', '.join(subscription.event_types) or 'every control-plane event'}")
        self.stdout.write(f"  signing secret: {secret}")
        self.stdout.write(
            self.style.WARNING("Store the secret in the receiver now: it is kept encrypted and cannot be shown again.")
        )
        self.stdout.write("How a receiver verifies the X-SBT-Signature header: docs/events.md")
