"""Dashboard logins are throttled per username and per client IP: past the limit an attempt is
refused with 429 and the login form saying when to try again, without hashing the password (the
CPU ingestion needs), whether the password is right or not. Counted in the database, or in Redis
when REDIS_URL is set (each test runs on both)."""

import logging
import os
import threading
import time
import uuid

import pytest
import redis
import requests
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.models import User
from django.test import Client, RequestFactory

from dashboard import throttle
from dashboard.models import LoginFailures

PASSWORD = "the-right-password"
WRONG = "a-wrong-password"
LOGIN = "/admin/login/"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def redis_reachable():
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


@pytest.fixture(params=["database", "redis"])
def store(request, settings, monkeypatch):
    """Where the counts are kept; in Redis under a prefix of this test's own, removed after it."""
    settings.RELAY_LOGIN_FAILURES_PER_USER = 3
    settings.RELAY_LOGIN_FAILURES_PER_IP = 5
    settings.RELAY_LOGIN_WINDOW = 900
    settings.RELAY_BEHIND_PROXY = False
    if request.param == "database":
        settings.REDIS_URL = ""
        yield request.param
        return
    if not redis_reachable():
        pytest.skip(f"no Redis at {REDIS_URL}")
    settings.REDIS_URL = REDIS_URL
    prefix = f"relay:test-login-failures:{uuid.uuid4().hex}"
    monkeypatch.setattr(throttle, "REDIS_PREFIX", prefix)
    yield request.param
    connection = redis.Redis.from_url(REDIS_URL)
    for key in connection.scan_iter(f"{prefix}:*"):
        connection.delete(key)


@pytest.fixture
def hashes(monkeypatch):
    """The passwords hashed since (the test settings' hasher: checking a password hashes it, and
    so does Django for an unknown username, to take as long)."""
    counted = []
    encode = MD5PasswordHasher.encode

    def counting(self, password, salt):
        counted.append(salt)  # list.append is atomic: live-server threads count too
        return encode(self, password, salt)

    monkeypatch.setattr(MD5PasswordHasher, "encode", counting)
    return counted


@pytest.fixture
def ada(db):
    return User.objects.create_user("ada", "ada@example.com", PASSWORD, is_staff=True)


def attempt(client, username, password, ip="10.0.0.1", **headers):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, **headers)


def logged_in(client):
    return "_auth_user_id" in client.session


def refused(response, minutes=15):
    """The login form again, with 429, Retry-After and the throttle's message."""
    text = response.content.decode()
    unit = "minute" if minutes == 1 else "minutes"
    return (
        response.status_code == 429
        and int(response["Retry-After"]) > (minutes - 1) * 60
        and f"Too many failed logins; try again in {minutes} {unit}." in text
        and 'id="login-form"' in text
    )


def wrong(response):
    return response.status_code == 200 and "Please enter the correct username and password" in response.content.decode()


def test_past_the_limit_an_attempt_is_refused_without_hashing_even_with_the_right_password(store, ada, hashes, caplog):
    client = Client()
    for _ in range(3):
        assert wrong(attempt(client, "ada", WRONG))
    assert len(hashes) == 3

    caplog.set_level(logging.WARNING, logger="dashboard.throttle")
    assert refused(attempt(client, "ada", WRONG))
    assert refused(attempt(client, "ada", PASSWORD))
    assert len(hashes) == 3  # neither was hashed
    assert not logged_in(client)

    messages = [record.getMessage() for record in caplog.records if record.name == "dashboard.throttle"]
    assert len(messages) == 2
    assert all("failed logins of this username" in text and "'ada'" in text and "10.0.0.1" in text for text in messages)
    assert not any(PASSWORD in text or WRONG in text for text in caplog.text.splitlines())


def test_an_unknown_username_is_counted_and_refused_alike(store, db, hashes):
    client = Client()
    for _ in range(3):
        assert wrong(attempt(client, "nobody", WRONG))
    assert len(hashes) == 3  # Django hashes for an unknown user too, to take as long
    assert refused(attempt(client, "nobody", WRONG))
    assert refused(attempt(client, "NoBody ", WRONG))  # the same username to the throttle
    assert len(hashes) == 3


def test_after_the_window_the_right_password_works_again(store, ada, hashes, settings):
    settings.RELAY_LOGIN_WINDOW = 1
    client = Client()
    for _ in range(3):
        assert wrong(attempt(client, "ada", WRONG))
    assert refused(attempt(client, "ada", PASSWORD), minutes=1)
    time.sleep(1.2)
    response = attempt(client, "ada", PASSWORD)
    assert response.status_code == 302 and logged_in(client)
    assert len(hashes) == 4


def test_the_client_ip_is_counted_across_usernames(store, ada, hashes):
    for n in range(5):
        assert wrong(attempt(Client(), f"guess-{n}", WRONG, ip="10.0.0.2"))
    assert len(hashes) == 5
    assert refused(attempt(Client(), "guess-5", WRONG, ip="10.0.0.2"))
    assert refused(attempt(Client(), "ada", PASSWORD, ip="10.0.0.2"))
    assert len(hashes) == 5
    # Another address is not held back, nor is ada from it.
    client = Client()
    assert attempt(client, "ada", PASSWORD, ip="10.0.0.3").status_code == 302 and logged_in(client)


