"""The surfaces that take commands in: each verifies its request, finds the person, parses the
text with `warroom.commands`, runs it with `warroom.execute` and answers in its own format.

One module per surface, listed in `warroom.surfaces.registry`. Surfaces are leaves: the grammar,
the dispatcher, the handlers and the room services never import them; only what receives the
text does (URLs for SMS and the keypad; the websocket, the API and the web pages for chat).
"""
