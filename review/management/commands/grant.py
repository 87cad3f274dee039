from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Dataset, Membership, Role


class Command(BaseCommand):
    help = "Give USERNAME the ROLE (admin, reviewer, viewer) in DATASET, replacing any role they had."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("dataset")
        parser.add_argument("role", choices=Role.values)

    def handle(self, username, dataset, role, **options):
        user = find_user(username)
        ds = find_dataset(dataset)
        _membership, created = Membership.objects.update_or_create(dataset=ds, user=user, defaults={"role": role})
        self.stdout.write(f"{username} is now {role} of {ds.name}" + (" (new member)" if created else ""))


def find_user(username):
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no user is called {username!r}") from None


def find_dataset(name):
    try:
        return Dataset.objects.get(name=name)
    except Dataset.DoesNotExist:
        raise CommandError(f"no dataset is called {name!r}") from None
