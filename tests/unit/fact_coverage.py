"""Which fact classes the tests cover: each domain's test module marks its test classes
with `covers`, and test_facts.py checks that every fact class has one."""

TESTED = set()


def covers(cls):
    """Mark a test class as covering the fact class of the same name."""

    def mark(test_cls):
        TESTED.add(cls)
        return test_cls

    return mark
