"""Score a few sentence pairs with the bundled model, offline: the README's first command runs this.

Run: .venv/bin/python examples/quickstart.py
"""

from __future__ import annotations

import sentsim

PAIRS = [
    ("A man is playing a guitar.", "Someone is playing a guitar."),
    ("How do I reset my password?", "I forgot my password, how can I change it?"),
    ("The cat sits on the mat.", "A dog is running in the park."),
    ("The movie was great.", "The movie was not great."),
    ("Stocks fell sharply on Monday.", "I like to eat apples."),
]


def main() -> None:
    model = sentsim.load()  # the bundled all-MiniLM-L6-v2: no download
    print(f"{model}\n")
    for a, b in PAIRS:
        verdict = model.compare(a, b)
        print(f"{verdict.score:6.3f}  {'same meaning' if verdict.same else 'different':12}  {a!r} vs {b!r}")
    matrix = model.similarity_matrix([a for a, _ in PAIRS], [b for _, b in PAIRS])
    print(f"\nsimilarity matrix {matrix.shape}: the diagonal holds the pairs above")


if __name__ == "__main__":
    main()
