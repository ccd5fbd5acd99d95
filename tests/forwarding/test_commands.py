"""check_intercom and send_demo_traffic, against the sandbox and a live relay."""

import pytest
from django.core.management import CommandError, call_command

from forwarding.models import Call, Delivery, State
from tests.processes import wait_until


def test_it_reports_the_workspace_when_the_token_works(sandbox, capsys):
    call_command("check_intercom")
    out = capsys.readouterr().out
    assert f"Intercom at {sandbox.url}: OK" in out
    assert "workspace:" in out


def test_it_fails_clearly_when_the_token_is_refused(sandbox):
    sandbox.configure(refuse_token=True)
    with pytest.raises(CommandError, match="401: Access Token Invalid"):
        call_command("check_intercom")


def test_it_fails_clearly_when_intercom_cannot_be_reached(settings):
    settings.INTERCOM_API_BASE = "http://127.0.0.1:9"
    from forwarding import intercom

    intercom.reset_client()
    with pytest.raises(CommandError, match="answered nothing: network"):
        call_command("check_intercom")
    intercom.reset_client()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_sends_demo_traffic_that_reaches_intercom(live_server, source, cluster, sandbox, capsys):
    cluster.ensure_running()
    _, key = source
    call_command("send_demo_traffic", url=live_server.url, write_key=key, users=2, seed=1)
    assert "Sent 14 calls for 2 users" in capsys.readouterr().out
    assert Call.objects.count() == 14

    def settled():
        states = set(Delivery.objects.values_list("state", flat=True))
        return states == {State.DELIVERED}

    wait_until(settled, 60, message="every demo call delivered")
    assert sorted(c["external_id"] for c in sandbox.state.contacts) == ["demo-user-1", "demo-user-2"]
    assert len(sandbox.state.companies) == 1
    anonymous_page = Delivery.objects.get(call__anonymous_id="demo-anon-1", call__type="page", call__user_id="")
    assert anonymous_page.user_id == "demo-user-1"
