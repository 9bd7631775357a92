"""The Slack app's inbound side: signed slash commands and events in, answers out.

`verify` checks Slack's signature, `views` answers at once, `tasks` runs the command as the
person `people` finds through `client` (Slack's Web API), and the surface
(`warroom.surfaces.slack`, reached through the registry) renders the answer.
"""
