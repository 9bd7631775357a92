"""Incident channels on Slack and Mattermost, and the outbox that posts to them.

`mirror` writes what a war room says (and the channel's own operations: invites, archiving) as
`ChatPost` rows in the same transaction; `outbox` delivers them after commit, in order per
channel, at the provider's pace; `channels` makes each incident's own channel. The platforms
(`warroom.slack.outbound`, `warroom.mattermost.outbound`) only render and call their APIs.
"""
