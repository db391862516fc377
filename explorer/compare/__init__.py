"""Comparing networks and runs: the runs table, the course's efficiency score, the Pareto front,
the parameter-budget leaderboard, a side-by-side diff of two architectures (results), and the
model zoo's published figures and explainers (zoo).

Never imports: streamlit, ui, or charts (figures are drawn by explorer.charts from this data).
"""
