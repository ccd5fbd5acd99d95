"""Stacked bar charts drawn as SVG by the server (no JavaScript, no CDN): the geometry is computed
here, the template only writes the shapes."""

from dataclasses import dataclass, field

WIDTH = 720
HEIGHT = 200
LEFT = 44  # room for the y-axis labels
BOTTOM = 22  # room for the x-axis labels
TOP = 8
GAP = 0.25  # share of a slot left empty between bars


@dataclass
class Segment:
    group: str
    label: str
    value: int
    y: float
    height: float


@dataclass
class Bar:
    x: float
    width: float
    label: str
    title: str
    href: str
    total: int
    segments: list = field(default_factory=list)
    show_label: bool = False

    @property
    def center(self):
        return round(self.x + self.width / 2, 2)


@dataclass
class Chart:
    width: int
    height: int
    plot_left: int
    plot_bottom: float
    bars: list
    ticks: list  # (y, label)
    maximum: int

    @property
    def tick_x(self):
        return self.plot_left - 6


NICE_STEPS = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8)


def nice_ceiling(value):
    """The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 x 10^n) at or above `value`, at
    least 2 so that the middle tick is a whole number."""
    if value <= 2:
        return 2
    scale = 1
    while True:
        for step in NICE_STEPS:
            if step * scale >= value and (step * scale) % 2 == 0:
                return int(step * scale)
        scale *= 10


def stacked_bars(buckets, groups, label_of, title_of, href_of, label_every=1):
    """A chart of `buckets` (each with .counts {group: n}); `groups` is [(key, label)] bottom first."""
    maximum = nice_ceiling(max((sum(b.counts.values()) for b in buckets), default=0))
    plot_height = HEIGHT - BOTTOM - TOP
    plot_width = WIDTH - LEFT
    slot = plot_width / max(len(buckets), 1)
    bars = []
    for index, bucket in enumerate(buckets):
        total = sum(bucket.counts.get(key, 0) for key, _ in groups)
        bar = Bar(
            x=round(LEFT + index * slot + slot * GAP / 2, 2),
            width=round(slot * (1 - GAP), 2),
            label=label_of(bucket),
            title=title_of(bucket),
            href=href_of(bucket),
            total=total,
            show_label=index % label_every == 0 or index == len(buckets) - 1,
        )
        base = HEIGHT - BOTTOM
        for key, label in groups:
            value = bucket.counts.get(key, 0)
            if not value:
                continue
            height = plot_height * value / maximum
            base -= height
            bar.segments.append(Segment(key, label, value, round(base, 2), round(height, 2)))
        bars.append(bar)
    ticks = [(round(HEIGHT - BOTTOM - plot_height * share, 2), _short(int(maximum * share))) for share in (0, 0.5, 1)]
    return Chart(WIDTH, HEIGHT, LEFT, HEIGHT - BOTTOM, bars, ticks, maximum)


def _short(number):
    """1200 -> "1.2k", 3000000 -> "3M"."""
    for limit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if number >= limit:
            text = f"{number / limit:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return str(number)
