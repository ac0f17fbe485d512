"""sentsim's Gradio demo: compare two sentences, ask the FAQ bot, score a file of pairs, search sentences.

    .venv/bin/python demo/app.py [--model DIR] [--faq FILE] [--port 7860]     # the same as `sentsim demo`

``build_demo(model=None, bot=None) -> gr.Blocks`` builds the app (defaults: the bundled model and sentsim's own FAQ);
the code lives in :mod:`sentsim.demo`, so that ``sentsim demo`` works from any install.
"""

import sys

from sentsim.demo import build_demo, main

__all__ = ["build_demo", "main"]

if __name__ == "__main__":
    sys.exit(main())
