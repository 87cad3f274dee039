from django.core.management.base import BaseCommand, CommandError

from annotation.models import Membership

from .grant import find_dataset, find_user


class Command(BaseCommand):
    help = "Remove USERNAME from DATASET."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("dataset")

    def handle(self, username, dataset, **options):
        user, ds = find_user(username), find_dataset(dataset)
        deleted, _ = Membership.objects.filter(dataset=ds, user=user).delete()
        if not deleted:
            raise CommandError(f"{username} is not a member of {ds.name}")
        self.stdout.write(f"{username} is no longer a member of {ds.name}")
