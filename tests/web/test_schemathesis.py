"""schemathesis against the example app on a real loopback server: generated
requests from the OpenAPI document get no server errors and answers that match the
document (status codes, content types, response schemas).

Each operation's strategy is driven by hypothesis here rather than by
schemathesis' pytest plugin, which does not load under the pytest in use.
"""

from collections.abc import Callable

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.apps.typed_app import app
from tests.conftest import Running

#: Examples per operation: bounded so the whole run stays within seconds.
EXAMPLES = 25


def test_generated_requests_conform_to_the_document(serve: Callable[..., Running]) -> None:
    server = serve(app)
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def conforms(case: schemathesis.Case) -> None:
            # No credentials are given: schemathesis checks that the protected
            # operations refuse what it generates (401/403), and the others serve.
            case.call_and_validate()

        conforms()
        checked.append(operation.label)
    assert len(checked) >= 10, checked
