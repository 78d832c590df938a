"""The verifier chaincode runs: what it accepts, what it refuses and why, and how the best proposal is chosen."""

import dataclasses
from fractions import Fraction

import pytest
from order_books import order_book

from solver.matching import solve
from solver.proposals import Certificate, Proposal, Trade
from solver.verify import CertificateRejected, ProposalRejected, VerifiedValue, better, verify

SEED = b"\x02"
BOOK = order_book(
    "s1 alice sell 1000 2000 0", "s2 bob sell 1400 1000 1", "b1 carol buy 2000 1500 0", "b2 alice buy 1600 1500 2"
)


def proposal(*trades, objective="welfare", value=None, certificate=None):
    by_id = {o.id: o for o in BOOK}
    trades = tuple(Trade(*t) for t in trades)
    if value is None:
        value = sum(
            (by_id[t.buy].price - by_id[t.sell].price) * t.quantity
            for t in trades
            if t.buy in by_id and t.sell in by_id
        )
    return Proposal(objective, trades, value, certificate)


def test_the_solvers_proposals_are_accepted_with_their_exact_value():
    for objective in ("volume", "welfare", "maxmin"):
        solution = solve(BOOK, objective, SEED)
        verified = verify(BOOK, SEED, objective, solution.proposal())
        assert (verified.value, verified.surplus, verified.volume) == (
            solution.value,
            solution.surplus,
            solution.volume,
        )
        assert verified.optimal == (objective != "maxmin")  # alice's own orders cross: maxmin unproven
        assert verified.digest == solution.proposal().digest()


def test_a_proposal_round_trips_through_json_and_still_verifies():
    solution = solve(BOOK, "welfare", SEED)
    assert verify(BOOK, SEED, "welfare", Proposal.from_json(solution.proposal().to_json())).optimal


@pytest.mark.parametrize(
    "trades, message",
    [
        ([("s9", "b1", 100, 1500)], "order s9 is not in the gate's book"),
        ([("b1", "s1", 100, 1500)], "order b1 is a buy order, not a sell"),
        ([("s1", "s2", 100, 1500)], "order s2 is a sell order, not a buy"),
        ([("s1", "b2", 100, 1300)], "both orders belong to alice, who cannot trade with itself"),
        ([("s1", "b1", 0, 1500)], "quantity must be a positive whole number of Wh, got 0"),
        ([("s1", "b1", 1.5, 1500)], "quantity must be a positive whole number of Wh, got 1.5"),
        ([("s1", "b1", 1600, 1500)], "order b1 is filled 1600 Wh but offers only 1500 Wh"),
        ([("s2", "b1", 500, 1300)], "price must be whole sen/kWh between the ask 1400 and the bid 2000, got 1300"),
        ([("s1", "b1", 500, 1600)], "welfare trades at the midpoint 1500 sen/kWh, got 1600"),
    ],
)
def test_infeasible_or_mispriced_trades_are_refused_with_the_reason(trades, message):
    with pytest.raises(ProposalRejected, match=message):
        verify(BOOK, SEED, "welfare", proposal(*trades))


def test_a_wrong_claimed_value_or_objective_is_refused():
    honest = proposal(("s1", "b1", 1500, 1500))
    with pytest.raises(ProposalRejected, match="claims welfare 1 but its trades give 1500000"):
        verify(BOOK, SEED, "welfare", dataclasses.replace(honest, value=1))
    with pytest.raises(ProposalRejected, match="is for 'welfare' but the gate's objective is 'volume'"):
        verify(BOOK, SEED, "volume", honest)
    optimum = solve(BOOK, "welfare", SEED).proposal()
    assert verify(BOOK, SEED, "welfare", optimum).value == 1_700_000


