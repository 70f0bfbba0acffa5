import threading
import time

import matplotlib

from stockcast.plot_style import serialized


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
