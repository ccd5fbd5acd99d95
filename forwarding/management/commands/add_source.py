"""`manage.py add_source NAME [--write-key KEY]`: create a source and print its write key."""

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from forwarding.models import Source, hash_key
from forwarding.models.calls import KEY_PREFIX_LENGTH

# Well past the prefix the admin shows, so the admin never shows a whole key.
MIN_KEY_LENGTH = 2 * KEY_PREFIX_LENGTH
MAX_KEY_LENGTH = 200


class Command(BaseCommand):
    help = "Create a source and print its write key (only the hash is stored). Idempotent with --write-key."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A name for the source, e.g. 'Website'.")
        parser.add_argument(
            "--write-key",
            help="Use this key instead of a random one; running again with the same key changes nothing.",
        )

    def handle(self, *args, name, write_key=None, **options):
        if write_key is None:
            source, key = Source.create_with_key(name)
            self._report(f"Created source {source.name!r}; its write key is shown once:")
        else:
            check_key(write_key)
            source, created = get_or_create(name, write_key)
            key = write_key
            if created:
                self._report(f"Created source {source.name!r}.")
            else:
                self._report(f"The key already belongs to source {source.name!r}; nothing changed.")
                if not source.is_active:
                    self._report("Warning: that source is inactive; its key is refused until it is activated.")
        # Only the key on stdout, so scripts can capture it.
        self.stdout.write(key)

    def _report(self, text):
        self.stderr.write(text)


def check_key(key):
    """Refuse a key that could not work or that the admin's prefix would show whole."""
    if not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH:
        raise CommandError(f"--write-key must be {MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} characters long.")
    if ":" in key or any(ch.isspace() or not ch.isprintable() for ch in key):
        # HTTP Basic splits user name and password at the first colon.
        raise CommandError("--write-key must not contain a colon, spaces or control characters.")


def get_or_create(name, key):
    """(source, created) for `key`: the existing source when the key is already known."""
    existing = Source.objects.filter(key_hash=hash_key(key)).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return Source.create_with_key(name, key)[0], True
    except IntegrityError:
        # Another process created it between the lookup and the insert.
        return Source.objects.get(key_hash=hash_key(key)), False
