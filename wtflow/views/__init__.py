"""Views of a run for people: the self-contained HTML report and the `wtflow ui` pages.

Both take a run as the dict `wtflow show --json` prints (the run, and its `nodes` in tree
order, each with its attempts and their outputs) and render it with the same functions:

    record.py   reading that dict from the database (the only module here that does)
    timing.py   times, durations and the critical path (pure)
    tails.py    the last lines of each output file, within a size budget
    html.py     the header, the tree and the timeline as HTML (pure; everything escaped)
    assets/     the CSS and JS, inlined into the report and served by the UI
"""
