"""Bad input fuzzing of every web form (issue 7): whatever is typed or forged into a field, the app answers
without a server error or a traceback, and a form it sends back with errors has changed nothing on the ledger."""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_pages import figure_6, post, sign_in

EXAMPLES = int(os.environ.get("GRIDLEDGER_FUZZ_EXAMPLES", "60"))

# What a person or a forger might put in a field: empty, numbers of every shape, dates, markup, huge text.
FIELD = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "2021-01-14T00:00",
            "2021-02-30T25:61",
            "1e309",
            "-0",
            "0.0001",
            "<script>alert(1)</script>",
            "{'a':",
            "C1",
            "C2",
            "RA1",
            "AC1",
            "volume",
            "maxmin",
            "buy",
            "sell",
            "declared",
            "mean-before",
            "\x00",
            "x" * 5000,
        ]
    ),
)

# Each form: who may use it, where it posts, and the fields it has (plus any a forger adds).
FORMS = {
    "issue a command": (
        "TSO",
        "/dr/commands/new",
        ["id", "start", "end", "requested_kw", "price", "granularity_minutes", "baseline_minutes", "target_acs"],
    ),
    "declare": (
        "RA1",
        "/dr/declare",
        ["command", "baseline_method", "consumers", "expected-C1", "baseline-C1", "expected-C4", "baseline-C4"],
    ),
    "place an order": ("RA1", "/market/orders", ["participant", "side", "price", "quantity"]),
    "configure the market": ("TSO", "/market/config", ["gate_seconds", "proposal_seconds", "objective"]),
}


def fuzz_form(client, backend, ledger, form, data):
    who, path, fields = FORMS[form]
    sign_in(client, who)
    values = data.draw(
        st.fixed_dictionaries({name: FIELD for name in fields}, optional={"forged": FIELD, "command_id": FIELD})
    )
    before = ledger.height
    response = post(client, path, values)
    assert response.status_code < 500, (form, values, response.status_code)
    assert "Traceback" not in response.text
    if response.status_code >= 400:  # sent back with its errors: nothing was committed
        assert ledger.height == before, (form, values)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), form=st.sampled_from(sorted(FORMS)))
def test_no_form_input_crashes_the_app_or_changes_the_ledger_when_refused(client, backend, as_db, ledger, data, form):
    if ledger.height == 0:
        figure_6(backend, as_db, ra1_declares=False)  # a command RA1 may declare for, consumers to order for
    fuzz_form(client, backend, ledger, form, data)
