"""The roles the migration creates: Viewers read, Operators also act."""

import pytest
from django.contrib.auth.models import Group, User

from tests.dashboard.conftest import ensure_roles

pytestmark = pytest.mark.django_db


def codenames(group):
    return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=group).permissions.all()}


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