def test_a_maxmin_value_is_the_worst_margin_and_its_trades_share_one_price():
    # alice sells 0.5 kWh to carol at 17 yen: alice earns 7 yen/kWh, carol 3: the worst margin is 300 sen/kWh.
    # alice also buys, above her own ask, so B6 can bind here: the proposal needs no certificate, and is unproven.
    trade = proposal(("s1", "b1", 500, 1700), objective="maxmin", value=Fraction(300))
    verified = verify(BOOK, SEED, "maxmin", trade)
    assert verified.value == 300 and not verified.optimal
    with pytest.raises(ProposalRejected, match="claims maxmin 1/3"):
        verify(BOOK, SEED, "maxmin", dataclasses.replace(trade, value=Fraction(1, 3)))
    two_prices = proposal(("s1", "b1", 500, 1700), ("s2", "b1", 500, 1800), objective="maxmin", value=Fraction(200))
    with pytest.raises(ProposalRejected, match="is at 1800 sen/kWh but trade 0 at 1700: maxmin trades everything"):
        verify(BOOK, SEED, "maxmin", two_prices)


def test_a_certificate_that_does_not_prove_optimality_is_refused():
    solution = solve(BOOK, "welfare", SEED)
    certificate = solution.certificate
    lowered = {order_id: max(dual - 1, 0) for order_id, dual in certificate.sell_duals.items()}
    with pytest.raises(CertificateRejected, match="bounds welfare at"):
        verify(
            BOOK,
            SEED,
            "welfare",
            dataclasses.replace(solution.proposal(), certificate=Certificate(lowered, certificate.buy_duals)),
        )
    # A suboptimal proposal cannot borrow the optimum's certificate.
    weaker = proposal(("s1", "b1", 1000, 1500), certificate=certificate)
    with pytest.raises(CertificateRejected):
        verify(BOOK, SEED, "welfare", weaker)
    with pytest.raises(CertificateRejected, match="must be a whole number >= 0"):
        verify(BOOK, SEED, "welfare", dataclasses.replace(solution.proposal(), certificate=Certificate({"s1": -1}, {})))
    # Without a certificate the same trades are refused: a volume or welfare proposal must be proven optimal.
    with pytest.raises(ProposalRejected, match="must carry the LP-dual certificate"):
        verify(BOOK, SEED, "welfare", Proposal("welfare", weaker.trades, weaker.value))


def test_a_certificate_leaving_a_pair_uncovered_is_refused():
    # One sell, one buy: volume 1 kWh. Putting the whole dual on a third order covers nothing.
    book = order_book("s A sell 1000 1000 0", "b B buy 1000 1000 0", "x C buy 500 1000 0")
    trade = (Trade("s", "b", 1000, 1000),)
    with pytest.raises(CertificateRejected, match="does not cover sell s and buy b: 0 \\+ 0 < 1"):
        verify(book, SEED, "volume", Proposal("volume", trade, 1000, Certificate({}, {"x": 1})))
    assert verify(book, SEED, "volume", Proposal("volume", trade, 1000, Certificate({}, {"b": 1}))).optimal


def verified(value, surplus=0, tie=(), objective="welfare", optimal=True):
    return VerifiedValue(objective, value, surplus, 0, optimal, "digest", lambda: tie)


def test_better_takes_the_higher_value_then_the_fairer_outcome_whatever_the_order():
    high, low = verified(10, tie=(9,)), verified(9, tie=(0,))
    assert better("welfare", high, low) is high and better("welfare", low, high) is high
    tie_a, tie_b = verified(10, tie=(1,)), verified(10, tie=(2,))
    assert better("welfare", tie_a, tie_b) is tie_a and better("welfare", tie_b, tie_a) is tie_a


def test_better_breaks_maxmin_ties_on_surplus():
    poor = verified(Fraction(5, 2), surplus=100, tie=(0,), objective="maxmin", optimal=False)
    rich = verified(Fraction(5, 2), surplus=200, tie=(9,), objective="maxmin", optimal=False)
    assert better("maxmin", poor, rich) is rich
    with pytest.raises(ValueError, match="cannot compete"):
        better("volume", poor, rich)
