"""The topology's dr section: how long after a DR window its readings are due by default (and so when it settles)."""

import pytest

from consortium import topology as topology_file
from consortium.topology import DEFAULT_PATH, TopologyError


def with_dr_section(tmp_path, section: str):
    path = tmp_path / "topology.yaml"
    text = DEFAULT_PATH.read_text()
    assert "dr:\n  readings_due_minutes: 30\n" in text
    path.write_text(text.replace("dr:\n  readings_due_minutes: 30\n", section))
    return path


def test_readings_are_due_thirty_minutes_after_the_window_by_default():
    assert topology_file.load().dr_readings_due_minutes == 30


def test_the_dr_section_sets_the_default_and_may_be_left_out(tmp_path):
    assert (
        topology_file.load(with_dr_section(tmp_path, "dr:\n  readings_due_minutes: 5\n")).dr_readings_due_minutes == 5
    )
    assert topology_file.load(with_dr_section(tmp_path, "")).dr_readings_due_minutes == 30


@pytest.mark.parametrize("minutes", [0, -1, 7 * 1440 + 1])
def test_readings_due_outside_a_minute_to_a_week_is_refused(tmp_path, minutes):
    with pytest.raises(TopologyError, match="dr: readings_due_minutes must be from 1 to 10080"):
        topology_file.load(with_dr_section(tmp_path, f"dr:\n  readings_due_minutes: {minutes}\n"))
