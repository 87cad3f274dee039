import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the superuser USERNAME if missing. The password comes from COIGP_ADMIN_PASSWORD, "
        "or is generated and printed once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("COIGP_ADMIN_USER", "admin"))

    def handle(self, username, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Admin account {username!r} exists (password unchanged).")
            return
        password = os.environ.get("COIGP_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        shown = "from COIGP_ADMIN_PASSWORD" if os.environ.get("COIGP_ADMIN_PASSWORD") else password
        self.stdout.write(f"Created admin account {username!r} with password: {shown}")
