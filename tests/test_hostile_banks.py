"""Hostile and generated bank files: only ever a clear ``BankError``, never a crash."""

import random

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quiz import banks
from quiz.config import QUESTIONS_DIR

BILLION_LAUGHS = b"""\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
"""


def outcome(raw: bytes):
    """The parse result, or the BankError; any other exception fails the test."""
    try:
        return banks.parse_bank(raw, "fuzz.yaml")
    except banks.BankError as exc:
        assert exc.problems and all(
            str(p).startswith("fuzz.yaml") for p in exc.problems
        )
        return exc


def test_alias_bomb_is_refused_before_expansion():
    result = outcome(BILLION_LAUGHS)
    assert isinstance(result, banks.BankError)
    assert "anchors and aliases" in str(result)


def test_python_object_tags_are_refused():
    for raw in (
        b"id: !!python/object/apply:os.system ['id']\n",
        b"!!python/object:__main__.X {}\n",
        b"id: !!python/name:os.system\n",
    ):
        assert "YAML tag" in str(outcome(raw))


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=40),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=12), children, max_size=6),
    ),
    max_leaves=30,
)
bank_like = st.fixed_dictionaries(
    {},
    optional={
        "id": yaml_values,
        "title": yaml_values,
        "theme": yaml_values,
        "description": yaml_values,
        "settings": yaml_values,
        "questions": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": yaml_values,
                    "type": st.sampled_from(
                        ["single", "multiple", "true_false", "essay", 3, None]
                    ),
                    "prompt": yaml_values,
                    "choices": yaml_values,
                    "answer": yaml_values,
                    "explanation": yaml_values,
                    "source": yaml_values,
                    "difficulty": yaml_values,
                    "points": yaml_values,
                    "tags": yaml_values,
                },
            ),
            max_size=4,
        ),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bank_like)
def test_generated_banks_only_ever_fail_with_a_bank_error(document):
    outcome(yaml.safe_dump(document, allow_unicode=True).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_only_ever_fail_with_a_bank_error(raw):
    outcome(raw)


SHIPPED = [path.read_bytes() for path in sorted(QUESTIONS_DIR.glob("*.yaml"))]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, len(SHIPPED) - 1),
    st.randoms(use_true_random=False),
    st.integers(1, 8),
)
def test_mutated_shipped_banks_only_ever_fail_with_a_bank_error(
    index, rnd: random.Random, cuts
):
    data = bytearray(SHIPPED[index])
    for _ in range(cuts):
        position = rnd.randrange(len(data))
        action = rnd.randrange(3)
        if action == 0:
            del data[position : position + rnd.randrange(1, 40)]
        elif action == 1:
            data[position:position] = rnd.choice(
                [
                    b"\n",
                    b":",
                    b"- ",
                    b"  ",
                    b"&x ",
                    b"*x",
                    b"!!binary ",
                    b"\xff",
                    b"[",
                    b"{",
                ]
            )
        else:
            data[position] = rnd.randrange(256)
    outcome(bytes(data))
