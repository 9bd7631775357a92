"""Live updates for the web UI: each incident change is broadcast to the pages showing it."""
