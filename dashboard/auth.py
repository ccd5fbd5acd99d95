"""Dashboard logins behind the login throttle (dashboard.throttle): the authentication backend
refuses a throttled attempt before the password is hashed, and the admin's login form says why."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied, ValidationError

from dashboard import throttle


class ThrottledModelBackend(ModelBackend):
    """Django's ModelBackend, each attempt counted by the throttle first. A refused attempt raises
    PermissionDenied, which stops django.contrib.auth.authenticate() at once (no other backend, no
    hashing) and leaves the refusal on the request for the login form."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        refusal = throttle.begin(request, username)
        if refusal is not None:
            if request is not None:
                request.relay_login_refusal = refusal
            raise PermissionDenied(refusal.message)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            throttle.succeeded(request, username)
        return user


class LoginForm(AdminAuthenticationForm):
    """The admin's login form, with the throttle's message instead of "wrong password"."""

    def get_invalid_login_error(self):
        refusal = getattr(self.request, "relay_login_refusal", None)
        if refusal is not None:
            return ValidationError(refusal.message, code="throttled")
        return super().get_invalid_login_error()
