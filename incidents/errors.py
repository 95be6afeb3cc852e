"""What the incident services refuse: a code, its parameters and English text from
the template below. The API maps each class to one status and translates the code
(api/errors.py, core/locale)."""

from __future__ import annotations

from core.errors import CodedError

TEMPLATES = {
    "incident.error": "{text}",
    "incident.not_found": "no incident {incident_id}",
    "incident.stale": (
        "incident {incident_id} changed since version {version} (now {current}); "
        "reload it and try again"
    ),
    "incident.changed_meanwhile": "the incident changed meanwhile; reload it",
    "incident.fields_unknown": "cannot set {fields}",
    "incident.tlp_invalid": "tlp: one of {allowed}",
    "incident.pap_invalid": "pap: one of {allowed}",
    "incident.ncciss_invalid": "ncciss: a CISA NCISS level from 0 to 5",
    "incident.title_missing": "title: an incident needs a title",
    "incident.already_merged": "incident {incident_id} was already merged into {target}",
    "incident.merged": "incident {incident_id} was merged into {target}; work there",
    "incident.state_invalid": "state '{state}': one of {allowed}",
    "incident.transition": "cannot go from {current} to {to}; allowed: {allowed}",
    "incident.resolution_needed": "closing needs a resolution: one of {allowed}",
    "incident.resolution_early": "closing from {current} needs a resolution of {allowed}",
    "incident.resolution_unexpected": "a resolution is given only when closing",
    "incident.cursor_invalid": "cursor: not one this API gave out",
    "incident.merge_needs_sources": "merge needs other incidents than the target",
    "incident.split_needs_alerts": "split needs the alerts to take out",
    "incident.owner_unknown": "owner '{owner}' is not one of the CERT's analysts",
    "alert.not_found": "no alert {alert_id}",
    "alert.in_incident": "alert {alert_id} is already in incident {incident_id}",
    "alert.in_other_incident": "alert {alert_id} is in incident {incident_id}: split it out first",
    "alert.not_in_incident": "alert {alert_id} is not in incident {incident_id}",
    "alert.status_invalid": "status must be one of {allowed}",
    "alert.dismiss_reason": "dismissing needs a reason: one of {allowed}",
    "alert.worked_in_incident": "alert {alert_id} is in incident {incident_id}; work it there",
    "alert.none_chosen": "choose at least one alert",
    "alert.too_many_chosen": "choose at most {most} alerts at a time",
    "alert.bulk_unknown": "action '{action}': one of {allowed}",
    "alert.assignee_unknown": "'{assignee}' is not one of the CERT's analysts",
    "alert.incident_needed": "name the incident to add the alerts to",
    "alert.incident_closed": "incident {incident_id} is closed; open a new one",
    "observable.type_unknown": "observable type '{type}' is not a MISP type Vigía knows",
    "observable.invalid": "observable: {reason}",
    "note.empty": "a note needs text",
    "reply.empty": "a reply needs text",
    "task.title_missing": "a task needs a title",
    "task.not_found": "no task {task_id} in incident {incident_id}",
    "task.stale": "task {task_id} changed since version {version} (now {current})",
    "rsit.type_without_class": "an RSIT type needs its class",
    "rsit.class_invalid": "RSIT class '{rsit_class}': one of {allowed}",
    "rsit.type_invalid": "RSIT type '{rsit_type}' is not in {rsit_class}: one of {allowed}",
    "share.tlp_kept": "TLP:{tlp} does not leave the CERT",
    "share.not_shared": "a merged, duplicate or false-positive incident is not shared",
    "share.nothing": "the incident has no indicator that may be shared",
}


class IncidentError(CodedError):
    """Bad input: answered 422 with the message."""

    templates = TEMPLATES
    generic = "incident.error"


class NotFound(IncidentError):
    """No such incident, alert or task (or not one the caller may see): 404."""


class Conflict(IncidentError):
    """A stale version or a transition the lifecycle does not allow: 409."""
