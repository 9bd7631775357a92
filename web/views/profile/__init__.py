"""Web UI: my profile. One module per part of the page; web.urls mounts each one's
`urlpatterns`."""
