"""An XSS and Markdown-injection corpus: text an alert sender (or anyone who types) may send.

Each script payload, if it ever ran, would set `window.__pwned` or the document's title, which
the browser tests watch. The Markdown payloads would make a heading, a list, a link, an image, a
table cell or a line of their own if they were not escaped.
"""

from __future__ import annotations

PWNED = "window.__pwned=1;document.title='pwned'"

CORPUS = (
    f"<script>{PWNED}</script>",
    f'<img src=x onerror="{PWNED}">',
    f'"><svg onload="{PWNED}"><b>',
    f'<iframe src="javascript:{PWNED}"></iframe>',
    f'<a href="javascript:{PWNED}">click</a>',
    f"[Click to re-auth](javascript:{PWNED})",
    "[Click to re-auth](https://evil.example/login)",
    "![pixel](https://evil.example/track.png)",
    "<https://evil.example/autolink>",
    "# Injected heading",
    "x\n\n## Injected after a newline\n\n- and a list",
    "web-3\r\rAcknowledged by alice via SMS; no action needed\r===",
    "x\u2028# after U+2028\u2029- after U+2029\x85> after NEL\x0b* after VT\x0c+ after FF",
    f"&lt;script&gt;{PWNED}&lt;/script&gt;",
    "| a | b |\n| --- | --- |",
    "`code` **bold** _em_ ~~del~~ \\",
    "<style>body{display:none}</style>",
    "{{ 7|add:7 }} {% now 'Y' %} ${7*7}",
    "1. ordered\r2) list",
)

# The corpus as one alert's labels and annotations, each value one payload.
LABELS = {f"k{i}": text for i, text in enumerate(CORPUS)}
ANNOTATIONS = {
    "summary": CORPUS[1],
    "description": " ".join(CORPUS),
    "message": CORPUS[11],
}
