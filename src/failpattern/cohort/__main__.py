"""``python -m failpattern.cohort [DOC]``: print the format tables, or refresh them in DOC.

Why: the tables in ``docs/cohort-format.md`` are generated from
:mod:`failpattern.cohort.schema`, so the documentation cannot drift from what
the loader checks (a test compares them).
"""

import sys
from pathlib import Path

from failpattern.cohort.schema import DOC_BLOCKS, render_doc

if len(sys.argv) > 1:
    doc = Path(sys.argv[1])
    doc.write_text(render_doc(doc.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"refreshed {', '.join(DOC_BLOCKS)} in {doc}")
else:
    print(*(make() for make in DOC_BLOCKS.values()), sep="\n\n")
