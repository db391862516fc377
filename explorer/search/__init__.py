"""Search: sweeps over architectures and hyperparameters with Optuna, coarse to fine.

    sweepfile.py  the sweep file (base spec, space, objective, budget, seed) and its validation
    space.py      the search space as data, applying a point, the coarse-to-fine narrowing rule
    study.py      Optuna studies in RUNS/sweeps.sqlite, samplers, pruners, objective, report
    driver.py     runs trials as ordinary queue jobs, prunes on per-epoch validation, resumes
    recipes.py    the training recipes (recipes/recipes.json) train starts from
    cli.py        the `sweep` and `sweeps` commands

Never imports: streamlit, ui, interpret, classroom or charts (the Sweep page's figures are in
explorer.charts.search).
"""
