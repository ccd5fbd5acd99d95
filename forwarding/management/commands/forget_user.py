"""manage.py forget_user USER_ID [--suppress] [--as USERNAME]: a privacy request from the shell."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from forwarding import privacy


class Command(BaseCommand):
    help = (
        "Forget a user: expunge their stored calls, delete their Intercom contact (retried by the worker "
        "until done), keep a tombstone with a hash of the userId; --suppress also suppresses their later calls."
    )

    def add_arguments(self, parser):
        parser.add_argument("user_id")
        parser.add_argument(
            "--suppress", action="store_true", help="store their later calls without payload, never forwarded"
        )
        parser.add_argument("--as", dest="username", default="", help="the staff user recorded as having asked")

    def handle(self, user_id, suppress, username, **options):
        by = username or "manage.py forget_user"
        if username:
            by = get_user_model().objects.filter(username=username).first()
            if by is None:
                raise CommandError(f"no user {username!r}")
        try:
            tombstone = privacy.forget(user_id, by, suppress=suppress)
        except ValueError as error:
            raise CommandError(str(error)) from None
        privacy.delete_in_intercom(tombstone)
        self.stdout.write(
            f"{tombstone.calls_expunged} calls expunged; later calls {'suppressed' if suppress else 'accepted'}"
        )
        if tombstone.intercom == "pending":
            self.stdout.write(f"Intercom: not done yet ({tombstone.intercom_error}); the worker tries again")
        else:
            self.stdout.write(f"Intercom contact: {tombstone.intercom}")
