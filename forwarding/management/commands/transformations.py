"""`manage.py transformations export [--output FILE]` and `manage.py transformations import FILE
[--dry-run] [--replace] [--as USERNAME]`: keep the transformation rules in a file (in git).

export writes {"format": 1, "rules": [spec, ...]} in position order, each rule's source as the
source's name. import validates every rule of the file, prints what it would change (added,
changed and which fields, unchanged, and with --replace removed), then applies it in one
transaction unless --dry-run; one invalid rule and nothing is imported. How a file's rule is
matched to a stored one, and where the rules end up: forwarding/transformations/exchange.py.
Importing the same file again changes nothing: no new revision, no admin log entry.

The admin log is written under --as USERNAME, else under the oldest active superuser; with
neither, the rules are imported without admin log entries (a notice says so).
"""

import sys
from pathlib import Path

from django.contrib.admin.models import CHANGE
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from forwarding.models import Rule, Source
from forwarding.transformations import exchange, store


class Command(BaseCommand):
    help = "Export the transformation rules to JSON, or import them from a file (with a diff first)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{export,import}")
        export = actions.add_parser("export", help="Write the rules as JSON, in position order.")
        export.add_argument("--output", "-o", help="Write to this file instead of standard output.")
        imported = actions.add_parser("import", help="Validate a file's rules, show the diff and apply it.")
        imported.add_argument("file", help="A file written by export ('-' for standard input).")
        imported.add_argument("--dry-run", action="store_true", help="Show the diff; change nothing.")
        imported.add_argument(
            "--replace", action="store_true", help="Also remove the stored rules the file does not have."
        )
        imported.add_argument(
            "--as",
            dest="username",
            help="Write the admin log under this user (default: the oldest active superuser).",
        )

    def handle(self, *args, action, **options):
        if action == "export":
            return self.export(options.get("output"))
        return self.import_file(options["file"], options["dry_run"], options["replace"], options.get("username"))

    # -- export ------------------------------------------------------------------------------------

    def export(self, output):
        rules = list(Rule.objects.select_related("source").order_by("position", "pk"))
        names = {str(rule.source_id): rule.source.name for rule in rules if rule.source_id}
        for name in sorted(set(names.values())):
            if Source.objects.filter(name=name).count() > 1:
                self.stderr.write(f"Warning: several sources are named {name!r}: an import cannot tell them apart.")
        text = exchange.dumps(exchange.export_document([rule.spec() for rule in rules], names))
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {len(rules)} rules to {output}.")
        else:
            self.stdout.write(text, ending="")

    # -- import ------------------------------------------------------------------------------------

    def import_file(self, path, dry_run, replace, username):
        specs = self.read(path)
        with transaction.atomic():
            file_specs = self.validated(specs)
            user = self.log_user(username)
            stored = [{**rule.spec(), "position": rule.position} for rule in Rule.objects.order_by("position", "pk")]
            entries = exchange.plan(file_specs, stored, replace)
            self.stdout.write(f"Importing {path}: {exchange.summary(entries, replace)}.")
            for entry in entries:
                self.stdout.write("  " + exchange.describe(entry))
            if dry_run:
                self.stdout.write("Dry run: nothing was changed.")
                return
            if not any(entry.kind in ("added", "removed") or entry.fields for entry in entries):
                self.stdout.write("Nothing to change.")
                return
            if user is None:
                self.stderr.write("Notice: no --as user and no active superuser: the admin log gets no entries.")
            done = apply(entries, user)
        self.stdout.write(f"Imported: {done} rules saved, moved or removed.")

    def read(self, path):
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            return exchange.read(text)
        except exchange.Unreadable as exc:
            raise CommandError(f"{path}: {exc}") from None

    def validated(self, specs):
        """The file's specs, normalized with their sources as ids; CommandError listing every problem."""
        source_ids = {}
        for pk, name in Source.objects.values_list("pk", "name"):
            source_ids.setdefault(name, []).append(pk)
        problems, found = [], []
        for number, spec in enumerate(specs, start=1):
            resolved, wrong = exchange.resolve_source(spec, source_ids)
            try:
                store.check(resolved)
            except store.Invalid as exc:
                wrong += exc.problems
            name = spec.get("name") if isinstance(spec, dict) else None
            label = f"rule {number}" + (f" ({name!r})" if isinstance(name, str) and name else "")
            problems += [f"{label}: {problem}" for problem in wrong]
            if not wrong:
                found.append(exchange.normalize(resolved))
        if problems:
            listed = "\n".join(f"  {problem}" for problem in problems)
            raise CommandError(f"{len(problems)} problem{'s' * (len(problems) != 1)}; nothing was imported:\n{listed}")
        return found

    @staticmethod
    def log_user(username):
        """The --as user (CommandError when there is none), else the oldest active superuser, else None."""
        users = get_user_model().objects
        if username:
            user = users.filter(username=username).first()
            if user is None:
                raise CommandError(f"--as: no user is named {username!r}.")
            return user
        return users.filter(is_superuser=True, is_active=True).order_by("date_joined", "pk").first()


def apply(entries, user):
    """Write the plan's changes (in the caller's transaction); how many rules changed."""
    done, moved = 0, False
    for entry in entries:
        if entry.kind == "removed":
            store.delete(Rule.objects.get(pk=entry.stored["id"]), user)
            done += 1
    for entry in entries:
        if entry.kind == "removed" or not entry.fields and entry.kind != "added":
            continue
        if entry.content_changed:
            rule = Rule() if entry.kind == "added" else Rule.objects.get(pk=entry.stored["id"])
            for field, value in exchange.model_fields(entry.spec).items():
                setattr(rule, field, value)
            rule.position = entry.position
            what = [field for field in entry.fields if field != "position"]
            message = "Added by import." if entry.kind == "added" else f"Changed {', '.join(what)} by import."
            store.save(rule, user, message)
        else:
            rule = Rule.objects.get(pk=entry.stored["id"])
            Rule.objects.filter(pk=rule.pk).update(position=entry.position)
            rule.position, moved = entry.position, True
            store.log(user, rule, CHANGE, f"Moved to position {entry.position} by import.")
        done += 1
    if moved:
        store.bump()
    return done
