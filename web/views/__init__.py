"""The web UI's views, one module per area; each module's `urlpatterns` is mounted by web.urls."""
