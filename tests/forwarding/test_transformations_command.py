"""`manage.py transformations export | import`: rules to a file and back, a diff before any change,
nothing imported when one rule is invalid, idempotent, the admin log under the --as user."""

import json
import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.management import CommandError, call_command

from forwarding.models import Rule
from forwarding.transformations import store
from tests.processes import ROOT, relay_env

pytestmark = pytest.mark.django_db

CART = [{"op": "rename_property", "from": "properties.cart_total", "to": "properties.revenue"}]
DROP = [{"op": "drop"}]
PLAN = [{"op": "change_case", "path": "traits.plan", "to": "lower"}]


def run(*args):
    """(stdout, stderr) of the command."""
    out, err = StringIO(), StringIO()
    call_command("transformations", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def save(user=None, **fields):
    return store.save(Rule(**{"call_type": "track", "operations": DROP, **fields}), user)


def content(rule):
    """What a rule does and where, without the store's id and revision."""
    spec = rule.spec()
    return {key: spec[key] for key in spec if key not in ("id", "revision")} | {"position": rule.position}


def contents():
    return [content(rule) for rule in Rule.objects.order_by("position", "pk")]


def write(tmp_path, rules, name="rules.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"format": 1, "rules": rules}))
    return str(path)


@pytest.fixture
def three(source):
    website = source[0]
    return [
        save(name="cart total is revenue", event="Order Completed", source=website, operations=CART),
        save(name="no debug", event="Debug Ping", enabled=False),
        save(
            name="lower plan",
            call_type="identify",
            condition={"path": "traits.plan", "exists": True},
            operations=PLAN,
        ),
    ]


def test_export_then_import_on_an_empty_database_recreates_the_same_rules(three, tmp_path):
    store.move(three[2], 1)
    before = contents()
    path = str(tmp_path / "rules.json")
    _, err = run("export", "--output", path)
    assert "Wrote 3 rules" in err

    document = json.loads((tmp_path / "rules.json").read_text())
    assert document["format"] == 1
    assert [spec["name"] for spec in document["rules"]] == ["lower plan", "cart total is revenue", "no debug"]
    assert document["rules"][1]["source"] == "Website"  # the name, not the id
    assert document["rules"][1]["id"] == three[0].pk and document["rules"][1]["revision"] == 1
    Rule.objects.all().delete()

    out, _ = run("import", path)

    assert "3 added, 0 changed, 0 unchanged" in out
    assert contents() == before
    assert set(Rule.objects.values_list("revision", flat=True)) == {1}


def test_export_writes_json_to_standard_output_in_position_order(three):
    out, _ = run("export")
    assert [spec["name"] for spec in json.loads(out)["rules"]] == [
        "cart total is revenue",
        "no debug",
        "lower plan",
    ]


def test_importing_the_same_file_twice_changes_nothing_the_second_time(three, tmp_path, admin_user):
    path = str(tmp_path / "rules.json")
    run("export", "--output", path)
    document = json.loads((tmp_path / "rules.json").read_text())
    document["rules"][0]["operations"].append({"op": "set_constant", "path": "properties.seen", "value": True})
    document["rules"].append({"name": "new", "call_type": "page", "operations": DROP})
    (tmp_path / "rules.json").write_text(json.dumps(document))

    first, _ = run("import", path)
    assert "1 added, 1 changed, 2 unchanged" in first
    after_first = list(Rule.objects.values_list("pk", "revision", "updated_at", "position"))
    version, entries = store.version(), LogEntry.objects.count()

    second, _ = run("import", path)

    assert "0 added, 0 changed, 4 unchanged" in second
    assert "Nothing to change." in second
    assert list(Rule.objects.values_list("pk", "revision", "updated_at", "position")) == after_first
    assert (store.version(), LogEntry.objects.count()) == (version, entries)
    assert Rule.objects.get(pk=three[0].pk).revision == 2


def test_a_dry_run_prints_the_diff_and_changes_nothing(three, tmp_path):
    cart, debug, _ = (rule.spec() for rule in three)
    debug = {**debug, "enabled": True, "event": "debug ping"}
    added = {
        "name": "shout",
        "call_type": "track",
        "operations": [{"op": "change_case", "path": "properties.a", "to": "upper"}],
    }
    path = write(tmp_path, [debug, {**cart, "source": "Website"}, added])
    before, version = contents(), store.version()

    out, _ = run("import", path, "--dry-run", "--replace")

    assert "1 added, 2 changed, 0 unchanged, 1 removed" in out
    lines = out.splitlines()
    assert f"  ~ changed   rule {three[1].pk} 'no debug' (track 'debug ping') at 1: enabled, event, position" in lines
    assert f"  ~ changed   rule {three[0].pk} 'cart total is revenue' (track 'Order Completed') at 2: position" in lines
    assert "  + added     new rule 'shout' (track) at 3" in lines
    assert f"  - removed   rule {three[2].pk} 'lower plan' (identify)" in lines
    assert "Dry run: nothing was changed." in out
    assert (contents(), store.version()) == (before, version)


@pytest.mark.parametrize(
    "bad, problem",
    [
        ({"call_type": "track", "operations": [{"op": "explode"}]}, 'operation 1: unknown op "explode"'),
        (
            {"call_type": "track", "operations": [{"op": "set_constant", "path": "context.ip", "value": 1}]},
            "operation 1 (set_constant): path: 'context.ip' is outside properties",
        ),
        ({"call_type": "track", "source": "Mobile", "operations": DROP}, "source: no source is named 'Mobile'"),
    ],
    ids=["unknown op", "write path outside the root", "unknown source"],
)
def test_an_invalid_rule_imports_nothing(three, tmp_path, bad, problem):
    good = {"name": "fine", "call_type": "page", "operations": DROP}
    path = write(tmp_path, [good, {"name": "broken", **bad}])
    before, version = contents(), store.version()

    with pytest.raises(CommandError) as raised:
        run("import", path, "--replace")

    assert f"rule 2 ('broken'): {problem}" in str(raised.value)
    assert "nothing was imported" in str(raised.value)
    assert (contents(), store.version()) == (before, version)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_command_line_exits_non_zero_with_the_problems_on_stderr(tmp_path):
    path = write(tmp_path, [{"name": "broken", "call_type": "track", "operations": [{"op": "explode"}]}])
    result = subprocess.run(
        [sys.executable, "manage.py", "transformations", "import", path],
        cwd=ROOT,
        env=relay_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "rule 1 ('broken'): operation 1: unknown op \"explode\"" in result.stderr
    assert result.stdout == ""
    assert not Rule.objects.exists()


def test_an_unreadable_file_is_refused(tmp_path):
    (tmp_path / "rules.json").write_text('{"rules": []}')
    with pytest.raises(CommandError, match="not a rules document"):
        run("import", str(tmp_path / "rules.json"))
    with pytest.raises(CommandError, match="Cannot read"):
        run("import", str(tmp_path / "missing.json"))


def test_replace_removes_the_rules_the_file_does_not_have(three, tmp_path):
    path = write(tmp_path, [{**three[2].spec(), "source": None}])

    kept, _ = run("import", path)
    assert "2 stored rules not in the file kept (--replace removes them)" in kept
    assert list(Rule.objects.values_list("pk", flat=True)) == [three[2].pk, three[0].pk, three[1].pk]

    out, _ = run("import", path, "--replace")

    assert "0 added, 0 changed, 1 unchanged, 2 removed" in out
    assert list(Rule.objects.values_list("pk", flat=True)) == [three[2].pk]


def test_positions_follow_the_file_and_a_move_is_no_new_revision(three, tmp_path):
    specs = [{**rule.spec(), "source": rule.source and rule.source.name} for rule in reversed(three)]
    version = store.version()

    run("import", write(tmp_path, specs))

    assert list(Rule.objects.order_by("position").values_list("pk", "position", "revision")) == [
        (three[2].pk, 1, 1),
        (three[1].pk, 2, 1),
        (three[0].pk, 3, 1),
    ]
    assert store.version() != version  # the workers read the new order


def test_a_rule_is_matched_by_id_and_name_else_by_name_and_call_type(three, tmp_path):
    cart, debug, plan = (rule.spec() for rule in three)
    other_installation = {**cart, "id": three[1].pk, "source": None}  # its id is "no debug" here
    renamed = {**debug, "name": "no debug pings"}
    unnamed = save(event="Unnamed").spec()
    path = write(tmp_path, [other_installation, renamed, {**plan, "id": 9999}, {**unnamed, "event": "Still Unnamed"}])

    out, _ = run("import", path, "--replace")

    assert "1 added, 2 changed, 1 unchanged, 1 removed" in out
    assert Rule.objects.get(pk=three[0].pk).source_id is None  # matched by name, not by the foreign id
    assert not Rule.objects.filter(pk=three[1].pk).exists()  # renamed: a new rule, the old one removed
    assert Rule.objects.filter(name="no debug pings").exists()
    assert Rule.objects.get(pk=three[2].pk).revision == 1  # matched by name; only its position moved
    assert Rule.objects.get(pk=unnamed["id"]).event == "Still Unnamed"  # no name: matched by its id


def test_the_admin_log_is_written_under_the_as_user(three, tmp_path, admin_user, django_user_model):
    operator = django_user_model.objects.create_user("operator", password="x", is_staff=True)
    cart, debug, _ = (rule.spec() for rule in three)
    path = write(
        tmp_path,
        [
            {**cart, "source": "Website", "enabled": False},
            debug,
            {"name": "n", "call_type": "group", "operations": DROP},
        ],
    )
    LogEntry.objects.all().delete()

    run("import", path, "--replace", "--as", "operator")

    entries = {(e.object_id, e.action_flag, e.change_message) for e in LogEntry.objects.filter(user=operator)}
    added = Rule.objects.get(name="n")
    assert entries == {
        (str(three[0].pk), CHANGE, "Changed enabled by import."),
        (str(three[2].pk), DELETION, "Deleted."),
        (str(added.pk), ADDITION, "Added by import."),
    }
    assert not LogEntry.objects.exclude(user=operator).exists()
    assert Rule.objects.get(pk=three[0].pk).updated_by == "operator"


def test_without_as_the_oldest_active_superuser_is_logged(three, tmp_path, admin_user, django_user_model):
    django_user_model.objects.create_superuser("later", password="x")
    LogEntry.objects.all().delete()

    run("import", write(tmp_path, [{"name": "n", "call_type": "page", "operations": DROP}]))

    # The added rule, and the stored ones moved after it (the file's rules come first).
    assert set(LogEntry.objects.values_list("user__username", flat=True)) == {"admin"}
    assert LogEntry.objects.filter(action_flag=ADDITION).count() == 1


def test_without_a_superuser_the_import_has_no_log_entry_and_says_so(tmp_path):
    out, err = run("import", write(tmp_path, [{"name": "n", "call_type": "page", "operations": DROP}]))
    assert "1 added" in out
    assert "no --as user and no active superuser" in err
    assert Rule.objects.count() == 1 and not LogEntry.objects.exists()


def test_an_unknown_as_user_is_refused(tmp_path):
    with pytest.raises(CommandError, match="--as: no user is named 'nobody'"):
        run("import", write(tmp_path, []), "--as", "nobody")
