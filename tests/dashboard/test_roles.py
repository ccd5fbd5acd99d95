"""The roles the migration creates, kept in step with the models after every migrate: Viewers
read, Operators also act."""

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command

from tests.dashboard.conftest import ensure_roles

pytestmark = pytest.mark.django_db


def codenames(group):
    return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=group).permissions.all()}


def view_permissions():
    relay = Permission.objects.filter(content_type__app_label__in=["forwarding", "dashboard"])
    return {f"{p.content_type.app_label}.{p.codename}" for p in relay.filter(codename__startswith="view_")}


def test_migrate_leaves_both_roles_with_every_relay_models_view_permission():
    # No ensure_roles here: the test database is as `migrate` (or a transactional test's flush,
    # which ends with the same post_migrate) left it. A model added after the roles' migration,
    # the alert rules' for one, is viewable too.
    assert "forwarding.view_alertrule" in view_permissions()
    assert codenames("Viewers") == view_permissions()
    assert codenames("Operators") == view_permissions() | {"forwarding.operate"}


def test_a_database_migrated_before_a_model_existed_gets_its_permission_at_the_next_migrate():
    viewers = Group.objects.get(name="Viewers")
    viewers.permissions.remove(*viewers.permissions.filter(codename="view_alertrule"))
    assert "forwarding.view_alertrule" not in codenames("Viewers")
    call_command("migrate", verbosity=0)
    assert codenames("Viewers") == view_permissions()


def test_viewers_may_view_every_relay_model_and_nothing_else():
    ensure_roles()
    viewers = codenames("Viewers")
    assert {"forwarding.view_call", "forwarding.view_delivery", "forwarding.view_attempt"} <= viewers
    assert {"forwarding.view_eventname", "dashboard.view_bulkresend"} <= viewers
    assert all(".view_" in name for name in viewers)


def test_operators_may_also_operate():
    ensure_roles()
    assert codenames("Operators") == codenames("Viewers") | {"forwarding.operate"}


def test_running_it_again_changes_nothing():
    ensure_roles()
    before = (codenames("Viewers"), codenames("Operators"))
    ensure_roles()
    assert (codenames("Viewers"), codenames("Operators")) == before
    assert Group.objects.filter(name__in=["Viewers", "Operators"]).count() == 2


def test_a_users_permissions_come_from_the_group(viewer, operator):
    viewer, operator = User.objects.get(pk=viewer.pk), User.objects.get(pk=operator.pk)
    assert viewer.has_perm("forwarding.view_delivery") and not viewer.has_perm("forwarding.operate")
    assert operator.has_perm("forwarding.operate")


@pytest.mark.django_db(transaction=True)
def test_migrating_back_past_the_roles_migration_removes_them_and_forward_brings_them_back():
    call_command("migrate", "dashboard", "0001", verbosity=0)
    assert not Group.objects.filter(name__in=["Viewers", "Operators"]).exists()
    call_command("migrate", "dashboard", verbosity=0)
    assert codenames("Viewers") == view_permissions()
    assert codenames("Operators") == view_permissions() | {"forwarding.operate"}
