"""Text as a page shows it. The app escapes every punctuation mark of names and messages before
Streamlit renders them as Markdown (they quote visitors' input; explorer.text.markdown_plain), so
AppTest sees `LeNet\\-5` where a person sees `LeNet-5`."""

import re


def shown(markdown: str) -> str:
    """Drop Markdown's backslash escapes: the text a person reads."""
    return re.sub(r"\\(.)", r"\1", markdown)
