"""Routes of the operator API."""

urlpatterns = []
