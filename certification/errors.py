"""What the certification services refuse: a code, its parameters and English text
from the template below. The API maps each class to one status and translates the
code (api/errors.py, core/locale)."""

from __future__ import annotations

from core.errors import CodedError

TEMPLATES = {
    "cert.error": "{text}",
    "assessment.not_found": "no assessment {assessment_id}",
    "assessment.open_exists": "assessment {assessment_id} is still open for {entity_id}",
    "assessment.locked": "assessment {assessment_id} is {status}: the entity cannot change it now",
    "assessment.unanswered": "{count} controls without an answer, first {first}",
    "assessment.not_reviewable": "assessment {assessment_id} is {status}: nothing to review",
    "assessment.not_returnable": (
        "assessment {assessment_id} is {status}: only one under review returns"
    ),
    "assessment.not_decidable": "assessment {assessment_id} is {status}: review it first",
    "assessment.reviews_pending": "{count} answers not reviewed yet, first {first}",
    "control.not_found": "no control {control_id} in catalogue {version}",
    "answer.invalid": "answer: one of {allowed}",
    "answer.justification_needed": "{control_id}: not applicable needs a justification",
    "answer.not_found": "no answer to {control_id}",
    "review.verdict_invalid": "verdict: accepted or rejected",
    "review.comment_needed": "a rejection needs a comment for the entity",
    "evidence.empty": "the evidence file is empty",
    "evidence.too_large": "evidence files are limited to {max_bytes} bytes",
    "evidence.type_refused": "type '{media_type}' is not accepted: one of {allowed}",
    "evidence.content_mismatch": "the file's content is not {media_type}",
    "evidence.not_utf8": "the file's content is not {media_type} in UTF-8",
    "evidence.expired": "expires_on: evidence must still be valid when it is attached",
    "evidence.not_found": "no evidence {evidence_id} in this assessment",
    "evidence.other_control": "evidence {evidence_id} backs another control",
    "decision.reason_needed": "a refusal needs a reason for the entity",
    "certificate.not_found": "no certificate {cert_id}",
    "certificate.revoked": "certificate {cert_id} is already revoked",
    "certificate.wrong_state": "certificate {cert_id} is {status}; {action} needs {needs}",
    "certificate.expired_meanwhile": "certificate {cert_id} has expired meanwhile",
    "certificate.action_invalid": "action: suspend, reinstate or revoke",
    "certificate.reason_needed": "{action} needs a reason",
    "entity.id_invalid": "entity id '{entity_id}': use 2-63 lower-case letters, digits, -",
    "entity.exists": "entity '{entity_id}' already exists",
    "entity.not_found": "no entity '{entity_id}'",
    "entity.email_invalid": "contact e-mail '{email}' is not an address",
    "entity.webhook_refused": "{reason}",
    "entity.webhook_secret_short": "a webhook needs a signing secret of at least 16 characters",
    "entity.level_invalid": "level '{level}': one of {allowed}",
    "entity.name_missing": "an entity needs a name",
    "entity.name_invalid": "the name may not hold character {char} (control or direction)",
    "entity.network_invalid": "{reason}",
    "entity.parent_invalid": "parent '{parent_id}': another registered entity",
    "entity.csv_columns": "the CSV needs the columns {columns}",
    "catalogue.not_mapping": "a catalogue is a mapping with version, title and domains",
    "catalogue.version_invalid": "version: 1-40 letters, digits, dots or dashes",
    "catalogue.title_missing": "title: required",
    "catalogue.domain_invalid": "domain {domain}: needs an id (GOB) and a name",
    "catalogue.control_id": "{where}: needs a unique id like {domain}-01",
    "catalogue.field_missing": "{where}: {key} is required",
    "catalogue.mandatory_invalid": "{where}: mandatory must be true or false",
    "catalogue.reference_invalid": "{where}: '{reference}' is not an Annex A or CIS v8 id",
    "catalogue.empty": "a catalogue needs at least one domain with controls",
    "catalogue.not_yaml": "not YAML: {reason}",
    "catalogue.version_exists": "version {version} exists with other content; bump it",
    "catalogue.not_found": "no catalogue {version}",
}


class CertError(CodedError):
    """Bad input: 422."""

    templates = TEMPLATES
    generic = "cert.error"


class CertNotFound(CertError):
    """No such assessment, evidence or certificate, or not the caller's: 404."""


class CertConflict(CertError):
    """Not in this state: 409."""