def test_a_success_clears_the_usernames_count_but_not_the_ips(store, ada):
    for _ in range(2):
        assert wrong(attempt(Client(), "ada", WRONG))
    assert attempt(Client(), "ada", PASSWORD).status_code == 302
    # The username starts again (3 more), the address does not (2 + 3 = its 5).
    for _ in range(3):
        assert wrong(attempt(Client(), "ada", WRONG))
    assert refused(attempt(Client(), "bob", WRONG))


def test_a_forwarded_for_header_changes_nothing_unless_behind_a_proxy(store, db):
    for n in range(5):
        assert wrong(attempt(Client(), f"guess-{n}", WRONG, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}"))
    assert refused(attempt(Client(), "guess-5", WRONG, HTTP_X_FORWARDED_FOR="192.0.2.99"))


def test_behind_a_proxy_the_first_forwarded_hop_is_the_client(store, db, settings):
    settings.RELAY_BEHIND_PROXY = True
    for n in range(5):
        assert wrong(attempt(Client(), f"guess-{n}", WRONG, ip="10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.7, 10.9.9.9"))
    assert refused(attempt(Client(), "guess-5", WRONG, ip="10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.7"))
    # Another client behind the same proxy is not held back.
    assert wrong(attempt(Client(), "guess-6", WRONG, ip="10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.8"))


@pytest.mark.parametrize(
    "behind_proxy,remote,forwarded,expected",
    [
        (False, "10.0.0.1", "", "10.0.0.1"),
        (False, "10.0.0.1", "192.0.2.7", "10.0.0.1"),
        (True, "10.0.0.1", "192.0.2.7, 10.0.0.1", "192.0.2.7"),
        (True, "10.0.0.1", " 192.0.2.7 ", "192.0.2.7"),
        (True, "10.0.0.1", "", "10.0.0.1"),
        (True, "10.0.0.1", "not-an-address, 10.0.0.1", ""),
        (False, "2001:db8:1:2:3:4:5:6", "", "2001:db8:1:2::/64"),
        (False, "::ffff:192.0.2.7", "", "192.0.2.7"),
        (False, "", "", ""),
    ],
)
def test_client_ip(settings, behind_proxy, remote, forwarded, expected):
    settings.RELAY_BEHIND_PROXY = behind_proxy
    request = RequestFactory().post(LOGIN, REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert throttle.client_ip(request) == expected


def test_the_counts_hold_a_hash_of_the_username_not_the_name(store, db):
    """People type passwords into the username field."""
    attempt(Client(), "my-secret-typed-in-the-wrong-field", WRONG)
    if store == "database":
        keys = list(LoginFailures.objects.values_list("key", flat=True))
    else:
        prefix = f"{throttle.REDIS_PREFIX}:"
        names = redis.Redis.from_url(REDIS_URL).scan_iter(f"{prefix}*")
        keys = [name.decode().removeprefix(prefix) for name in names]
    assert sorted(key.split(":")[0] for key in keys) == ["ip", "user"]
    assert not any("secret" in key for key in keys)
    assert throttle.user_key("my-secret-typed-in-the-wrong-field") in keys


def test_with_redis_unreachable_the_database_counts(db, settings, hashes, caplog):
    settings.RELAY_LOGIN_FAILURES_PER_USER = 3
    settings.RELAY_LOGIN_WINDOW = 900
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    for _ in range(3):
        assert wrong(attempt(Client(), "ada", WRONG))
    assert refused(attempt(Client(), "ada", WRONG))
    assert len(hashes) == 3
    assert LoginFailures.objects.filter(key__startswith="user:").get().failures == 3


@pytest.mark.slow
def test_concurrent_attempts_get_no_more_checks_than_the_limit(store, live_server, transactional_db, hashes, settings):
    """Workers hammering one username at once: each attempt takes its place in the count before its
    password is checked, so no more than the limit are ever hashed (at most N + workers is the
    requirement; the count is exact)."""
    settings.RELAY_LOGIN_FAILURES_PER_USER = 4
    settings.RELAY_LOGIN_FAILURES_PER_IP = 1000
    User.objects.create_user("ada", "ada@example.com", PASSWORD, is_staff=True)
    hashes.clear()
    workers, tries = 8, 4
    statuses, start = [], threading.Barrier(workers)

    def hammer():
        session = requests.Session()
        session.get(f"{live_server.url}{LOGIN}", timeout=30)
        token = session.cookies["csrftoken"]
        start.wait()
        for _ in range(tries):
            form = {"username": "ada", "password": WRONG, "csrfmiddlewaretoken": token}
            statuses.append(session.post(f"{live_server.url}{LOGIN}", data=form, timeout=30).status_code)

    threads = [threading.Thread(target=hammer) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(statuses) == workers * tries
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) == len(hashes) == 4
    assert len(hashes) <= settings.RELAY_LOGIN_FAILURES_PER_USER + workers
