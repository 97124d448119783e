"""Rewrite the README's config reference block from the config models."""

from pathlib import Path

from gridsense.config_reference import reference

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text(encoding="utf-8")
head, rest = text.split(START, 1)
_, tail = rest.split(END, 1)
readme.write_text(f"{head}{START}\n{reference()}{END}{tail}", encoding="utf-8")
