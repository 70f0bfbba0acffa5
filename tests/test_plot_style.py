import threading
import time

import matplotlib
import numpy as np
from PIL import Image

from stockcast.plot_style import Margins, new_figure, overflows, save, serialized


def test_plotting_functions_never_overlap_across_threads():
    events = []

    @serialized
    def draw(name):
        events.append(("in", name))
        time.sleep(0.02)
        events.append(("out", name))

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every "in" is followed by its own "out" before anyone else enters
    assert all(events[i][0] == "in" and events[i + 1] == ("out", events[i][1])
               for i in range(0, len(events), 2))


def test_the_house_style_applies_only_inside_plotting_functions():
    @serialized
    def grid_setting():
        return matplotlib.rcParams["axes.grid"]

    before = matplotlib.rcParams["axes.grid"]
    assert grid_setting() is True
    assert matplotlib.rcParams["axes.grid"] == before


def _figure_with_bars(margins: Margins | None = None):
    fig, ax = new_figure(figsize=(6, 4), margins=margins or Margins())
    ax.bar(np.arange(1, 21), np.linspace(-0.1, 0.2, 20))
    ax.set(title="bars", xlabel="lag", ylabel="value")
    return fig, ax


def test_a_figure_within_its_margins_keeps_them(tmp_path):
    fig, ax = _figure_with_bars()
    before = (fig.subplotpars.left, fig.subplotpars.bottom)
    path = save(fig, tmp_path / "bars.png")

    assert not overflows(fig)
    assert (fig.subplotpars.left, fig.subplotpars.bottom) == before  # no second layout
    with Image.open(path) as image:
        assert image.size == (6 * fig.dpi, 4 * fig.dpi)  # the whole figure, not cropped
    # matplotlib keeps labels for ticks past the view (here beyond lag 20) and never draws
    # them: they must not count as text past the edge
    low, high = ax.get_xlim()
    assert any(not low <= tick.get_loc() <= high for tick in ax.xaxis.majorTicks)


@serialized
def test_text_past_the_figure_edge_is_laid_out_again_and_fits(tmp_path):
    fig, ax = _figure_with_bars(Margins(left=0.05, bottom=0.05))
    ax.set_yticks([0.0, 0.1], ["a long tick label", "another long one"])
    fig.canvas.draw()
    assert overflows(fig)

    save(fig, tmp_path / "tight.png")

    assert not overflows(fig)
    assert fig.subplotpars.left > 0.05 / 6


@serialized
def test_overflows_sees_any_drawn_text_past_the_edge():
    fig, _ = _figure_with_bars()
    fig.text(0.98, 0.5, "a note that runs past the right edge")
    fig.canvas.draw()
    assert overflows(fig)
