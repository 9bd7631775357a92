"""The chat command `postmortem`: start the incident's postmortem and post its links.

Anyone may ask for the links; starting a postmortem writes, so only a responder's request
starts one (an observer is told that none exists yet, with the page's link all the same).
"""

from __future__ import annotations

from accounts.models import Role, User
from incidents.models import Incident, Postmortem
from incidents.postmortems import get_or_start_postmortem, urls_of
from warroom.commands.specs import Command
from warroom.replies import Reply, incident_for, incident_link


def postmortem(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """Reply with the postmortem's page and export links, starting it for a responder."""
    incident = incident_for(command, user, source, context, role=Role.OBSERVER)
    if isinstance(incident, Reply):
        return incident
    number = incident.number
    link = incident_link(number, source)
    started = False
    if not Postmortem.objects.filter(incident=incident).exists():
        if not user.has_role(Role.RESPONDER):
            return Reply(
                f"{link} has no postmortem yet; a responder starts one by typing "
                f"`postmortem`. It will be at [its page]({urls_of(number)['web']}).",
                incident=number,
            )
        get_or_start_postmortem(incident, user)
        started = True
    urls = urls_of(number)
    head = "Started the postmortem" if started else "The postmortem"
    return Reply(
        f"{head} of {link}: [edit it]({urls['web']}) · export as "
        f"[Markdown]({urls['markdown']}), [JSON]({urls['json']}) or "
        f"[a printable page]({urls['print']}).",
        changed=started,
        incident=number,
    )
