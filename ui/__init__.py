"""Streamlit helpers shared by the pages: session-state keys (ui.state), the builder sidebar
(ui.sidebar) and the main-area views (ui.views). The core package `explorer` never imports this."""
