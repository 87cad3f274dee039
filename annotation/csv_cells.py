"""The cells of every CSV file the app writes, made safe to open in a spreadsheet.

Excel, LibreOffice and Google Sheets run a cell that starts with `=`, `+`, `-` or `@` (some also
after a leading tab or carriage return) as a formula: `=HYPERLINK(…)` in a response becomes a link
that sends data away, `+cmd|…` asks to start a program. Texts come from datasets and from models,
so they are hostile. Every CSV writer goes through `CsvCells`, which follows OWASP's CSV-injection
rule: such a cell gets a leading single quote, which makes a spreadsheet read it as text.

That changes the data (a math answer `-1` becomes `'-1`), so pair exports may ask for raw cells
(for machine consumers), and their manifest records which was done and how to undo it (UNDO).
A cell that already starts with quotes before such a character gets one more, so that undoing is
exact whatever the text was.
"""

import csv
import re

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
_NEEDS_QUOTE = re.compile("'*[=+\\-@\t\r]")
# First characters worth a closer look: almost no cell starts with one, so most cost one set lookup.
_SUSPECT = frozenset(FORMULA_LEADS + (QUOTE,))
UNDO = (
    "strip one leading ' from every cell that starts with one or more ' followed by =, +, -, @, "
    "a tab (0x09) or a carriage return (0x0D)"
)


def neutralise(value):
    """`value` with a leading quote when a spreadsheet would run it as a formula. Numbers and other
    non-strings pass as they are: the app wrote them, they hold no formula, and a quote would turn a
    negative number into text."""
    if isinstance(value, str) and value[:1] in _SUSPECT and _NEEDS_QUOTE.match(value):
        return QUOTE + value
    return value


class CsvCells:
    """A csv.writer over `file` whose cells are neutralised (unless `raw`), counting the cells changed."""

    def __init__(self, file, *, raw=False):
        self.writer = csv.writer(file)
        self.raw = raw
        self.neutralised = 0

    def writerow(self, row):
        if not self.raw:
            safe = [neutralise(value) for value in row]
            self.neutralised += sum(a is not b for a, b in zip(safe, row))
            row = safe
        return self.writer.writerow(row)
