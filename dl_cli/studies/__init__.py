"""`dl report SWEEP_DIR`: what a study set out to show, and what its trials found.

A study is a sweep (``experiments/*.yaml``) whose spec states its ``claim`` and names,
under ``report: {study: NAME}``, the figures of its own to draw. The modules, in the
order the data flows:

- ``study``: a finished sweep folder read back as a ``Study`` of configurations (``Group``)
  and their seeds' trials (``Trial``);
- ``measures``: the numbers behind the figures (``activation_std_at_init``,
  ``near_zero_fraction``, ...), which the tests call too, so a report shows what the
  tests assert;
- ``text`` and ``figures``: how those numbers read in markdown and on matplotlib's Agg
  canvas (no display needed);
- ``architecture``, ``learning_rate``, ``fitting``: each study's own section;
- ``report``: ``write_report``, which writes ``report.md`` beside the PNG figures.
"""
