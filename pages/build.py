"""Build page: assemble a network from blocks and see what every layer costs.

Data flow: sidebar callbacks change the NetworkSpec in session state (ui.state) -> the spec is
analysed (cached by its JSON and the memory settings) -> totals, table and charts (ui.views).
The spec also lives in the URL (?net=...), so the address bar is always a share link.
"""

from ui import sidebar, state, views

state.init()
spec, settings = state.spec(), state.settings()
outcome = views.run_analysis(spec, settings)

with views.guarded("the sidebar"):
    sidebar.render(spec, outcome.error, views.output_shapes(outcome))

with views.guarded("the page"):
    views.header(spec)
    views.messages(outcome)
    if outcome.analysis is not None:
        views.totals(outcome.analysis)
        views.tabs(spec, outcome.analysis)

state.sync_url()
