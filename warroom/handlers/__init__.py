"""The handlers of the chat commands, one module per subject.

Each handler runs as the person who typed the command: `warroom.execute.run` checks the role the
command needs and calls it with (command, user, source, incident in context). A handler finds
its incident with `warroom.replies.incident_for` (the role checked again by `access_incident`),
calls the owning app's service and answers with a `Reply`: Markdown in chat, one short line by
phone. An error changes nothing and says why.
"""
