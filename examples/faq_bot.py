"""A terminal chatbot over an FAQ: type a question, get the answer, or "did you mean ...?" when the bot is unsure.

Run: .venv/bin/python examples/faq_bot.py [--faq FILE] [--model DIR] [--threshold T]

Without --faq it answers questions about sentsim itself (the FAQ that ships with it). Questions are read line by
line from the terminal or from a pipe: printf 'How do I train a model?\\nquit\\n' | python examples/faq_bot.py
Type quit or exit (or press Ctrl-D) to leave.
"""

from __future__ import annotations

import argparse
import sys

import sentsim
from sentsim.faq import FAQBot, QueryError

FALLBACK = "Sorry, I don't know that one."


def main() -> None:
    parser = argparse.ArgumentParser(description="A terminal chatbot over an FAQ.")
    parser.add_argument("--faq", help="FAQ file (CSV, TSV, JSONL, Parquet, JSON, YAML); default: sentsim's own")
    parser.add_argument("--model", help="model folder; default: the bundled model")
    parser.add_argument("--threshold", type=float, help="the lowest score the bot answers at; default: the model's")
    args = parser.parse_args()

    try:
        model = sentsim.load(args.model)
        bot = FAQBot.from_file(args.faq, model=model, threshold=args.threshold)
    except sentsim.SentsimError as exc:
        parser.exit(2, f"error: {exc}\n")

    interactive = sys.stdin.isatty()
    if interactive:
        print(f"{bot}\nAsk a question (quit to leave).")
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            break
        question = line.strip()
        if not question:
            continue
        if question.lower() in ("quit", "exit"):
            break
        try:
            ans = bot.ask(question, alternatives=2)
        except QueryError as exc:
            print(f"Please ask another way: {exc}.")
            continue
        if ans.answer is not None:
            print(ans.answer)
        else:
            print(FALLBACK)
            for suggestion in [ans.question, *(alt.question for alt in ans.alternatives)][:3]:
                print(f"Did you mean: {suggestion.rstrip('?')}?")


if __name__ == "__main__":
    main()
