"""Web UI: the Setup area. Everyone reads the configuration; admins change it (responders
silences), as in the API. One module per page group; web.urls mounts each one's `urlpatterns`."""
