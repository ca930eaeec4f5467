"""``python -m aidrill.schemas``: regenerate the shipped JSON Schemas from the records."""

from aidrill.schemas import write_all

for path in write_all():
    print(path)
