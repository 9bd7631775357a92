"""Mattermost: its slash command `/muster …` (views, slash, answers), who typed it (people) and
its REST API v4 (client). The rendering is the surface `warroom.surfaces.mattermost`."""
