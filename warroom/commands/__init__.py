"""The ChatOps grammar: one pure parser from text to a command, for every surface.

Chat, Slack, Mattermost, inbound SMS and the phone keypad all turn their input into text and call
`warroom.commands.parser.parse(text, surface=…)`. No Django and no database here: what a command
*does* lives in `warroom.execute` and `warroom.handlers`. A command is a row in
`warroom.commands.specs.SPECS` (name, aliases, argument grammar, help with an example); its
arguments are read by `warroom.commands.args`; help is written by `warroom.commands.help`;
which chat messages are commands is `warroom.commands.addressing`.
"""
