"""The overview's server-drawn charts."""

from dataclasses import dataclass

from dashboard.charts import HEIGHT, nice_ceiling, stacked_bars


@dataclass
class B:
    counts: dict


def test_nice_ceiling_rounds_up_to_a_readable_maximum():
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 11, 210, 499, 501, 4300)] == [2, 2, 4, 8, 20, 250, 500, 600, 5000]


def test_bars_stack_the_groups_bottom_first_and_scale_to_the_maximum():
    groups = [("delivered", "Delivered"), ("failed", "Failed")]
    chart = stacked_bars(
        [B({"delivered": 6, "failed": 2}), B({"delivered": 0, "failed": 0})],
        groups,
        label_of=lambda b: "x",
        title_of=lambda b: "t",
        href_of=lambda b: "/h",
    )
    assert chart.maximum == 8
    first, empty = chart.bars
    assert [s.group for s in first.segments] == ["delivered", "failed"]
    delivered, failed = first.segments
    assert delivered.height == 3 * failed.height
    assert delivered.y + delivered.height == HEIGHT - 22  # sits on the axis
    assert failed.y + failed.height == delivered.y  # stacked on top
    assert empty.segments == [] and empty.total == 0
    assert [label for _, label in chart.ticks] == ["0", "4", "8"]
