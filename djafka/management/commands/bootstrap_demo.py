"""Create the demo tenant, an operator login and an API key, printing secrets once."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from djafka.drivers import DEMO_TENANT
from djafka.models import ApiKey, Tenant

DEMO_KEY_NAME = "demo key"


class Command(BaseCommand):
    help = (
        "Create the 'demo' tenant, an 'admin' operator login and a demo API key. Safe to run "
        "again: what exists is kept and its secrets are not shown again."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where web listens.")
        parser.add_argument("--brokers", type=int, default=1, help="Broker nodes being started.")
        parser.add_argument("--kafka-port", type=int, default=9092, help="First broker's port.")

    @transaction.atomic
    def handle(
        self, *args: object, url: str, brokers: int, kafka_port: int, **options: object
    ) -> None:
        tenant, _ = Tenant.objects.get_or_create(
            name=DEMO_TENANT, defaults={"display_name": "Demo tenant"}
        )
        User = get_user_model()
        bootstrap = ",".join(f"127.0.0.1:{kafka_port + i}" for i in range(brokers))
        lines = [
            f"Djafka is starting at {url}/ (admin: {url}/admin/, API docs: {url}/api/docs/)",
            f"Kafka bootstrap servers: {bootstrap} (SASL_PLAINTEXT, mechanism PLAIN)",
        ]
        if not User.objects.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@localhost", password)
            lines.append(f"Admin login (shown once): admin / {password}")
        else:
            lines.append(
                "Admin login: admin (password shown at first run; "
                "reset with: .venv/bin/python manage.py changepassword admin)"
            )
        existing = ApiKey.objects.active().filter(tenant=tenant, name=DEMO_KEY_NAME).first()
        if existing is None:
            issued = ApiKey.issue(tenant, DEMO_KEY_NAME)
            lines.append(f"Demo tenant API key (shown once): {issued.token}")
            lines.append(
                f"  Kafka clients: sasl username {issued.api_key.prefix}, "
                f"password {issued.secret}"
            )
            lines.append(
                f"  try: curl -H 'Authorization: Bearer {issued.token}' -H "
                f'\'Content-Type: application/json\' -d \'{{"name": "orders", '
                f'"partition_count": 3}}\' {url}/api/v1/topics'
            )
        else:
            lines.append(
                f"Demo tenant API key: {existing.prefix} (secret shown at first run; make "
                f"another with: .venv/bin/python manage.py issue_api_key {DEMO_TENANT})"
            )
        self.stdout.write("=" * 78)
        for line in lines:
            self.stdout.write(line)
        self.stdout.write("=" * 78)
