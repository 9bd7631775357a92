"""The runbooks API: runbooks, automation actions, graph templates (see runbooks/urls.py)."""
