"""The security half of the settings: signing in, sessions, proxies, TLS, /metrics, body caps.

muster/settings.py star-imports this module; like it, this reads everything from the
environment (muster/settings.py has already loaded `.env` into it). Production is wherever
DATABASE_URL is set, the rule muster.startup uses too; without it Muster runs embedded, and
none of these settings needs a value (docs/security.md, docs/settings.md).
"""

from __future__ import annotations

from datetime import timedelta

import environ

env = environ.Env()

_PRODUCTION = bool(env.str("DATABASE_URL", default=""))
_HTTPS = env.str("MUSTER_PUBLIC_URL", default="http://127.0.0.1:8000").startswith("https://")

# --- Proxies ----------------------------------------------------------------------------------
# Addresses or networks (CIDR) of the reverse proxies in front of Muster. Only a request that
# comes from one of them has its X-Forwarded-For (the client's address, for sign-in throttling)
# and, under an https public URL, X-Forwarded-Proto believed. Production's default is nginx on
# the same host (deploy/nginx.conf, deploy/systemd); compose sets its own network. The embedded
# mode trusts no proxy: every header a client sends could be forged.
TRUSTED_PROXIES = env.list(
    "MUSTER_TRUSTED_PROXIES", default=["127.0.0.1", "::1"] if _PRODUCTION else []
)

# --- TLS ----------------------------------------------------------------------------------------
# Ingest, webhooks and probes are never redirected: Go clients such as Alertmanager re-send a
# redirected POST as a GET and lose the alert. A plain-HTTP write there is refused with a 403
# naming https (muster.middleware.RefusePlainHttpWrites). Patterns match the path without
# its leading "/", as SecurityMiddleware matches them.
SECURE_REDIRECT_EXEMPT = [
    r"^integrations/",
    r"^v2/",
    r"^generic/",
    r"^twilio/",
    r"^slack/",
    r"^mattermost/",
    r"^healthz$",
    r"^readyz$",
    r"^metrics$",
]
if _HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Sent only on requests that came over https; a year, as Django's deployment checklist says.
    SECURE_HSTS_SECONDS = env.int("MUSTER_HSTS_SECONDS", default=365 * 24 * 3600)
    if TRUSTED_PROXIES:
        # TLS ends at the proxy, which says so in X-Forwarded-Proto (deploy/nginx.conf).
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        SECURE_SSL_REDIRECT = True

SILENCED_SYSTEM_CHECKS = [
    # HSTS includeSubDomains: Muster serves one host name and knows nothing of the names below
    # it; promising https for all of them is the domain owner's call, not Muster's.
    "security.W005",
    # HSTS preload: submitting a domain to the browsers' preload list binds the whole
    # registered domain, for months; again the domain owner's decision.
    "security.W021",
]

# --- Signing in (django-axes) ---------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out sign-in before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed sign-ins allowed per (username, client address) pair, and per client address alone
# (higher: an office behind one NAT address), within the cool-off; then that pair or address
# waits out the cool-off, counted from its last failure. A username alone is never locked, or
# anyone could lock the on-call person out.
LOGIN_FAILURE_LIMIT = env.int("MUSTER_LOGIN_FAILURE_LIMIT", default=5)
LOGIN_IP_FAILURE_LIMIT = env.int("MUSTER_LOGIN_IP_FAILURE_LIMIT", default=20)
LOGIN_COOLOFF_MINUTES = env.int("MUSTER_LOGIN_COOLOFF_MINUTES", default=15)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "accounts.signin.SigninAttempts"
AXES_CLIENT_IP_CALLABLE = "accounts.signin.client_ip"
AXES_LOCKOUT_CALLABLE = "web.views.signin.locked_out"
# Trying again while locked out neither counts nor pushes the end of the lock further away, so
# the time the locked-out page names holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success does not wipe the failures: it would wipe the whole address's, letting anyone with
# an account reset the count between guesses at someone else's password.
AXES_RESET_ON_SUCCESS = False
# What a failed attempt's record keeps of the form: never the password (always masked), nor the
# CSRF token.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# A sign-in lasts this long, however active the session (Django's default is two weeks).
SESSION_HOURS = env.int("MUSTER_SESSION_HOURS", default=12)
SESSION_COOKIE_AGE = SESSION_HOURS * 3600
# Successful sign-ins (who, from where, when) are kept this many days; expired sessions and
# older records are deleted hourly (accounts.sweep_signins).
SIGNIN_LOG_DAYS = env.int("MUSTER_SIGNIN_LOG_DAYS", default=90)

# --- /metrics -------------------------------------------------------------------------------
# /metrics answers only to `Authorization: Bearer <this>`; in production, unset, it answers 403.
METRICS_TOKEN = env.str("MUSTER_METRICS_TOKEN", default="")
