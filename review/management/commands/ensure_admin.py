import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


def password_file():
    """Where a generated password is kept for `make demo`, which repeats it once the servers are up (the
    first print scrolls away under the worker's log); readable by this user only."""
    return Path(settings.VAR_DIR) / "admin-password"


class Command(BaseCommand):
    help = (
        "Create the superuser USERNAME if missing. The password comes from COIGP_ADMIN_PASSWORD (checked "
        "with the password validators), or is generated, printed once and written to var/admin-password "
        "(mode 600)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("COIGP_ADMIN_USER", "admin"))

    def handle(self, username, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Admin account {username!r} exists (password unchanged).")
            return
        given = os.environ.get("COIGP_ADMIN_PASSWORD")
        password = given or secrets.token_urlsafe(12)
        try:
            validate_password(password, User(username=username))
        except ValidationError as exc:
            raise CommandError("COIGP_ADMIN_PASSWORD is too weak: " + " ".join(exc.messages)) from None
        User.objects.create_superuser(username=username, email="", password=password)
        kept = password_file()
        if given:
            kept.unlink(missing_ok=True)
            self.stdout.write(f"Created admin account {username!r} with the password from COIGP_ADMIN_PASSWORD.")
            return
        kept.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(f"{username}\n{password}\n")
        self.stdout.write(f"Created admin account {username!r} with password: {password}  (kept in {kept})")
