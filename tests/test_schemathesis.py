"""schemathesis over the whole OpenAPI of the app, in process (ASGI), as an admin, an
analyst and an entity: no answer is a 5xx, and no answer breaks the schema its
route documents (issue 13, "keep it closed").

Bounded: a few examples per operation and generation mode, each sent with the
three tokens (VIGIA_SCHEMATHESIS_EXAMPLES raises the count for a deeper run).
Seeded with an entity, an incident and an assessment, so that id 1 names real rows
and the code past the lookups runs too. The stateful test follows the links
schemathesis infers between operations, once per role.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from core.settings import load_settings
from core.tokens import Role
from tests.conftest import bearer, make_token
from vigia.wiring import Services, build

EXAMPLES = int(os.environ.get("VIGIA_SCHEMATHESIS_EXAMPLES", "6"))
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, dict[str, str]]]:
    s = build(load_settings(data_dir=Path(tmp_path_factory.mktemp("st")) / "data", database_url=""))
    from certification import assessments
    from certification.registry import Registry
    from incidents import service

    with s.db.transaction() as session:
        Registry.add(session, "ent-a", "Entidad A", "central", ["192.0.2.0/24"], [], "test")
        service.open_incident(session, s.policy, "test", [], "Incidente de prueba")
        assessments.open_assessment(session, "ent-a", "test")
    tokens = {
        "admin": make_token(s, Role.ADMIN),
        "analyst": make_token(s, Role.ANALYST),
        "entity": make_token(s, Role.ENTITY, "ent-a"),
    }
    yield s, tokens
    s.close()


def test_the_whole_api_answers_no_5xx_and_keeps_its_documented_schemas(
    seeded: tuple[Services, dict[str, str]],
) -> None:
    services, tokens = seeded
    app = create_app(services)
    schema = schemathesis.openapi.from_asgi(
        "/api/openapi.json", app, headers=bearer(tokens["admin"])
    )
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                strategy = operation.as_strategy(generation_mode=mode)
            except Exception as exc:  # an operation schemathesis cannot generate for
                failures.append(f"{operation.label} [{mode}]: no strategy: {exc}")
                continue
            failure = _run(strategy, tokens)
            if failure:
                failures.append(f"{operation.label} [{mode}]: {failure}")
    assert operations > 40, "the schema lost its operations"
    assert not failures, "\n\n".join(failures)


def _run(strategy: st.SearchStrategy[Any], tokens: dict[str, str]) -> str | None:
    """Up to EXAMPLES cases, each sent with every token; the first failure, shrunk."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases every run: a failure here is reproducible
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        for token in tokens.values():
            case.call_and_validate(headers=bearer(token), checks=CHECKS)

    try:
        check()
    except Unsatisfiable:
        return None  # nothing to generate in this mode (e.g. no input to make invalid)
    except (FailureGroup, AssertionError) as exc:
        return str(exc)[:3000]
    except Exception as exc:  # the app raised: in process, a 500 arrives as its exception
        return f"{type(exc).__name__}: {exc}"[:3000]
    return None


@pytest.mark.parametrize("role", ["admin", "analyst", "entity"])
def test_stateful_sequences_answer_no_5xx(
    seeded: tuple[Services, dict[str, str]], role: str
) -> None:
    """Sequences of calls along the links schemathesis infers between operations
    (an id a response names, used by the next call), as one role each."""
    services, tokens = seeded
    app = create_app(services)
    schema = schemathesis.openapi.from_asgi(
        "/api/openapi.json", app, headers=bearer(tokens["admin"])
    )
    machine = schema.as_state_machine()
    headers = bearer(tokens[role])

    class Calls(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Calls.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
